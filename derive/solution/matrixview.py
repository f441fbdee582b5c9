"""The first update written in vectors and matrices (the matrix notation), for networks
too large to write out weight by weight:

    W⁽ˡ⁾ a⁽ˡ⁻¹⁾, then z⁽ˡ⁾ = W⁽ˡ⁾ a⁽ˡ⁻¹⁾ + b⁽ˡ⁾, a⁽ˡ⁾ = f(z⁽ˡ⁾);
    ∂E/∂a⁽ˡ⁾ = (W⁽ˡ⁺¹⁾)ᵀ ∂E/∂z⁽ˡ⁺¹⁾, ∂a⁽ˡ⁾/∂z⁽ˡ⁾ = f′(z⁽ˡ⁾), ∂E/∂z⁽ˡ⁾ = ∂E/∂a⁽ˡ⁾ ⊙ ∂a⁽ˡ⁾/∂z⁽ˡ⁾,
    ∂E/∂W⁽ˡ⁾ = ∂E/∂z⁽ˡ⁾ (a⁽ˡ⁻¹⁾)ᵀ;   W⁽ˡ⁾* = W⁽ˡ⁾ − η ∂E/∂W⁽ˡ⁾.

Built from the same record and the same numbers as the unit-by-unit view, computed the
same way: where that view never shows ∂E/∂z on its own (an elementwise activation), the
vectors show it as the product ∂E/∂a ⊙ ∂a/∂z of shown factors, not as a rounded vector of
its own, so that both views carry exactly the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import sympy as sp

from ..model.functions import PRE_ACTIVATION
from ..model.network import Network, NetworkLayer
from ..model.quantities import Kind, Quantity, partial, symbol, updated
from .record import Classification, Equation, Form, Note, Solution, equation


@dataclass(frozen=True)
class MatrixLayer:
    number: int
    is_output: bool
    equations: tuple[Equation, ...]
    notes: tuple[Note, ...] = ()  # units at or below a ReLU's kink, as in the unit-by-unit view


@dataclass(frozen=True)
class MatrixSample:
    sample: int  # from 1
    forward: tuple[MatrixLayer, ...]  # input side first
    loss: Equation
    backward: tuple[MatrixLayer, ...]  # output side first
    classification: Classification | None = None


@dataclass(frozen=True)
class MatrixView:
    samples: tuple[MatrixSample, ...]
    combined: tuple[Equation, ...]  # the batch's gradients from the samples' (several samples)
    updates: tuple[Equation, ...]
    repeated: tuple[MatrixSample, ...]  # the forward pass again, with the updated parameters (no backward)


def _named(sym: sp.Symbol, rows: int, columns: int) -> sp.MatrixSymbol:
    """A matrix named by a quantity's symbol: the printer writes it in the notation."""
    return sp.MatrixSymbol(sym.name, rows, columns)


def _column(entries) -> sp.ImmutableMatrix:
    return sp.ImmutableMatrix([[e] for e in entries])


class _Builder:
    """The equations of one sample (before the update, or starred after it)."""

    def __init__(self, network: Network, values: Mapping[sp.Symbol, float], star: bool = False):
        self.network = network
        self.values = values
        self.name = updated if star else (lambda s: s)

    def vector(self, kind: Kind, layer: int) -> sp.Symbol:
        return self.name(symbol(Quantity(kind, layer)))

    def inputs_of(self, layer: NetworkLayer) -> tuple[sp.MatrixSymbol, sp.ImmutableMatrix]:
        if layer.number == 1:
            return _named(symbol(Quantity(Kind.INPUT)), len(layer.inputs), 1), _column(layer.inputs)
        previous = self.vector(Kind.ACTIVATION, layer.number - 1)
        return _named(previous, len(layer.inputs), 1), _column(self.name(a) for a in layer.inputs)

    def weights(self, layer: NetworkLayer, star: bool | None = None) -> tuple[sp.MatrixSymbol, sp.ImmutableMatrix]:
        name = self.name if star is None else (updated if star else (lambda s: s))
        return (
            _named(name(layer.weight_matrix), layer.units, len(layer.inputs)),
            sp.ImmutableMatrix([[name(w) for w in row] for row in layer.weights]),
        )

    def forward(self, layer: NetworkLayer) -> MatrixLayer:
        values = self.values
        w_name, w = self.weights(layer)
        a_name, a = self.inputs_of(layer)
        z_name = _named(self.vector(Kind.PRE_ACTIVATION, layer.number), layer.units, 1)
        products = sp.MatMul(w_name, a_name)
        weighted = _column(self.name(s) for s in layer.weighted_sums)
        equations = []
        if layer.spec.bias is None:
            equations.append(equation(z_name, [Form(products), Form(sp.MatMul(w, a), values), Form(weighted, values)]))
        else:
            bias_name = _named(self.name(layer.bias_vector), layer.units, 1)
            bias = _column(self.name(b) for b in layer.biases)
            equations.append(equation(products, [Form(sp.MatMul(w, a), values), Form(weighted, values)]))
            equations.append(
                equation(z_name, [Form(sp.MatAdd(products, bias_name)), Form(sp.MatAdd(weighted, bias), values),
                                  Form(_column(self.name(z) for z in layer.pre_activations), values)])
            )
        out_name = _named(self.vector(Kind.ACTIVATION, layer.number), layer.units, 1)
        z_symbol = self.vector(Kind.PRE_ACTIVATION, layer.number)
        activation = layer.activation
        if activation.elementwise:
            applied = activation.named.xreplace({PRE_ACTIVATION: z_symbol})
        else:
            applied = sp.Function(activation.name)(z_symbol)
        definitions = _column(layer.output(i).xreplace({z: self.name(z) for z in layer.pre_activations}) for i in range(layer.units))
        outputs = _column(self.name(o) for o in layer.outputs)
        equations.append(equation(out_name, [Form(applied), Form(definitions, values), Form(outputs, values)]))
        return MatrixLayer(layer.number, layer.is_output, tuple(equations))

    def backward(self, index: int, loss: sp.Symbol) -> MatrixLayer:
        network, values = self.network, self.values
        layer = network.layers[index]
        units = layer.units
        z_vector = self.vector(Kind.PRE_ACTIVATION, layer.number)
        a_vector = self.vector(Kind.ACTIVATION, layer.number)
        delta_name = _named(partial(loss, z_vector), units, 1)
        equations = []
        if network.direct_delta(layer):
            delta_numbers = _column(partial(loss, z) for z in layer.pre_activations)
            if layer.is_output and network.shortcut:
                prediction = _named(a_vector, units, 1)
                target = _named(symbol(Quantity(Kind.TARGET)), units, 1)
                forms = [Form(sp.MatAdd(prediction, sp.MatMul(-1, target))), Form(_column(network.delta(i) for i in range(units)), values)]
            else:  # a softmax: ∂E/∂z = Jᵀ ∂E/∂a
                equations.append(self._upstream(index, loss))
                jacobian_name = _named(partial(a_vector, z_vector), units, units)
                jacobian = sp.ImmutableMatrix([[partial(a, z) for z in layer.pre_activations] for a in layer.outputs])
                upstream = _column(partial(loss, a) for a in layer.outputs)
                equations.append(equation(jacobian_name, [Form(jacobian, values)]))
                upstream_name = _named(partial(loss, a_vector), units, 1)
                forms = [Form(sp.MatMul(sp.Transpose(jacobian_name), upstream_name)), Form(sp.MatMul(sp.Transpose(jacobian), upstream), values)]
            equations.append(equation(delta_name, forms + [Form(delta_numbers, values)]))
            delta = delta_numbers
        else:
            equations.append(self._upstream(index, loss))
            local_name = _named(partial(a_vector, z_vector), units, 1)
            local = _column(partial(a, z) for a, z in zip(layer.outputs, layer.pre_activations))
            prime = layer.activation.prime
            shown = [layer.activation.derivative_shown_with_outputs(layer.outputs, i, i) for i in range(units)]
            forms = [Form(prime(z_vector))] if prime is not None else []
            if all(s is not None for s in shown):
                forms.append(Form(_column(shown), values))
            elif prime is not None:
                forms.append(Form(_column(prime(z) for z in layer.pre_activations), values))
            equations.append(equation(local_name, forms + [Form(local, values)]))
            upstream = _column(partial(loss, a) for a in layer.outputs)
            upstream_name = _named(partial(loss, a_vector), units, 1)
            # ∂E/∂z is never rounded on its own here: it stays the product of its shown factors.
            equations.append(equation(delta_name, [Form(sp.HadamardProduct(upstream_name, local_name))]))
            delta = sp.HadamardProduct(upstream, local)
        a_name, a = self.inputs_of(layer)
        w_name, _ = self.weights(layer)
        gradient = sp.ImmutableMatrix([[partial(loss, w) for w in row] for row in layer.weights])
        lhs = _named(partial(loss, layer.weight_matrix), units, len(layer.inputs))
        equations.append(
            equation(lhs, [Form(sp.MatMul(delta_name, sp.Transpose(a_name))), Form(sp.MatMul(delta, sp.Transpose(a)), values), Form(gradient, values)])
        )
        if layer.spec.bias is not None and layer.spec.train_bias and not layer.spec.shared_bias:
            bias_lhs = _named(partial(loss, layer.bias_vector), units, 1)
            equations.append(equation(bias_lhs, [Form(delta_name), Form(delta, values), Form(_column(partial(loss, b) for b in layer.biases), values)]))
        return MatrixLayer(layer.number, layer.is_output, tuple(equations))

    def _upstream(self, index: int, loss: sp.Symbol) -> Equation:
        """∂E/∂a: the loss's derivative at the output; (W⁽ˡ⁺¹⁾)ᵀ ∂E/∂z⁽ˡ⁺¹⁾ below it."""
        network, values = self.network, self.values
        layer = network.layers[index]
        a_vector = self.vector(Kind.ACTIVATION, layer.number)
        lhs = _named(partial(loss, a_vector), layer.units, 1)
        result = _column(partial(loss, a) for a in layer.outputs)
        if layer.is_output:
            predictions, targets = network.predictions, network.targets
            steps = _column(network.loss.derivative_step(predictions, targets, k) for k in range(layer.units))
            derivatives = _column(network.loss.derivative(predictions, targets, k) for k in range(layer.units))
            return equation(lhs, [Form(steps), Form(derivatives), Form(derivatives, values), Form(result, values)])
        following = network.layers[index + 1]
        w_name, w = self.weights(following)
        next_z = self.vector(Kind.PRE_ACTIVATION, following.number)
        next_delta = _named(partial(loss, next_z), following.units, 1)
        if network.direct_delta(following):
            delta_numbers = _column(partial(loss, z) for z in following.pre_activations)
        else:
            delta_numbers = sp.HadamardProduct(
                _column(partial(loss, a) for a in following.outputs),
                _column(partial(a, z) for a, z in zip(following.outputs, following.pre_activations)),
            )
        named = sp.MatMul(sp.Transpose(w_name), next_delta)
        return equation(lhs, [Form(named), Form(sp.MatMul(sp.Transpose(w), delta_numbers), values), Form(result, values)])


def _forward_sample(network: Network, number: int, values, forward, star: bool) -> MatrixSample:
    builder = _Builder(network, values, star)
    layers = tuple(builder.forward(layer) for layer in network.layers)
    return MatrixSample(number, layers, forward.loss, (), forward.classification)


def matrix_view(solution: Solution) -> MatrixView:
    network = solution.network
    step = solution.detail
    many = len(step.samples) > 1
    samples = []
    for number, values, forward, worked in zip(step.samples, step.values, step.forward.samples, step.backward):
        loss = network.loss_symbol(number if many else None)
        builder = _Builder(network, values)
        notes = {layer.number: layer.notes for layer in worked.layers}
        backward = tuple(
            replace(builder.backward(index, loss), notes=notes[index + 1]) for index in range(len(network.layers) - 1, -1, -1)
        )
        forward_layers = tuple(builder.forward(layer) for layer in network.layers)
        samples.append(MatrixSample(number, forward_layers, forward.loss, backward, forward.classification))
    repeated = tuple(
        _forward_sample(network, number, values, forward, star=True)
        for number, values, forward in zip(step.samples, step.repeated_values, step.repeated.samples)
    )
    overall = network.loss_symbol()
    values = step.update_values
    combined = []
    updates = []
    for layer in network.layers:
        shape = (layer.units, len(layer.inputs))
        w_name = _named(layer.weight_matrix, *shape)
        gradient_name = _named(partial(overall, layer.weight_matrix), *shape)
        gradient = sp.ImmutableMatrix([[partial(overall, w) for w in row] for row in layer.weights])
        if many:
            terms = [_named(partial(network.loss_symbol(n), layer.weight_matrix), *shape) for n in step.samples]
            per_sample = [sp.ImmutableMatrix([[partial(network.loss_symbol(n), w) for w in row] for row in layer.weights]) for n in step.samples]
            def combined_form(matrices):
                total = sp.MatAdd(*matrices)
                return sp.MatMul(sp.Rational(1, len(matrices)), total) if step.batch == "mean" else total

            combined.append(
                equation(gradient_name, [Form(combined_form(terms)), Form(combined_form(per_sample), values), Form(gradient, values)])
            )
        new = _named(updated(layer.weight_matrix), *shape)
        rate = network.learning_rate
        named = sp.MatAdd(w_name, sp.MatMul(-rate, gradient_name))
        numbers = sp.MatAdd(sp.ImmutableMatrix([list(r) for r in layer.weights]), sp.MatMul(-rate, gradient))
        after = sp.ImmutableMatrix([[updated(w) for w in row] for row in layer.weights])
        updates.append(equation(new, [Form(named), Form(numbers, values), Form(after, values)]))
        if layer.spec.bias is not None and layer.spec.train_bias and not layer.spec.shared_bias:
            b_name = _named(layer.bias_vector, layer.units, 1)
            b_gradient_name = _named(partial(overall, layer.bias_vector), layer.units, 1)
            named = sp.MatAdd(b_name, sp.MatMul(-rate, b_gradient_name))
            numbers = sp.MatAdd(_column(layer.biases), sp.MatMul(-rate, _column(partial(overall, b) for b in layer.biases)))
            new_b = _named(updated(layer.bias_vector), layer.units, 1)
            updates.append(equation(new_b, [Form(named), Form(numbers, values), Form(_column(updated(b) for b in layer.biases), values)]))
    return MatrixView(tuple(samples), tuple(combined), tuple(updates), repeated)
