"""The first update of a worked solution as a straight-line program: every value the
solution shows, as the expression of the values before it that the solution writes, with
the rounding the solution applies.

Run again with a student's own values in place of the right ones, it gives the values
that follow from theirs: the follow-through the self-check page computes in the browser.
The program is read off the solution record, so the page's script evaluates the same
lines the student reads; it holds no derivation of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Iterable, Iterator, Mapping

import sympy as sp
from sympy.core.function import AppliedUndef

from .graph import GraphSolution
from .record import Braced, Equation, Solution
from ..model.circuit import Circuit
from ..model.numeric import carried, carried_significant, exact
from ..model.quantities import Kind, Partial, Quantity, node as node_symbol, partial, quantity_of, symbol
from ..spec.schema import Rounding


@dataclass(frozen=True)
class Step:
    """name = expr(inputs), rounded as the solution rounds it (`significant`: an update
    rule's state, carried to at least `digits` significant figures)."""

    name: str
    expr: sp.Expr  # in `symbols`, one per name of `inputs`
    symbols: tuple[sp.Symbol, ...]
    inputs: tuple[str, ...]
    significant: bool
    value: float  # as the solution shows it

    @cached_property
    def function(self):
        return sp.lambdify(self.symbols, self.expr, "math")


@dataclass(frozen=True)
class Program:
    constants: dict[str, float]  # the spec's numbers the steps read: inputs, targets, parameters, η
    steps: tuple[Step, ...]
    questions: dict[str, str]  # question id (as in the answer key) → the step that computes it
    digits: int | None  # None: values are not rounded (exact mode)

    def run(self, given: Mapping[str, float] | None = None) -> dict[str, float] | None:
        """Question id → value, with the `given` values (by question id) in place of
        the right ones and every step after them computed from them; None when a step
        cannot be computed (the log of 0, an overflow), as the engine refuses then."""
        overrides = {self.questions[q]: v for q, v in (given or {}).items() if q in self.questions}
        values = dict(self.constants)
        decimals = exact if self.digits is None else carried(self.digits)
        states = carried_significant(decimals)
        for step in self.steps:
            if step.name in overrides:
                values[step.name] = overrides[step.name]
                continue
            try:
                value = float(step.function(*(values[n] for n in step.inputs)))
            except (ArithmeticError, ValueError):
                return None
            if not math.isfinite(value):
                return None
            values[step.name] = (states if step.significant else decimals)(value)
        return {q: values[name] for q, name in self.questions.items()}


def _step(name: str, expr: sp.Expr, reads: Mapping[sp.Symbol, str], value: float, significant: bool = False) -> Step:
    """The step `name` = `expr`, each of its symbols read from the value `reads` names."""
    free = sorted(expr.free_symbols, key=str)
    dummies = tuple(sp.Dummy(f"v{k}") for k in range(len(free)))
    return Step(name, expr.xreplace(dict(zip(free, dummies))), dummies, tuple(reads[s] for s in free), significant, value)


def _sample_scoped(sym: sp.Symbol) -> bool:
    """A symbol whose value differs from sample to sample under one name (z, a, ∂a/∂z, x, y);
    a per-sample loss and its partials carry their sample in the name (E@2)."""
    quantity = quantity_of(sym)
    if isinstance(quantity, Partial):
        return quantity.of.sample is None and _sample_scoped_quantity(quantity.of)
    return isinstance(quantity, Quantity) and _sample_scoped_quantity(quantity)


def _sample_scoped_quantity(quantity: Quantity) -> bool:
    return quantity.kind.value in ("x", "y", "s", "z", "a") or (quantity.kind.value == "E" and quantity.sample is None)


def _expression(equation: Equation) -> tuple[sp.Expr, Mapping[sp.Symbol, float]]:
    """The last right-hand side written in symbols (not a Derivative still to take), and
    the numbers the solution substitutes into it."""
    values: Mapping[sp.Symbol, float] = {}
    chosen = None
    for form in equation.forms:
        if form.values is not None:
            values = form.values
        if form.expr.free_symbols and not form.expr.has(sp.Derivative):
            chosen = form.expr
    if chosen is None:
        value = equation.value if equation.value is not None else float(equation.forms[-1].expr)
        return sp.Float(value), values
    return chosen, values


def _equations(solution: Solution) -> Iterator[tuple[int | None, Equation]]:
    """The first update's lines in the order the solution shows them, each with the sample
    (from 1) whose values it uses, None for lines over all of them."""
    step = solution.detail
    for sample in step.forward.samples:
        for layer in sample.layers:
            yield from ((sample.sample, e) for e in layer.pre_activations + layer.activations)
        yield sample.sample, sample.loss
    if len(step.forward.samples) > 1:
        yield None, step.forward.loss
    for sample in step.backward:
        for layer in sample.layers:
            for e in layer.upstream + layer.local + layer.deltas:
                yield sample.sample, e
            for parameter in layer.parameters:
                yield from ((sample.sample, e) for e in parameter.factors)
                yield sample.sample, parameter.gradient
    yield from ((None, e) for e in step.combined)
    if step.decay is not None:
        yield from ((None, e) for e in (step.decay.objective or ()) + step.decay.gradients)
    if step.rule is not None:
        yield from ((None, e) for lines in step.rule.parameters for e in lines)
    else:
        yield from ((None, e) for e in step.updates)


def program(solution: Solution, questions: Iterable[str]) -> Program:
    """The first update of `solution` as a program; `questions` are the answer key's ids of
    the values to name."""
    constants: dict[str, float] = {}
    steps: list[Step] = []
    defined: dict[tuple[int | None, sp.Symbol], str] = {}
    first = solution.detail.samples[0]

    def name_of(sym: sp.Symbol, sample: int | None) -> str:
        scoped = sample is not None and _sample_scoped(sym)
        return f"{sample}|{sym}" if scoped and sample != first else str(sym)

    def reference(sym: sp.Symbol, sample: int | None, values: Mapping[sp.Symbol, float]) -> str:
        for scope in (sample, None):
            if (scope, sym) in defined:
                return defined[(scope, sym)]
        quantity = quantity_of(sym)
        if isinstance(quantity, Partial) and quantity.of.kind is Kind.OBJECTIVE:
            # ∂J/∂b of a parameter the penalty leaves out (a bias) is its ∂E/∂b
            loss = partial(symbol(replace(quantity.of, kind=Kind.LOSS)), symbol(quantity.wrt))
            for scope in (sample, first, None):
                if (scope, loss) in defined:
                    return defined[(scope, loss)]
        name = name_of(sym, sample)
        if sym not in values:
            raise ValueError(f"{sym} has no value in the solution")
        constants.setdefault(name, float(values[sym]))
        return name

    def add(sym: sp.Symbol, expr: sp.Expr, sample: int | None, values, shown: float | None) -> None:
        braced = list(expr.atoms(Braced))
        for part in braced:
            add(part.label, part.part, sample, values, values.get(part.label))
        expr = expr.xreplace({b: b.label for b in braced})
        reads = {s: reference(s, sample, values) for s in sorted(expr.free_symbols, key=str)}  # constants in a fixed order
        name = name_of(sym, sample)
        scope = sample if sample is not None and _sample_scoped(sym) else None
        defined[(scope, sym)] = name
        quantity = quantity_of(sym)
        significant = isinstance(quantity, Quantity) and quantity.state is not None
        value = shown if shown is not None else float(values.get(sym, math.nan))
        steps.append(_step(name, expr, reads, value, significant))

    samples = {n: values for n, values in zip(solution.detail.samples, solution.detail.values)}
    for sample, equation in _equations(solution):
        expr, written = _expression(equation)
        values = {**solution.detail.update_values, **samples.get(sample if sample is not None else first, {}), **written}
        shown = equation.value if equation.value is not None else (float(expr) if expr.is_Number else None)
        add(equation.lhs, expr, sample, values, shown)

    by_name = {step.name: step for step in steps}
    names = {question: _step_name(question, solution, by_name) for question in questions}
    digits = None if solution.rounding is Rounding.EXACT else solution.digits
    return Program(constants, tuple(steps), names, digits)


def _step_name(question: str, solution: Solution, steps: Mapping[str, Step]) -> str:
    """The step that computes a question of the answer key: z1[0] and a1[0] (the first
    sample's), loss (the combined loss, or J), grad:θ (the gradient the update uses), new:θ."""
    decay = solution.detail.decay
    if question == "loss":
        candidates = ["J"] if decay is not None and decay.objective else ["E"]
    elif question.startswith("grad:"):
        parameter = question[len("grad:"):]
        candidates = [f"∂J/∂{parameter}", f"∂E/∂{parameter}"] if decay is not None and decay.objective else [f"∂E/∂{parameter}"]
    elif question.startswith("new:"):
        candidates = [f"{question[len('new:'):]}*"]
    else:
        candidates = [question]
    for name in candidates:
        if name in steps:
            return name
    raise KeyError(f"no step computes {question}")


def graph_program(solution: GraphSolution) -> Program:
    """A computational graph's worked solution as a program: each gate's value as its
    forward line writes it, each local gradient as its line writes it, each contribution
    (upstream × local) and each gradient as the sum of its contributions, all rounded as
    the document rounds. Steps are named by answer id (q3, f, grad:x), local:GATE:k and
    part:GATE:k (the contribution of operand k of GATE)."""
    circuit = solution.shown
    # a value by its name in the node's definition (x) or in the document's lines (node:x)
    names = {name: name for name in [i.name for i in circuit.inputs] + [n.name for n in circuit.nodes]}
    names.update({str(node_symbol(name)): name for name in list(names)})
    constants = {i.name: i.value for i in circuit.inputs}
    steps: list[Step] = []

    def add(name: str, expr: sp.Expr, value: float, reads: Mapping[sp.Symbol, str] | None = None) -> None:
        steps.append(_step(name, expr, reads or {s: names[str(s)] for s in sorted(expr.free_symbols, key=str)}, value))

    local_names: dict[tuple[str, int], str] = {}
    for gate, node in zip(solution.gates, circuit.nodes):
        add(gate.name, node.expression, node.value)  # the gate's definition (ReLU and max as cases)
        for local in gate.local:
            expr, _ = _expression(local.equation)  # as the reader writes it: q(1 − q) from the gate's value
            if expr.atoms(AppliedUndef, sp.Heaviside, sp.Derivative):
                expr = node.local[local.position]  # a kink's cases, from sympy.diff of the definition
            name = f"local:{gate.name}:{local.position}"
            local_names[(gate.name, local.position)] = name
            add(name, expr, local.equation.value if local.equation.value is not None else float(expr))
    upstream, local_gradient = sp.Symbol("u"), sp.Symbol("l")
    for gradient in _backward_order(circuit):
        if gradient.name == circuit.output:
            constants[f"grad:{gradient.name}"] = 1.0
            continue
        parts = []
        for contribution in gradient.contributions:
            part = f"part:{contribution.node}:{contribution.position}"
            reads = {upstream: f"grad:{contribution.node}", local_gradient: local_names[(contribution.node, contribution.position)]}
            add(part, upstream * local_gradient, contribution.value, reads)
            parts.append(part)
        terms = [sp.Symbol(f"p{k}") for k in range(len(parts))]
        add(f"grad:{gradient.name}", sp.Add(*terms), gradient.value, dict(zip(terms, parts)))
    questions = {gate.name: gate.name for gate in solution.gates}
    questions.update({f"grad:{name}": f"grad:{name}" for name in [i.name for i in circuit.inputs] + [g.name for g in solution.gates]})
    digits = None if solution.rounding is Rounding.EXACT else solution.digits
    return Program(constants, tuple(steps), questions, digits)


def _backward_order(circuit: Circuit):
    """The gradients in the order the backward pass settles them: the output, the gates
    from last to first, then the inputs."""
    by_name = {g.name: g for g in circuit.gradients}
    return [by_name[n.name] for n in reversed(circuit.nodes)] + [by_name[i.name] for i in circuit.inputs]
