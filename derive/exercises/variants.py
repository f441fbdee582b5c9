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
from dataclasses import dataclass, field, replace
from functools import cached_property, partial as partial_function
from enum import Enum
from typing import Any, Callable, Iterable, Mapping, Sequence

import sympy as sp

from ..solution.derivation import Runs, check_digits, rounding_mode, runs, solve
from ..errors import DeriveError, UsageError
from ..limits import DEFAULT_LIMITS, MAX_NUMBER, Limits
from ..model.network import Network
from ..model.mistakes import GRAPH_RIGHT, MISTAKES, GraphVariation, Mistake, Variation, applicable
from ..model.numeric import Run, carried, exact, truncated
from ..views.printing import DEFAULT_DIGITS, half_up
from ..model.quantities import Kind, node, partial, quantity_of, updated
from ..solution.record import Solution
from ..spec.schema import GraphSpec, Rounding, Spec, load_spec
from ..solution.graph import GraphSolution, circuit_of
from ..solution.updates import gradient_of

MAX_SEED = 0xFFFF  # the seed is part of a variant's id, as four hex digits
MAX_ATTEMPTS = 500
# Good draws looked at for one whose structure (dead units, sign of the error) is used least.
VARIETY_DRAWS = 6
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
    FEW_DIGITS = "an asked value has fewer than two significant digits at the displayed precision"
    NOT_DISTINCT = "two asked values are equal within their tolerances"
    DUPLICATE = "it duplicates another variant"
    OVERFLOW = "the numbers overflow (log(0), exp of a huge number)"
    MISTAKE_LOOKS_RIGHT = "a catalogued mistake gives an asked value within its tolerance"
    MISTAKES_ALIKE = "two catalogued mistakes give the same asked value"


@dataclass(frozen=True)
class Question:
    id: str  # a2[0], z1[1], loss, grad:W1[0,0], new:W1[0,0]
    kind: QuestionKind
    symbol: sp.Symbol  # what is asked for, printed by the notation
    # What it is about, named as the network diagram labels it: a weight by its edge
    # (from, to), a bias or a forward value by its unit.
    edge: tuple[sp.Symbol, sp.Symbol] | None = None
    unit: sp.Symbol | None = None
    role: str = ""  # pre_activation, activation, weight, bias: for the wording


@dataclass(frozen=True)
class Answer:
    value: float  # at the displayed precision, as the key (and the worked solution) shows it
    tolerance: float
    exact: float  # full precision
    points: int = 1  # what the question is worth (--points)


@dataclass(frozen=True)
class Exercise:
    """One variant. Its views — `sheet(format)`, `solution(format)` and the Jupyter display —
    are attached by the package (derive/__init__.py), which comes after rendering."""

    id: str  # V07-3f9a: variant 7 of seed 0x3f9a
    number: int  # from 1
    seed: int
    spec: Spec | GraphSpec
    # makes the worked solution record (`derivation`), a picklable function of no arguments
    make_derivation: Callable[[], Solution | GraphSolution] = field(repr=False, compare=False)
    questions: tuple[Question, ...]
    answers: Mapping[str, Answer] = field(repr=False)
    digits: int = DEFAULT_DIGITS
    # question id → mistake name → the value a student making that mistake gives (as the
    # key rounds it), for the mistakes that change that answer beyond its tolerance
    mistakes: Mapping[str, Mapping[str, float]] = field(default_factory=dict, repr=False)
    rounding: Rounding = Rounding.CARRY  # how the key's values are computed

    @cached_property
    def derivation(self) -> Solution | GraphSolution:
        """The worked solution record (`solution(format)` is its document), made when first
        needed: a set's records are made by the processes that write its variants' files."""
        return self.make_derivation()

    def key(self) -> dict[str, Any]:
        """key.json: the variant's derive-solution JSON, its full spec and its questions."""
        key = self.derivation.to_dict()
        key["variant"] = self.id
        key["spec"] = self.spec.to_dict()
        key["questions"] = [
            {"id": q.id, "value": self.answers[q.id].value, "tolerance": self.answers[q.id].tolerance, "points": self.answers[q.id].points}
            for q in self.questions
        ]
        return key


MAX_POINTS = 100
_GROUP_KINDS = {
    "forward": (QuestionKind.FORWARD, QuestionKind.PREDICTION),
    "loss": (QuestionKind.LOSS,),
    "gradients": (QuestionKind.GRADIENT,),
    "updates": (QuestionKind.UPDATE,),
}


def parse_points(points) -> dict[str, int]:
    """What each question is worth: a whole number for every question (`2`), or by group
    or id (`gradients=2,new:W2[0,0]=3`; others 1). Returns {"*": n} or {group or id: n}."""
    if points is None:
        return {}
    if isinstance(points, Mapping):
        items = list(points.items())
    elif isinstance(points, int) and not isinstance(points, bool):
        items = [("*", points)]
    elif isinstance(points, str):
        text = points.strip()
        if re.fullmatch(r"[0-9]+", text):
            items = [("*", int(text))]
        else:
            items = []
            for part in re.split(r",(?![^\[]*\])", text):
                name, equals, value = part.strip().rpartition("=")
                if not equals or not name or not re.fullmatch(r"[0-9]+", value.strip()):
                    raise UsageError(f"--points: expected a whole number, or NAME=N pairs such as gradients=2,loss=1; got {points!r}")
                items.append((name.strip(), int(value)))
    else:
        raise UsageError(f"points: expected a whole number or a mapping of questions to whole numbers, got {points!r}")
    for name, value in items:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_POINTS:
            raise UsageError(f"--points: {name}: expected a whole number from 1 to {MAX_POINTS}, got {value!r}")
    return dict(items)


def _points_of(question: Question, rule: Mapping[str, int]) -> int:
    if question.id in rule:
        return rule[question.id]
    for group, kinds in _GROUP_KINDS.items():
        if group in rule and question.kind in kinds:
            return rule[group]
    return rule.get("*", 1)


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


def askable_questions(network: Network) -> dict[str, Question]:
    """Every question a variant can be asked, by id, in the order of the solution."""
    spec = network.spec
    shape = (
        spec.inputs, tuple((l.units, l.bias is None, l.shared_bias, l.train_bias) for l in spec.layers),
        gradient_of(network),
    )
    known = _ASKABLE.get(shape)
    if known is None:
        known = _ASKABLE[shape] = _askable_questions(network)  # the same for every draw of a template
    return dict(known)


_ASKABLE: dict[tuple, dict[str, Question]] = {}


def _askable_questions(network: Network) -> dict[str, Question]:
    questions: dict[str, Question] = {}
    for layer in network.layers:
        for z, a in zip(layer.pre_activations, layer.outputs):
            questions[quantity_of(z).key] = Question(quantity_of(z).key, QuestionKind.FORWARD, z, unit=a, role="pre_activation")
            kind = QuestionKind.PREDICTION if layer.is_output else QuestionKind.FORWARD
            questions[quantity_of(a).key] = Question(quantity_of(a).key, kind, a, unit=a, role="activation")
    loss = gradient_of(network)  # E, or J = E + (λ/2) Σ w² with coupled weight decay: what the key holds
    questions["loss"] = Question("loss", QuestionKind.LOSS, loss)
    for kind, prefix, name in ((QuestionKind.GRADIENT, "grad", lambda p: partial(loss, p)), (QuestionKind.UPDATE, "new", updated)):
        for layer in network.layers:
            for parameter in layer.trainable:
                key = f"{prefix}:{quantity_of(parameter).key}"
                if quantity_of(parameter).kind is Kind.WEIGHT:
                    (unit,) = layer.units_fed_by(parameter)
                    source = layer.inputs[layer.weights[unit].index(parameter)]
                    questions[key] = Question(key, kind, name(parameter), edge=(source, layer.outputs[unit]), role="weight")
                else:
                    fed = layer.units_fed_by(parameter)
                    questions[key] = Question(key, kind, name(parameter), unit=layer.outputs[fed[0]] if len(fed) == 1 else None, role="bias")
    return questions


def _default_ask(network: Network, values: Mapping[str, float] | None) -> list[str]:
    """The output, the loss, in each layer the gradient of the weight that matters most
    (the largest gradient: never a dead unit's), and that weight's update in the output layer."""
    asked = [quantity_of(a).key for a in network.output_layer.outputs] + ["loss"]
    chosen = None
    for layer in network.layers:
        weights = [f"grad:{quantity_of(w).key}" for w in layer.trainable if quantity_of(w).kind is Kind.WEIGHT]
        if weights:
            chosen = max(weights, key=lambda q: abs(values[q])) if values else weights[0]
            asked.append(chosen)
    if chosen is not None and network.output_layer.trainable:
        asked.append("new:" + chosen.split(":", 1)[1])
    return asked


def resolve_ask(network: Network, ask: str | Sequence[str] | None, values: Mapping[str, float] | None = None) -> tuple[Question, ...]:
    """The questions `ask` names (groups or ids), or the default ones, which depend on the
    variant's `values` (question id → value)."""
    askable = askable_questions(network)
    if ask is None:
        wanted = _default_ask(network, values)
    else:
        # Commas separate questions, but not the indices of a weight: grad:W1[0,0].
        tokens = [t.strip() for t in (re.split(r",(?![^\[]*\])", ask) if isinstance(ask, str) else ask) if t.strip()]
        wanted = []
        for token in tokens:
            if token in ASK_GROUPS:
                kinds = {"forward": (QuestionKind.FORWARD, QuestionKind.PREDICTION), "loss": (QuestionKind.LOSS,),
                         "gradients": (QuestionKind.GRADIENT,), "updates": (QuestionKind.UPDATE,)}[token]
                wanted += [i for i, q in askable.items() if q.kind in kinds]
            elif token in askable:
                wanted.append(token)
            else:
                known = ", ".join(list(ASK_GROUPS) + list(askable)[:6]) + ", …"
                raise UsageError(f"--ask: unknown question {token!r}; choose from {known}")
    return tuple(askable[i] for i in dict.fromkeys(wanted))


def _run_values(network: Network, run: Run) -> dict[str, float]:
    """Question id → value in a run: the first update's first sample."""
    return update_values(network, run.updates[0])


def update_values(network: Network, first) -> dict[str, float]:
    """Question id → value of an update (the first): its first sample's forward values,
    the loss, each trainable parameter's gradient and updated value."""
    values: dict[str, float] = {"loss": first.loss}
    values.update(_forward_values(network, first.forwards[0]))
    for position, key in network.trainable_keys:
        values[f"grad:{key}"] = first.gradient[position]
        values[f"new:{key}"] = first.after[position]
    return values


def run_values(network: Network, run: Run) -> dict[str, float]:
    """Every value of a run by id, in the derivation's order: the first update's as
    `update_values` names them (or with the prefix `step1:`); a later update's with the prefix `stepK:`; a
    sample's forward values other than the update's first with `sampleN:` (N from 1, the
    data's row; also accepted for the first); the forward pass after the last update with
    `final:` (its loss over all samples as `final:loss`)."""
    values: dict[str, float] = {}
    for update in run.updates:
        first = update_values(network, update)
        forward = {k: v for k, v in first.items() if not k.startswith(("grad:", "new:")) and k != "loss"}
        for prefix in ("", "step1:") if update.step == 1 else (f"step{update.step}:",):  # step1: may be written out
            values.update((prefix + k, v) for k, v in forward.items())
            for sample, result in zip(update.samples, update.forwards):
                values.update((f"{prefix}sample{sample + 1}:{k}", v) for k, v in _forward_values(network, result).items())
            values.update((prefix + k, v) for k, v in first.items() if k not in forward)
    for sample, result in enumerate(run.final):
        values.update((f"final:sample{sample + 1}:{k}" if sample else f"final:{k}", v) for k, v in _forward_values(network, result).items())
        if sample == 0:
            values.update((f"final:sample1:{k}", v) for k, v in _forward_values(network, result).items())
    values["final:loss"] = run.final_loss
    return values


def _forward_values(network: Network, forward) -> dict[str, float]:
    """A sample's pre-activations and activations by id."""
    return dict(zip(network.forward_keys, [v for pre, out in zip(forward.pre, forward.out) for v in (*pre, *out)]))


def values_given(numbers: Runs, given: Mapping[str, float], keep=None) -> dict[str, float] | None:
    """Question id → value of the first update with the `given` values (by question id)
    in place of the right ones and everything after them recomputed, carried as the
    document carries (or with `keep`); None when it cannot be computed."""
    try:
        compiled = numbers.compiled.varied(keep or numbers.compiled.keep, given=given)
        return update_values(numbers.network, compiled.first_update())
    except DeriveError:
        return None


def follows_from(numbers: Runs, given: Mapping[str, float], question: str) -> tuple[str, ...]:
    """The given ids that, each alone in place of its right value, change `question` at
    full precision: what it follows from, by the derivation rather than a table."""
    return sources_of(lambda one: values_given(numbers, one, exact), update_values(numbers.network, numbers.exact.updates[0]), given, question)


def sources_of(recompute, right: Mapping[str, float], given: Mapping[str, float], question: str) -> tuple[str, ...]:
    """`follows_from` for any derivation: `recompute(values)` gives every value at full
    precision with `values` given (None when it cannot), `right` the values with none."""
    found = []
    for key, value in given.items():
        changed = recompute({key: value})
        if changed is not None and abs(changed[question] - right[question]) > 1e-12 * max(1.0, abs(right[question])):
            found.append(key)
    return tuple(found)


def graph_values_given(spec: GraphSpec, given: Mapping[str, float], keep) -> dict[str, float] | None:
    """`values_given` for a computational graph: every answer id's value with the `given`
    ones (gate values, grad:NAME) in place of the right ones, carried with `keep`."""
    try:
        return _graph_values(circuit_of(spec, keep, given=given))
    except DeriveError:
        return None


def _round_up(value: float, decimals: int) -> float:
    scale = 10**decimals
    return math.ceil(value * scale - 1e-9) / scale


def _round(value: float, digits: int) -> float:
    """Half away from zero, as the documents round."""
    return float(half_up(value, digits)) + 0.0


def answers_of(
    questions: Iterable[Question], shown: Mapping[str, float], other: Mapping[str, float], digits: int,
    exact: Mapping[str, float] | None = None,
) -> dict[str, Answer]:
    """Each answer as the worked solution shows it, with a tolerance that accepts a student
    who computed the other way (carrying rounded values, or not): the gap between the two
    results plus half a unit in the last digit of their answer and of the key's."""
    unit = 10.0**-digits
    exact = exact or shown
    answers = {}
    for question in questions:
        value = _round(shown[question.id], digits)
        tolerance = _round_up(abs(other[question.id] - value) + unit, digits + 1)
        answers[question.id] = Answer(value=value, tolerance=tolerance, exact=exact[question.id])
    return answers


# -- the rules of a good variant ---------------------------------------------------------------


def rejections(solution: Solution | Runs, questions: Sequence[Question], answers: Mapping[str, Answer], digits: int) -> list[Rejection]:
    """Why a draw (its solution, or just its numbers) makes a poor exercise."""
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
    if not solution.shown.repeated_loss < solution.shown.updates[0].loss:
        reasons.append(Rejection.LOSS_NOT_FALLING)
    return list(dict.fromkeys(reasons + answer_rejections(questions, answers, digits)))


def answer_rejections(questions: Sequence[Question], answers: Mapping[str, Answer], digits: int) -> list[Rejection]:
    """The rules on the asked values themselves, for networks and graphs alike."""
    reasons = []
    if any(q.kind is QuestionKind.GRADIENT and answers[q.id].exact == 0 for q in questions):
        reasons.append(Rejection.ZERO_GRADIENT)
    # Two significant digits (at 3 decimals at least 0.01), else nearly any guess is within the
    # tolerance; with 0 or 1 decimal, one nonzero digit is all there can be.
    smallest = 10.0 ** (1 - digits) if digits >= 2 else 10.0**-digits
    if any(abs(answers[q.id].value) < smallest for q in questions):
        reasons.append(Rejection.FEW_DIGITS)
    asked = [answers[q.id] for q in questions]
    if any(abs(a.value - b.value) <= a.tolerance + b.tolerance for i, a in enumerate(asked) for b in asked[i + 1 :]):
        reasons.append(Rejection.NOT_DISTINCT)
    return reasons


def structure(solution: Solution | Runs) -> tuple:
    """What makes two variants different exercises rather than other numbers: which ReLU
    units are dead for the first sample, and the sign of each output's error."""
    first = solution.updates[0].forwards[0]
    dead = tuple(
        tuple(z <= 0 for z in first.pre[index])
        for index, layer in enumerate(solution.network.layers)
        if layer.activation.name == "relu"
    )
    return dead + (tuple(p > y for p, y in zip(first.out[-1], solution.spec.data[0].y)),)


@dataclass(frozen=True)
class _Draw:
    spec_dict: dict[str, Any]
    numbers: Runs | GraphSolution | None  # a network draw builds its record only when a variant takes it
    questions: tuple[Question, ...]
    answers: dict[str, Answer]
    reasons: list[Rejection]
    mistakes: dict[str, dict[str, float]] = field(default_factory=dict)


def mistaken_values(
    numbers: Runs, mistake: Mistake, digits: int, every: bool = False, full: bool = True,
) -> tuple[dict[str, float], dict[str, float] | None] | None:
    """Question id → value for a student making `mistake`: as they would write it (carrying
    the shown values, or rounding as the mistake says) and at full precision; None when the
    numbers cannot be computed that way. `every`: every value of the run (`run_values`),
    not only the first update's."""
    variation = mistake.variation
    if variation.decimals is not None:
        keep = carried(variation.decimals)
    elif variation.truncate:
        keep = truncated(digits)
    else:
        keep = numbers.compiled.keep
    try:
        if every:
            return (run_values(numbers.network, numbers.compiled.varied(keep, variation).run()),
                    run_values(numbers.network, numbers.compiled.varied(exact, variation).run()))
        shown = numbers.compiled.varied(keep, variation).first_update()
        unrounded = numbers.compiled.varied(exact, variation).first_update() if full else None
    except DeriveError:
        return None
    return update_values(numbers.network, shown), None if unrounded is None else update_values(numbers.network, unrounded)


def _mistakes(numbers: Runs, questions: Sequence[Question], answers: Mapping[str, Answer], digits: int):
    """The catalogued mistakes' values for each asked question of a network (see `_sort_mistakes`)."""
    return _sort_mistakes(
        numbers.spec, lambda mistake: _lazily(mistaken_values, numbers, mistake, digits),
        _run_values(numbers.network, numbers.exact), questions, answers, digits,
    )


def _lazily(values_of, numbers, mistake: Mistake, digits: int):
    """A mistake's values as shown, and a function for them at full precision (None when
    they cannot be computed); None when the shown ones cannot be."""
    shown = values_of(numbers, mistake, digits, full=False)
    if shown is None:
        return None

    def full():
        values = values_of(numbers, mistake, digits)
        return None if values is None else values[1]

    return shown[0], full


def graph_mistaken_values(
    solution: GraphSolution, mistake: Mistake, digits: int, full: bool = True,
) -> tuple[dict[str, float], dict[str, float] | None] | None:
    """Question id → value of a graph for a student making `mistake`, as they would write
    it and at full precision; None when the numbers cannot be computed that way."""
    variation = mistake.variation
    keep = carried(digits) if solution.rounding is Rounding.CARRY else exact
    worked = variation if isinstance(variation, GraphVariation) else GRAPH_RIGHT
    if isinstance(variation, Variation) and variation.decimals is not None:
        keep = carried(variation.decimals)
    elif isinstance(variation, Variation) and variation.truncate:
        keep = truncated(digits)
    try:
        shown = _graph_values(circuit_of(solution.spec, keep, worked))
        return shown, _graph_values(circuit_of(solution.spec, exact, worked)) if full else None
    except DeriveError:
        return None


def _sort_mistakes(spec, values_under, exact_right: Mapping[str, float], questions: Sequence[Question], answers: Mapping[str, Answer], digits: int):
    """The catalogued mistakes' values for each asked question (those that change it beyond
    its tolerance), and the reasons to draw again: a mistake that changes a value but lands
    within its tolerance, or two mistakes that give one value, leave a wrong answer that
    grading could not name. `values_under(mistake)`: its values as shown and a function
    giving them at full precision (called only where needed: it doubles the work), or None."""
    found: dict[str, dict[str, float]] = {q.id: {} for q in questions}
    reasons: list[Rejection] = []
    for mistake in applicable(spec):
        values = values_under(mistake)
        if values is None:
            continue
        shown, full_values = values
        full: Mapping[str, float] | None = None
        for question in questions:
            answer = answers[question.id]
            value = _round(shown[question.id], digits)
            if abs(value - answer.value) > answer.tolerance:
                found[question.id][mistake.name] = value
            elif question.kind.value in mistake.shows_in:
                full = full if full is not None else full_values()
                if full is None:  # not computable at full precision: the mistake is left out, as when shown fails
                    for entries in found.values():
                        entries.pop(mistake.name, None)
                    break
                if abs(full[question.id] - exact_right[question.id]) > answer.tolerance:
                    # the slip changes the answer beyond its tolerance, but carried as shown it lands
                    # within it (a slip that changes it less makes no difference in this variant)
                    reasons.append(Rejection.MISTAKE_LOOKS_RIGHT)
    for question in questions:
        made_here = [(name, value) for name, value in found[question.id].items() if question.kind.value in MISTAKES[name].shows_in]
        tolerance = answers[question.id].tolerance
        if any(abs(a - b) <= tolerance and _changes(a, b) for i, (_, a) in enumerate(made_here) for _, b in made_here[i + 1 :]):
            reasons.append(Rejection.MISTAKES_ALIKE)
    return found, list(dict.fromkeys(reasons))


def _changes(value: float, other: float) -> bool:
    """Whether two values differ beyond rounding noise (two mistakes that always give one
    value, as w + η g from a reversed update or a reversed error, are one diagnosis)."""
    return abs(value - other) > 1e-9 * max(1.0, abs(other))


def _attempt(template: Spec, seed: int, number: int, attempt: int, settings: "_Settings") -> _Draw:
    rng = random.Random(f"derive:{seed}:{number}:{attempt}")
    spec_dict = draw(template, rng, settings.low, settings.high, settings.decimals)
    spec = load_spec(spec_dict, name=variant_id(number, seed))
    try:
        numbers = runs(spec, rounding=settings.rounding, digits=settings.digits)
        if settings.rounding is Rounding.CARRY:
            other_run = numbers.exact
        else:
            other_run = numbers.compiled.with_keep(carried(settings.digits)).run()
    except DeriveError:
        return _Draw(spec_dict, None, (), {}, [Rejection.OVERFLOW])
    network = numbers.network
    shown = _run_values(network, numbers.shown)
    questions = resolve_ask(network, settings.ask, shown)
    answers = answers_of(questions, shown, _run_values(network, other_run), settings.digits, _run_values(network, numbers.exact))
    reasons = rejections(numbers, questions, answers, settings.digits)
    if reasons:
        return _Draw(spec_dict, numbers, questions, answers, reasons)
    mistakes, reasons = _mistakes(numbers, questions, answers, settings.digits)
    return _Draw(spec_dict, numbers, questions, answers, reasons, mistakes)


@dataclass(frozen=True)
class _Settings:
    low: float
    high: float
    decimals: int
    ask: str | Sequence[str] | None
    digits: int
    rounding: Rounding = Rounding.CARRY


def _check_settings(
    seed: int, count: int, low: float, high: float, decimals: int, limits: Limits = DEFAULT_LIMITS, what: str = "count"
) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"seed: expected a whole number from 0 to {MAX_SEED}, got {seed!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise UsageError(f"{what}: expected a whole number ≥ 1, got {count!r}")
    if count > limits.variants:
        raise UsageError(f"{what}: {count:,} is above the limit of {limits.variants:,} variants (raise it with --limit variants=N)")
    numbers = (low, high)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= MAX_NUMBER for v in numbers):
        raise UsageError(f"low/high: expected numbers between {-MAX_NUMBER:,.0f} and {MAX_NUMBER:,.0f}, got {low!r} and {high!r}")
    if not low < high:
        raise UsageError(f"low/high: expected low < high, got {low} and {high}")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        raise UsageError(f"decimals: expected 0 to 6, got {decimals!r}")


# -- computational graphs ------------------------------------------------------------------------


def _graph_askable(solution: GraphSolution) -> dict[str, Question]:
    """A graph's questions: each gate's value, then the gradient of the output with respect
    to every input and gate."""
    output = node(solution.output)
    questions: dict[str, Question] = {}
    for gate in solution.gates:
        kind = QuestionKind.PREDICTION if gate.name == solution.output else QuestionKind.FORWARD
        questions[gate.name] = Question(gate.name, kind, node(gate.name), unit=node(gate.name), role="graph_value")
    for name in [i.name for i in solution.shown.inputs] + [g.name for g in solution.gates[:-1]]:
        key = f"grad:{name}"
        questions[key] = Question(key, QuestionKind.GRADIENT, partial(output, node(name)), unit=node(name), role="graph_gradient")
    return questions


def _graph_values(circuit) -> dict[str, float]:
    values = {n.name: n.value for n in circuit.nodes}
    values.update({f"grad:{g.name}": g.value for g in circuit.gradients})
    return values


def _resolve_graph_ask(solution: GraphSolution, ask: str | Sequence[str] | None) -> tuple[Question, ...]:
    """The questions `ask` names (ids, or the groups forward and gradients), or by default
    the output's value and the gradient of every input."""
    askable = _graph_askable(solution)
    if ask is None:
        wanted = [solution.output] + [f"grad:{i.name}" for i in solution.shown.inputs]
    else:
        tokens = [t.strip() for t in (ask.split(",") if isinstance(ask, str) else ask) if t.strip()]
        wanted = []
        for token in tokens:
            if token == "forward":
                wanted += [i for i, q in askable.items() if q.kind is not QuestionKind.GRADIENT]
            elif token == "gradients":
                wanted += [i for i, q in askable.items() if q.kind is QuestionKind.GRADIENT]
            elif token in askable:
                wanted.append(token)
            else:
                known = ", ".join(["forward", "gradients"] + list(askable)[:6]) + ", …"
                raise UsageError(f"--ask: unknown question {token!r} for a graph; choose from {known}")
    return tuple(askable[i] for i in dict.fromkeys(wanted))


def _graph_attempt(template: GraphSpec, seed: int, number: int, attempt: int, settings: "_Settings") -> _Draw:
    """New values for the graph's inputs, the expression kept."""
    rng = random.Random(f"derive:{seed}:{number}:{attempt}")
    spec_dict = template.to_dict()
    spec_dict["values"] = {name: _number(rng, settings.low, settings.high, settings.decimals) for name in template.inputs}
    spec = load_spec(spec_dict, name=variant_id(number, seed))
    try:
        solution = solve(spec, rounding=settings.rounding, digits=settings.digits)
        other = circuit_of(spec, carried(settings.digits)) if settings.rounding is not Rounding.CARRY else solution.exact
    except DeriveError:
        return _Draw(spec_dict, None, (), {}, [Rejection.OVERFLOW])
    questions = _resolve_graph_ask(solution, settings.ask)
    answers = answers_of(questions, _graph_values(solution.shown), _graph_values(other), settings.digits, _graph_values(solution.exact))
    reasons = answer_rejections(questions, answers, settings.digits)
    if reasons:
        return _Draw(spec_dict, solution, questions, answers, reasons)
    mistakes, reasons = _sort_mistakes(
        spec, lambda mistake: _lazily(graph_mistaken_values, solution, mistake, settings.digits),
        _graph_values(solution.exact), questions, answers, settings.digits,
    )
    return _Draw(spec_dict, solution, questions, answers, reasons, mistakes)


def _fingerprint(spec_dict: Mapping[str, Any]) -> str:
    if spec_dict.get("kind") == "graph":
        return repr(spec_dict["values"])
    return repr((spec_dict["layers"], spec_dict["data"]))


def _structure(result: _Draw) -> tuple:
    if isinstance(result.numbers, GraphSolution):  # the signs of the asked gradients
        return tuple(result.answers[q.id].exact > 0 for q in result.questions if q.kind is QuestionKind.GRADIENT)
    return structure(result.numbers)


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
    limits: Limits = DEFAULT_LIMITS,
    points=None,
    jobs: int = 1,
) -> list[Exercise]:
    """`count` variants of `spec` (a path, dict or Spec used as a template), drawn from
    `seed`. `only` (a variant number) returns just that variant, regenerated exactly.
    rounding: "exact" or "carry", how the key's values are computed (default: the spec's).
    `count` and `only` are at most `limits.variants`. points: what each question is worth
    (see parse_points; default 1 each). `jobs`: processes that judge draws ahead of the
    choice (the variants are the same for any number)."""
    template = load_spec(spec, limits=limits)
    worth = parse_points(points)
    if only is not None:
        _check_settings(seed, only, low, high, decimals, limits, "variant number")
    else:
        _check_settings(seed, count, low, high, decimals, limits)
    check_digits(digits)
    mode = rounding_mode(rounding, template.rounding)
    settings = _Settings(low, high, decimals, ask, digits, mode)
    attempt_of = _graph_attempt if isinstance(template, GraphSpec) else _attempt
    last = only if only is not None else count
    accepted: list[Exercise] = []
    seen: set[str] = set()
    used: Counter[tuple] = Counter()
    with _Judges(attempt_of, template, seed, settings, jobs if last > 1 else 1, last) as judge:
        for number in range(1, last + 1):
            tally: Counter[Rejection] = Counter()
            chosen, looked = None, 0
            for attempt, (reasons, fingerprint, shape), result in judge.verdicts(number):
                reasons = reasons + ([Rejection.DUPLICATE] if fingerprint in seen else [])
                if reasons:
                    tally.update(reasons)
                    continue
                # Of the good draws, the first whose structure is used least so far: variants differ
                # in which unit is dead and in the sign of the error where the template allows it.
                if chosen is None or used[shape] < used[chosen[1]]:
                    chosen = (attempt, shape, fingerprint, result)
                looked += 1
                if used[shape] == 0 or looked >= VARIETY_DRAWS:  # a structure no variant has yet, or enough looked at
                    break
            accepted += _accept(template, seed, settings, attempt_of, number, chosen, tally, seen, used, only, worth, digits)
            if progress is not None:
                progress(number)
    return accepted


def _accept(template, seed, settings, attempt_of, number, chosen, tally, seen, used, only, worth, digits) -> list[Exercise]:
    """The chosen draw of variant `number` taken: its fingerprint and structure noted, and
    its Exercise built (when it is asked for). `chosen`: (attempt, structure, fingerprint,
    the draw when it was judged here, else None)."""
    if chosen is None:
        common = ", ".join(f"{r.value} ({n})" for r, n in tally.most_common(3))
        raise DeriveError(
            f"{template.source}: variant {number}: no good numbers in {MAX_ATTEMPTS} draws ({common}); "
            "widen --low/--high, show more --digits (3 or more), change the template or ask other questions"
        )
    attempt, shape, fingerprint, result = chosen
    seen.add(fingerprint)
    used[shape] += 1
    if only is not None and number != only:
        return []
    if result is None:  # judged by another process, which sends the verdict only: the draw again
        result = attempt_of(template, seed, number, attempt, settings)
    if isinstance(result.numbers, GraphSolution):
        spec, make = result.numbers.spec, partial_function(_made, result.numbers)
    else:
        spec, make = result.numbers.spec, partial_function(solve, result.numbers.spec, rounding=settings.rounding, digits=settings.digits)
    return [
        Exercise(
            variant_id(number, seed), number, seed, spec, make, result.questions,
            {q.id: replace(result.answers[q.id], points=_points_of(q, worth)) for q in result.questions}, digits,
            result.mistakes, settings.rounding,
        )
    ]


def _made(solution: GraphSolution) -> GraphSolution:
    """A record already made (a graph's draw is its record)."""
    return solution


def _verdict(result: "_Draw") -> tuple[list[Rejection], str, tuple | None]:
    """What choosing among draws needs of one: its reasons to draw again, its fingerprint
    and its structure (None for a rejected draw)."""
    return result.reasons, _fingerprint(result.spec_dict), None if result.reasons else _structure(result)


# The draws a worker process judges: set once per process by `_start_judge` (a fork inherits it).
_JUDGE: dict[str, Any] = {}


def _start_judge(attempt_of, template, seed, settings) -> None:
    _JUDGE.update(attempt_of=attempt_of, template=template, seed=seed, settings=settings)


def _judge(number: int) -> list[tuple[int, tuple]]:
    """The verdicts on variant `number`'s draws, in order, up to the last the choice can
    need: VARIETY_DRAWS good ones (one more is needed only when a good one turns out to
    repeat an earlier variant, and is then judged by the chooser)."""
    j = _JUDGE
    verdicts, good = [], 0
    for attempt in range(MAX_ATTEMPTS):
        verdict = _verdict(j["attempt_of"](j["template"], j["seed"], number, attempt, j["settings"]))
        verdicts.append((attempt, verdict))
        good += not verdict[0]
        if good >= VARIETY_DRAWS:
            break
    return verdicts


class _Judges:
    """The verdicts on each variant's draws in order: judged here one by one, or by `jobs`
    processes, each judging a whole variant ahead of the choice (which is made here, in
    order, and so is the same for any number of processes)."""

    def __init__(self, attempt_of, template, seed: int, settings, jobs: int, last: int):
        self.attempt_of, self.template, self.seed, self.settings, self.jobs = attempt_of, template, seed, settings, max(1, jobs)
        self.last = last
        self.pool = None
        self.pending: dict[int, object] = {}

    def __enter__(self):
        if self.jobs > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(
                self.jobs, mp_context=multiprocessing.get_context("fork"),
                initializer=_start_judge, initargs=(self.attempt_of, self.template, self.seed, self.settings),
            )
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def verdicts(self, number: int):
        """(attempt, verdict, the draw if judged here) for attempts 0, 1, … of variant `number`."""
        judged: list = []
        if self.pool is not None:
            # keep every process busy with the variants that follow
            for ahead in range(number, min(self.last, number + 2 * self.jobs - 1) + 1):
                if ahead not in self.pending:
                    self.pending[ahead] = self.pool.submit(_judge, ahead)
            judged = self.pending.pop(number).result()
        for attempt, verdict in judged:
            yield attempt, verdict, None
        for attempt in range(len(judged), MAX_ATTEMPTS):
            result = self.attempt_of(self.template, self.seed, number, attempt, self.settings)
            yield attempt, _verdict(result), result


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
    template = shape_template(
        shape, activations, loss, learning_rate=learning_rate, samples=samples, title=title,
        limits=options.get("limits", DEFAULT_LIMITS),
    )
    return exercise(template, seed, **options)


def shape_template(
    shape: Sequence[int], activations: Sequence[str], loss: str, *, learning_rate: float = 0.1, samples: int = 1,
    title: str | None = None, limits: Limits = DEFAULT_LIMITS,
) -> Spec:
    """A template spec of the given shape (its numbers are placeholders to be drawn)."""
    shape = list(shape)
    if len(shape) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape):
        raise UsageError(f"--shape: expected at least two whole numbers ≥ 1 (inputs, then each layer's units), got {str(shape)[:80]}")
    if max(shape) > limits.units or len(shape) - 1 > limits.layers:
        raise UsageError(
            f"--shape: at most {limits.units} units per layer and {limits.layers} layers "
            "(raise them with --limit units=N, --limit layers=N)"
        )
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
    return load_spec(template, name="-".join(map(str, shape)), limits=limits)


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
           progress=None, limits: Limits = DEFAULT_LIMITS) -> StressReport:
    """Draws `draws` candidate variants (at most `limits.variants`) and reports how many
    each rule rejects and the spread of every asked value over the accepted ones."""
    template = load_spec(spec, limits=limits)
    _check_settings(seed, draws, low, high, decimals, limits, "draws")
    check_digits(digits)
    settings = _Settings(low, high, decimals, ask, digits, rounding_mode(rounding, template.rounding))
    tally: Counter[Rejection] = Counter()
    seen: set[str] = set()
    kept: dict[str, list[float]] = {}
    accepted = 0
    attempt_of = _graph_attempt if isinstance(template, GraphSpec) else _attempt
    for number in range(1, draws + 1):
        result = attempt_of(template, seed, number, 0, settings)
        fingerprint = _fingerprint(result.spec_dict)
        reasons = result.reasons + ([Rejection.DUPLICATE] if fingerprint in seen else [])
        seen.add(fingerprint)
        tally.update(reasons)
        if not reasons:
            accepted += 1
            for question in result.questions:
                kept.setdefault(question.id, []).append(result.answers[question.id].exact)
        if progress is not None:
            progress(number)
    spreads = tuple(Spread(q, min(v), statistics.median(v), max(v)) for q, v in kept.items())
    return StressReport(draws, accepted, {r: tally[r] for r in Rejection}, spreads)
