"""spec → Solution: the worked derivation of the first update in full, the numbers of
every update, the final forward pass.

The symbolic side (which factors make up each chain-rule product, each factor's
general form) comes from the network's SymPy expressions; the numbers come from the
compiled network, computed twice: as the document shows them (every shown value rounded
and carried, by default) and at full precision (the JSON key). One generic walk from the
loss back to every parameter builds the backpropagation: no case per layer kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from itertools import chain
from typing import Mapping, Sequence

import sympy as sp

from ..errors import UsageError
from ..spec.vocabulary import MAX_DIGITS
from .figures import loss_curve, network_diagram
from .graph import GraphSolution, solve_graph
from .updates import DECAY_SYMBOL, MAX_STATE_TABLES, constants, gradient_of, rule_view, substituted, update_of, weight_decay
from ..model.functions import OUTPUT, OUTPUTS, PRE_ACTIVATION, PRE_ACTIVATIONS, PREDICTIONS, TARGETS, TERM, UNIT, Activation
from ..model.network import Network, NetworkLayer
from ..model.numeric import DEFAULT_DIGITS, Backward, CompiledNetwork, Forward, ParameterUpdate, Run, carried, exact
from ..model.quantities import (
    ANY_SAMPLE,
    ANY_SOURCE,
    ANY_UNIT,
    Kind,
    Partial,
    Quantity,
    final,
    for_sample,
    partial,
    quantity_of,
    symbol,
    updated,
)
from .record import (
    Braced,
    ClassRule,
    Classification,
    Comparison,
    DataTable,
    DetailedStep,
    Equation,
    Form,
    ForwardPass,
    LayerBackward,
    LayerDescription,
    LayerForward,
    LossChange,
    LossRow,
    Movement,
    NetworkDescription,
    Note,
    NoteKind,
    Outcome,
    ParameterGradient,
    SampleBackward,
    SampleForward,
    SampleOutcome,
    Solution,
    Summary,
    Training,
    ValueRow,
    ValueTable,
    equation,
)
from ..spec.optimizers import RULES
from ..spec.schema import GraphSpec, Rounding, Spec, load_spec

# Loss tables longer than this show a selection of the steps (the JSON has all).
MAX_TABLE_ROWS = 25
# Samples per table of values: more go into a table of their own.
TABLE_SAMPLES = 6
# A learning rate at least this large gets a remark on its size.
LARGE_LEARNING_RATE = 0.1
_PIECEWISE_LINEAR = ("relu", "leaky_relu")


@dataclass(frozen=True)
class Runs:
    """The numbers of a spec before any record is built: the network, its compiled form as
    the document computes, and the two runs. Enough to judge a draw of an exercise."""

    spec: Spec
    network: Network
    compiled: CompiledNetwork  # with the document's rounding
    shown: Run
    exact: Run
    rounding: Rounding

    @property
    def updates(self) -> tuple[ParameterUpdate, ...]:
        return self.shown.updates




def check_digits(digits) -> None:
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= MAX_DIGITS:
        raise UsageError(f"digits: expected a whole number from 0 to {MAX_DIGITS}, got {digits!r}")


def rounding_mode(rounding, default: Rounding | None) -> Rounding:
    """The rounding asked for (a Rounding or its name), else the spec's, else carry."""
    if rounding is None:
        return default or Rounding.CARRY
    try:
        return Rounding(rounding)
    except ValueError:
        raise UsageError(f"rounding: expected one of {', '.join(r.value for r in Rounding)}, got {rounding!r}") from None


def runs(spec, *, rounding: str | Rounding | None = None, digits: int = DEFAULT_DIGITS, shortcut: bool = True) -> Runs:
    """The numbers of a spec (a Spec, a path, an example name or a dict): carried as the
    document shows them (by default) and at full precision."""
    spec = load_spec(spec)
    check_digits(digits)
    mode = rounding_mode(rounding, spec.rounding)
    network = Network(spec, shortcut=shortcut)
    compiled = CompiledNetwork(network, exact)
    exact_run = compiled.run()
    if mode is Rounding.CARRY:
        compiled = compiled.with_keep(carried(digits))
        shown = compiled.run()
    else:
        shown = exact_run
    return Runs(spec, network, compiled, shown, exact_run, mode)


def solve(spec, *, rounding: str | Rounding | None = None, digits: int = DEFAULT_DIGITS, shortcut: bool = True) -> Solution | GraphSolution:
    """Derive the worked solution of a spec (a Spec, a path, an example name or a dict).

    rounding: "carry" (the default: every shown value rounded to `digits` decimals and used
    as shown, so that each line checks out on a calculator) or "exact" (full precision,
    rounded only for display); by default the spec's. shortcut: write ∂E/∂z = ŷ − y for
    sigmoid + bce and softmax + cross-entropy."""
    spec = load_spec(spec)
    if isinstance(spec, GraphSpec):
        check_digits(digits)
        return solve_graph(spec, rounding=rounding_mode(rounding, spec.rounding), digits=digits)
    numbers = runs(spec, rounding=rounding, digits=digits, shortcut=shortcut)
    network, shown = numbers.network, numbers.shown
    return Solution(
        spec=numbers.spec,
        network=network,
        description=_describe(network),
        data=_data_table(network),
        diagram=network_diagram(network, network.initial_values()),
        detail=_detailed_step(network, numbers.compiled, shown),
        summary=_summary(network, shown.updates[0]),
        training=_training(network, shown) if len(shown.updates) > 1 else None,
        notes=_dead_units(network, shown),
        shown=shown,
        exact=numbers.exact,
        rounding=numbers.rounding,
        digits=digits,
    )


def _mul(*factors: sp.Basic) -> sp.Basic:
    return sp.Mul(*factors, evaluate=False)


def _add(*terms: sp.Basic) -> sp.Basic:
    return sp.Add(*terms, evaluate=False)


def _combined(network: Network, terms: list[sp.Basic]) -> sp.Basic:
    """The batch combination of per-sample terms: their mean or their sum."""
    total = _add(*terms)
    if network.spec.batch.value == "mean" and len(terms) > 1:
        return _mul(sp.Rational(1, len(terms)), total)
    return total


# -- the network section ---------------------------------------------------------------


def _describe(network: Network) -> NetworkDescription:
    values = dict(zip(network.parameters, network.initial_values()))
    layers = []
    for layer in network.layers:
        bias = None
        if layer.spec.shared_bias:
            bias = equation(layer.bias_parameters[0], [Form(layer.bias_parameters[0], values)])
        elif layer.spec.bias is not None:
            column = sp.ImmutableMatrix([[b] for b in layer.biases])
            bias = equation(layer.bias_vector, [Form(column), Form(column, values)])
        weights = sp.ImmutableMatrix([list(row) for row in layer.weights])
        layers.append(
            LayerDescription(
                number=layer.number,
                units=layer.units,
                activation=layer.activation.label,
                is_output=layer.is_output,
                weights=equation(layer.weight_matrix, [Form(weights), Form(weights, values)]),
                bias=bias,
                parameters=tuple(equation(p, [Form(p, values)]) for p in layer.parameters),
                shared_bias=layer.spec.shared_bias,
                train_bias=layer.spec.train_bias,
            )
        )
    used = list(dict.fromkeys(layer.activation for layer in network.layers))
    loss_symbol = network.loss_symbol()
    shortcut = None
    if network.shortcut:
        output = network.output_layer
        z = output.pre_activations[0]
        support = output.activation.jacobian_support(output.units, 0)
        chain = _add(*[_mul(partial(loss_symbol, output.outputs[k]), partial(output.outputs[k], z)) for k in support])
        factors = _add(
            *[
                _mul(
                    network.loss.derivative(network.predictions, network.targets, k),
                    output.activation.derivative_shown_with_outputs(output.outputs, k, 0),
                )
                for k in support
            ]
        )
        shortcut = equation(partial(loss_symbol, z), [Form(chain), Form(factors), Form(network.delta(0))])
    return NetworkDescription(
        inputs=network.spec.inputs,
        outputs=network.spec.outputs,
        layers=tuple(layers),
        activations=tuple(_activation_definition(a) for a in used),
        loss=equation(loss_symbol, [Form(network.loss.definition), Form(network.per_sample_loss)]),
        loss_label=network.loss.label,
        loss_terms=(TARGETS[TERM], PREDICTIONS[TERM]),
        learning_rate=equation(network.learning_rate, [], network.spec.learning_rate),
        large_learning_rate=network.spec.learning_rate >= LARGE_LEARNING_RATE,
        shortcut=shortcut,
        optimizer=network.spec.optimizer.name,
        optimizer_label=RULES[network.spec.optimizer.name].label,
        optimizer_settings=tuple(equation(s, [], v) for s, v in constants(network).items() if s != DECAY_SYMBOL),
        weight_decay=equation(DECAY_SYMBOL, [], network.spec.weight_decay) if network.spec.weight_decay else None,
        decay_mode=network.spec.weight_decay_mode.value,
    )


def _activation_definition(activation: Activation) -> tuple[Equation, Equation]:
    """f(z) = definition, and f′(z) from sympy.diff, then written with f itself (σ(1 − σ))."""
    if activation.elementwise:
        named = activation.named
        definition = equation(named, [Form(activation.definition)])
        derivative_forms = [Form(activation.general_derivative)]
        shown = activation.derivative_shown_with_outputs([OUTPUT], 0, 0)
        if shown is not None:
            derivative_forms.append(Form(substituted(shown, {OUTPUT: named})))
        prime = activation.prime
        lhs = prime(PRE_ACTIVATION) if prime is not None else sp.Derivative(OUTPUT, PRE_ACTIVATION)
        return definition, equation(lhs, derivative_forms)
    definition = equation(OUTPUTS[UNIT], [Form(activation.definition)])
    return definition, equation(sp.Derivative(OUTPUTS[TERM], PRE_ACTIVATIONS[UNIT]), [Form(activation.derivative_in_outputs)])


def _data_table(network: Network) -> DataTable:
    return DataTable(
        headers=network.inputs + network.targets,
        rows=tuple(sample.x + sample.y for sample in network.spec.data),
    )


# -- forward pass ------------------------------------------------------------------------


def _values(network: Network, parameters, sample: int, forward: Forward, star: bool = False) -> dict[sp.Symbol, float]:
    """Every forward quantity of one sample, keyed by its symbol (starred after the update)."""
    name = updated if star else (lambda s: s)
    data = network.spec.data[sample]
    values = {name(p): v for p, v in zip(network.parameters, parameters)}
    values.update(zip(network.inputs, data.x))
    values.update(zip(network.targets, data.y))
    values[network.learning_rate] = network.spec.learning_rate
    for layer, weighted, pre, out in zip(network.layers, forward.weighted, forward.pre, forward.out):
        values.update({name(s): v for s, v in zip(layer.weighted_sums, weighted)})
        values.update({name(z): v for z, v in zip(layer.pre_activations, pre)})
        values.update({name(a): v for a, v in zip(layer.outputs, out)})
    return values


def _forward_pass(
    network: Network, compiled: CompiledNetwork, samples, forwards, parameters, star: bool
) -> tuple[ForwardPass, list[dict[sp.Symbol, float]]]:
    """The forward pass of the samples, and every sample's values by symbol."""
    rename = _star_map(network) if star else {}
    many = len(samples) > 1
    sample_passes = []
    sample_values = []
    loss_values: dict[sp.Symbol, float] = {}
    for n, forward in zip(samples, forwards):
        values = _values(network, parameters, n, forward, star)
        loss_symbol = network.loss_symbol(n + 1 if many else None, updated=star)
        values[loss_symbol] = forward.loss
        loss_values[loss_symbol] = forward.loss
        sample_values.append(values)
        layers = []
        for layer, pre, out in zip(network.layers, forward.pre, forward.out):
            pre_equations, brief, out_equations = [], [], []
            for i in range(layer.units):
                z, a = layer.pre_activations[i], layer.outputs[i]
                expr = layer.pre_activation(i, rename)
                braced = _braced_pre_activation(layer, i, rename)
                pre_equations.append(equation(rename.get(z, z), [Form(expr), Form(braced, values)], pre[i]))
                brief.append(equation(rename.get(z, z), [Form(braced, values)], pre[i]))
                definition = layer.output(i).xreplace(rename)
                forms = [Form(layer.activation.named.xreplace({PRE_ACTIVATION: rename.get(z, z)}))]
                if not layer.activation.elementwise:
                    forms.append(Form(definition))
                forms.append(Form(definition, values))
                out_equations.append(equation(rename.get(a, a), forms, out[i]))
            layers.append(
                LayerForward(
                    layer.number, layer.activation.label, layer.is_output, tuple(pre_equations), tuple(out_equations),
                    braced=layer.spec.bias is not None,
                    weighted_sum=_weighted_sum_rule(layer, rename),
                    pre_activations_brief=tuple(brief),
                )
            )
        loss_expr = network.per_sample_loss.xreplace(rename)
        loss = equation(loss_symbol, [Form(loss_expr), Form(loss_expr, values)], forward.loss)
        outputs = tuple(rename.get(a, a) for a in network.output_layer.outputs)
        sample_passes.append(
            SampleForward(n + 1, tuple(layers), loss, forward.out[-1], _classification(network, outputs, forward.out[-1]))
        )
    combined_value = compiled.combine([f.loss for f in forwards])
    if many:
        total = _combined(network, list(loss_values))
        combined = equation(network.loss_symbol(updated=star), [Form(total), Form(total, loss_values)], combined_value)
    else:
        combined = sample_passes[0].loss
    tables = _chunks(_forward_table(network, samples, forwards, star)) if many else ()
    return ForwardPass(tuple(sample_passes), combined, combined_value, tables), sample_values


def _any_indices(layer: NetworkLayer) -> tuple[int, int]:
    """The unit and input indices of the layer's general forms: i and j standing for any
    unit and input, or 0 where the layer has only one."""
    return (0 if layer.units == 1 else ANY_UNIT), (0 if len(layer.inputs) == 1 else ANY_SOURCE)


def _input_of(layer: NetworkLayer, source: int) -> sp.Symbol:
    """Input `source` of the layer (x_j, or a_j of the layer before)."""
    feeding = quantity_of(layer.inputs[0])
    return symbol(Quantity(feeding.kind, feeding.layer, source))


def _weighted_sum_rule(layer: NetworkLayer, rename: Mapping[sp.Symbol, sp.Symbol]) -> Equation:
    """z_i = Σ_j w_ij a_j + b_i, for any unit and input (starred after the update; the
    inputs x_j never change)."""
    unit, source = _any_indices(layer)
    name = updated if rename else (lambda s: s)
    weight = name(symbol(Quantity(Kind.WEIGHT, layer.number, unit, source)))
    feeding = _input_of(layer, source)
    product = _mul(weight, feeding if quantity_of(feeding).kind is Kind.INPUT else name(feeding))
    if source == ANY_SOURCE:
        product = sp.Sum(product, (sp.Symbol("j", integer=True), 0, len(layer.inputs) - 1))
    if layer.spec.bias is None:
        total = product
    else:
        bias = layer.bias_parameters[0] if layer.spec.shared_bias else symbol(Quantity(Kind.BIAS, layer.number, unit))
        total = _add(product, name(bias))
    return equation(name(symbol(Quantity(Kind.PRE_ACTIVATION, layer.number, unit))), [Form(total)])


def _braced_pre_activation(layer: NetworkLayer, unit: int, rename: Mapping[sp.Symbol, sp.Symbol]) -> sp.Expr:
    """Σ w·a + b with the weighted sum under a brace (W x, then + b), as it is computed."""
    expr = layer.pre_activation(unit, rename)
    if layer.biases[unit] is None:
        return expr
    *products, bias = expr.args
    part = products[0] if len(products) == 1 else _add(*products)
    label = layer.weighted_sums[unit]
    return _add(Braced(part, rename.get(label, label)), bias)


def _star_map(network: Network) -> dict[sp.Symbol, sp.Symbol]:
    symbols = list(network.parameters)
    for layer in network.layers:
        symbols += list(layer.pre_activations) + list(layer.outputs)
        symbols += list(layer.weighted_sums)
    return {s: updated(s) for s in symbols}


def _classification(network: Network, outputs: Sequence[sp.Symbol], values: Sequence[float]) -> Classification | None:
    """The predicted class of a classification output: each sigmoid output against ½, or
    the largest softmax output. Only where the targets are classes (0 or 1 for a sigmoid,
    one-hot for a softmax): a sigmoid fitted to 0.3 predicts no class."""
    name = network.output_layer.activation.name
    targets = [y for sample in network.spec.data for y in sample.y]
    if not all(y in (0.0, 1.0) for y in targets):
        return None
    if name == "sigmoid":
        comparisons = []
        for output, value in zip(outputs, values):
            relation = ">" if value > 0.5 else "<" if value < 0.5 else "="
            comparisons.append(Comparison(output, value, relation, int(value >= 0.5)))
        return Classification(ClassRule.THRESHOLD, tuple(comparisons))
    if name == "softmax":
        # Outputs shown equal tie: every one of them is listed, and no single class predicted.
        largest = max(values)
        return Classification(
            ClassRule.LARGEST, tuple(Comparison(outputs[k], v, "", k) for k, v in enumerate(values) if v == largest)
        )
    return None


def _forward_table(network: Network, samples, forwards: Sequence[Forward], star: bool) -> ValueTable:
    name = updated if star else (lambda s: s)
    rows = []
    for index, layer in enumerate(network.layers):
        for i, (z, a) in enumerate(zip(layer.pre_activations, layer.outputs)):
            rows.append(ValueRow(name(z), tuple(f.pre[index][i] for f in forwards)))
            rows.append(ValueRow(name(a), tuple(f.out[index][i] for f in forwards)))
    rows.append(ValueRow(network.loss_symbol(ANY_SAMPLE, updated=star), tuple(f.loss for f in forwards)))
    return ValueTable(tuple(n + 1 for n in samples), tuple(rows))


# -- backpropagation ---------------------------------------------------------------------


def _delta_factors(network: Network, layer: NetworkLayer, loss: sp.Symbol, unit: int) -> list[sp.Symbol]:
    """The chain-rule factors that make ∂E/∂z_i: ∂E/∂a_i · ∂a_i/∂z_i for an elementwise
    activation, ∂E/∂z_i itself for a softmax (a sum over the layer) or a shortcut."""
    z, a = layer.pre_activations[unit], layer.outputs[unit]
    if network.direct_delta(layer):
        return [partial(loss, z)]
    return [partial(loss, a), partial(a, z)]


def _partial_values(network: Network, loss: sp.Symbol, backward: Backward) -> dict[sp.Symbol, float]:
    """Every partial derivative's number of one sample's backward pass, by symbol."""
    values: dict[sp.Symbol, float] = {}
    for index, layer in enumerate(network.layers):
        for i in range(layer.units):
            values[partial(loss, layer.outputs[i])] = backward.upstream[index][i]
            values[partial(loss, layer.pre_activations[i])] = backward.delta[index][i]
            for k in layer.activation.jacobian_support(layer.units, i):
                row = backward.local[index][k]
                values[partial(layer.outputs[k], layer.pre_activations[i])] = row[0] if layer.activation.elementwise else row[i]
    values.update((partial(loss, p), g) for p, g in zip(network.parameters, backward.gradient))
    return values


def _backward(
    network: Network, sample: int, forward: Forward, backward: Backward, loss: sp.Symbol, values
) -> tuple[SampleBackward, dict[sp.Symbol, float]]:
    """The walk from the loss back to every parameter, output layer first; also returns
    the values with every partial derivative's number added."""
    values = {**values, **_partial_values(network, loss, backward)}
    layers = []
    for index in range(len(network.layers) - 1, -1, -1):
        layer = network.layers[index]
        shortcut = layer.is_output and network.shortcut
        upstream = [] if shortcut else [_upstream(network, index, loss, i, values) for i in range(layer.units)]
        local, brief = [], []
        for i in range(layer.units if not shortcut else 0):
            for k in layer.activation.jacobian_support(layer.units, i):
                local.append(_local(layer, k, i, values))
                brief.append(_local_brief(layer, k, i, values))
        deltas = []
        if shortcut:
            for i, z in enumerate(layer.pre_activations):
                delta = network.delta(i)
                deltas.append(equation(partial(loss, z), [Form(delta), Form(delta, values)], values[partial(loss, z)]))
        elif not layer.activation.elementwise:
            for i in range(layer.units):
                z = layer.pre_activations[i]
                total = _add(*[_mul(partial(loss, a), partial(a, z)) for a in layer.outputs])
                deltas.append(equation(partial(loss, z), [Form(total), Form(total, values)], values[partial(loss, z)]))
        gradients, each = [], []
        for parameter in layer.trainable:
            factors, terms = [], []
            for i in layer.units_fed_by(parameter):
                z = layer.pre_activations[i]
                local_factor = partial(z, parameter)
                multiplier = layer.multiplier(parameter, i)
                values[local_factor] = float(values.get(multiplier, multiplier))
                factors.append(
                    equation(
                        local_factor,
                        [Form(sp.Derivative(layer.pre_activation(i), parameter)), Form(multiplier), Form(multiplier, values)],
                        values[local_factor],
                    )
                )
                each.append(equation(local_factor, [Form(multiplier)]))
                terms.append(_mul(*_delta_factors(network, layer, loss, i), local_factor))
            product = _add(*terms)
            gradient_symbol = partial(loss, parameter)
            gradients.append(
                ParameterGradient(
                    parameter,
                    tuple(factors),
                    equation(gradient_symbol, [Form(product), Form(product, values)], values[gradient_symbol]),
                    equation(gradient_symbol, [Form(product, values)], values[gradient_symbol]),
                )
            )
        layers.append(
            LayerBackward(
                number=layer.number,
                following=None if layer.is_output else layer.number + 1,
                activation=layer.activation.label,
                is_output=layer.is_output,
                elementwise=layer.activation.elementwise,
                shortcut=shortcut,
                upstream=tuple(upstream),
                local=tuple(local),
                local_brief=tuple(brief),
                deltas=tuple(deltas),
                linear=_linear(layer),
                chain=_chain(network, layer, loss),
                any_unit=_any_indices(layer)[0] == ANY_UNIT,
                any_source=_any_indices(layer)[1] == ANY_SOURCE,
                linear_each=tuple(dict.fromkeys(each)),
                parameters=tuple(gradients),
                notes=_unit_notes(layer, forward.pre[index], backward.local[index], sample),
            )
        )
    return SampleBackward(sample + 1, tuple(layers)), values


def _linear(layer: NetworkLayer) -> tuple[Equation, ...]:
    """∂z_i/∂w_ij = a_j and ∂z_i/∂b_i = 1, for any unit and input."""
    unit, source = _any_indices(layer)
    z = symbol(Quantity(Kind.PRE_ACTIVATION, layer.number, unit))
    weight = symbol(Quantity(Kind.WEIGHT, layer.number, unit, source))
    forms = [equation(partial(z, weight), [Form(_input_of(layer, source))])]
    if layer.spec.bias is not None and layer.spec.train_bias:
        bias = layer.bias_parameters[0] if layer.spec.shared_bias else symbol(Quantity(Kind.BIAS, layer.number, unit))
        forms.append(equation(partial(z, bias), [Form(sp.S.One)]))
    return tuple(forms)


def _chain(network: Network, layer: NetworkLayer, loss: sp.Symbol) -> tuple[Equation, ...]:
    """The chain rule for any weight w_ij and bias b_i of the layer, stated once:
    ∂E/∂w_ij = ∂E/∂a_i · ∂a_i/∂z_i · ∂z_i/∂w_ij (∂E/∂z_i · ∂z_i/∂w_ij where ∂E/∂z is one factor)."""
    unit, source = _any_indices(layer)
    z = symbol(Quantity(Kind.PRE_ACTIVATION, layer.number, unit))
    a = symbol(Quantity(Kind.ACTIVATION, layer.number, unit))
    factors = [partial(loss, z)] if network.direct_delta(layer) else [partial(loss, a), partial(a, z)]
    parameters = [symbol(Quantity(Kind.WEIGHT, layer.number, unit, source))]
    if layer.spec.bias is not None and layer.spec.train_bias and not layer.spec.shared_bias:
        parameters.append(symbol(Quantity(Kind.BIAS, layer.number, unit)))
    return tuple(equation(partial(loss, p), [Form(_mul(*factors, partial(z, p)))]) for p in parameters)


def _upstream(network: Network, index: int, loss: sp.Symbol, unit: int, values) -> Equation:
    """∂E/∂a_unit: at the output layer the loss differentiated in one visible step, else
    summed over the next layer, reusing that layer's factors."""
    layer = network.layers[index]
    a = layer.outputs[unit]
    target = partial(loss, a)
    if layer.is_output:
        predictions, targets = network.predictions, network.targets
        derivative = network.loss.derivative(predictions, targets, unit)
        forms = [
            Form(sp.Derivative(network.per_sample_loss, a)),
            Form(network.loss.derivative_step(predictions, targets, unit)),
            Form(derivative),
            Form(derivative, values),
        ]
        return equation(target, forms, values[target])
    following = network.layers[index + 1]
    chain = []
    with_weights = []
    for i in range(following.units):
        factors = _delta_factors(network, following, loss, i)
        chain.append(_mul(*factors, partial(following.pre_activations[i], a)))
        with_weights.append(_mul(*factors, following.weights[i][unit]))
    chain_expr, weights_expr = _add(*chain), _add(*with_weights)
    return equation(target, [Form(chain_expr), Form(weights_expr), Form(weights_expr, values)], values[target])


def _local(layer: NetworkLayer, output: int, unit: int, values) -> Equation:
    """∂a_output/∂z_unit: sympy.diff of the activation, then written with the outputs."""
    z, a = layer.pre_activations[unit], layer.outputs[output]
    derivative = layer.activation.local_derivative(layer.pre_activations, output, unit)
    forms = [Form(derivative)]
    shown = layer.activation.derivative_shown_with_outputs(layer.outputs, output, unit)
    if shown is not None:
        forms.append(Form(shown))
    forms.append(Form(forms[-1].expr, values))
    return equation(partial(a, z), forms, values[partial(a, z)])


def _local_brief(layer: NetworkLayer, output: int, unit: int, values) -> Equation:
    """∂a/∂z as f′(z) (its general form is in the Network section), with its number:
    σ′(z) = ŷ(1 − ŷ) = 0.526 · (1 − 0.526), ReLU′(z) = ReLU′(0.29)."""
    prime = layer.activation.prime
    if prime is None:
        return _local(layer, output, unit, values)
    z, a = layer.pre_activations[unit], layer.outputs[output]
    applied = prime(z)
    shown = layer.activation.derivative_shown_with_outputs(layer.outputs, output, unit)
    forms = [Form(applied)] + ([Form(shown), Form(shown, values)] if shown is not None else [Form(applied, values)])
    return equation(partial(a, z), forms, values[partial(a, z)])


def _unit_notes(layer: NetworkLayer, pre, local, sample: int) -> tuple[Note, ...]:
    if layer.activation.name not in _PIECEWISE_LINEAR:
        return ()
    notes = []
    for z, a, value, slope in zip(layer.pre_activations, layer.outputs, pre, local):
        if value == 0:
            notes.append(Note(NoteKind.AT_KINK, a, z, value, sample + 1, slope=slope[0]))
        elif value < 0 and layer.activation.name == "relu":
            notes.append(Note(NoteKind.INACTIVE, a, z, value, sample + 1))
    return tuple(notes)


def _dead_units(network: Network, run: Run) -> tuple[Note, ...]:
    """ReLU units that output 0 for every sample after training: no gradient reaches
    their weights any more. Dead if they were active at some point of training, never
    active if not once (noted only after several updates). The pre-activation is named as
    after the update (z*), or after the last of several."""
    after_name = updated if len(run.updates) == 1 else final
    silent = [
        (index, i)
        for index, layer in enumerate(network.layers)
        if layer.activation.name == "relu"
        for i in range(layer.units)
        if all(f.pre[index][i] <= 0 for f in run.final)
    ]
    if not silent:
        return ()
    # one pass over every forward pass of the run (a long run's updates are computed again)
    active: set[tuple[int, int]] = set()
    for forward in chain(run.initial, (f for update in run.updates for f in update.forwards)):
        active.update(unit for unit in silent if forward.pre[unit[0]][unit[1]] > 0)
    notes = []
    for index, i in silent:
        layer = network.layers[index]
        was_active = (index, i) in active
        if not was_active and len(run.updates) == 1:
            continue  # one update: backpropagation's note on the inactive unit says it all
        after = max(f.pre[index][i] for f in run.final)
        notes.append(Note(NoteKind.DEAD if was_active else NoteKind.NEVER_ACTIVE, layer.outputs[i], after_name(layer.pre_activations[i]), after))
    return tuple(notes)


def _backward_table(network: Network, samples, all_values: Sequence[Mapping[sp.Symbol, float]]) -> ValueTable:
    """Every sample's backward quantities, in the order the worked sample shows them."""
    rows = []
    for index in range(len(network.layers) - 1, -1, -1):
        layer = network.layers[index]
        wanted: list[sp.Symbol] = []
        shortcut = layer.is_output and network.shortcut
        if not shortcut:
            wanted += [partial(network.loss_symbol(), a) for a in layer.outputs]
            wanted += [
                partial(layer.outputs[k], layer.pre_activations[i])
                for i in range(layer.units)
                for k in layer.activation.jacobian_support(layer.units, i)
            ]
        if shortcut or not layer.activation.elementwise:
            wanted += [partial(network.loss_symbol(), z) for z in layer.pre_activations]
        wanted += [partial(network.loss_symbol(), p) for p in layer.trainable]
        for sym in wanted:
            per_sample = []
            for n, values in zip(samples, all_values):
                per_sample.append(values[for_sample(sym, n + 1) if _is_loss_partial(sym) else sym])
            rows.append(ValueRow(for_sample(sym, ANY_SAMPLE) if _is_loss_partial(sym) else sym, tuple(per_sample)))
    return ValueTable(tuple(n + 1 for n in samples), tuple(rows))


def _chunks(table: ValueTable) -> tuple[ValueTable, ...]:
    """The table split into tables of at most TABLE_SAMPLES samples, to fit a page."""
    return tuple(
        ValueTable(table.samples[start : start + TABLE_SAMPLES], tuple(
            ValueRow(row.symbol, row.values[start : start + TABLE_SAMPLES]) for row in table.rows
        ))
        for start in range(0, len(table.samples), TABLE_SAMPLES)
    )


def _is_loss_partial(sym: sp.Symbol) -> bool:
    quantity = quantity_of(sym)
    return isinstance(quantity, Partial) and quantity.of.kind is Kind.LOSS


# -- the first update in full ---------------------------------------------------------------


def _detailed_step(network: Network, compiled: CompiledNetwork, run: Run) -> DetailedStep:
    spec = network.spec
    first = run.updates[0]
    samples = first.samples
    many = len(samples) > 1
    forward, _ = _forward_pass(network, compiled, samples, first.forwards, first.before, star=False)
    backward = []
    sample_values: list[dict[sp.Symbol, float]] = []
    gradient_values: dict[sp.Symbol, float] = {}
    for n, f in zip(samples, first.forwards):
        data = spec.data[n]
        numbers = compiled.backward(first.before, data.x, data.y, f)
        loss = network.loss_symbol(n + 1 if many else None)
        base = _values(network, first.before, n, f)
        sample_backward, values = _backward(network, n, f, numbers, loss, base)
        backward.append(sample_backward)
        sample_values.append(values)
        gradient_values.update({partial(loss, p): values[partial(loss, p)] for p in network.trainable})

    overall = network.loss_symbol()
    combined, combined_brief = [], []
    combined_rule = None
    if many:
        for parameter in network.trainable:
            terms = [partial(network.loss_symbol(n + 1), parameter) for n in samples]
            total = _combined(network, terms)
            value = (first.data_gradient or first.gradient)[network.position[parameter]]  # ∂E/∂θ, before any decay
            gradient_values[partial(overall, parameter)] = value
            combined.append(equation(partial(overall, parameter), [Form(total), Form(total, gradient_values)], value))
            combined_brief.append(equation(partial(overall, parameter), [Form(total, gradient_values)], value))
        combined_rule = _combination_rule(network, len(samples))

    update_values = dict(gradient_values)
    update_values.update(zip(network.parameters, first.before))
    update_values[network.learning_rate] = spec.learning_rate
    descended = gradient_of(network)  # E, or J with coupled weight decay
    update_values.update((partial(descended, p), first.gradient[network.position[p]]) for p in network.trainable)
    rule_record = None
    if spec.optimizer.name == "sgd" and not spec.weight_decay:
        updates, updates_brief = [], []
        for parameter in network.trainable:
            position = network.position[parameter]
            rule = update_of(network, parameter)  # θ − η ∂E/∂θ, from the update rules' table
            updates.append(equation(updated(parameter), [Form(rule), Form(rule, update_values)], first.after[position]))
            updates_brief.append(equation(updated(parameter), [Form(rule, update_values)], first.after[position]))
        theta = symbol(Quantity(Kind.PARAMETER))
        update_rule = equation(updated(theta), [Form(update_of(network, theta))])
    else:
        rule_record = rule_view(network, first, update_values, run.updates[1 : 1 + MAX_STATE_TABLES], len(run.updates) - 1)
        updates = [lines[-1] for lines in rule_record.parameters]
        updates_brief = [lines[-1] for lines in rule_record.parameters_brief]
        update_rule = rule_record.rule[-1]

    again = run.repeated
    repeated, repeated_values = _forward_pass(network, compiled, samples, again, first.after, star=True)
    decay = weight_decay(network, compiled, first, compiled.combine([f.loss for f in again]), run.repeated_loss, first.after)
    trainable = set(network.trainable)
    return DetailedStep(
        samples=tuple(n + 1 for n in samples),
        forward=forward,
        backward=tuple(backward),
        backward_tables=_chunks(_backward_table(network, samples, sample_values)) if many else (),
        sample_loss=network.loss_symbol(ANY_SAMPLE),
        combined=tuple(combined),
        combined_rule=combined_rule,
        combined_brief=tuple(combined_brief),
        batch=spec.batch.value,
        updates=tuple(updates),
        update_rule=update_rule,
        updates_brief=tuple(updates_brief),
        repeated=repeated,
        outcome=_outcome(network, first, again, first.loss, run.repeated_loss),  # objectives, with weight decay
        frozen=tuple(p for p in network.parameters if p not in trainable),
        values=tuple(sample_values),
        update_values={**update_values, **{updated(p): v for p, v in zip(network.parameters, first.after)}},
        repeated_values=tuple(repeated_values),
        rule=rule_record,
        decay=decay,
    )


def _combination_rule(network: Network, count: int) -> Equation:
    """∂E/∂θ = (1/N) Σ_n ∂E_n/∂θ (or the plain sum), for any parameter θ."""
    theta = symbol(Quantity(Kind.PARAMETER))
    n = sp.Symbol("n", integer=True, positive=True)
    total = sp.Sum(partial(network.loss_symbol(ANY_SAMPLE), theta), (n, 1, count))
    if network.spec.batch.value == "mean":
        total = _mul(sp.Rational(1, count), total)
    return equation(partial(network.loss_symbol(), theta), [Form(total)])


def _outcome(network: Network, first: ParameterUpdate, again: Sequence[Forward], before: float, after: float) -> Outcome:
    """What the update did, sample by sample: the loss, the prediction's distance to the
    target, the predicted class."""
    outputs = network.output_layer.outputs
    samples = []
    for n, old, new in zip(first.samples, first.forwards, again):
        targets = network.spec.data[n].y
        distance_before, distance_after = _distance(targets, old.out[-1]), _distance(targets, new.out[-1])
        movement = (
            Movement.TOWARDS if distance_after < distance_before else Movement.AWAY if distance_after > distance_before else Movement.UNCHANGED
        )
        old_classes = _classification(network, outputs, old.out[-1])
        new_classes = _classification(network, outputs, new.out[-1])
        samples.append(
            SampleOutcome(
                sample=n + 1,
                targets=targets,
                before=old.out[-1],
                after=new.out[-1],
                loss_before=old.loss,
                loss_after=new.loss,
                movement=movement,
                crossed=len(targets) == 1 and (old.out[-1][0] - targets[0]) * (new.out[-1][0] - targets[0]) < 0,
                classes_before=old_classes.classes if old_classes else None,
                classes_after=new_classes.classes if new_classes else None,
            )
        )
    return Outcome(_change(before, after), tuple(samples))


def _distance(targets: Sequence[float], outputs: Sequence[float]) -> Fraction:
    """The squared distance of the outputs to the targets, exactly, from the numbers as
    decimals: shown values that are equally far must compare equal, which float arithmetic
    does not promise."""
    return sum((Fraction(repr(y)) - Fraction(repr(p))) ** 2 for y, p in zip(targets, outputs))


def _summary(network: Network, first: ParameterUpdate) -> Summary:
    rows = []
    for index, layer in enumerate(network.layers):
        for i, (z, a) in enumerate(zip(layer.pre_activations, layer.outputs)):
            rows.append(ValueRow(z, tuple(f.pre[index][i] for f in first.forwards)))
            rows.append(ValueRow(a, tuple(f.out[index][i] for f in first.forwards)))
    loss = gradient_of(network)  # E, or J = E + (λ/2) Σ w² with coupled weight decay
    trainable = set(network.trainable)
    gradients = [
        ValueRow(partial(loss, p), (first.gradient[n], first.after[n]))
        for n, p in enumerate(network.parameters)
        if p in trainable
    ]
    return Summary(
        samples=tuple(n + 1 for n in first.samples),
        forward=tuple(rows),
        loss=ValueRow(loss, (first.loss,)),
        gradients=tuple(gradients),
        updated=tuple(updated(p) for p in network.parameters if p in trainable),
    )


def _change(before: float, after: float) -> LossChange:
    if after < before:
        return LossChange.FELL
    return LossChange.ROSE if after > before else LossChange.UNCHANGED


# -- many updates ------------------------------------------------------------------------------


def _training(network: Network, run: Run) -> Training:
    everything = tuple(range(1, len(network.spec.data) + 1))
    rows = _LossRows(run, everything)
    shown = list(rows) if len(rows) <= MAX_TABLE_ROWS else [rows[k] for k in _selection(len(rows))]
    values = {final(p): v for p, v in zip(network.parameters, run.updates[-1].after)}
    final_parameters = []
    for layer in network.layers:
        weights = sp.ImmutableMatrix([[final(w) for w in row] for row in layer.weights])
        final_parameters.append(equation(final(layer.weight_matrix), [Form(weights, values)]))
        if layer.spec.shared_bias:
            bias = final(layer.bias_parameters[0])
            final_parameters.append(equation(bias, [Form(bias, values)]))
        elif layer.spec.bias is not None:
            column = sp.ImmutableMatrix([[final(b)] for b in layer.biases])
            final_parameters.append(equation(final(layer.bias_vector), [Form(column, values)]))
    return Training(
        loss=gradient_of(network),
        rows=tuple(shown),
        per_sample=network.spec.update.value == "sample",
        updates=len(run.updates),
        all_rows=len(shown) == len(rows),
        final_parameters=tuple(final_parameters),
        final_parameter_list=tuple(equation(final(p), [Form(final(p), values)]) for p in network.parameters),
        final_loss=run.final_loss,
        initial_loss=run.initial_loss,
        curve=loss_curve(_Points(rows)),
    )


class _LossRows(Sequence[LossRow]):
    """The loss table's rows, each made when asked for: the loss before each update (with
    the samples it used), then the final loss over all samples."""

    def __init__(self, run: Run, everything: tuple[int, ...]):
        self.run, self.everything = run, everything
        self.losses = run.updates.losses

    def __len__(self) -> int:
        return len(self.losses) + 1

    def __getitem__(self, k):  # type: ignore[override]
        k = range(len(self))[k]
        if k == len(self.losses):
            return LossRow(k, self.everything, self.run.final_loss, final=True)
        return LossRow(k, tuple(n + 1 for n in self.run.updates.samples(k)), self.losses[k])


class _Points(Sequence[tuple[int, float]]):
    """(updates so far, loss) of each row of the loss table, for the loss curve."""

    def __init__(self, rows: _LossRows):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, k):  # type: ignore[override]
        row = self.rows[k]
        return (row.updates, row.loss)


def _selection(count: int) -> list[int]:
    """Of `count` rows, the first ten, the last five, and evenly spaced ones between."""
    middle = range(10, count - 5)
    stride = max(1, len(middle) // (MAX_TABLE_ROWS - 15))
    return [*range(10), *middle[stride - 1 :: stride][: MAX_TABLE_ROWS - 15], *range(count - 5, count)]
