"""Numbers: the network's derived expressions compiled once (`lambdify`) and evaluated
in double precision, then one generic backward loop over the layers.

Nothing here is symbolic at run time: the activations, their derivatives, the loss and
its derivative are compiled once per network, so 10,000 training steps cost no more
SymPy work than one.
"""

from __future__ import annotations

import copy
import math
import operator
from array import array
from dataclasses import dataclass
from decimal import Context, Decimal
from functools import lru_cache
from itertools import islice
from typing import Callable, Iterator, Mapping, Sequence, overload

import sympy as sp

from ..errors import NumericalError
from ..limits import kept_values
from .functions import OUTPUT, PRE_ACTIVATION, Activation, Loss
from .network import Network, NetworkLayer
from .mistakes import RIGHT, Local, Rate, Variation
from .quantities import Kind, quantity_of
from ..spec.optimizers import COUNT, DECAY, GRADIENT, RATE, RULES, THETA, decoupled, hyper, previous, state
from ..spec.schema import Batch, DecayMode, Update
from ..spec.vocabulary import DEFAULT_DIGITS


def _saturating_exp(value: float) -> float:
    """exp that gives inf where math.exp raises: 1/(1 + exp(800)) is then 0, the sigmoid's
    value, instead of an overflow."""
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


# What lambdify compiles to: Python's math, with an exp that saturates.
MODULES = [{"exp": _saturating_exp}, "math"]


@lru_cache(maxsize=None)
def _elementwise(activation: Activation) -> tuple[Callable[[float], float], Callable[[float], float]]:
    function = sp.lambdify(PRE_ACTIVATION, activation.definition, MODULES)
    derivative = sp.lambdify(PRE_ACTIVATION, activation.general_derivative, MODULES)
    return function, derivative


@lru_cache(maxsize=None)
def _elementwise_from_output(activation: Activation) -> Callable[[float], float] | None:
    """f'(z) written with the unit's output, a = f(z): σ' = a(1 − a), tanh' = 1 − a²."""
    shown = activation.derivative_shown_with_outputs([OUTPUT], 0, 0)
    return None if shown is None else sp.lambdify(OUTPUT, shown, MODULES)


_EXACT = Context(prec=60)


def _weighted_sum(weights: Sequence[float], inputs: Sequence[float], bias: float | None) -> float:
    """Σ w·a + b. Where the terms nearly cancel, it is summed again exactly in decimal:
    weights and inputs written as decimals in a spec (0.3·3 − 0.2·4 − 0.1) give exactly 0,
    not 1e-17, so that a ReLU at its kink is seen to be there."""
    terms = list(map(operator.mul, weights, inputs))
    if bias is not None:
        terms.append(bias)
    total = math.fsum(terms)
    if terms and abs(total) > 1e-9 * max(max(terms), -min(terms)):
        return total
    total = sum((_EXACT.multiply(Decimal(repr(w)), Decimal(repr(a))) for w, a in zip(weights, inputs)), Decimal(0))
    if bias is not None:
        total = _EXACT.add(total, Decimal(repr(bias)))
    return float(total)


class _CompiledLayer:
    def __init__(self, layer: NetworkLayer, parameters: Sequence[sp.Symbol]):
        position = {p: n for n, p in enumerate(parameters)}
        self.units = layer.units
        self.weight_index = [[position[w] for w in row] for row in layer.weights]
        self.bias_index = [None if b is None else position[b] for b in layer.biases]
        self.elementwise = layer.activation.elementwise
        self.shift_invariant = layer.activation.shift_invariant
        self.kinked = layer.activation.name == "relu"  # ReLU′(0), which a mistake takes as 1
        if self.elementwise:
            self.function, self.derivative = _elementwise(layer.activation)
            self.derivative_from_output = _elementwise_from_output(layer.activation)
        else:
            zs = layer.pre_activations
            self.vector_function = sp.lambdify(zs, [layer.output(i) for i in range(layer.units)], MODULES)
            self.jacobian = sp.lambdify(
                zs,
                [[layer.activation.local_derivative(zs, k, i) for i in range(layer.units)] for k in range(layer.units)],
                MODULES,
            )
            outputs = layer.outputs
            self.jacobian_from_outputs = sp.lambdify(
                outputs,
                [[layer.activation.derivative_shown_with_outputs(outputs, k, i) for i in range(layer.units)] for k in range(layer.units)],
                MODULES,
            )

    def forward(
        self, parameters: Sequence[float], inputs: Sequence[float], keep: Keep,
        given_pre: Mapping[int, float] | None = None, given_out: Mapping[int, float] | None = None,
    ) -> tuple[list[float], list[float], list[float]]:
        """(weighted sums Σ w·a without the bias, pre-activations, activations). The weighted
        sum is a shown value of its own (W x, then + b): carrying rounded values, the bias is
        added to the rounded sum, as the reader does. `given_pre` and `given_out` replace
        values by unit (a student's own, for follow-through); the rest follows from them."""
        weighted, pre = [], []
        for weights, bias in zip(self.weight_index, self.bias_index):
            values = [parameters[w] for w in weights]
            total = keep(_weighted_sum(values, inputs, None))
            weighted.append(total)
            if bias is None:
                pre.append(total)
            elif keep is exact:
                pre.append(_weighted_sum(values, inputs, parameters[bias]))
            else:
                pre.append(keep(total + parameters[bias]))
        for unit, value in (given_pre or {}).items():
            pre[unit] = value
        out = [self.function(z) for z in pre] if self.elementwise else self.vector_function(*self._shifted(pre))
        out = [keep(float(a)) for a in out]
        for unit, value in (given_out or {}).items():
            out[unit] = value
        return weighted, pre, out

    def local(
        self, pre: Sequence[float], out: Sequence[float], keep: Keep, kind: Local = Local.RIGHT, from_outputs: bool = False,
    ) -> list[list[float]]:
        """∂a_k/∂z_i as rows k; elementwise layers give the diagonal only (k = i). Carrying
        rounded values (or `from_outputs`: with a student's own outputs), it is computed from
        the outputs, as the solution shows it (σ' = a(1 − a) with the rounded a); otherwise
        from sympy.diff of the definition. `kind` is a mistake's way of taking it
        (model/mistakes.py)."""
        if kind is not Local.RIGHT:
            return self._mistaken_local(pre, out, keep, kind)
        from_outputs = from_outputs or keep is not exact
        if self.elementwise:
            if from_outputs and self.derivative_from_output is not None:
                return [[keep(float(self.derivative_from_output(a)))] for a in out]
            try:
                values = [float(self.derivative(z)) for z in pre]
            except OverflowError:
                values = [math.inf]
            if self.derivative_from_output is not None and not all(map(math.isfinite, values)):
                # exp(−z)/(1 + exp(−z))² overflows far out on the sigmoid's tail; σ(1 − σ) does not
                values = [float(self.derivative_from_output(a)) for a in out]
            return [[keep(v)] for v in values]
        rows = self.jacobian_from_outputs(*out) if from_outputs else self.jacobian(*self._shifted(pre))
        return [[keep(float(v)) for v in row] for row in rows]

    def _mistaken_local(self, pre: Sequence[float], out: Sequence[float], keep: Keep, kind: Local) -> list[list[float]]:
        right = self.local(pre, out, keep)
        if kind is Local.LEFT_OUT:
            return [[1.0] for _ in right] if self.elementwise else [[float(k == i) for i in range(self.units)] for k in range(self.units)]
        if kind is Local.TWICE:
            return [[keep(v * v) for v in row] for row in right]
        if kind is Local.AT_OUTPUT and self.elementwise:
            return [[keep(float(self.derivative(a)))] for a in out]
        if kind is Local.KINK_ONE and self.elementwise:
            return [[1.0] if z == 0 and self.kinked else row for z, row in zip(pre, right)]
        return right

    def _shifted(self, pre: Sequence[float]) -> Sequence[float]:
        """z − max z for an activation that is the same under any shift (softmax): no overflow."""
        if not self.shift_invariant:
            return pre
        top = max(pre)
        return [z - top for z in pre]


@dataclass(frozen=True)
class Forward:
    """One sample through the network, per layer: the weighted sums Σ w·a (before the
    bias), the pre-activations and the activations; and the sample's loss."""

    weighted: tuple[tuple[float, ...], ...]
    pre: tuple[tuple[float, ...], ...]
    out: tuple[tuple[float, ...], ...]
    loss: float


@dataclass(frozen=True)
class Backward:
    """One sample's backward pass, per layer: ∂E/∂a, ∂a/∂z, ∂E/∂z; and ∂E/∂θ per parameter."""

    upstream: tuple[tuple[float, ...], ...]
    local: tuple[tuple[tuple[float, ...], ...], ...]
    delta: tuple[tuple[float, ...], ...]
    gradient: tuple[float, ...]


@dataclass(frozen=True)
class ParameterUpdate:
    """One parameter update: the samples it used (from 0), their forward passes before
    the update, the combined loss and gradient, and the parameters before and after.

    With weight decay `loss` is the objective (the data loss plus (λ/2) Σ w²) and
    `gradient` its gradient, the one the update uses; `loss_data` and `data_gradient` are
    the data term's. `state` holds every value the update rule computed for each
    parameter (None for a parameter that is not trained), by the rule's names."""

    step: int
    samples: tuple[int, ...]
    forwards: tuple[Forward, ...]
    loss: float
    gradient: tuple[float, ...]
    before: tuple[float, ...]
    after: tuple[float, ...]
    loss_data: float | None = None
    data_gradient: tuple[float, ...] | None = None
    state: dict[str, tuple[float | None, ...]] | None = None


# A run of more updates than KEPT_UPDATES, or whose updates hold more than KEPT_VALUES
# values (the parameters before and after, each sample's forward pass: about 150 bytes
# each), keeps in memory only its first HEAD_UPDATES updates (those a document shows), its
# last, and every update's loss. Going through its updates again (the JSON key does, as it
# is written) computes them again, in order, from the start: the run is deterministic.
KEPT_UPDATES = 10_000
KEPT_VALUES = 400_000
HEAD_UPDATES = 8


class Updates(Sequence[ParameterUpdate]):
    """A run's updates, in order: all of them in memory, or, for a long run, the first
    HEAD_UPDATES and the last, with the others computed again when they are gone through."""

    def __init__(
        self, kept: Sequence[ParameterUpdate], batches: Sequence[tuple[int, ...]], count: int | None = None,
        last: ParameterUpdate | None = None, losses: Sequence[float] | None = None,
        again: Callable[[], Iterator[ParameterUpdate]] | None = None,
    ):
        self._kept = list(kept)
        self._batches = tuple(batches)
        self._count = len(self._kept) if count is None else count
        self._last = last if last is not None else (self._kept[-1] if self._kept else None)
        self._losses = losses
        self._again = again

    @property
    def complete(self) -> bool:
        """Whether every update is held in memory."""
        return len(self._kept) == self._count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> ParameterUpdate: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[ParameterUpdate, ...]: ...
    def __getitem__(self, index):
        if isinstance(index, slice):
            chosen = range(self._count)[index]
            if self.complete:
                return tuple(self._kept[index])
            if chosen.step > 0 and chosen.stop <= len(self._kept):
                return tuple(self._kept[k] for k in chosen)
            wanted = set(chosen)
            found = {k: u for k, u in enumerate(self) if k in wanted}
            return tuple(found[k] for k in chosen)
        position = range(self._count)[index]  # IndexError when out of range
        if position < len(self._kept):
            return self._kept[position]
        if position == self._count - 1:
            assert self._last is not None
            return self._last
        return next(islice(iter(self), position, None))

    def __iter__(self) -> Iterator[ParameterUpdate]:
        if self.complete:
            return iter(self._kept)
        assert self._again is not None
        return islice(self._again(), self._count)

    def __reversed__(self) -> Iterator[ParameterUpdate]:
        return iter(self[::-1])

    def index(self, value, start: int = 0, stop: int | None = None) -> int:
        """The position of the first update equal to `value` (going through the run once)."""
        chosen = range(self._count)[start:stop]
        for position, update in enumerate(self):
            if position in chosen and update == value:
                return position
        raise ValueError("not among the updates")

    def __eq__(self, other) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(other) == len(self) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self):
        # pickled whole: the function that computes a long run again is not picklable
        return Updates, (list(self), self._batches)

    @property
    def losses(self) -> Sequence[float]:
        """Each update's loss, in order."""
        return self._losses if self._losses is not None else [u.loss for u in self._kept]

    def samples(self, position: int) -> tuple[int, ...]:
        """The samples (from 0) that update `position` (from 0) uses."""
        return self._batches[position % len(self._batches)]


@dataclass(frozen=True)
class Run:
    """A whole training run: every update; the forward pass over all samples with the
    parameters before the first update and after the last; and the first update's samples
    again with the parameters after it (did that update lower their loss?)."""

    updates: Updates
    initial: tuple[Forward, ...]
    final: tuple[Forward, ...]
    initial_loss: float
    final_loss: float
    repeated: tuple[Forward, ...]
    repeated_loss: float
    # With weight decay: the data terms of the three losses above (which are objectives).
    initial_loss_data: float | None = None
    final_loss_data: float | None = None
    repeated_loss_data: float | None = None


Keep = Callable[[float], float]


_DIVERGES = "the run diverges?"


def exact(value: float) -> float:
    return value


def carried(digits: int) -> Keep:
    """Rounds as a student with a calculator does: half away from zero, to `digits` decimals."""
    scale = 10.0**digits

    def keep(value: float) -> float:
        scaled = abs(value) * scale
        if not scaled < 1e15:  # beyond what a double holds after the point (or not finite)
            return value if not math.isfinite(value) else round(value, digits) + 0.0
        # Products and sums of shown decimals are exact decimals, but float arithmetic leaves
        # noise in the 16th digit (0.205 · 3.3 = 0.67649999…), which must not decide a tie:
        # read the scaled value to 14 significant digits first. That reading moves it by
        # less than 5e-14 of itself, so it can only matter near a tie: elsewhere it is skipped.
        halfway = scaled + 0.5
        whole = math.floor(halfway)
        near = 1e-13 * scaled + 1e-12
        if halfway - whole < near or whole + 1 - halfway < near:
            whole = math.floor(float(f"{scaled:.14g}") + 0.5)
        return (whole / scale if value >= 0 else -whole / scale) + 0.0

    keep.digits = digits  # type: ignore[attr-defined]
    return keep


def truncated(digits: int) -> Keep:
    """Cuts a value off after `digits` decimals, as a student who truncates does (a
    catalogued mistake): 0.0828 → 0.082."""
    scale = 10.0**digits

    def keep(value: float) -> float:
        scaled = abs(value) * scale
        if not scaled < 1e15:
            return value
        whole = math.floor(float(f"{scaled:.14g}"))
        return (whole / scale if value >= 0 else -whole / scale) + 0.0

    keep.digits = digits  # type: ignore[attr-defined]
    return keep


def carried_significant(keep: Keep) -> Keep:
    """The policy for an update rule's state (m, v, s): as `keep`, but never fewer than its
    digits of significant figures. Adam's v = (1 − β₂) g² is of the order 10⁻⁶; at three
    decimals it would be 0, and the update would divide by ε."""
    digits = getattr(keep, "digits", None)
    if digits is None:
        return keep

    def significant(value: float) -> float:
        if value == 0 or not math.isfinite(value):
            return value
        # the decimals of `digits` significant figures, judged on the value as `carried` reads
        # it (to 14 digits), so that 0.01225 is a tie, not 0.012249999…
        leading = math.floor(math.log10(float(f"{abs(value):.14g}")))
        return carried(max(digits, digits - 1 - leading))(value)

    significant.digits = digits  # type: ignore[attr-defined]
    significant.significant = True  # type: ignore[attr-defined]
    return significant


_RATES = {Rate.RIGHT: RATE, Rate.NOT_APPLIED: sp.Integer(1), Rate.TWICE: RATE**2, Rate.NEGATED: -RATE}


@lru_cache(maxsize=None)
def _compiled_rule(name: str, switched: tuple[str, ...], decoupled_decay: bool, rate: Rate = Rate.RIGHT):
    """The rule's assignments and updates (of a bias, of a weight) compiled once per rule,
    as functions of (θ, g, t, η, λ, the settings, the previous state, the values so far).
    The settings are arguments, not constants folded in: 1 − β₁ is computed in double
    precision, as torch.optim does."""
    rule = RULES[name]
    update = rule.update_for(dict.fromkeys(switched, True))
    weight_update = decoupled(update) if decoupled_decay else update
    if rate is not Rate.RIGHT:  # a mistake with the learning rate: η replaced in the update
        update, weight_update = (u.xreplace({RATE: _RATES[rate]}) for u in (update, weight_update))
    numbers = [h.name for h in rule.hyperparameters if not h.switch]
    names = [a.name for a in rule.assignments]
    arguments = [
        THETA, GRADIENT, COUNT, RATE, DECAY, *map(hyper, numbers),
        *(previous(a.name) for a in rule.assignments if a.kept), *map(state, names),
    ]
    assignments = tuple((a.name, sp.lambdify(arguments, a.expression, MODULES)) for a in rule.assignments)
    return numbers, assignments, sp.lambdify(arguments, update, MODULES), sp.lambdify(arguments, weight_update, MODULES)


class CompiledRule:
    """The spec's update rule (spec/optimizers.RULES) with its settings: each of its
    assignments and its update as a function of (θ, g, t, previous state, values so far).
    Weight decay: coupled adds λ w to each weight's gradient; decoupled subtracts η λ w in
    the update itself."""

    def __init__(self, spec, keep: Keep, rate: Rate = Rate.RIGHT):
        self.rule = RULES[spec.optimizer.name]
        settings = self.settings = self.rule.settings(spec.optimizer.values)
        self.decay = spec.weight_decay
        self.coupled = bool(self.decay) and spec.weight_decay_mode is DecayMode.COUPLED
        switched = tuple(sorted(name for name, value in settings.items() if value is True))
        numbers, self.assignments, self.update, self.weight_update = _compiled_rule(
            self.rule.name, switched, bool(self.decay) and not self.coupled, rate
        )
        self.constants = (spec.learning_rate, spec.weight_decay, *(settings[name] for name in numbers))
        self.kept = [a.name for a in self.rule.assignments if a.kept]
        self.keep = keep
        self.keep_state = carried_significant(keep)

    def apply(self, theta: float, gradient: float, count: int, before: dict[str, float], weight: bool) -> tuple[float, dict[str, float]]:
        """The parameter after one update, and its state and intermediates."""
        values: dict[str, float] = {}
        fixed = (theta, gradient, count, *self.constants, *(before.get(name, 0.0) for name in self.kept))
        names = [name for name, _ in self.assignments]
        for name, function in self.assignments:
            values[name] = self.keep_state(float(function(*fixed, *(values.get(n, 0.0) for n in names))))
        after = float((self.weight_update if weight else self.update)(*fixed, *(values.get(n, 0.0) for n in names)))
        # A parameter the update does not move stays exactly as given (not rounded).
        return (theta if after == theta else self.keep(after)), values


@lru_cache(maxsize=None)
def _compiled_loss(loss: Loss, predictions: tuple[sp.Symbol, ...], targets: tuple[sp.Symbol, ...]):
    value = sp.lambdify(predictions + targets, loss.per_sample(predictions, targets), MODULES)
    derivative = sp.lambdify(
        predictions + targets, [loss.derivative(predictions, targets, k) for k in range(len(predictions))], MODULES
    )
    return value, derivative


class CompiledNetwork:
    """The network's numbers. `keep` is applied to every value a worked solution shows
    (pre-activations, activations, losses, chain-rule factors, gradients, updated
    parameters): `exact` keeps full precision, `carried(d)` computes as a student who
    carries each shown value rounded to d decimals."""

    def __init__(
        self, network: Network, keep: Keep = exact, variation: Variation = RIGHT, given: Mapping[str, float] | None = None
    ):
        self.network = network
        self.keep = keep
        self.variation = variation  # RIGHT, or a mistake's change to one rule (model/mistakes.py)
        # Values of the first update given from outside (a student's answers, by question id:
        # z2[0], a1[1] of the first sample, grad:W1[0,0], new:b2[0]), which the rest follows from.
        self.given = dict(given or {})
        self.parameters = network.parameters
        self.layers = [_CompiledLayer(layer, self.parameters) for layer in network.layers]
        self._loss, self._loss_gradient = _compiled_loss(network.loss, network.predictions, network.targets)
        self._delta = None
        if network.shortcut:
            deltas = [network.delta(k) for k in range(len(network.predictions))]
            self._delta = sp.lambdify(network.predictions + network.targets, deltas, MODULES)
        trainable = set(network.trainable)
        self.trainable_mask = tuple(p in trainable for p in self.parameters)
        self.weight_mask = tuple(quantity_of(p).kind is Kind.WEIGHT for p in self.parameters)
        self.source = network.spec.source
        self.rule = CompiledRule(network.spec, keep, variation.rate)

    def parameter_name(self, index: int) -> str:
        """The answer key's name of parameter `index` (W1[0,1], b2[0])."""
        found = quantity_of(self.parameters[index])
        return found.key if found is not None else str(self.parameters[index])

    def with_keep(self, keep: Keep) -> CompiledNetwork:
        """The same compiled network computing with another rounding policy."""
        return self.varied(keep, self.variation, self.given)

    def varied(self, keep: Keep, variation: Variation = RIGHT, given: Mapping[str, float] | None = None) -> CompiledNetwork:
        """The same network computing with another rounding policy, a mistake or values
        given from outside: what is compiled (the layers, the loss) is shared, not made again."""
        other = copy.copy(self)
        other.keep = keep
        other.variation = variation
        other.given = dict(given or {})
        other.rule = CompiledRule(self.network.spec, keep, variation.rate)
        return other

    def run(self) -> Run:
        updates, final = self.train()
        start = self.network.initial_values()
        initial = self.evaluate(start, range(len(self.network.spec.data)), "the forward pass before training")
        first = updates[0]
        repeated = self.evaluate(first.after, first.samples, f"the forward pass after step {first.step}")
        losses = [(self.combine([f.loss for f in forwards]), parameters) for forwards, parameters in ((initial, start), (final, updates[-1].after), (repeated, first.after))]
        objectives = [self.objective(loss, parameters) for loss, parameters in losses]
        data = [loss for loss, _ in losses] if self.rule.decay else [None] * 3
        return Run(
            updates, initial, final, objectives[0], objectives[1], repeated, objectives[2],
            initial_loss_data=data[0], final_loss_data=data[1], repeated_loss_data=data[2],
        )

    def penalty(self, parameters: Sequence[float]) -> float:
        """(λ/2) Σ w² over the weights (biases excluded)."""
        return self.rule.decay / 2 * self.squares(parameters)

    def squares(self, parameters: Sequence[float]) -> float:
        """Σ w² over the weights, a shown value of its own."""
        return self.keep(math.fsum(p * p for p, weight in zip(parameters, self.weight_mask) if weight))

    def objective(self, loss: float, parameters: Sequence[float]) -> float:
        """The loss the update minimises: the data loss, plus the penalty when weight decay
        is coupled (one shown line: J = E + (λ/2) Σ w²)."""
        return self.keep(loss + self.penalty(parameters)) if self.rule.coupled else loss

    def decayed(self, parameters: Sequence[float], gradient: Sequence[float]) -> tuple[float, ...]:
        """Each weight's gradient plus λ w (coupled weight decay); biases unchanged."""
        if not self.rule.coupled:
            return tuple(gradient)
        decay = self.rule.decay
        return tuple(
            self.keep(g + decay * p) if weight and trainable else g
            for p, g, weight, trainable in zip(parameters, gradient, self.weight_mask, self.trainable_mask)
        )

    def forward(self, parameters: Sequence[float], x: Sequence[float], y: Sequence[float], given: bool = False) -> Forward:
        """One sample's forward pass; `given`: with the values given for the first sample."""
        weighted, pre, out = [], [], []
        inputs = x
        for number, layer in enumerate(self.layers, start=1):
            units = range(layer.units)
            given_pre = {i: self.given[f"z{number}[{i}]"] for i in units if f"z{number}[{i}]" in self.given} if given else None
            given_out = {i: self.given[f"a{number}[{i}]"] for i in units if f"a{number}[{i}]" in self.given} if given else None
            s, z, a = layer.forward(parameters, inputs, self.keep, given_pre, given_out)
            weighted.append(tuple(s))
            pre.append(tuple(z))
            out.append(tuple(a))
            inputs = a
        loss = self.keep(self._loss(*inputs, *y))
        return Forward(tuple(weighted), tuple(pre), tuple(out), loss)

    def backward(
        self, parameters: Sequence[float], x: Sequence[float], y: Sequence[float], forward: Forward,
        upstream_parameters: Sequence[float] | None = None,
    ) -> Backward:
        """One sample's backward pass; the error flows back through `upstream_parameters`
        (the parameters themselves, unless a mistake says otherwise)."""
        variation = self.variation
        through = parameters if upstream_parameters is None else upstream_parameters
        gradient = [0.0] * len(parameters)
        upstream_of: list[tuple[float, ...]] = [()] * len(self.layers)
        local_of: list[tuple[tuple[float, ...], ...]] = [()] * len(self.layers)
        delta_of: list[tuple[float, ...]] = [()] * len(self.layers)
        keep = self.keep
        scale = variation.error_sign * variation.loss_scale
        upstream = [keep(scale * u) for u in self._loss_gradient(*forward.out[-1], *y)]
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            local = layer.local(forward.pre[index], forward.out[index], keep, variation.local, from_outputs=bool(self.given))
            if self._delta is not None and index == len(self.layers) - 1:
                delta = [keep(variation.error_sign * d) for d in self._delta(*forward.out[-1], *y)]  # ŷ − y, shown as such
            elif layer.elementwise:
                delta = [u * row[0] for u, row in zip(upstream, local)]  # not shown: a factor of each gradient
            elif variation.diagonal:
                delta = [keep(upstream[i] * local[i][i]) for i in range(layer.units)]
            else:
                delta = [keep(math.fsum(upstream[k] * local[k][i] for k in range(layer.units))) for i in range(layer.units)]
            inputs = forward.out[index - 1] if index > 0 else x
            if variation.transposed and len(inputs) == layer.units:  # a mistake: δ_j a_i for ∂E/∂w_ij
                for i, d in enumerate(delta):
                    for j, (w, a) in enumerate(zip(layer.weight_index[i], inputs)):
                        gradient[w] += delta[j] * inputs[i]
                    if layer.bias_index[i] is not None:
                        gradient[layer.bias_index[i]] += d
            else:
                for row, bias, d in zip(layer.weight_index, layer.bias_index, delta):
                    for w, a in zip(row, inputs):
                        gradient[w] += d * a
                    if bias is not None:
                        gradient[bias] += d
            upstream_of[index], local_of[index], delta_of[index] = tuple(upstream), tuple(map(tuple, local)), tuple(delta)
            if index:  # (nothing flows back into the inputs)
                upstream = [
                    keep(math.fsum(delta[i] * through[layer.weight_index[i][j]] for i in range(layer.units)))
                    for j in range(len(inputs))
                ]
        return Backward(tuple(upstream_of), tuple(local_of), tuple(delta_of), tuple(keep(g) for g in gradient))

    def combine(self, values: Sequence[float], when: str | None = None, what: str | Callable[[], str] = "the samples' losses") -> float:
        """The batch's mean or sum of `values` (named `what` in messages; a function giving
        the name is called only for a message)."""
        try:
            total = math.fsum(values)
        except (OverflowError, ValueError):
            total = math.inf
        if not math.isfinite(total):
            named = what() if callable(what) else what
            raise NumericalError(self.source, when, None, f"overflow: {named} are too large to add ({_DIVERGES})")
        batch = self.variation.batch or self.network.spec.batch
        return self.keep(total / len(values) if batch is Batch.MEAN else total)

    def combine_gradients(self, gradients: Sequence[Sequence[float]], when: str | None = None) -> tuple[float, ...]:
        if len(gradients) == 1:
            # one sample: its mean and sum are itself, already kept (and checked finite by the backward pass)
            return tuple(gradients[0])
        return tuple(
            self.combine(column, when, lambda k=k: f"the samples' ∂E/∂{self.parameter_name(k)}") for k, column in enumerate(zip(*gradients))
        )

    def step(
        self, parameters: Sequence[float], gradient: Sequence[float], count: int = 1, before: dict[str, tuple] | None = None
    ) -> tuple[tuple[float, ...], dict[str, tuple[float | None, ...]]]:
        """The parameters after update number `count` by the spec's rule, and every value
        the rule computed per parameter (None for parameters that are not trained)."""
        rule = self.rule
        if not rule.assignments:  # a rule without state (gradient descent): one call per parameter, no bookkeeping
            constants, keep = rule.constants, self.keep
            moved = (
                (rule.weight_update if weight else rule.update)(p, g, count, *constants) if trainable else p
                for p, g, trainable, weight in zip(parameters, gradient, self.trainable_mask, self.weight_mask)
            )
            # a parameter the update does not move stays exactly as given (not rounded)
            return tuple(p if a == p else keep(float(a)) for p, a in zip(parameters, moved)), {}
        after: list[float] = []
        state: dict[str, list] = {name: [] for name, _ in self.rule.assignments}
        for k, (p, g, trainable, weight) in enumerate(zip(parameters, gradient, self.trainable_mask, self.weight_mask)):
            if not trainable:
                after.append(p)
                for values in state.values():
                    values.append(None)
                continue
            previous_state = {name: before[name][k] for name in self.rule.kept} if before else {}
            new, values = self.rule.apply(p, g, count, previous_state, weight)
            after.append(new)
            for name, value in values.items():
                state[name].append(value)
        return tuple(after), {name: tuple(values) for name, values in state.items()}

    def evaluate(self, parameters: Sequence[float], samples: Sequence[int], when: str, given: bool = False) -> tuple[Forward, ...]:
        """The forward passes of `samples`; `when` names the pass in messages ("step 3");
        `given`: the first sample's with the values given from outside."""
        data = self.network.spec.data
        return tuple(
            self._guarded(when, n, self.forward, parameters, data[n].x, data[n].y, given and position == 0)
            for position, n in enumerate(samples)
        )

    def _given_parameters(self, prefix: str, values: Sequence[float]) -> tuple[float, ...]:
        """`values` (one per parameter) with those given as prefix:NAME replaced."""
        return tuple(self.given.get(f"{prefix}:{self.parameter_name(k)}", v) for k, v in enumerate(values))

    def first_update(self) -> ParameterUpdate:
        """The first update alone (what an exercise asks about), without the rest of the run."""
        updates, _ = self.train(limit=1)
        return updates[0]

    def train(self, limit: int | None = None) -> tuple[Updates, tuple[Forward, ...]]:
        """Gradient descent as the spec asks; returns the updates and the final forward pass
        (only the first `limit` updates, and no final pass, when `limit` is given)."""
        spec = self.network.spec
        everything = tuple(range(len(spec.data)))
        batches = [everything] if spec.update is Update.BATCH else [(n,) for n in everything]
        count = spec.steps * len(batches) if limit is None else min(limit, spec.steps * len(batches))
        values = kept_values(count, len(self.parameters), len(batches[0]), sum(layer.units for layer in self.layers))
        if count <= KEPT_UPDATES and values <= KEPT_VALUES:
            updates = Updates(list(self._updates(batches, count)), batches)
        else:
            head: list[ParameterUpdate] = []
            losses = array("d")
            last = None
            for last in self._updates(batches, count):
                if len(head) < HEAD_UPDATES:
                    head.append(last)
                losses.append(last.loss)
            updates = Updates(head, batches, count, last, losses, lambda: self._updates(batches, count))
        if limit is not None:
            return updates, ()
        parameters = updates[-1].after
        final = self.evaluate(parameters, everything, f"the forward pass after the last update (step {count})")
        return updates, final

    def _updates(self, batches: Sequence[tuple[int, ...]], count: int) -> Iterator[ParameterUpdate]:
        """The first `count` updates, one by one."""
        spec = self.network.spec
        parameters = self.network.initial_values()
        state: dict[str, tuple] = {}
        for index in range(count):
            batch = batches[index % len(batches)]
            step = index + 1
            when = f"step {step}"
            first = step == 1 and bool(self.given)
            forwards = self.evaluate(parameters, batch, when, first)
            gradients = [
                self._guarded(when, n, self.backward, parameters, spec.data[n].x, spec.data[n].y, f).gradient
                for n, f in zip(batch, forwards)
            ]
            data_gradient = self.combine_gradients(gradients, when)
            if self.variation.updated_weights:  # a mistake: the error flows back through the updated weights
                through, _ = self.step(parameters, self.decayed(parameters, data_gradient), step, state)
                gradients = [
                    self._guarded(when, n, self.backward, parameters, spec.data[n].x, spec.data[n].y, f, through).gradient
                    for n, f in zip(batch, forwards)
                ]
                data_gradient = self.combine_gradients(gradients, when)
            gradient = self.decayed(parameters, data_gradient)
            if first:
                gradient = self._given_parameters("grad", gradient)
            try:
                after, state = self.step(parameters, gradient, step, state)
            except (OverflowError, ZeroDivisionError):
                after = (math.inf,)
            if first:
                after = self._given_parameters("new", after)
            broken = next((k for k, v in enumerate(after) if not math.isfinite(v)), None)
            if broken is not None:
                name = self.parameter_name(broken) if len(after) == len(parameters) else "a parameter"
                raise NumericalError(self.source, when, None, f"overflow in the update of {name} ({_DIVERGES})")
            loss_data = self.combine([f.loss for f in forwards], when)
            loss = self.objective(loss_data, parameters)
            yield ParameterUpdate(
                step, batch, forwards, loss, gradient, parameters, after,
                loss_data=loss_data if self.rule.decay else None,
                data_gradient=data_gradient if self.rule.coupled else None,
                state=state if state else None,
            )
            parameters = after

    def _guarded(self, when: str, sample: int, compute, *args):
        """Runs one sample's forward or backward pass, turning math failures into a
        NumericalError that names the pass (or the value) that failed."""
        try:
            result = compute(*args)
        except (ZeroDivisionError, OverflowError, ValueError) as error:
            raise self._failure(when, sample, compute, error) from None
        # a sum of the values is finite when they all are (or else overflows: then each is looked at)
        total = sum(map(sum, result.out)) + result.loss if isinstance(result, Forward) else sum(result.gradient)
        if total - total == 0:
            return result
        if isinstance(result, Forward):
            named = [(f"a{layer + 1}[{unit}]", v) for layer, values in enumerate(result.out) for unit, v in enumerate(values)]
            named.append(("the loss", result.loss))
        else:
            named = [(f"∂E/∂{self.parameter_name(k)}", v) for k, v in enumerate(result.gradient)]
        for name, value in named:
            if not math.isfinite(value):
                raise NumericalError(self.source, when, sample + 1, f"overflow: {name} is too large to compute ({_DIVERGES})")
        return result

    def _failure(self, when: str, sample: int, compute, error: ArithmeticError | ValueError) -> NumericalError:
        """The NumericalError for a math failure in one sample's forward or backward pass."""
        phase = "the forward pass" if compute == self.forward else "the backward pass"
        if isinstance(error, ZeroDivisionError):
            return NumericalError(self.source, when, sample + 1, f"division by zero in {phase} (a prediction of exactly 0 or 1?)")
        if isinstance(error, OverflowError) or "domain" not in str(error):  # a ValueError without "domain": inf − inf
            return NumericalError(self.source, when, sample + 1, f"overflow in {phase}: a value too large to compute ({_DIVERGES})")
        digits = getattr(self.keep, "digits", None)
        if digits is not None:
            return NumericalError(
                self.source, when, sample + 1,
                f"a prediction rounds to 0 or 1 at {digits} decimals, and the loss takes its log; "
                "show more digits (--digits) or compute exactly (--rounding exact)",
            )
        return NumericalError(self.source, when, sample + 1, "log(0): a prediction of exactly 0 or 1 in the loss")
