"""spec → Solution: the worked derivation of the first update in full, the numbers of
every update, the final forward pass.

The symbolic side (which factors make up each chain-rule product, each factor's
general form) comes from the network's SymPy expressions; the numbers come from the
compiled network. One generic walk from the loss back to every parameter builds the
backpropagation: no case per layer kind.
"""

from __future__ import annotations

import sympy as sp

from .figures import loss_curve, network_diagram
from .functions import (
    OUTPUT,
    OUTPUTS,
    PRE_ACTIVATION,
    PRE_ACTIVATIONS,
    TERM,
    UNIT,
    Activation,
)
from .network import Network, NetworkLayer
from .numeric import Backward, CompiledNetwork, Forward, carried, exact
from .printing import DEFAULT_DIGITS
from .quantities import partial, updated
from .solution import (
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
    NetworkDescription,
    Note,
    NoteKind,
    ParameterGradient,
    SampleBackward,
    SampleForward,
    Solution,
    Summary,
    SummaryRow,
    Training,
    equation,
)
from .spec import Rounding, load_spec

# Loss tables longer than this show a selection of the steps (the JSON has all).
MAX_TABLE_ROWS = 25
_PIECEWISE_LINEAR = ("relu", "leaky_relu")


def solve(spec, *, rounding: str | Rounding | None = None, digits: int = DEFAULT_DIGITS, shortcut: bool = True) -> Solution:
    """Derive the worked solution of a spec (a Spec, a path, an example name or a dict).

    rounding: "exact" (full precision, rounded for display) or "carry" (every shown value
    rounded to `digits` decimals and used as shown, as by hand); by default the spec's,
    else exact. shortcut: write ∂E/∂z = ŷ − y for sigmoid + bce and softmax + cross-entropy."""
    spec = load_spec(spec)
    mode = Rounding(rounding) if rounding is not None else (spec.rounding or Rounding.EXACT)
    network = Network(spec, shortcut=shortcut)
    compiled = CompiledNetwork(network, carried(digits) if mode is Rounding.CARRY else exact)
    updates, final = compiled.train()
    everything = range(len(spec.data))
    initial = compiled.evaluate(network.initial_values(), everything, 1)
    first = updates[0]
    detail = _detailed_step(network, compiled, first)
    final_loss = compiled.combine([f.loss for f in final])
    return Solution(
        spec=spec,
        network=network,
        description=_describe(network),
        data=_data_table(network),
        diagram=network_diagram(network, network.initial_values()),
        detail=detail,
        summary=_summary(network, first),
        training=_training(network, updates, compiled.combine([f.loss for f in initial]), final_loss)
        if len(updates) > 1
        else None,
        notes=_dead_units(network, initial, final),
        updates=tuple(updates),
        final=final,
        final_loss=final_loss,
        rounding=mode,
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
        layers=tuple(layers),
        activations=tuple(_activation_definition(a) for a in used),
        loss=equation(loss_symbol, [Form(network.loss.definition), Form(network.per_sample_loss)]),
        loss_label=network.loss.label,
        learning_rate=equation(network.learning_rate, [], network.spec.learning_rate),
        shortcut=shortcut,
    )


def _activation_definition(activation: Activation) -> tuple[Equation, Equation]:
    if activation.elementwise:
        applied = activation.applied if activation.applied is not None else OUTPUT
        definition = equation(applied, [Form(activation.definition)])
        derivative_forms = [Form(activation.general_derivative)]
        shown = activation.derivative_shown_with_outputs([OUTPUT], 0, 0)
        if shown is not None:
            derivative_forms.append(Form(shown))
        lhs = sp.Derivative(applied, PRE_ACTIVATION) if activation.applied is not None else sp.Derivative(OUTPUT, PRE_ACTIVATION)
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
    for layer, pre, out in zip(network.layers, forward.pre, forward.out):
        values.update({name(z): v for z, v in zip(layer.pre_activations, pre)})
        values.update({name(a): v for a, v in zip(layer.outputs, out)})
    return values


def _forward_pass(network: Network, compiled: CompiledNetwork, samples, forwards, parameters, star: bool) -> ForwardPass:
    rename = _star_map(network) if star else {}
    many = len(samples) > 1
    sample_passes = []
    loss_values: dict[sp.Symbol, float] = {}
    for n, forward in zip(samples, forwards):
        values = _values(network, parameters, n, forward, star)
        loss_symbol = network.loss_symbol(n + 1 if many else None, updated=star)
        values[loss_symbol] = forward.loss
        loss_values[loss_symbol] = forward.loss
        layers = []
        for layer, pre, out in zip(network.layers, forward.pre, forward.out):
            pre_equations, out_equations = [], []
            for i in range(layer.units):
                z, a = layer.pre_activations[i], layer.outputs[i]
                expr = layer.pre_activation(i, rename)
                pre_equations.append(equation(rename.get(z, z), [Form(expr), Form(expr, values)], pre[i]))
                forms = []
                if layer.activation.applied is not None:
                    forms.append(Form(layer.activation.applied.xreplace({PRE_ACTIVATION: rename.get(z, z)})))
                definition = layer.output(i).xreplace(rename)
                forms += [Form(definition), Form(definition, values)]
                out_equations.append(equation(rename.get(a, a), forms, out[i]))
            layers.append(
                LayerForward(layer.number, layer.activation.label, layer.is_output, tuple(pre_equations), tuple(out_equations))
            )
        loss_expr = network.per_sample_loss.xreplace(rename)
        loss = equation(loss_symbol, [Form(loss_expr), Form(loss_expr, values)], forward.loss)
        sample_passes.append(SampleForward(n + 1, tuple(layers), loss, forward.out[-1]))
    combined_value = compiled.combine([f.loss for f in forwards])
    if many:
        total = _combined(network, list(loss_values))
        combined = equation(network.loss_symbol(updated=star), [Form(total), Form(total, loss_values)], combined_value)
    else:
        combined = sample_passes[0].loss
    return ForwardPass(tuple(sample_passes), combined, combined_value)


def _star_map(network: Network) -> dict[sp.Symbol, sp.Symbol]:
    symbols = list(network.parameters)
    for layer in network.layers:
        symbols += list(layer.pre_activations) + list(layer.outputs)
    return {s: updated(s) for s in symbols}


# -- backpropagation ---------------------------------------------------------------------


def _delta_factors(network: Network, layer: NetworkLayer, loss: sp.Symbol, unit: int) -> list[sp.Symbol]:
    """The chain-rule factors that make ∂E/∂z_i: ∂E/∂a_i · ∂a_i/∂z_i for an elementwise
    activation, ∂E/∂z_i itself for a softmax (a sum over the layer) or a shortcut."""
    z, a = layer.pre_activations[unit], layer.outputs[unit]
    if network.direct_delta(layer):
        return [partial(loss, z)]
    return [partial(loss, a), partial(a, z)]


def _backward(
    network: Network, sample: int, forward: Forward, backward: Backward, loss: sp.Symbol, values
) -> tuple[SampleBackward, dict[sp.Symbol, float]]:
    """The walk from the loss back to every parameter, output layer first; also returns
    the values with every partial derivative's number added."""
    values = dict(values)
    # Every partial's number goes into `values` before an equation substitutes it.
    for index, layer in enumerate(network.layers):
        for i in range(layer.units):
            values[partial(loss, layer.outputs[i])] = backward.upstream[index][i]
            values[partial(loss, layer.pre_activations[i])] = backward.delta[index][i]
            for k in layer.activation.jacobian_support(layer.units, i):
                row = backward.local[index][k]
                values[partial(layer.outputs[k], layer.pre_activations[i])] = row[0] if layer.activation.elementwise else row[i]
    gradient_of = dict(zip(network.parameters, backward.gradient))

    layers = []
    for index in range(len(network.layers) - 1, -1, -1):
        layer = network.layers[index]
        shortcut = layer.is_output and network.shortcut
        upstream = [] if shortcut else [_upstream(network, index, loss, i, values) for i in range(layer.units)]
        local = []
        for i in range(layer.units if not shortcut else 0):
            for k in layer.activation.jacobian_support(layer.units, i):
                local.append(_local(layer, k, i, values))
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
        gradients = []
        for parameter in layer.trainable:
            factors = []
            terms = []
            for i in layer.units_fed_by(parameter):
                z = layer.pre_activations[i]
                expr = layer.pre_activation(i)
                local_factor = partial(z, parameter)
                factor_value = layer.multiplier(parameter, i)
                values[local_factor] = float(values.get(factor_value, factor_value))
                factors.append(
                    equation(
                        local_factor,
                        [Form(sp.Derivative(expr, parameter)), Form(factor_value), Form(factor_value, values)],
                        values[local_factor],
                    )
                )
                terms.append(_mul(*_delta_factors(network, layer, loss, i), local_factor))
            product = _add(*terms)
            gradient_symbol = partial(loss, parameter)
            values[gradient_symbol] = gradient_of[parameter]
            gradients.append(
                ParameterGradient(
                    parameter,
                    tuple(factors),
                    equation(gradient_symbol, [Form(product), Form(product, values)], gradient_of[parameter]),
                )
            )
        notes = _unit_notes(layer, forward.pre[index], backward.local[index], sample)
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
                deltas=tuple(deltas),
                parameters=tuple(gradients),
                notes=notes,
            )
        )
    return SampleBackward(sample + 1, tuple(layers)), values


def _upstream(network: Network, index: int, loss: sp.Symbol, unit: int, values) -> Equation:
    """∂E/∂a_unit: from the loss at the output layer, else summed over the next layer,
    reusing that layer's factors."""
    layer = network.layers[index]
    a = layer.outputs[unit]
    target = partial(loss, a)
    if layer.is_output:
        derivative = network.loss.derivative(network.predictions, network.targets, unit)
        return equation(target, [Form(derivative), Form(derivative, values)], values[target])
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


def _dead_units(network: Network, initial: tuple[Forward, ...], final: tuple[Forward, ...]) -> tuple[Note, ...]:
    """ReLU units that output 0 for every sample after training: no gradient reaches
    their weights any more. Dead if training killed them, never active otherwise."""
    notes = []
    for index, layer in enumerate(network.layers):
        if layer.activation.name != "relu":
            continue
        for i, (z, a) in enumerate(zip(layer.pre_activations, layer.outputs)):
            after = [f.pre[index][i] for f in final]
            if all(v <= 0 for v in after):
                was_active = any(f.pre[index][i] > 0 for f in initial)
                notes.append(Note(NoteKind.DEAD if was_active else NoteKind.NEVER_ACTIVE, a, z, max(after)))
    return tuple(notes)


# -- the first update in full ---------------------------------------------------------------


def _detailed_step(network: Network, compiled: CompiledNetwork, first) -> DetailedStep:
    spec = network.spec
    samples = first.samples
    many = len(samples) > 1
    forward = _forward_pass(network, compiled, samples, first.forwards, first.before, star=False)
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
    combined = []
    if many:
        for parameter in network.trainable:
            terms = [partial(network.loss_symbol(n + 1), parameter) for n in samples]
            total = _combined(network, terms)
            value = first.gradient[network.parameters.index(parameter)]
            gradient_values[partial(overall, parameter)] = value
            combined.append(equation(partial(overall, parameter), [Form(total), Form(total, gradient_values)], value))

    update_values = dict(gradient_values)
    update_values.update(zip(network.parameters, first.before))
    update_values[network.learning_rate] = spec.learning_rate
    updates = []
    for parameter in network.trainable:
        position = network.parameters.index(parameter)
        rule = _add(parameter, _mul(-1, network.learning_rate, partial(overall, parameter)))
        updates.append(equation(updated(parameter), [Form(rule), Form(rule, update_values)], first.after[position]))

    again = compiled.evaluate(first.after, samples, first.step)
    repeated = _forward_pass(network, compiled, samples, again, first.after, star=True)
    trainable = set(network.trainable)
    return DetailedStep(
        samples=tuple(n + 1 for n in samples),
        forward=forward,
        backward=tuple(backward),
        combined=tuple(combined),
        batch=spec.batch.value,
        updates=tuple(updates),
        repeated=repeated,
        loss_change=_change(forward.value, repeated.value),
        frozen=tuple(p for p in network.parameters if p not in trainable),
        values=tuple(sample_values),
        update_values={**update_values, **{updated(p): v for p, v in zip(network.parameters, first.after)}},
    )


def _summary(network: Network, first) -> Summary:
    rows = []
    for index, layer in enumerate(network.layers):
        for i, (z, a) in enumerate(zip(layer.pre_activations, layer.outputs)):
            rows.append(SummaryRow(z, tuple(f.pre[index][i] for f in first.forwards)))
            rows.append(SummaryRow(a, tuple(f.out[index][i] for f in first.forwards)))
    loss = network.loss_symbol()
    trainable = set(network.trainable)
    gradients = [
        SummaryRow(partial(loss, p), (first.gradient[n], first.after[n]))
        for n, p in enumerate(network.parameters)
        if p in trainable
    ]
    return Summary(
        samples=tuple(n + 1 for n in first.samples),
        forward=tuple(rows),
        loss=SummaryRow(loss, (first.loss,)),
        gradients=tuple(gradients),
        updated=tuple(updated(p) for p in network.parameters if p in trainable),
    )


def _change(before: float, after: float) -> LossChange:
    if after < before:
        return LossChange.FELL
    return LossChange.ROSE if after > before else LossChange.UNCHANGED


# -- many updates ------------------------------------------------------------------------------


def _training(network: Network, updates, initial_loss: float, final_loss: float) -> Training:
    rows = [LossRow(u.step, tuple(n + 1 for n in u.samples), u.loss) for u in updates]
    shown = rows if len(rows) <= MAX_TABLE_ROWS else _selection(rows)
    values = dict(zip(network.parameters, updates[-1].after))
    final_parameters = []
    for layer in network.layers:
        weights = sp.ImmutableMatrix([list(row) for row in layer.weights])
        final_parameters.append(equation(layer.weight_matrix, [Form(weights, values)]))
        if layer.spec.shared_bias:
            final_parameters.append(equation(layer.bias_parameters[0], [Form(layer.bias_parameters[0], values)]))
        elif layer.spec.bias is not None:
            final_parameters.append(equation(layer.bias_vector, [Form(sp.ImmutableMatrix([[b] for b in layer.biases]), values)]))
    return Training(
        rows=tuple(shown),
        per_sample=network.spec.update.value == "sample",
        updates=len(rows),
        all_rows=len(shown) == len(rows),
        final_parameters=tuple(final_parameters),
        final_loss=final_loss,
        initial_loss=initial_loss,
        curve=loss_curve([u.loss for u in updates] + [final_loss]),
    )


def _selection(rows: list[LossRow]) -> list[LossRow]:
    """The first ten rows, the last five, and evenly spaced ones between."""
    head, tail = rows[:10], rows[-5:]
    middle = rows[10:-5]
    stride = max(1, len(middle) // (MAX_TABLE_ROWS - 15))
    return head + middle[stride - 1 :: stride][: MAX_TABLE_ROWS - 15] + tail
