"""Exercises: seeded variants of a spec, with their questions, answers and tolerances.

A variant keeps the template's structure (layers, activations, loss, learning rate, the
shape of its data) and draws its numbers with `random.Random` seeded from (seed,
variant, attempt), rounded before anything is computed from them. A draw that would
make a poor exercise (see `Rejection`) is drawn again.
"""

from __future__ import annotations

import math
import random
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Mapping, Sequence

import sympy as sp

from .derivation import solve
from .errors import DeriveError, UsageError
from .network import Network
from .numeric import CompiledNetwork, carried, exact
from .printing import DEFAULT_DIGITS
from .quantities import Kind, partial, quantity_of, updated
from .solution import LossChange, Solution
from .spec import Rounding, Spec, load_spec

MAX_SEED = 0xFFFF  # the seed is part of a variant's id, as four hex digits
MAX_ATTEMPTS = 500
SATURATION = 4.0  # |z| beyond which a sigmoid or tanh is flat: a poor exercise
ASK_GROUPS = ("forward", "loss", "gradients", "updates")


class QuestionKind(Enum):
    PREDICTION = "prediction"  # an output of the network
    FORWARD = "forward"  # another pre-activation or activation
    LOSS = "loss"
    GRADIENT = "gradient"
    UPDATE = "update"


class Rejection(Enum):
    DEAD_LAYER = "every ReLU of a layer is dead"
    ZERO_GRADIENT = "an asked gradient is exactly 0"
    SATURATED = "a sigmoid or tanh is saturated (|z| > 4)"
    LOSS_NOT_FALLING = "the loss does not fall after the update"
    SHOWS_AS_ZERO = "an asked value shows as 0 at the displayed precision"
    DUPLICATE = "it duplicates another variant"
    OVERFLOW = "the numbers overflow (log(0), exp of a huge number)"


@dataclass(frozen=True)
class Question:
    id: str  # a2[0], z1[1], loss, grad:W1[0,0], new:W1[0,0]
    kind: QuestionKind
    symbol: sp.Symbol  # what is asked for, printed by the notation


@dataclass(frozen=True)
class Answer:
    value: float  # at the displayed precision, as the key shows it
    tolerance: float
    exact: float  # full precision


@dataclass(frozen=True)
class Exercise:
    id: str  # V07-3f9a: variant 7 of seed 0x3f9a
    number: int  # from 1
    seed: int
    spec: Spec
    solution: Solution = field(repr=False)
    questions: tuple[Question, ...]
    answers: Mapping[str, Answer] = field(repr=False)
    digits: int = DEFAULT_DIGITS

    def key(self) -> dict[str, Any]:
        """key.json: the variant's derive-solution JSON, its full spec and its questions."""
        key = self.solution.to_dict()
        key["variant"] = self.id
        key["spec"] = self.spec.to_dict()
        key["questions"] = [
            {"id": q.id, "value": self.answers[q.id].value, "tolerance": self.answers[q.id].tolerance} for q in self.questions
        ]
        return key


def variant_id(number: int, seed: int) -> str:
    return f"V{number:02d}-{seed:04x}"


def parse_variant(text: str) -> tuple[int, int]:
    """(variant number, seed) of an id such as V07-3f9a."""
    match = re.fullmatch(r"V(\d+)-([0-9a-f]{4})", text.strip())
    if not match or int(match.group(1)) < 1:
        raise UsageError(f"--variant {text}: expected an id such as V07-3f9a (as printed on the sheet)")
    return int(match.group(1)), int(match.group(2), 16)


# -- drawing -------------------------------------------------------------------------------


def _number(rng: random.Random, low: float, high: float, decimals: int) -> float:
    return round(rng.uniform(low, high), decimals) + 0.0  # + 0.0: no -0.0


def _targets(rng: random.Random, spec: Spec, low: float, high: float, decimals: int) -> list[float]:
    """Targets the loss and output activation allow: classes for bce/cross-entropy,
    values the output can reach otherwise."""
    outputs = spec.outputs
    activation = spec.layers[-1].activation
    if spec.loss == "cross_entropy" or activation == "softmax":
        target = [0.0] * outputs
        target[rng.randrange(outputs)] = 1.0
        return target
    if spec.loss == "bce":
        return [float(rng.randrange(2)) for _ in range(outputs)]
    ranges = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, max(high, 0.5))}
    lo, hi = ranges.get(activation, (low, high))
    return [_number(rng, lo, hi, decimals) for _ in range(outputs)]


def draw(template: Spec, rng: random.Random, low: float, high: float, decimals: int) -> dict[str, Any]:
    """The template's spec with every weight, bias, input and target drawn anew."""
    spec = template.to_dict()
    for layer, raw in zip(template.layers, spec["layers"]):
        raw["weights"] = [[_number(rng, low, high, decimals) for _ in row] for row in layer.weights]
        if layer.shared_bias:
            raw["bias"] = _number(rng, low, high, decimals)
        elif layer.bias is not None:
            raw["bias"] = [_number(rng, low, high, decimals) for _ in layer.bias]
    for sample, raw in zip(template.data, spec["data"]):
        raw["x"] = [_number(rng, low, high, decimals) for _ in sample.x]
        raw["y"] = _targets(rng, template, low, high, decimals)
    return spec


# -- questions and answers ---------------------------------------------------------------------


def _askable(network: Network) -> dict[str, tuple[QuestionKind, sp.Symbol]]:
    """Every question id a variant can be asked, in the order of the solution."""
    ids: dict[str, tuple[QuestionKind, sp.Symbol]] = {}
    for layer in network.layers:
        for z, a in zip(layer.pre_activations, layer.outputs):
            ids[quantity_of(z).key] = (QuestionKind.FORWARD, z)
            ids[quantity_of(a).key] = (QuestionKind.PREDICTION if layer.is_output else QuestionKind.FORWARD, a)
    loss = network.loss_symbol()
    ids["loss"] = (QuestionKind.LOSS, loss)
    for parameter in network.trainable:
        ids[f"grad:{quantity_of(parameter).key}"] = (QuestionKind.GRADIENT, partial(loss, parameter))
    for parameter in network.trainable:
        ids[f"new:{quantity_of(parameter).key}"] = (QuestionKind.UPDATE, updated(parameter))
    return ids


def _default_ask(network: Network) -> list[str]:
    """The output, the loss, one gradient in each layer and one updated weight."""
    asked = [quantity_of(a).key for a in network.output_layer.outputs] + ["loss"]
    for layer in network.layers:
        weights = [w for w in layer.trainable if quantity_of(w).kind is Kind.WEIGHT]
        if weights:
            asked.append(f"grad:{quantity_of(weights[0]).key}")
    last = [w for w in network.output_layer.trainable if quantity_of(w).kind is Kind.WEIGHT]
    if last:
        asked.append(f"new:{quantity_of(last[0]).key}")
    return asked


def resolve_ask(network: Network, ask: str | Sequence[str] | None) -> tuple[Question, ...]:
    askable = _askable(network)
    if ask is None:
        wanted = _default_ask(network)
    else:
        # Commas separate questions, but not the indices of a weight: grad:W1[0,0].
        tokens = [t.strip() for t in (re.split(r",(?![^\[]*\])", ask) if isinstance(ask, str) else ask) if t.strip()]
        wanted = []
        for token in tokens:
            if token in ASK_GROUPS:
                kinds = {"forward": (QuestionKind.FORWARD, QuestionKind.PREDICTION), "loss": (QuestionKind.LOSS,),
                         "gradients": (QuestionKind.GRADIENT,), "updates": (QuestionKind.UPDATE,)}[token]
                wanted += [i for i, (k, _) in askable.items() if k in kinds]
            elif token in askable:
                wanted.append(token)
            else:
                known = ", ".join(list(ASK_GROUPS) + list(askable)[:6]) + ", …"
                raise UsageError(f"--ask: unknown question {token!r}; choose from {known}")
    return tuple(Question(i, *askable[i]) for i in dict.fromkeys(wanted))


def _values(key: Mapping[str, Any]) -> dict[str, float]:
    """Question id → value, from a derive-solution key: the first update's first sample."""
    step = key["steps"][0]
    values = dict(step["forward"][0])
    values["loss"] = step["loss"]
    values.update({f"grad:{k}": v for k, v in step["gradients"].items()})
    values.update({f"new:{k}": v for k, v in step["updated"].items()})
    return values


def _other_values(spec: Spec, digits: int, rounding: Rounding) -> dict[str, float]:
    """The same values computed the other way: carrying every shown value rounded, as a
    student does by hand (when the key is exact), or exactly (when the key carries)."""
    network = Network(spec)
    compiled = CompiledNetwork(network, exact if rounding is Rounding.CARRY else carried(digits))
    updates, _ = compiled.train()
    first = updates[0]
    values: dict[str, float] = {"loss": first.loss}
    for layer, pre, out in zip(network.layers, first.forwards[0].pre, first.forwards[0].out):
        values.update({quantity_of(z).key: v for z, v in zip(layer.pre_activations, pre)})
        values.update({quantity_of(a).key: v for a, v in zip(layer.outputs, out)})
    trainable = set(network.trainable)
    for position, parameter in enumerate(network.parameters):
        if parameter in trainable:
            values[f"grad:{quantity_of(parameter).key}"] = first.gradient[position]
            values[f"new:{quantity_of(parameter).key}"] = first.after[position]
    return values


def _round_up(value: float, decimals: int) -> float:
    scale = 10**decimals
    return math.ceil(value * scale - 1e-9) / scale


def answers_of(questions: Iterable[Question], exact: Mapping[str, float], student: Mapping[str, float], digits: int) -> dict[str, Answer]:
    """Each answer at the displayed precision, with a tolerance that accepts a student who
    carried rounded values and one who did not (the gap between the two results) plus half
    a unit in the last digit of their answer and of the key's."""
    unit = 10.0**-digits
    answers = {}
    for question in questions:
        value = exact[question.id]
        tolerance = _round_up(abs(student[question.id] - value) + unit, digits + 1)
        answers[question.id] = Answer(value=round(value, digits) + 0.0, tolerance=tolerance, exact=value)
    return answers


# -- the rules of a good variant ---------------------------------------------------------------


def rejections(solution: Solution, questions: Sequence[Question], values: Mapping[str, float], digits: int) -> list[Rejection]:
    network = solution.network
    reasons = []
    forwards = solution.updates[0].forwards
    for index, layer in enumerate(network.layers):
        pre = [z for f in forwards for z in f.pre[index]]
        if layer.activation.name == "relu" and all(
            all(f.pre[index][i] <= 0 for f in forwards) for i in range(layer.units)
        ):
            reasons.append(Rejection.DEAD_LAYER)
        if layer.activation.name in ("sigmoid", "tanh") and any(abs(z) > SATURATION for z in pre):
            reasons.append(Rejection.SATURATED)
    if any(q.kind is QuestionKind.GRADIENT and values[q.id] == 0 for q in questions):
        reasons.append(Rejection.ZERO_GRADIENT)
    if solution.detail.loss_change is not LossChange.FELL:
        reasons.append(Rejection.LOSS_NOT_FALLING)
    if any(round(values[q.id], digits) == 0 for q in questions):
        reasons.append(Rejection.SHOWS_AS_ZERO)
    return list(dict.fromkeys(reasons))


@dataclass(frozen=True)
class _Draw:
    spec_dict: dict[str, Any]
    solution: Solution
    questions: tuple[Question, ...]
    values: dict[str, float]
    reasons: list[Rejection]


def _attempt(template: Spec, seed: int, number: int, attempt: int, settings: "_Settings") -> _Draw:
    rng = random.Random(f"derive:{seed}:{number}:{attempt}")
    spec_dict = draw(template, rng, settings.low, settings.high, settings.decimals)
    spec = load_spec(spec_dict, name=variant_id(number, seed))
    try:
        solution = solve(spec, rounding=settings.rounding, digits=settings.digits)
    except DeriveError:
        return _Draw(spec_dict, None, (), {}, [Rejection.OVERFLOW])
    questions = resolve_ask(solution.network, settings.ask)
    values = _values(solution.to_dict())
    return _Draw(spec_dict, solution, questions, values, rejections(solution, questions, values, settings.digits))


@dataclass(frozen=True)
class _Settings:
    low: float
    high: float
    decimals: int
    ask: str | Sequence[str] | None
    digits: int
    rounding: Rounding = Rounding.EXACT


def _check_settings(seed: int, count: int, low: float, high: float, decimals: int) -> None:
    if not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"seed: expected a whole number from 0 to {MAX_SEED}, got {seed!r}")
    if count < 1:
        raise UsageError(f"count: expected at least 1 variant, got {count}")
    if not low < high:
        raise UsageError(f"low/high: expected low < high, got {low} and {high}")
    if not 0 <= decimals <= 6:
        raise UsageError(f"decimals: expected 0 to 6, got {decimals}")


def exercise(
    spec,
    seed: int,
    *,
    count: int = 1,
    low: float = -1.0,
    high: float = 1.0,
    decimals: int = 1,
    ask: str | Sequence[str] | None = None,
    digits: int = DEFAULT_DIGITS,
    rounding: str | Rounding | None = None,
    only: int | None = None,
    progress=None,
) -> list[Exercise]:
    """`count` variants of `spec` (a path, dict or Spec used as a template), drawn from
    `seed`. `only` (a variant number) returns just that variant, regenerated exactly.
    rounding: "exact" or "carry", how the key's values are computed (default: the spec's)."""
    template = load_spec(spec)
    _check_settings(seed, count, low, high, decimals)
    mode = Rounding(rounding) if rounding is not None else (template.rounding or Rounding.EXACT)
    settings = _Settings(low, high, decimals, ask, digits, mode)
    last = only if only is not None else count
    accepted: list[Exercise] = []
    seen: set[str] = set()
    for number in range(1, last + 1):
        tally: Counter[Rejection] = Counter()
        for attempt in range(MAX_ATTEMPTS):
            result = _attempt(template, seed, number, attempt, settings)
            fingerprint = repr((result.spec_dict["layers"], result.spec_dict["data"]))
            reasons = result.reasons + ([Rejection.DUPLICATE] if fingerprint in seen else [])
            if not reasons:
                break
            tally.update(reasons)
        else:
            common = ", ".join(f"{r.value} ({n})" for r, n in tally.most_common(3))
            raise DeriveError(
                f"{template.source}: variant {number}: no good numbers in {MAX_ATTEMPTS} draws ({common}); "
                "widen --low/--high, change the template or ask other questions"
            )
        seen.add(fingerprint)
        spec_n = result.solution.spec
        answers = answers_of(result.questions, result.values, _other_values(spec_n, digits, settings.rounding), digits)
        if only is None or number == only:
            accepted.append(
                Exercise(variant_id(number, seed), number, seed, spec_n, result.solution, result.questions, answers, digits)
            )
        if progress is not None:
            progress(number)
    return accepted


def exercise_from_shape(
    shape: Sequence[int],
    activations: Sequence[str],
    loss: str,
    seed: int,
    *,
    learning_rate: float = 0.1,
    samples: int = 1,
    title: str | None = None,
    **options: Any,
) -> list[Exercise]:
    """The same as `exercise` for a network given by its shape ([3, 2, 1]) and one
    activation per layer, without a spec file."""
    template = shape_template(shape, activations, loss, learning_rate=learning_rate, samples=samples, title=title)
    return exercise(template, seed, **options)


def shape_template(
    shape: Sequence[int], activations: Sequence[str], loss: str, *, learning_rate: float = 0.1, samples: int = 1,
    title: str | None = None,
) -> Spec:
    """A template spec of the given shape (its numbers are placeholders to be drawn)."""
    shape = list(shape)
    if len(shape) < 2 or any(not isinstance(n, int) or n < 1 for n in shape):
        raise UsageError(f"--shape: expected at least two whole numbers ≥ 1 (inputs, then each layer's units), got {shape}")
    if len(activations) != len(shape) - 1:
        raise UsageError(f"--activations: expected {len(shape) - 1} (one per layer), got {len(activations)}")
    layers = [
        {"units": units, "activation": activation, "weights": [[0.0] * fan_in for _ in range(units)], "bias": [0.0] * units}
        for fan_in, units, activation in zip(shape, shape[1:], activations)
    ]
    template = {
        "title": title or f"Forward and backward pass in a {'-'.join(map(str, shape))} network",
        "inputs": shape[0],
        "layers": layers,
        "loss": loss,
        "learning_rate": learning_rate,
        "data": [{"x": [0.0] * shape[0], "y": ([1.0] + [0.0] * (shape[-1] - 1))} for _ in range(samples)],
    }
    return load_spec(template, name="-".join(map(str, shape)))


# -- stress --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    question: str
    low: float
    median: float
    high: float


@dataclass(frozen=True)
class StressReport:
    draws: int
    accepted: int
    rejected: Mapping[Rejection, int]  # a draw may be rejected for several reasons
    spreads: tuple[Spread, ...]


def stress(spec, seed: int, draws: int, *, low: float = -1.0, high: float = 1.0, decimals: int = 1,
           ask: str | Sequence[str] | None = None, digits: int = DEFAULT_DIGITS, rounding: str | None = None,
           progress=None) -> StressReport:
    """Draws `draws` candidate variants and reports how many each rule rejects and the
    spread of every asked value over the accepted ones."""
    template = load_spec(spec)
    _check_settings(seed, 1, low, high, decimals)
    settings = _Settings(low, high, decimals, ask, digits, Rounding(rounding) if rounding else Rounding.EXACT)
    tally: Counter[Rejection] = Counter()
    seen: set[str] = set()
    kept: dict[str, list[float]] = {}
    accepted = 0
    for number in range(1, draws + 1):
        result = _attempt(template, seed, number, 0, settings)
        fingerprint = repr((result.spec_dict["layers"], result.spec_dict["data"]))
        reasons = result.reasons + ([Rejection.DUPLICATE] if fingerprint in seen else [])
        seen.add(fingerprint)
        tally.update(reasons)
        if not reasons:
            accepted += 1
            for question in result.questions:
                kept.setdefault(question.id, []).append(result.values[question.id])
        if progress is not None:
            progress(number)
    spreads = tuple(Spread(q, min(v), statistics.median(v), max(v)) for q, v in kept.items())
    return StressReport(draws, accepted, {r: tally[r] for r in Rejection}, spreads)
