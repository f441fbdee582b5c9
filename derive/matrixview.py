"""The first update written in vectors and matrices (the matrix notation), for networks
too large to write out weight by weight:

    z⁽ˡ⁾ = W⁽ˡ⁾ a⁽ˡ⁻¹⁾ + b⁽ˡ⁾,   ∂E/∂z⁽ˡ⁾ = ((W⁽ˡ⁺¹⁾)ᵀ ∂E/∂z⁽ˡ⁺¹⁾) ⊙ ∂a⁽ˡ⁾/∂z⁽ˡ⁾,
    ∂E/∂W⁽ˡ⁾ = ∂E/∂z⁽ˡ⁾ (a⁽ˡ⁻¹⁾)ᵀ,   W⁽ˡ⁾* = W⁽ˡ⁾ − η ∂E/∂W⁽ˡ⁾.

Built from the same solution record and the same numbers as the unit-by-unit view: each
equation is a matrix expression, shown with names, then with the matrices of numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .network import Network, NetworkLayer
from .quantities import Kind, Quantity, partial, symbol, updated
from .solution import Equation, Form, Solution, equation


@dataclass(frozen=True)
class MatrixLayer:
    number: int
    is_output: bool
    forward: tuple[Equation, ...]  # z = W a + b, a = f(z)
    backward: tuple[Equation, ...]  # ∂E/∂z, ∂E/∂W, ∂E/∂b


@dataclass(frozen=True)
class MatrixSample:
    sample: int  # from 1
    forward: tuple[MatrixLayer, ...]  # input side first
    loss: Equation
    backward: tuple[MatrixLayer, ...]  # output side first


@dataclass(frozen=True)
class MatrixView:
    samples: tuple[MatrixSample, ...]
    combined: tuple[Equation, ...]  # the batch's gradients from the samples' (several samples)
    updates: tuple[Equation, ...]


def _vector(quantity: Quantity) -> sp.Symbol:
    return symbol(quantity)


def _named(sym: sp.Symbol, rows: int, columns: int) -> sp.MatrixSymbol:
    """A matrix named by a quantity's symbol: the printer writes it in the notation."""
    return sp.MatrixSymbol(sym.name, rows, columns)


def _column(symbols) -> sp.ImmutableMatrix:
    return sp.ImmutableMatrix([[s] for s in symbols])


def _form_pair(named: sp.Basic, numbers: sp.Basic, values) -> list[Form]:
    return [Form(named), Form(numbers, values)]


class _Builder:
    def __init__(self, network: Network):
        self.network = network

    def inputs_of(self, layer: NetworkLayer) -> tuple[sp.MatrixSymbol, sp.ImmutableMatrix]:
        if layer.number == 1:
            name = _vector(Quantity(Kind.INPUT))
        else:
            name = _vector(Quantity(Kind.ACTIVATION, layer.number - 1))
        return _named(name, len(layer.inputs), 1), _column(layer.inputs)

    def weights(self, layer: NetworkLayer) -> tuple[sp.MatrixSymbol, sp.ImmutableMatrix]:
        return _named(layer.weight_matrix, layer.units, len(layer.inputs)), sp.ImmutableMatrix([list(r) for r in layer.weights])

    def bias(self, layer: NetworkLayer) -> tuple[sp.MatrixSymbol, sp.ImmutableMatrix] | None:
        if layer.spec.bias is None:
            return None
        return _named(layer.bias_vector, layer.units, 1), _column(layer.biases)

    def forward(self, layer: NetworkLayer, values) -> MatrixLayer:
        w_name, w = self.weights(layer)
        a_name, a = self.inputs_of(layer)
        z_symbol = _vector(Quantity(Kind.PRE_ACTIVATION, layer.number))
        z = _column(layer.pre_activations)
        named, numbers = sp.MatMul(w_name, a_name), sp.MatMul(w, a)
        bias = self.bias(layer)
        if bias is not None:
            named, numbers = sp.MatAdd(named, bias[0]), sp.MatAdd(numbers, bias[1])
        pre = equation(_named(z_symbol, layer.units, 1), _form_pair(named, numbers, values) + [Form(z, values)])
        out_symbol = _vector(Quantity(Kind.ACTIVATION, layer.number))
        applied = layer.activation.applied
        function = applied.func(z_symbol) if applied is not None else layer.activation.label
        forms = [Form(function)] if applied is not None else []
        out = equation(_named(out_symbol, layer.units, 1), forms + [Form(_column(layer.outputs), values)])
        return MatrixLayer(layer.number, layer.is_output, (pre, out), ())

    def delta(self, index: int, loss: sp.Symbol, values) -> Equation:
        network = self.network
        layer = network.layers[index]
        z_vector = _vector(Quantity(Kind.PRE_ACTIVATION, layer.number))
        a_vector = _vector(Quantity(Kind.ACTIVATION, layer.number))
        lhs = _named(partial(loss, z_vector), layer.units, 1)
        deltas = _column([partial(loss, z) for z in layer.pre_activations])
        if layer.is_output and network.shortcut:
            prediction = _named(a_vector, layer.units, 1)
            target = _named(_vector(Quantity(Kind.TARGET)), layer.units, 1)
            named = sp.MatAdd(prediction, sp.MatMul(-1, target))
            numbers = sp.MatAdd(_column(layer.outputs), sp.MatMul(-1, _column(network.targets)))
            return equation(lhs, _form_pair(named, numbers, values) + [Form(deltas, values)])
        if layer.is_output:
            upstream_name = _named(partial(loss, a_vector), layer.units, 1)
            upstream = _column([partial(loss, a) for a in layer.outputs])
        else:
            following = network.layers[index + 1]
            w_name, w = self.weights(following)
            next_z = _vector(Quantity(Kind.PRE_ACTIVATION, following.number))
            upstream_name = sp.MatMul(sp.Transpose(w_name), _named(partial(loss, next_z), following.units, 1))
            upstream = sp.MatMul(sp.Transpose(w), _column([partial(loss, z) for z in following.pre_activations]))
        if layer.activation.elementwise:
            local_name = _named(partial(a_vector, z_vector), layer.units, 1)
            local = _column([partial(a, z) for a, z in zip(layer.outputs, layer.pre_activations)])
            named, numbers = sp.HadamardProduct(upstream_name, local_name), sp.HadamardProduct(upstream, local)
        else:  # the Jacobian of a softmax: ∂E/∂z = Jᵀ ∂E/∂a
            jacobian_name = _named(partial(a_vector, z_vector), layer.units, layer.units)
            jacobian = sp.ImmutableMatrix([[partial(a, z) for z in layer.pre_activations] for a in layer.outputs])
            named, numbers = sp.MatMul(sp.Transpose(jacobian_name), upstream_name), sp.MatMul(sp.Transpose(jacobian), upstream)
        return equation(lhs, _form_pair(named, numbers, values) + [Form(deltas, values)])

    def gradients(self, layer: NetworkLayer, loss: sp.Symbol, values) -> list[Equation]:
        z_vector = _vector(Quantity(Kind.PRE_ACTIVATION, layer.number))
        delta_name = _named(partial(loss, z_vector), layer.units, 1)
        delta = _column([partial(loss, z) for z in layer.pre_activations])
        a_name, a = self.inputs_of(layer)
        w_name, _ = self.weights(layer)
        result = sp.ImmutableMatrix([[partial(loss, w) for w in row] for row in layer.weights])
        lhs = _named(partial(loss, layer.weight_matrix), layer.units, len(layer.inputs))
        forms = _form_pair(sp.MatMul(delta_name, sp.Transpose(a_name)), sp.MatMul(delta, sp.Transpose(a)), values)
        equations = [equation(lhs, forms + [Form(result, values)])]
        if layer.spec.bias is not None and layer.spec.train_bias and not layer.spec.shared_bias:
            bias_lhs = _named(partial(loss, layer.bias_vector), layer.units, 1)
            equations.append(equation(bias_lhs, [Form(delta_name), Form(_column([partial(loss, b) for b in layer.biases]), values)]))
        return equations


def matrix_view(solution: Solution) -> MatrixView:
    network = solution.network
    step = solution.detail
    builder = _Builder(network)
    many = len(step.samples) > 1
    samples = []
    for number, values, forward in zip(step.samples, step.values, step.forward.samples):
        loss = network.loss_symbol(number if many else None)
        layers_forward = tuple(builder.forward(layer, values) for layer in network.layers)
        backward = []
        for index in range(len(network.layers) - 1, -1, -1):
            layer = network.layers[index]
            backward.append(
                MatrixLayer(layer.number, layer.is_output, (), (builder.delta(index, loss, values), *builder.gradients(layer, loss, values)))
            )
        samples.append(MatrixSample(number, layers_forward, forward.loss, tuple(backward)))
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
            scale = sp.Rational(1, len(terms)) if step.batch == "mean" else 1
            combined.append(
                equation(gradient_name, [Form(sp.MatMul(scale, sp.MatAdd(*terms))), Form(sp.MatMul(scale, sp.MatAdd(*per_sample)), values), Form(gradient, values)])
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
            numbers = sp.MatAdd(_column(layer.biases), sp.MatMul(-rate, _column([partial(overall, b) for b in layer.biases])))
            new_b = _named(updated(layer.bias_vector), layer.units, 1)
            updates.append(equation(new_b, [Form(named), Form(numbers, values), Form(_column([updated(b) for b in layer.biases]), values)]))
    return MatrixView(tuple(samples), tuple(combined), tuple(updates))

