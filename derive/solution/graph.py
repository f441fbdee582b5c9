"""GraphSpec → GraphSolution: a computational graph worked gate by gate, in the CS231n
manner. The forward pass gives each gate's value; each gate's local gradients are stated
in the form a reader computes them (q (1 − q) for a sigmoid, the other factor for a
product); the backward pass multiplies each node's gradient by the local gradients of the
gate it feeds and sums over every use of a value.

The numbers come from the node graph of model/circuit.py, computed twice: as shown (every
value rounded and carried, by default) and at full precision (the JSON key)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from ..model.circuit import Circuit, Gate, Node, circuit_from_expression, circuit_from_nodes, symbol as circuit_symbol
from ..model.functions import PRE_ACTIVATION, activation
from ..model.mistakes import GRAPH_RIGHT, GraphVariation
from ..model.numeric import DEFAULT_DIGITS, carried, exact
from ..model.quantities import node, partial
from ..spec.expression import Number
from ..spec.schema import GraphSpec, Rounding
from .circuit_diagram import CircuitDiagram, circuit_diagram
from .record import Equation, Form, ValueRow, equation

FORMAT = "derive-graph/1"


@dataclass(frozen=True)
class LocalGradient:
    operand: str  # the input or node this gradient is with respect to
    position: int  # which of the gate's operands (a value may be used twice: x * x)
    equation: Equation  # ∂q/∂a = its form = its numbers = value


@dataclass(frozen=True)
class GateStep:
    """One gate: its forward line and the local gradient for each operand that is not a
    constant."""

    name: str
    gate: str  # a Gate value: add, multiply, sigmoid, …
    pattern: str | None  # distribute (add), swap (multiply), route (max, min)
    operands: tuple[str, ...]  # the operands that are inputs or nodes
    forward: Equation
    local: tuple[LocalGradient, ...]


@dataclass(frozen=True)
class BackwardStep:
    """∂f/∂name: the sum over every use of the value of (the using gate's gradient × the
    local gradient), written out, with the pattern of the gate when a single gate uses it."""

    name: str
    equation: Equation
    uses: int  # how many gate inputs the value feeds
    pattern: str | None  # the pattern of the one gate it feeds, if one


@dataclass(frozen=True, eq=False)
class GraphSolution:
    spec: GraphSpec
    inputs: tuple[Equation, ...]  # x = −2, …
    gates: tuple[GateStep, ...]  # topological order; the last is the output
    backward: tuple[BackwardStep, ...]  # the output (1), the gates in reverse, then the inputs
    shown: Circuit = field(repr=False)  # as the document computes: rounded and carried, or exact
    exact: Circuit = field(repr=False)
    rounding: Rounding = Rounding.CARRY
    digits: int = DEFAULT_DIGITS
    patterns: tuple[str, ...] = ()  # the patterns that occur, in the order first met
    table: tuple[ValueRow, ...] = ()  # every input and gate: (forward value, gradient)
    statement: tuple[Equation, ...] = ()  # the formula (f = …), or each named node's

    diagram: CircuitDiagram | None = None  # the circuit's picture, with the numbers as shown

    kind = "graph"
    training = None  # no loss curve

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def local_gradients(self) -> tuple[Equation, ...]:
        """Every gate's local gradients, gate by gate."""
        return tuple(local.equation for gate in self.gates for local in gate.local)

    @property
    def output(self) -> str:
        return self.exact.output

    def to_dict(self) -> dict[str, Any]:
        """The answer key (derive-graph/1): every input's and node's forward value and
        gradient ∂f/∂name at full precision; with carried rounding also as shown."""
        key: dict[str, Any] = {"format": FORMAT, "title": self.title, "rounding": {"mode": self.rounding.value}}
        if self.rounding is Rounding.CARRY:
            key["rounding"]["digits"] = self.digits
        key.update(self.exact.to_key())
        if self.rounding is Rounding.CARRY:
            key["shown"] = self.shown.to_key()
        return key


def circuit_of(spec: GraphSpec, keep=exact, variation: GraphVariation = GRAPH_RIGHT, given=None) -> Circuit:
    """The spec's circuit, carried with `keep`; worked with a mistake's `variation`, or with
    `given` values (by answer id) in place of the right ones."""
    if spec.tree is not None:
        return circuit_from_expression(spec.tree, dict(spec.values), spec.source, keep, variation, given)
    return circuit_from_nodes(spec.nodes or (), dict(spec.values), spec.source, "nodes", keep, variation, given)


def solve_graph(spec: GraphSpec, *, rounding: Rounding | None = None, digits: int = DEFAULT_DIGITS) -> GraphSolution:
    mode = rounding or spec.rounding or Rounding.CARRY
    exact_circuit = circuit_of(spec)
    shown = circuit_of(spec, carried(digits)) if mode is Rounding.CARRY else exact_circuit
    values = {node(name): value for name, value in {**{i.name: i.value for i in shown.inputs}, **{n.name: n.value for n in shown.nodes}}.items()}
    output = node(shown.output)
    gates = []
    for gate in shown.nodes:
        gates.append(_gate_step(gate, values, output))
    backward = [BackwardStep(shown.output, equation(partial(output, output), [], 1.0), 0, None)]
    users: dict[str, list[Node]] = {}
    for gate in shown.nodes:
        for operand in gate.operands:
            if isinstance(operand, str):
                users.setdefault(operand, []).append(gate)
    for name in [n.name for n in reversed(shown.nodes[:-1])] + [i.name for i in shown.inputs]:
        gradient = shown.gradient(name)
        chain = _sum([sp.Mul(partial(output, node(c.node)), _local_symbol(c, name, output, gates), evaluate=False) for c in gradient.contributions])
        # The numbers of each use (the gate's gradient, the local gradient), then their
        # products when there are several: each product is carried before the sum.
        numbers: dict[sp.Symbol, float] = {}
        products, results = [], []
        for c in gradient.contributions:
            upstream, local, result = sp.Dummy(), sp.Dummy(), sp.Dummy()
            numbers.update({upstream: c.upstream, local: c.local, result: c.value})
            products.append(sp.Mul(upstream, local, evaluate=False))
            results.append(result)
        forms = [Form(chain), Form(_sum(products), numbers)]
        if len(results) > 1:
            forms.append(Form(_sum(results), numbers))
        uses = users.get(name, [])
        pattern = uses[0].pattern.value if len(uses) == 1 and uses[0].pattern else None
        backward.append(BackwardStep(name, equation(partial(output, node(name)), forms, gradient.value), len(uses), pattern))
    patterns = tuple(dict.fromkeys(g.pattern for g in gates if g.pattern))
    inputs = tuple(equation(node(i.name), [], i.value) for i in shown.inputs)
    table = tuple(
        ValueRow(node(name), (shown.value(name), shown.gradient(name).value))
        for name in [i.name for i in shown.inputs] + [n.name for n in shown.nodes]
    )
    statement = _statement(spec, shown)
    diagram = circuit_diagram(shown)
    return GraphSolution(spec, inputs, tuple(gates), tuple(backward), shown, exact_circuit, mode, digits, patterns, table, statement, diagram)


def _statement(spec: GraphSpec, circuit: Circuit) -> tuple[Equation, ...]:
    """The problem as given: f = the whole formula, or each named node with its formula;
    gates the spec did not name are written out inside the formula that uses them."""
    named = {n.name for n in spec.nodes} if spec.nodes else {circuit.output}
    written: dict[str, sp.Basic] = {}
    lines = []
    for gate in circuit.nodes:
        operands = [written.get(o, node(o)) if isinstance(o, str) else o.exact for o in gate.operands]
        expression = _display(gate.gate, operands)[0]
        if gate.gate is Gate.ADD:  # (a + b) + c is written a + b + c
            expression = sp.Add(*[term for o in expression.args for term in (o.args if o.is_Add else (o,))], evaluate=False)
        if gate.name in named:
            lines.append(equation(node(gate.name), [Form(expression)]))
        else:
            written[gate.name] = expression
    return tuple(lines)


def _fraction(numerator: sp.Basic, denominator: sp.Basic) -> sp.Basic:
    """numerator / denominator as one fraction (1/b, not 1 · 1/b)."""
    reciprocal = sp.Pow(denominator, -1, evaluate=False)
    return reciprocal if numerator == 1 else sp.Mul(numerator, reciprocal, evaluate=False)


def _sum(terms: list[sp.Basic]) -> sp.Basic:
    return sp.Add(*terms, evaluate=False) if len(terms) > 1 else terms[0]


def _local_symbol(contribution, name: str, output: sp.Symbol, gates: list[GateStep]) -> sp.Basic:
    """The local gradient in a backward line: its symbol ∂q/∂a; for the output gate, whose
    ∂f/∂a would read as the gradient being computed, the local gradient's form itself."""
    if node(contribution.node) != output:
        return partial(node(contribution.node), node(name))
    local = next(l for l in gates[-1].local if l.position == contribution.position).equation
    return local.forms[0].expr if local.forms else sp.Integer(round(local.value))


def _operand(operand, values) -> sp.Basic:
    return node(operand) if isinstance(operand, str) else operand.exact


_SIGMOID, _RELU = activation("sigmoid"), activation("relu")


def _named(function, argument: sp.Basic) -> sp.Basic:
    return function.named.xreplace({PRE_ACTIVATION: argument})


def _display(gate: Gate, operands: list[sp.Basic]) -> list[sp.Basic]:
    """The gate's forward forms as a reader writes them: q = x + y; σ(a) = 1/(1 + e^(−a))."""
    a = operands[0]
    b = operands[1] if len(operands) > 1 else None
    if gate is Gate.ADD:
        return [sp.Add(a, b, evaluate=False)]
    if gate is Gate.SUBTRACT:
        return [sp.Add(a, sp.Mul(-1, b, evaluate=False), evaluate=False)]
    if gate is Gate.MULTIPLY:
        return [sp.Mul(a, b, evaluate=False)]
    if gate is Gate.DIVIDE:
        return [_fraction(a, b)]
    if gate is Gate.POWER:
        return [sp.Pow(a, b, evaluate=False)]
    if gate is Gate.NEGATE:
        return [sp.Mul(-1, a, evaluate=False)]
    if gate is Gate.EXP:
        return [sp.exp(a, evaluate=False)]
    if gate is Gate.LOG:
        return [sp.log(a, evaluate=False)]
    if gate is Gate.SIGMOID:
        return [_named(_SIGMOID, a), _SIGMOID.definition.xreplace({PRE_ACTIVATION: a})]
    if gate is Gate.TANH:
        return [sp.tanh(a, evaluate=False)]
    if gate is Gate.RELU:
        return [_named(_RELU, a)]
    if gate is Gate.MAX:
        return [sp.Max(a, b, evaluate=False)]
    if gate is Gate.MIN:
        return [sp.Min(a, b, evaluate=False)]
    if gate is Gate.ABS:
        return [sp.Abs(a, evaluate=False)]
    raise AssertionError(gate)


def _local_form(gate: Gate, position: int, operands: list[sp.Basic], itself: sp.Symbol) -> sp.Basic:
    """∂q/∂(operand at `position`) in the form the reader computes it, from the operands and
    the gate's own value q (the numbers agree with model/circuit.py's local gradients)."""
    a = operands[0]
    b = operands[1] if len(operands) > 1 else None
    other = operands[1 - position] if len(operands) > 1 else None
    if gate is Gate.ADD:
        return sp.Integer(1)
    if gate is Gate.SUBTRACT:
        return sp.Integer(1 if position == 0 else -1)
    if gate is Gate.MULTIPLY:
        return other
    if gate is Gate.DIVIDE:
        if position == 0:
            return sp.Pow(b, -1, evaluate=False)
        return sp.Mul(-1, _fraction(a, sp.Pow(b, 2, evaluate=False)), evaluate=False)
    if gate is Gate.POWER:
        if position == 0:
            return sp.Mul(b, sp.Pow(a, sp.Add(b, -1, evaluate=False), evaluate=False), evaluate=False)
        return sp.Mul(itself, sp.log(a, evaluate=False), evaluate=False)
    if gate is Gate.NEGATE:
        return sp.Integer(-1)
    if gate is Gate.EXP:
        return itself
    if gate is Gate.LOG:
        return sp.Pow(a, -1, evaluate=False)
    if gate is Gate.SIGMOID:
        return sp.Mul(itself, sp.Add(1, sp.Mul(-1, itself, evaluate=False), evaluate=False), evaluate=False)
    if gate is Gate.TANH:
        return sp.Add(1, sp.Mul(-1, sp.Pow(itself, 2, evaluate=False), evaluate=False), evaluate=False)
    if gate is Gate.RELU:
        return _RELU.prime(a)
    if gate is Gate.MAX:
        first, second = (a, b) if position == 0 else (b, a)
        chosen = sp.GreaterThan(first, second, evaluate=False) if position == 0 else sp.StrictGreaterThan(first, second, evaluate=False)
        return sp.Piecewise((1, chosen), (0, True), evaluate=False)
    if gate is Gate.MIN:
        first, second = (a, b) if position == 0 else (b, a)
        chosen = sp.LessThan(first, second, evaluate=False) if position == 0 else sp.StrictLessThan(first, second, evaluate=False)
        return sp.Piecewise((1, chosen), (0, True), evaluate=False)
    if gate is Gate.ABS:
        return sp.Piecewise((1, sp.StrictGreaterThan(a, 0, evaluate=False)), (-1, sp.StrictLessThan(a, 0, evaluate=False)), (0, True), evaluate=False)
    raise AssertionError(gate)


def _gate_step(gate: Node, values: dict[sp.Symbol, float], output: sp.Symbol) -> GateStep:
    operands = [_operand(o, values) for o in gate.operands]
    itself = node(gate.name)
    display = _display(gate.gate, operands)
    forms = [Form(expr) for expr in display] + [Form(display[-1], values)]
    forward = equation(itself, forms, gate.value)
    locals_ = []
    for position, (operand, local_value) in enumerate(zip(gate.operands, gate.local_values)):
        if not isinstance(operand, str):
            continue
        shown = _local_form(gate.gate, position, operands, itself)
        lhs = partial(itself, node(operand))
        local_forms = [Form(shown)] if not shown.is_Number else []
        if shown.free_symbols:
            local_forms.append(Form(shown, values))
        locals_.append(LocalGradient(operand, position, equation(lhs, local_forms, local_value)))
    return GateStep(
        gate.name, gate.gate.value, gate.pattern.value if gate.pattern else None,
        tuple(o for o in gate.operands if isinstance(o, str)), forward, tuple(locals_),
    )
