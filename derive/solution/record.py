"""The worked solution as a plain record: equations (SymPy expressions plus the numbers
to substitute) and values. Templates only format it; `to_dict` is the JSON answer key.
The record knows nothing about how it is rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Any, Iterator, Mapping

import sympy as sp

from .figures import Diagram, LossCurve
from ..model.network import Network
from ..model.numeric import Forward, Run
from ..model.quantities import quantity_of
from ..spec.optimizers import RULES
from ..spec.schema import Rounding, Spec

FORMAT = "derive-solution/1"


class Braced(sp.Expr):
    """A part of an expression shown with its value under a brace, as the reader computes
    it first: the weighted sum W x, before the bias is added. `label` is the symbol whose
    value goes under the brace; without values the part prints as it is."""

    def __new__(cls, part: sp.Expr, label: sp.Symbol):
        return sp.Expr.__new__(cls, part, label)

    @property
    def part(self) -> sp.Expr:
        return self.args[0]

    @property
    def label(self) -> sp.Symbol:
        return self.args[1]


@dataclass(frozen=True, eq=False)
class Form:
    """One right-hand side: an expression, shown with symbols (values None) or with
    every symbol that has a value replaced by its number."""

    expr: sp.Basic
    values: Mapping[sp.Symbol, float] | None = None


@dataclass(frozen=True, eq=False)
class Equation:
    """lhs = forms… = value, as one displayed line."""

    lhs: sp.Basic
    forms: tuple[Form, ...]
    value: float | None = None


def equation(lhs: sp.Basic, forms: list[Form], value: float | None = None) -> Equation:
    """An equation without the forms a reader would find repeated: a form identical to
    the one before, a lone substituted symbol (it is the value), a value after a constant."""
    kept: list[Form] = []
    for form in forms:
        if kept and kept[-1].expr == form.expr and (kept[-1].values is None) == (form.values is None):
            continue
        if kept and kept[-1].values is None and form.values is not None and not any(s in form.values for s in form.expr.free_symbols):
            continue  # nothing to substitute: the numbers form would repeat the symbolic one
        if form.values is not None and form.expr.is_Symbol and value is not None:
            continue
        kept.append(form)
    if kept and kept[-1].expr.is_Number and value is not None and float(kept[-1].expr) == value:
        value = None
    return Equation(lhs, tuple(kept), value)


class LossChange(Enum):
    FELL = "fell"
    ROSE = "rose"
    UNCHANGED = "unchanged"


class Movement(Enum):
    """How a sample's prediction moved relative to its target (Euclidean distance)."""

    TOWARDS = "towards"
    AWAY = "away"
    UNCHANGED = "unchanged"


class NoteKind(Enum):
    INACTIVE = "inactive"  # a ReLU with z < 0 for this sample: no gradient flows through it
    AT_KINK = "at_kink"  # a (leaky) ReLU with z exactly 0: the left derivative is taken
    DEAD = "dead"  # a ReLU active at the start, with z <= 0 for every sample after training
    NEVER_ACTIVE = "never_active"  # a ReLU with z <= 0 for every sample, before and after


@dataclass(frozen=True)
class Note:
    kind: NoteKind
    unit: sp.Symbol  # the unit's activation
    pre_activation: sp.Symbol  # as named where the value was computed (starred after an update)
    value: float  # the pre-activation's value
    sample: int | None = None  # from 1
    slope: float | None = None  # the derivative taken at a kink (the left one)


@dataclass(frozen=True)
class ValueRow:
    symbol: sp.Basic
    values: tuple[float, ...]


@dataclass(frozen=True)
class ValueTable:
    """Quantities (rows) by sample (columns): the samples after the first, which follow
    the same steps as the one worked in full."""

    samples: tuple[int, ...]  # from 1, one per column
    rows: tuple[ValueRow, ...]


class ClassRule(Enum):
    THRESHOLD = "threshold"  # each sigmoid output: class 1 when at least 0.5
    LARGEST = "largest"  # softmax: the class of the largest output


@dataclass(frozen=True)
class Comparison:
    """One output against the threshold: ŷ = 0.526 > 0.5."""

    output: sp.Symbol
    value: float
    relation: str  # ">", "<" or "=" (at the threshold, counted as class 1)
    predicted: int


@dataclass(frozen=True)
class Classification:
    rule: ClassRule
    comparisons: tuple[Comparison, ...]  # THRESHOLD: one per output; LARGEST: the largest output
    threshold: float = 0.5

    @property
    def classes(self) -> tuple[int, ...]:
        return tuple(c.predicted for c in self.comparisons)


@dataclass(frozen=True)
class LayerForward:
    number: int
    activation: str
    is_output: bool
    pre_activations: tuple[Equation, ...]  # z = Σ w·a + b, the weighted sum under a brace
    activations: tuple[Equation, ...]
    braced: bool  # the layer has biases, so its weighted sums are under braces
    weighted_sum: Equation  # z_i = Σ_j w_ij a_j + b_i, once for the layer (generic indices)
    pre_activations_brief: tuple[Equation, ...]  # `pre_activations` with the numbers only, after that


@dataclass(frozen=True)
class SampleForward:
    sample: int  # from 1
    layers: tuple[LayerForward, ...]
    loss: Equation
    prediction: tuple[float, ...]
    classification: Classification | None  # for sigmoid and softmax outputs


@dataclass(frozen=True)
class ForwardPass:
    samples: tuple[SampleForward, ...]
    loss: Equation  # the combined loss (the sample's own loss when there is one sample)
    value: float
    tables: tuple[ValueTable, ...]  # every sample's values, when there are several


@dataclass(frozen=True)
class ParameterGradient:
    parameter: sp.Symbol
    factors: tuple[Equation, ...]  # ∂z_i/∂θ for each unit θ feeds, written out
    gradient: Equation  # the Leibniz product, its numbers, the result
    gradient_brief: Equation  # the numbers and the result, after the layer's chain rule


@dataclass(frozen=True)
class LayerBackward:
    number: int
    following: int | None  # the layer whose factors this layer's ∂E/∂a reuses
    activation: str
    is_output: bool
    elementwise: bool
    shortcut: bool  # ∂E/∂z = ŷ − y in one step: no ∂E/∂a and ∂a/∂z shown
    upstream: tuple[Equation, ...]  # ∂E/∂a per unit (reused by every parameter of the unit)
    local: tuple[Equation, ...]  # ∂a_k/∂z_i, from the definition's derivative
    local_brief: tuple[Equation, ...]  # the same, as f′(z) with its number
    deltas: tuple[Equation, ...]  # ∂E/∂z_i, for layers whose activation is not elementwise
    linear: tuple[Equation, ...]  # ∂z_i/∂w_ij = a_j, ∂z_i/∂b_i = 1, once for the layer (generic indices)
    any_unit: bool  # `linear` has i for any unit of the layer (more than one unit)
    any_source: bool  # `linear` has j for any input of the layer (more than one input)
    linear_each: tuple[Equation, ...]  # the same for each parameter, for notations without generic indices
    chain: tuple[Equation, ...]  # ∂E/∂w_ij = ∂E/∂a_i · ∂a_i/∂z_i · ∂z_i/∂w_ij (and for b_i), once for the layer
    parameters: tuple[ParameterGradient, ...]
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class SampleBackward:
    sample: int
    layers: tuple[LayerBackward, ...]


@dataclass(frozen=True)
class SampleOutcome:
    """What the update did to one sample (values as shown)."""

    sample: int  # from 1
    targets: tuple[float, ...]
    before: tuple[float, ...]  # the prediction before the update
    after: tuple[float, ...]
    loss_before: float
    loss_after: float
    movement: Movement
    crossed: bool  # a single output moved to the other side of its target (overshot it)
    classes_before: tuple[int, ...] | None
    classes_after: tuple[int, ...] | None


@dataclass(frozen=True)
class Outcome:
    loss_change: LossChange  # of the loss over the update's samples
    samples: tuple[SampleOutcome, ...]

    def moved(self, movement: str) -> tuple[int, ...]:
        return tuple(s.sample for s in self.samples if s.movement.value == movement)

    @property
    def class_changes(self) -> tuple[SampleOutcome, ...]:
        return tuple(s for s in self.samples if s.classes_before is not None and s.classes_before != s.classes_after)


@dataclass(frozen=True)
class RuleStep:
    """One later update of a rule with state: per trainable parameter (rows), its gradient,
    the rule's values and the updated parameter (`columns` names them for a parameter θ)."""

    step: int
    columns: tuple[sp.Basic, ...]
    rows: tuple[ValueRow, ...]
    samples: tuple[int, ...] = ()  # from 1: the samples the update used
    continued: bool = False  # the rest of a table too long for one page


@dataclass(frozen=True)
class UpdateRuleView:
    """An update rule other than plain gradient descent (spec/optimizers.RULES)."""

    name: str  # momentum, rmsprop, adam
    label: str
    settings: tuple[Equation, ...]  # β₁ = 0.9, …
    rule: tuple[Equation, ...]  # each assignment and the update, for a parameter θ
    state: tuple[str, ...]  # the values kept from one update to the next
    previous: sp.Symbol | None  # the first state before the update (m_θ), to name the convention
    nesterov: bool
    parameters: tuple[tuple[Equation, ...], ...]  # per trainable parameter, the first update's lines
    parameters_brief: tuple[tuple[Equation, ...], ...]  # the same with the numbers only
    later: tuple[RuleStep, ...]  # the next few updates, long tables split
    later_total: int  # how many updates follow the first
    later_total_shown: int  # how many of them have tables
    decoupled: bool  # the update also subtracts η λ θ (decoupled weight decay)


@dataclass(frozen=True)
class WeightDecay:
    mode: str  # coupled | decoupled
    rate: Equation  # λ = …
    objective: tuple[Equation, ...] | None  # Σ w² = …, then J = E + (λ/2) Σ w² (coupled)
    gradients: tuple[Equation, ...]  # ∂J/∂w = ∂E/∂w + λ w, per trainable weight (coupled)
    repeated_objective: tuple[Equation, ...] | None  # the same after the update (coupled)


@dataclass(frozen=True)
class DetailedStep:
    """The first update, written out in full."""

    samples: tuple[int, ...]  # from 1
    forward: ForwardPass
    backward: tuple[SampleBackward, ...]
    backward_tables: tuple[ValueTable, ...]  # every sample's backward values, when there are several
    sample_loss: sp.Symbol  # E_n, the loss of sample n in those tables
    combined: tuple[Equation, ...]  # ∂E/∂θ from the per-sample gradients (several samples)
    combined_rule: Equation | None  # ∂E/∂θ = (1/N) Σ ∂E_n/∂θ, stated once for every θ
    combined_brief: tuple[Equation, ...]  # `combined` with the numbers only, after the rule
    batch: str  # "mean" or "sum", how `combined` is formed
    updates: tuple[Equation, ...]
    update_rule: Equation  # θ* = θ − η ∂E/∂θ, stated once for every θ
    updates_brief: tuple[Equation, ...]  # `updates` with the numbers only, after the rule
    repeated: ForwardPass  # the same samples, with the updated parameters
    outcome: Outcome
    frozen: tuple[sp.Symbol, ...]  # parameters that are not trained
    # Every number of the step by symbol: per sample, and for the update (other views use them).
    values: tuple[Mapping[sp.Symbol, float], ...] = ()
    update_values: Mapping[sp.Symbol, float] = field(default_factory=dict)
    repeated_values: tuple[Mapping[sp.Symbol, float], ...] = ()  # per sample, the starred values
    rule: UpdateRuleView | None = None  # an update rule other than plain gradient descent
    decay: WeightDecay | None = None

    @property
    def loss_change(self) -> LossChange:
        return self.outcome.loss_change


@dataclass(frozen=True)
class LayerDescription:
    number: int
    units: int
    activation: str
    is_output: bool
    weights: Equation
    bias: Equation | None
    parameters: tuple[Equation, ...]  # each weight and bias with its value, for notations without matrices
    shared_bias: bool
    train_bias: bool


@dataclass(frozen=True)
class NetworkDescription:
    inputs: int
    outputs: int  # K of the loss's sums
    layers: tuple[LayerDescription, ...]
    activations: tuple[tuple[Equation, Equation], ...]  # definition and derivative of each activation used
    loss: Equation
    loss_label: str
    loss_terms: tuple[sp.Basic, sp.Basic]  # y_k and ŷ_k as the loss's definition writes them
    learning_rate: Equation
    large_learning_rate: bool  # large enough to deserve a remark
    shortcut: Equation | None  # ∂E/∂z of the output layer simplified, derived once
    optimizer: str = "sgd"  # the update rule's name (spec/optimizers.RULES)
    optimizer_label: str = ""  # its name in prose: Momentum, RMSprop, Adam
    optimizer_settings: tuple[Equation, ...] = ()  # β₁ = 0.9, …
    weight_decay: Equation | None = None  # λ = …
    decay_mode: str = "coupled"


@dataclass(frozen=True)
class DataTable:
    headers: tuple[sp.Symbol, ...]
    rows: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class Summary:
    """The final values alone (--detail answers): the first update's forward values per
    sample, its loss, each parameter's gradient and updated value."""

    samples: tuple[int, ...]  # from 1
    forward: tuple[ValueRow, ...]
    loss: ValueRow
    gradients: tuple[ValueRow, ...]  # the gradient's symbol; values: (gradient, updated value)
    updated: tuple[sp.Symbol, ...]


@dataclass(frozen=True)
class LossRow:
    updates: int  # updates done before this loss was measured
    samples: tuple[int, ...]  # from 1: the samples the loss is over
    loss: float
    final: bool = False  # the loss over all samples after the last update


@dataclass(frozen=True)
class Training:
    """Several updates: the loss before each (a selection when there are many) and after the
    last; the table and the curve show the same points."""

    loss: sp.Symbol  # what the rows hold: the loss E, or J with coupled weight decay
    rows: tuple[LossRow, ...]
    per_sample: bool  # one update per sample: the rows say which
    updates: int
    all_rows: bool
    final_parameters: tuple[Equation, ...]  # named as final, not as the initial parameters
    final_parameter_list: tuple[Equation, ...]  # the same, parameter by parameter
    final_loss: float
    initial_loss: float
    curve: LossCurve


@dataclass(frozen=True, eq=False)
class Solution:
    spec: Spec
    network: Network = field(repr=False)
    description: NetworkDescription = field(repr=False)
    data: DataTable = field(repr=False)
    diagram: Diagram = field(repr=False)
    detail: DetailedStep = field(repr=False)
    summary: Summary = field(repr=False)
    training: Training | None = field(repr=False)
    notes: tuple[Note, ...]  # about the trained network (dead units)
    shown: Run = field(repr=False)  # what the document computes: carried rounded values, or exact
    exact: Run = field(repr=False)  # full precision
    rounding: Rounding = Rounding.CARRY
    digits: int = 3  # the decimals shown (and carried)

    kind = "network"  # a GraphSolution's is "graph"

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def updates(self):
        return self.shown.updates

    def to_dict(self, steps: bool = True) -> dict[str, Any]:
        """The JSON answer key (format derive-solution/1): full double precision, and with
        carried rounding the values as the document shows them under "shown". Without
        `steps`, its "steps" list is left empty (they are then written one by one from
        `key_steps`)."""
        final: dict[str, Any] = {"forward": [self._record(f) for f in self.exact.final], "loss": self.exact.final_loss}
        if self.exact.final_loss_data is not None:
            final["loss_data"] = self.exact.final_loss_data
        rounding: dict[str, Any] = {"mode": self.rounding.value}
        if self.rounding is Rounding.CARRY:
            rounding["digits"] = self.digits
            final["shown"] = {"forward": [self._record(f) for f in self.shown.final], "loss": self.shown.final_loss}
            if self.shown.final_loss_data is not None:
                final["shown"]["loss_data"] = self.shown.final_loss_data
        return {
            "format": FORMAT, "title": self.title, "rounding": rounding, "steps": list(self.key_steps()) if steps else [], "final": final,
        }

    def key_steps(self) -> Iterator[dict[str, Any]]:
        """The key's entry of each update, in order (a long run's are computed again)."""
        if self.rounding is not Rounding.CARRY:
            yield from map(self._step, self.exact.updates)
            return
        for exact, shown in zip(self.exact.updates, self.shown.updates):
            step = self._step(exact)
            step["shown"] = {k: v for k, v in self._step(shown).items() if k != "step"}
            yield step

    @cached_property
    def _key_names(self) -> tuple[tuple[int, ...], tuple[str, ...], tuple[str, ...]]:
        """The trainable parameters' positions and names, and the names of a forward pass's
        values (z and a of each unit, layer by layer), in the key's order."""
        network = self.network
        trainable = set(network.trainable)
        positions = tuple(n for n, p in enumerate(network.parameters) if p in trainable)
        names = tuple(_key(network.parameters[n]) for n in positions)
        forward = tuple(_key(q) for layer in network.layers for pair in zip(layer.pre_activations, layer.outputs) for q in pair)
        return positions, names, forward

    def _step(self, update) -> dict[str, Any]:
        positions, names, _ = self._key_names
        if len(positions) == len(update.gradient):
            pick = lambda values: values  # noqa: E731 (every parameter is trained)
        else:
            pick = lambda values: [values[n] for n in positions]  # noqa: E731
        step: dict[str, Any] = {
            "step": update.step,
            "forward": [self._record(f) for f in update.forwards],
            "loss": update.loss,
        }
        if update.loss_data is not None:
            step["loss_data"] = update.loss_data
        step["gradients"] = dict(zip(names, pick(update.gradient)))
        step["updated"] = dict(zip(names, pick(update.after)))
        if update.state:
            step["state"] = {name: dict(zip(names, pick(update.state[name]))) for name in RULES[self.spec.optimizer.name].state}
        return step

    def _record(self, forward: Forward) -> dict[str, float]:
        record = dict(zip(self._key_names[2], [v for pre, out in zip(forward.pre, forward.out) for pair in zip(pre, out) for v in pair]))
        record["loss"] = forward.loss
        return record


def _key(sym: sp.Symbol) -> str:
    return quantity_of(sym).key
