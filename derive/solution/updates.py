"""The update section of a worked solution for any rule of spec/optimizers.RULES, and
weight decay: the rule stated once for a parameter θ, each parameter's values of the first
update as substituted lines, and a table per later update.

The rule's placeholders (θ, g, η, t, hyperparameters, states) are replaced by the symbols
of each parameter's quantities, keeping the order the rule is written in."""

from __future__ import annotations

from typing import Mapping, Sequence

import sympy as sp

from ..model.network import Network
from ..model.numeric import ParameterUpdate
from ..model.quantities import Kind, Quantity, hyperparameter, partial, quantity_of, state_of, symbol, updated
from ..spec.optimizers import COUNT, DECAY, GRADIENT, RATE, RULES, THETA, decoupled, hyper, previous, state
from ..spec.schema import DecayMode
from .record import Equation, Form, RuleStep, UpdateRuleView, ValueRow, WeightDecay, equation

# Later updates get a table each, up to this many (the JSON key has every one).
MAX_STATE_TABLES = 5
# Rows per table: a longer one is split, to fit a page.
MAX_TABLE_ROWS = 20
COUNT_SYMBOL = symbol(Quantity(Kind.UPDATE_COUNT))
OBJECTIVE = symbol(Quantity(Kind.OBJECTIVE))
DECAY_SYMBOL = hyperparameter("weight_decay")


def substituted(expr: sp.Basic, replacements: Mapping[sp.Basic, sp.Basic]) -> sp.Basic:
    """`expr` with symbols replaced, keeping the order of its terms and factors as written
    (xreplace would re-sort them: (1 − σ(z))·σ(z) for σ(z)·(1 − σ(z)))."""
    if expr in replacements:
        return replacements[expr]
    if not expr.args:
        return expr
    return expr.func(*[substituted(arg, replacements) for arg in expr.args], evaluate=False)


def coupled(network: Network) -> bool:
    spec = network.spec
    return bool(spec.weight_decay) and spec.weight_decay_mode is DecayMode.COUPLED


def gradient_of(network: Network) -> sp.Symbol:
    """What the update descends: the loss E, or J = E + (λ/2) Σ w² with coupled decay."""
    return OBJECTIVE if coupled(network) else network.loss_symbol()


def _settings(network: Network) -> dict[str, float | bool]:
    return RULES[network.spec.optimizer.name].settings(network.spec.optimizer.values)


def _rule_expressions(network: Network, weight: bool = True) -> list[tuple[str | None, sp.Expr]]:
    """(assignment name, expression) in order; None names the parameter's update, which
    for a weight under decoupled decay also subtracts η λ θ."""
    spec = network.spec
    rule = RULES[spec.optimizer.name]
    update = rule.update_for(_settings(network))
    if weight and spec.weight_decay and not coupled(network):
        update = decoupled(update)
    return [(a.name, a.expression) for a in rule.assignments] + [(None, update)]


def _replacements(network: Network, parameter: sp.Symbol) -> dict[sp.Basic, sp.Basic]:
    rule = RULES[network.spec.optimizer.name]
    mapping: dict[sp.Basic, sp.Basic] = {
        THETA: parameter,
        GRADIENT: partial(gradient_of(network), parameter),
        RATE: network.learning_rate,
        COUNT: COUNT_SYMBOL,
        DECAY: DECAY_SYMBOL,
    }
    mapping.update({hyper(h.name): hyperparameter(h.name) for h in rule.hyperparameters if not h.switch})
    for assignment in rule.assignments:
        mapping[state(assignment.name)] = state_of(parameter, assignment.name, after=assignment.kept)
        if assignment.kept:
            mapping[previous(assignment.name)] = state_of(parameter, assignment.name, after=False)
    return mapping


def _lhs(network: Network, parameter: sp.Symbol, name: str | None) -> sp.Symbol:
    if name is None:
        return updated(parameter)
    kept = next(a.kept for a in RULES[network.spec.optimizer.name].assignments if a.name == name)
    return state_of(parameter, name, after=kept)


def update_of(network: Network, parameter: sp.Symbol) -> sp.Expr:
    """The rule's update of one parameter (θ* = …), in the parameter's own symbols."""
    return substituted(_rule_expressions(network, quantity_of(parameter).kind is Kind.WEIGHT)[-1][1], _replacements(network, parameter))


def constants(network: Network) -> dict[sp.Symbol, float]:
    """The rule's settings and the weight decay by symbol (switches are not numbers)."""
    values: dict[sp.Symbol, float] = {
        hyperparameter(name): value for name, value in _settings(network).items() if not isinstance(value, bool)
    }
    if network.spec.weight_decay:
        values[DECAY_SYMBOL] = network.spec.weight_decay
    return values


def rule_view(
    network: Network, first: ParameterUpdate, values: Mapping[sp.Symbol, float], later: Sequence[ParameterUpdate], later_total: int,
) -> UpdateRuleView:
    """The rule for θ, then every trainable parameter's lines of the first update, then a
    table per later update (`later`: the first of the `later_total` updates after it)."""
    spec = network.spec
    rule = RULES[spec.optimizer.name]
    expressions = _rule_expressions(network)
    theta = symbol(Quantity(Kind.PARAMETER))
    stated = [equation(_lhs(network, theta, name), [Form(substituted(expr, _replacements(network, theta)))]) for name, expr in expressions]
    first_state = rule.state[0] if rule.state else None
    settings = tuple(equation(symbol_, [], value) for symbol_, value in constants(network).items() if symbol_ != DECAY_SYMBOL)

    lines, brief = [], []
    numbers = dict(values)
    numbers[COUNT_SYMBOL] = first.step
    numbers.update(constants(network))
    for parameter in network.trainable:
        position = network.position[parameter]
        for assignment in rule.assignments:
            numbers[state_of(parameter, assignment.name, after=assignment.kept)] = first.state[assignment.name][position]
            if assignment.kept:
                numbers[state_of(parameter, assignment.name, after=False)] = 0.0
        numbers[updated(parameter)] = first.after[position]
        mapping = _replacements(network, parameter)
        full_lines, brief_lines = [], []
        for name, expr in _rule_expressions(network, quantity_of(parameter).kind is Kind.WEIGHT):
            shown = substituted(expr, mapping)
            lhs = _lhs(network, parameter, name)
            full_lines.append(equation(lhs, [Form(shown), Form(shown, numbers)], numbers[lhs]))
            brief_lines.append(equation(lhs, [Form(shown, numbers)], numbers[lhs]))
        lines.append(tuple(full_lines))
        brief.append(tuple(brief_lines))

    columns = [partial(gradient_of(network), theta)] + [_lhs(network, theta, name) for name, _ in expressions]
    tables = []
    for update in later[:MAX_STATE_TABLES]:
        rows = []
        for parameter in network.trainable:
            position = network.position[parameter]
            row = [update.gradient[position]] + [update.state[a.name][position] for a in rule.assignments] + [update.after[position]]
            rows.append(ValueRow(parameter, tuple(row)))
        samples = tuple(n + 1 for n in update.samples)
        for start in range(0, len(rows), MAX_TABLE_ROWS):
            tables.append(RuleStep(update.step, tuple(columns), tuple(rows[start : start + MAX_TABLE_ROWS]), samples, start > 0))
    return UpdateRuleView(
        name=rule.name,
        label=rule.label,
        settings=settings,
        rule=tuple(stated),
        state=rule.state,
        previous=state_of(theta, first_state, after=False) if first_state else None,
        nesterov=bool(_settings(network).get("nesterov")),
        parameters=tuple(lines),
        parameters_brief=tuple(brief),
        later=tuple(tables),
        later_total=later_total,
        later_total_shown=min(later_total, MAX_STATE_TABLES),
        decoupled=bool(spec.weight_decay) and not coupled(network),
    )


def penalty_lines(
    network: Network, compiled, parameters: Sequence[float], loss: sp.Symbol, loss_value: float, value: float, star: bool = False
) -> tuple[Equation, Equation]:
    """Σ w² = w₁² + w₂² + … (the weights only, not the biases), then J = E + (λ/2) Σ w²,
    each with its numbers: two lines, so that a long sum can break."""
    name = updated if star else (lambda s: s)
    weights = [name(p) for p in network.parameters if quantity_of(p).kind is Kind.WEIGHT]
    numbers = {name(p): v for p, v in zip(network.parameters, parameters)}
    total = symbol(Quantity(Kind.SQUARED_WEIGHTS, updated=star))
    numbers[total] = compiled.squares(parameters)
    squares = sp.Add(*[sp.Pow(w, 2, evaluate=False) for w in weights], evaluate=False) if len(weights) > 1 else sp.Pow(weights[0], 2, evaluate=False)
    half = sp.Mul(sp.Rational(1, 2), DECAY_SYMBOL, evaluate=False)
    expression = sp.Add(loss, sp.Mul(half, total, evaluate=False), evaluate=False)
    numbers[loss] = loss_value
    numbers[DECAY_SYMBOL] = network.spec.weight_decay
    lhs = updated(OBJECTIVE) if star else OBJECTIVE
    return (
        equation(total, [Form(squares), Form(squares, numbers)], numbers[total]),
        equation(lhs, [Form(expression), Form(expression, numbers)], value),
    )


def weight_decay(
    network: Network, compiled, first: ParameterUpdate, repeated_loss: float, repeated_objective: float, after: Sequence[float]
) -> WeightDecay | None:
    spec = network.spec
    if not spec.weight_decay:
        return None
    rate = equation(DECAY_SYMBOL, [], spec.weight_decay)
    if not coupled(network):
        return WeightDecay(spec.weight_decay_mode.value, rate, None, (), None)
    loss = network.loss_symbol()
    objective = penalty_lines(network, compiled, first.before, loss, first.loss_data, first.loss)
    numbers: dict[sp.Symbol, float] = {DECAY_SYMBOL: spec.weight_decay}
    gradients = []
    for position, parameter in enumerate(network.parameters):
        if parameter not in network.trainable or quantity_of(parameter).kind is not Kind.WEIGHT:
            continue
        numbers[parameter] = first.before[position]
        numbers[partial(loss, parameter)] = first.data_gradient[position]
        expression = sp.Add(partial(loss, parameter), sp.Mul(DECAY_SYMBOL, parameter, evaluate=False), evaluate=False)
        gradients.append(equation(partial(OBJECTIVE, parameter), [Form(expression), Form(expression, numbers)], first.gradient[position]))
    repeated = penalty_lines(network, compiled, after, network.loss_symbol(updated=True), repeated_loss, repeated_objective, star=True)
    return WeightDecay(spec.weight_decay_mode.value, rate, objective, tuple(gradients), repeated)
