"""Computational graphs ("circuits") in the CS231n style, with their forward and backward numbers.

An expression such as `(x + y) * z`, or a list of named nodes such as
`["q = x + y", "f = q * z"]`, becomes a `Circuit`: its inputs with their values, then one
`Node` per gate in topological order, each with its forward value, its local gradients and
∂f/∂node; and for every input and node the gradient ∂f/∂name with the contributions of
each use (a value feeding several gates, or one gate twice as in `x*x`, sums them).

Representation:

* Operands are input or node names (`str`), or constants (`expression.Number`, exact): the
  `1` of `1 + exp(-z)` and the `-1` of `-1 * x` are operands of their gate, not nodes. A
  gate whose operands are all constants (`2^3`) is still a node; it has no local gradients.
* Names: given names (named-node form) are kept; every other gate gets `q1, q2, …` in
  topological order, skipping names already taken; the output of a single expression is `f`
  (or the next `qN` when `f` is an input).
* `Node.expression` is the gate written in operand symbols (`symbol(name)`, real symbols);
  `Node.local[i]` is `sympy.diff` of the gate's definition with respect to operand position
  `i` (None for a constant). Derivatives per position, not per name, are what the graph
  shows: in `x*x` each edge carries `x`, and the two contributions add up to `2x`.
* Kinks are defined by writing the definitions as cases, so the derivative SymPy returns is
  the convention itself (and the float backward pass follows the same cases):
  - relu(a) = a if a > 0 else 0, so relu'(0) = 0;
  - max(a, b) = a if a ≥ b else b: the gradient goes to the larger operand, at a tie to
    the first; min(a, b) = a if a ≤ b else b: to the smaller, at a tie to the first;
  - abs(a) = |a| with a real, whose derivative is sign(a), so abs'(0) = 0.

Numbers are float64, computed with `math` per gate (fast: 200 gates take milliseconds);
the SymPy expressions are exact. Log of a non-positive value, division by zero, overflow
and the like raise `NumericalError` naming the node, its gate and its operands' values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cached_property, lru_cache

import sympy as sp

from ..errors import NumericalError, SpecError, quoted
from .mistakes import GRAPH_RIGHT, GraphVariation
from ..spec.expression import (
    MAX_NUMBER,
    Expression,
    NamedNode,
    Number,
    Operation,
    Variable,
    parse_expression,
    parse_nodes,
    variables,
)

MESSAGE_LIMIT = 200  # characters of a numerical error's message
OUTPUT_NAME = "f"
GENERATED_PREFIX = "q"


class Gate(Enum):
    """The kind of a gate; values are the parser's operation names."""

    ADD = "add"
    SUBTRACT = "subtract"
    MULTIPLY = "multiply"
    DIVIDE = "divide"
    POWER = "power"
    NEGATE = "negate"
    EXP = "exp"
    LOG = "log"
    SIGMOID = "sigmoid"
    TANH = "tanh"
    RELU = "relu"
    MAX = "max"
    MIN = "min"
    ABS = "abs"


class Pattern(Enum):
    """How a gate passes the upstream gradient back, in the notes' words."""

    DISTRIBUTE = "distribute"  # add: each operand gets the upstream gradient
    SWAP = "swap"  # multiply: each operand gets upstream × the other operand's value
    ROUTE = "route"  # max (min): the larger (smaller) operand gets the upstream, the other 0


PATTERNS = {Gate.ADD: Pattern.DISTRIBUTE, Gate.MULTIPLY: Pattern.SWAP, Gate.MAX: Pattern.ROUTE, Gate.MIN: Pattern.ROUTE}

Operand = str | Number
Keep = Callable[[float], float]


def _exact(value: float) -> float:
    return value


def symbol(name: str) -> sp.Symbol:
    """The SymPy symbol of an input or node. Real, so that |a| differentiates to sign(a)."""
    return sp.Symbol(name, real=True)


@dataclass(frozen=True)
class Input:
    name: str
    value: float


@dataclass(frozen=True)
class Node:
    """One gate and its numbers. `local`, `local_values` are per operand position (None
    where the operand is a constant)."""

    name: str
    gate: Gate
    operands: tuple[Operand, ...]
    expression: sp.Expr
    local: tuple[sp.Expr | None, ...]
    value: float
    local_values: tuple[float | None, ...]
    gradient: float
    pattern: Pattern | None


@dataclass(frozen=True)
class Contribution:
    """One use of a value: operand `position` of gate `node` sends back upstream × local."""

    node: str
    position: int
    upstream: float  # ∂f/∂node
    local: float  # ∂node/∂operand at this position
    value: float  # upstream × local


@dataclass(frozen=True)
class Gradient:
    """∂f/∂name: the sum of its contributions in topological order of the using gates
    (exactly 1.0, with no contributions, for the output)."""

    name: str
    value: float
    contributions: tuple[Contribution, ...]


@dataclass(frozen=True)
class Circuit:
    inputs: tuple[Input, ...]  # in order of first appearance
    nodes: tuple[Node, ...]  # topological order; the last one is the output
    gradients: tuple[Gradient, ...]  # every input, then every node, in the same orders
    output: str

    @cached_property
    def _values(self) -> dict[str, float]:
        return {**{item.name: item.value for item in self.inputs}, **{node.name: node.value for node in self.nodes}}

    @cached_property
    def _gradients(self) -> dict[str, Gradient]:
        return {gradient.name: gradient for gradient in self.gradients}

    def value(self, name: str) -> float:
        """The forward value of an input or node."""
        return self._values[name]

    def gradient(self, name: str) -> Gradient:
        """∂f/∂name with its contributions."""
        return self._gradients[name]

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def to_key(self) -> dict[str, dict[str, float]]:
        """The answer key: forward values and gradients of every input and node (the
        output's gradient is exactly 1)."""
        return {
            "forward": dict(self._values),
            "gradients": {gradient.name: gradient.value for gradient in self.gradients},
        }


def build_circuit(spec: object, values: object, source: str = "spec") -> Circuit:
    """The circuit of an expression (text) or of named nodes (a list of `name = expression`)
    at the given input values. Raises SpecError for unusable text or values, NumericalError
    when a value cannot be computed."""
    if isinstance(spec, str):
        return circuit_from_expression(parse_expression(spec, source, "expression"), values, source)
    return circuit_from_nodes(parse_nodes(spec, source, "nodes"), values, source)


def circuit_from_expression(
    tree: Expression, values: object, source: str = "spec", keep: Keep | None = None,
    variation: GraphVariation = GRAPH_RIGHT, given: Mapping[str, float] | None = None,
) -> Circuit:
    """The circuit of one parsed expression; its output is called `f` (if free)."""
    drafts: list[_Draft] = []
    _lower_root(tree, drafts, source, "expression")
    inputs = variables(tree)
    drafts[-1].name = OUTPUT_NAME if OUTPUT_NAME not in inputs else None
    return _evaluate(drafts, inputs, values, source, keep, variation, given)


def circuit_from_nodes(
    named: Sequence[NamedNode], values: object, source: str = "spec", field: str = "nodes", keep: Keep | None = None,
    variation: GraphVariation = GRAPH_RIGHT, given: Mapping[str, float] | None = None,
) -> Circuit:
    """The circuit of parsed named nodes; the last one is the output. Every other named
    node must be used by a later one (an unused line is almost surely a mistake)."""
    drafts: list[_Draft] = []
    defined = {node.name for node in named}
    seen: dict[str, None] = {}
    for index, node in enumerate(named):
        _lower_root(node.expression, drafts, source, f"{field}[{index}]")
        drafts[-1].name = node.name
        for name in variables(node.expression):
            if name not in defined:
                seen.setdefault(name, None)
    used = {operand for draft in drafts for operand in draft.operands if isinstance(operand, str)}
    for index, node in enumerate(named[:-1]):
        if node.name not in used:
            raise SpecError(source, f"{field}[{index}]", f"node {quoted(node.name)} is not used by any later node")
    return _evaluate(drafts, tuple(seen), values, source, keep, variation, given)


class _Draft:
    """A gate before it has a name and numbers; operands may point at earlier drafts (int)."""

    def __init__(self, gate: Gate, operands: list[Operand | int]):
        self.gate = gate
        self.operands = operands
        self.name: str | None = None


def _lower_root(tree: Expression, drafts: list[_Draft], source: str, field: str) -> None:
    """Appends the gates of a whole expression, which must have at least one."""
    if not isinstance(tree, Operation):
        what = f"the name {quoted(tree.name)}" if isinstance(tree, Variable) else "a number"
        raise SpecError(source, field, f"expected an expression with at least one operation, found only {what}")
    _lower(tree, drafts)


def _lower(tree: Expression, drafts: list[_Draft]) -> Operand | int:
    """Appends the gates of `tree` in post-order (left to right) and returns what stands for
    its value. Recursion is bounded: the parser limits a tree to 200 gates and 50 levels."""
    if isinstance(tree, Operation):
        operands = [_lower(operand, drafts) for operand in tree.operands]
        drafts.append(_Draft(Gate(tree.op), operands))
        return len(drafts) - 1
    return tree.name if isinstance(tree, Variable) else tree


# Definitions of the gates in position symbols; `sympy.diff` of these is every local gradient.
_POSITIONS = (sp.Dummy("a", real=True), sp.Dummy("b", real=True))


def _definition(gate: Gate, a: sp.Expr, b: sp.Expr | None = None) -> sp.Expr:
    if gate is Gate.ADD:
        return a + b
    if gate is Gate.SUBTRACT:
        return a - b
    if gate is Gate.MULTIPLY:
        return a * b
    if gate is Gate.DIVIDE:
        return a / b
    if gate is Gate.POWER:
        return a**b
    if gate is Gate.NEGATE:
        return -a
    if gate is Gate.EXP:
        return sp.exp(a)
    if gate is Gate.LOG:
        return sp.log(a)
    if gate is Gate.SIGMOID:
        return 1 / (1 + sp.exp(-a))
    if gate is Gate.TANH:
        return sp.tanh(a)
    # The kinks: written as cases so that sympy.diff yields the documented conventions.
    if gate is Gate.RELU:
        return sp.Piecewise((a, a > 0), (0, True))
    if gate is Gate.MAX:
        return sp.Piecewise((a, a >= b), (b, True))
    if gate is Gate.MIN:
        return sp.Piecewise((a, a <= b), (b, True))
    if gate is Gate.ABS:
        return sp.Abs(a)
    raise AssertionError(gate)


@lru_cache(maxsize=4096)
def _template(gate: Gate, constants: tuple[Number | None, ...]) -> tuple[sp.Expr, tuple[sp.Expr | None, ...]]:
    """The gate's definition with its constants in place and a position symbol for each
    other operand, and its derivative by each position. Cached: a circuit repeats a few
    gate shapes, and diff is the slow part."""
    arguments = [constant.exact if constant is not None else position for constant, position in zip(constants, _POSITIONS)]
    if all(constant is not None for constant in constants):
        # No symbol: nothing to differentiate. Kept unevaluated, so 1000000^1000000 is not
        # multiplied out (its float overflows and is refused anyway).
        with sp.evaluate(False):
            return _definition(gate, *arguments), (None,) * len(constants)
    definition = _definition(gate, *arguments)
    local = tuple(None if constant is not None else sp.diff(definition, position) for constant, position in zip(constants, _POSITIONS))
    return definition, local


class _Domain(Exception):
    """A gate's value or derivative that cannot be computed; the message says why."""


def _forward(gate: Gate, a: float, b: float | None) -> float:
    if gate is Gate.ADD:
        return a + b
    if gate is Gate.SUBTRACT:
        return a - b
    if gate is Gate.MULTIPLY:
        return a * b
    if gate is Gate.DIVIDE:
        if b == 0:
            raise _Domain("division by zero")
        return a / b
    if gate is Gate.POWER:
        if a < 0 and not b.is_integer():
            raise _Domain("power of a negative value to a non-integer exponent")
        if a == 0 and b < 0:
            raise _Domain("power of zero to a negative exponent")
        try:
            return math.pow(a, b)
        except OverflowError:
            raise _Domain("overflow") from None
    if gate is Gate.NEGATE:
        return -a
    if gate is Gate.EXP:
        try:
            return math.exp(a)
        except OverflowError:
            raise _Domain("overflow") from None
    if gate is Gate.LOG:
        if a <= 0:
            raise _Domain("log of a non-positive value")
        return math.log(a)
    if gate is Gate.SIGMOID:
        # exp of a non-positive number only: far out on either tail nothing overflows.
        if a >= 0:
            return 1 / (1 + math.exp(-a))
        e = math.exp(a)
        return e / (1 + e)
    if gate is Gate.TANH:
        return math.tanh(a)
    if gate is Gate.RELU:
        return a if a > 0 else 0.0
    if gate is Gate.MAX:
        return max(a, b)  # at a tie, the first (see the cases of _definition)
    if gate is Gate.MIN:
        return min(a, b)  # at a tie, the first
    if gate is Gate.ABS:
        return abs(a)
    raise AssertionError(gate)


def _local_values(gate: Gate, a: float, b: float | None, value: float, needed: tuple[bool, ...]) -> tuple[float | None, ...]:
    """∂gate/∂operand at each position where `needed` (not a constant), in floats; the same
    cases as `_definition` (relu'(0) = 0, ties to the first operand, abs'(0) = 0)."""
    if gate is Gate.ADD:
        local = (1.0, 1.0)
    elif gate is Gate.SUBTRACT:
        local = (1.0, -1.0)
    elif gate is Gate.MULTIPLY:
        local = (b, a)
    elif gate is Gate.DIVIDE:
        local = (1 / b, -(a / b) / b)  # -a/b², without b² underflowing to 0
    elif gate is Gate.POWER:
        local = (_power_base(a, b) if needed[0] else None, _power_exponent(a, value) if needed[1] else None)
    elif gate is Gate.NEGATE:
        local = (-1.0,)
    elif gate is Gate.EXP:
        local = (value,)
    elif gate is Gate.LOG:
        local = (1 / a,)
    elif gate is Gate.SIGMOID:
        local = (value * (1 - value),)
    elif gate is Gate.TANH:
        local = (1 - value * value,)
    elif gate is Gate.RELU:
        local = (1.0 if a > 0 else 0.0,)
    elif gate is Gate.MAX:
        local = (1.0, 0.0) if a >= b else (0.0, 1.0)
    elif gate is Gate.MIN:
        local = (1.0, 0.0) if a <= b else (0.0, 1.0)
    elif gate is Gate.ABS:
        local = (1.0 if a > 0 else -1.0 if a < 0 else 0.0,)
    else:
        raise AssertionError(gate)
    local = tuple(derivative if wanted else None for derivative, wanted in zip(local, needed))
    if any(derivative is not None and not math.isfinite(derivative) for derivative in local):
        raise _Domain("overflow in a local gradient")
    return local


def _power_base(a: float, b: float) -> float:
    if b == 0:
        return 0.0
    if a == 0 and b < 1:
        raise _Domain("derivative of a power at a zero base is undefined")
    try:
        return b * math.pow(a, b - 1)
    except OverflowError:
        raise _Domain("overflow in a local gradient") from None


def _power_exponent(a: float, value: float) -> float:
    # ∂(a^b)/∂b = a^b·log a, real only for a positive base.
    if a <= 0:
        raise _Domain("a power with a variable exponent needs a positive base")
    return value * math.log(a)


def _check_values(values: object, inputs: tuple[str, ...], nodes: set[str], source: str) -> dict[str, float]:
    """Every input has a value, every value names an input, every value is a finite number
    within ±MAX_NUMBER (bool is not a number)."""
    field = "values"
    if not isinstance(values, Mapping):
        raise SpecError(source, field, f"expected a mapping from input names to numbers, found {type(values).__name__}")
    listed = ", ".join(inputs)
    if len(listed) > 80:  # names are up to 30 characters: keep the message to one short line
        listed = listed[:79] + "…"
    for name in values:
        if not isinstance(name, str):
            raise SpecError(source, field, f"expected input names as keys, found {quoted(name)}")
        if name in nodes:
            raise SpecError(source, field, f"{quoted(name)} is a node, computed from the inputs; give values to the inputs only")
        if name not in inputs:
            raise SpecError(source, field, f"{quoted(name)} is not an input; the inputs are {listed}")
    checked = {}
    for name in inputs:
        if name not in values:
            raise SpecError(source, field, f"no value for the input {quoted(name)}")
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(source, field, f"expected a number for {quoted(name)}, found {type(value).__name__}")
        # A huge int is compared before float() could overflow on it.
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(source, field, f"expected a finite number for {quoted(name)}, found {value}")
        if abs(value) > MAX_NUMBER:
            raise SpecError(source, field, f"the value of {quoted(name)} is out of range; expected at most {MAX_NUMBER:,} in magnitude")
        checked[name] = float(value)
    return checked


def _evaluate(
    drafts: list[_Draft], inputs: tuple[str, ...], values: object, source: str, keep: Keep | None = None,
    variation: GraphVariation = GRAPH_RIGHT, given: Mapping[str, float] | None = None,
) -> Circuit:
    """Names the gates, checks the values, runs the forward and the backward pass. `keep`
    is applied to every value a worked solution shows (a node's value, a local gradient,
    a contribution, a sum of contributions): rounding as the reader does, carrying what
    is shown. None keeps full precision. `variation` is a catalogued mistake's way of
    working (model/mistakes.py); `given` replaces values by answer id (a gate's name for its
    value, grad:NAME for a gradient: a student's own, for follow-through), the rest
    following from them."""
    given = given or {}
    keep = keep or _exact
    taken = set(inputs) | {draft.name for draft in drafts if draft.name}
    counter = 0
    for draft in drafts:
        if draft.name is None:
            counter += 1
            while f"{GENERATED_PREFIX}{counter}" in taken:
                counter += 1
            draft.name = f"{GENERATED_PREFIX}{counter}"
    names = [draft.name for draft in drafts]
    operands_of = [
        tuple(names[operand] if isinstance(operand, int) else operand for operand in draft.operands) for draft in drafts
    ]
    numbers = _check_values(values, inputs, set(names), source)

    # Forward: values and local gradients, gate by gate.
    forward: list[tuple[float, tuple[float | None, ...]]] = []
    for draft, operands in zip(drafts, operands_of):
        arguments = [float(operand) if isinstance(operand, Number) else numbers[operand] for operand in operands]
        a, b = arguments[0], arguments[1] if len(arguments) > 1 else None
        needed = tuple(isinstance(operand, str) for operand in operands)
        try:
            value = _forward(draft.gate, a, b)
            if not math.isfinite(value):
                raise _Domain("overflow")
            value = given.get(draft.name, keep(value))
            if variation.local_at_output and draft.gate in (Gate.SIGMOID, Gate.TANH):
                a = value  # the derivative taken at the gate's output
                raw = _local_values(draft.gate, a, b, _forward(draft.gate, a, b), needed)
            else:
                raw = _local_values(draft.gate, a, b, value, needed)
            if variation.multiply_own and draft.gate is Gate.MULTIPLY:
                raw = (a if needed[0] else None, b if needed[1] else None)
            if variation.subtract_plus and draft.gate is Gate.SUBTRACT:
                raw = (raw[0], 1.0 if needed[1] else None)
            local = tuple(None if d is None else keep(d) for d in raw)
        except _Domain as problem:
            raise _numerical(source, str(problem), draft, operands, numbers) from None
        numbers[draft.name] = value
        forward.append((value, local))

    # Backward: ∂f/∂node is complete once every later gate has sent its contributions.
    order = {name: index for index, name in enumerate(names)}
    received: dict[str, list[Contribution]] = {name: [] for name in (*inputs, *names)}
    gradients: dict[str, Gradient] = {}

    def settle(name: str) -> float:
        contributions = tuple(sorted(received[name], key=lambda item: (order[item.node], item.position)))
        counted = contributions[:1] if variation.first_use_only else contributions
        total = 1.0 if name == names[-1] else keep(math.fsum(item.value for item in counted))
        total = given.get(f"grad:{name}", total) if name != names[-1] else total
        if not math.isfinite(total):
            raise NumericalError(source, None, None, _cut(f"gradient overflow at {name}"))
        gradients[name] = Gradient(name, total, contributions)
        return total

    for index in range(len(drafts) - 1, -1, -1):
        draft, operands, (_, local) = drafts[index], operands_of[index], forward[index]
        upstream = settle(draft.name)
        for position, (operand, derivative) in enumerate(zip(operands, local)):
            if isinstance(operand, str):
                contribution = keep(derivative if variation.chain_left_out else upstream * derivative)
                if not math.isfinite(contribution):
                    raise _numerical(source, "gradient overflow", draft, operands, numbers)
                received[operand].append(Contribution(draft.name, position, upstream, derivative, contribution))
    for name in inputs:
        settle(name)

    nodes = []
    for draft, operands, (value, local) in zip(drafts, operands_of, forward):
        expression, derivatives = _template(draft.gate, tuple(operand if isinstance(operand, Number) else None for operand in operands))
        replace = {position: symbol(operand) for position, operand in zip(_POSITIONS, operands) if isinstance(operand, str)}
        nodes.append(
            Node(
                name=draft.name,
                gate=draft.gate,
                operands=operands,
                expression=expression.xreplace(replace),
                local=tuple(None if derivative is None else derivative.xreplace(replace) for derivative in derivatives),
                value=value,
                local_values=local,
                gradient=gradients[draft.name].value,
                pattern=PATTERNS.get(draft.gate),
            )
        )
    return Circuit(
        inputs=tuple(Input(name, numbers[name]) for name in inputs),
        nodes=tuple(nodes),
        gradients=tuple(gradients[name] for name in (*inputs, *names)),
        output=names[-1],
    )


def _format(value: float) -> str:
    return format(value, ".6g")


def _operand_text(operand: Operand) -> str:
    if isinstance(operand, Number):
        fraction = operand.value
        text = str(fraction.numerator) if fraction.denominator == 1 else _format(float(fraction))
        return f"({text})" if fraction < 0 else text
    return operand


def gate_text(gate: Gate, operands: Sequence[Operand]) -> str:
    """The gate written out on one line, e.g. `q1 * z`, `log(q2)`, `max(x, 0)`."""
    texts = [_operand_text(operand) for operand in operands]
    infix = {Gate.ADD: " + ", Gate.SUBTRACT: " - ", Gate.MULTIPLY: " * ", Gate.DIVIDE: " / ", Gate.POWER: "^"}
    if gate in infix:
        return infix[gate].join(texts)
    if gate is Gate.NEGATE:
        return f"-{texts[0]}"
    return f"{gate.value}({', '.join(texts)})"


def _numerical(source: str, problem: str, draft: _Draft, operands: tuple[Operand, ...], numbers: dict[str, float]) -> NumericalError:
    """E.g. `log of a non-positive value at node q3 (log(q2), q2 = -1)`."""
    shown = dict.fromkeys(operand for operand in operands if isinstance(operand, str))
    values = "".join(f", {name} = {_format(numbers[name])}" for name in shown)
    message = f"{problem} at node {draft.name} ({gate_text(draft.gate, operands)}{values})"
    return NumericalError(source, None, None, _cut(message))


def _cut(message: str) -> str:
    # Names are at most 30 characters, but two long operands could still pass the limit.
    return message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"
