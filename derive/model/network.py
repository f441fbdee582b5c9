"""The network as SymPy expressions: a symbol for every input, parameter,
pre-activation and activation, each layer's pre-activation and activation written in
those symbols, and the per-sample loss written in the outputs and targets."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Mapping

import sympy as sp

from . import functions
from .functions import LOSSES, Activation, Loss, activation
from .quantities import Kind, Quantity, quantity_of, symbol
from ..spec.schema import Layer, Spec


@dataclass(frozen=True)
class NetworkLayer:
    number: int  # from 1, as in the JSON keys
    spec: Layer
    activation: Activation
    inputs: tuple[sp.Symbol, ...]  # the previous layer's outputs, or the inputs x
    weights: tuple[tuple[sp.Symbol, ...], ...]
    biases: tuple[sp.Symbol | None, ...]  # the bias that feeds each unit
    pre_activations: tuple[sp.Symbol, ...]
    outputs: tuple[sp.Symbol, ...]
    is_output: bool

    @property
    def units(self) -> int:
        return len(self.outputs)

    @property
    def weight_matrix(self) -> sp.Symbol:
        return symbol(Quantity(Kind.WEIGHT, self.number))

    @property
    def bias_vector(self) -> sp.Symbol:
        return symbol(Quantity(Kind.BIAS, self.number))

    @property
    def weighted_sums(self) -> tuple[sp.Symbol, ...]:
        """Σ_j w_ij a_j of each unit: its pre-activation before the bias."""
        return tuple(symbol(Quantity(Kind.WEIGHTED_SUM, self.number, i)) for i in range(self.units))

    @property
    def bias_parameters(self) -> tuple[sp.Symbol, ...]:
        return tuple(dict.fromkeys(b for b in self.biases if b is not None))

    @property
    def parameters(self) -> tuple[sp.Symbol, ...]:
        return tuple(w for row in self.weights for w in row) + self.bias_parameters

    @property
    def trainable(self) -> tuple[sp.Symbol, ...]:
        weights = tuple(w for row in self.weights for w in row)
        return weights + (self.bias_parameters if self.spec.train_bias else ())

    def pre_activation(self, unit: int, rename: Mapping[sp.Symbol, sp.Symbol] | None = None) -> sp.Expr:
        """z_i = Σ_j w_ij a_j + b_i, kept in this order for display; `rename` swaps
        symbols (for the starred values after an update) without reordering."""
        if not rename:
            return self._pre_activations[unit]
        return self._pre_activation(unit, rename)

    @cached_property
    def _pre_activations(self) -> tuple[sp.Expr, ...]:
        """Each unit's z, built once: a wide layer's backward pass asks for it per weight."""
        return tuple(self._pre_activation(unit, None) for unit in range(self.units))

    def _pre_activation(self, unit: int, rename: Mapping[sp.Symbol, sp.Symbol] | None) -> sp.Expr:
        name = (lambda s: rename.get(s, s)) if rename else (lambda s: s)
        terms = [sp.Mul(name(w), name(a), evaluate=False) for w, a in zip(self.weights[unit], self.inputs)]
        if self.biases[unit] is not None:
            terms.append(name(self.biases[unit]))
        return terms[0] if len(terms) == 1 else sp.Add(*terms, evaluate=False)

    def output(self, unit: int) -> sp.Expr:
        return self.activation.unit_output(self.pre_activations, unit)

    def multiplier(self, parameter: sp.Symbol, unit: int) -> sp.Expr:
        """∂z_unit/∂parameter: the input a weight multiplies, 1 for a bias."""
        if parameter == self.biases[unit]:
            return sp.S.One
        return self.inputs[self._sources[parameter]]

    def units_fed_by(self, parameter: sp.Symbol) -> tuple[int, ...]:
        return self._fed.get(parameter, ())

    @cached_property
    def _sources(self) -> dict[sp.Symbol, int]:
        """Each weight's input position (a lookup: a wide layer asks for it per unit and sample)."""
        return {w: j for row in self.weights for j, w in enumerate(row)}

    @cached_property
    def _fed(self) -> dict[sp.Symbol, tuple[int, ...]]:
        """The units each weight and bias feeds."""
        fed: dict[sp.Symbol, list[int]] = {}
        for i in range(self.units):
            for parameter in dict.fromkeys((*self.weights[i], *((self.biases[i],) if self.biases[i] is not None else ()))):
                fed.setdefault(parameter, []).append(i)
        return {p: tuple(units) for p, units in fed.items()}


class Network:
    def __init__(self, spec: Spec, shortcut: bool = True):
        self.spec = spec
        self.inputs = tuple(symbol(Quantity(Kind.INPUT, unit=j)) for j in range(spec.inputs))
        self.targets = tuple(symbol(Quantity(Kind.TARGET, unit=k)) for k in range(spec.outputs))
        self.learning_rate = symbol(Quantity(Kind.LEARNING_RATE))
        self.loss: Loss = LOSSES[spec.loss]
        layers = []
        previous = self.inputs
        for index, layer in enumerate(spec.layers):
            number = index + 1
            weights = tuple(
                tuple(symbol(Quantity(Kind.WEIGHT, number, i, j)) for j in range(len(previous)))
                for i in range(layer.units)
            )
            if layer.bias is None:
                biases: tuple[sp.Symbol | None, ...] = (None,) * layer.units
            elif layer.shared_bias:
                biases = (symbol(Quantity(Kind.BIAS, number, shared=True)),) * layer.units
            else:
                biases = tuple(symbol(Quantity(Kind.BIAS, number, i)) for i in range(layer.units))
            outputs = tuple(symbol(Quantity(Kind.ACTIVATION, number, i)) for i in range(layer.units))
            layers.append(
                NetworkLayer(
                    number=number,
                    spec=layer,
                    activation=activation(layer.activation, layer.alpha),
                    inputs=previous,
                    weights=weights,
                    biases=biases,
                    pre_activations=tuple(symbol(Quantity(Kind.PRE_ACTIVATION, number, i)) for i in range(layer.units)),
                    outputs=outputs,
                    is_output=index == len(spec.layers) - 1,
                )
            )
            previous = outputs
        self.layers: tuple[NetworkLayer, ...] = tuple(layers)
        output = self.layers[-1]
        # ∂E/∂z of the output layer in one step (ŷ − y) where the factors simplify.
        self.shortcut = shortcut and bool(
            functions.shortcut(output.activation.name, spec.loss, self.predictions, self.targets, 0) is not None
        )

    def delta(self, unit: int) -> sp.Expr:
        """∂E/∂z of an output unit, simplified (only when `shortcut`)."""
        return functions.shortcut(self.output_layer.activation.name, self.spec.loss, self.predictions, self.targets, unit)

    def direct_delta(self, layer: NetworkLayer) -> bool:
        """Whether the layer's ∂E/∂z_i is one factor rather than ∂E/∂a_i · ∂a_i/∂z_i: for a
        softmax (which couples the units) and for an output layer with a shortcut."""
        return not layer.activation.elementwise or (layer.is_output and self.shortcut)

    @property
    def output_layer(self) -> NetworkLayer:
        return self.layers[-1]

    @property
    def predictions(self) -> tuple[sp.Symbol, ...]:
        return self.output_layer.outputs

    @cached_property
    def parameters(self) -> tuple[sp.Symbol, ...]:
        return tuple(p for layer in self.layers for p in layer.parameters)

    @cached_property
    def position(self) -> dict[sp.Symbol, int]:
        """Each parameter's index in `parameters` (and in every vector of parameter values)."""
        return {p: k for k, p in enumerate(self.parameters)}

    @cached_property
    def trainable(self) -> tuple[sp.Symbol, ...]:
        return tuple(p for layer in self.layers for p in layer.trainable)

    @cached_property
    def trainable_keys(self) -> tuple[tuple[int, str], ...]:
        """Each trainable parameter's position in `parameters` and its key (W1[0,1], b2[0])."""
        trainable = set(self.trainable)
        return tuple((k, quantity_of(p).key) for k, p in enumerate(self.parameters) if p in trainable)

    @cached_property
    def forward_keys(self) -> tuple[str, ...]:
        """The keys of a forward pass's values, layer by layer: the pre-activations, then the activations."""
        return tuple(quantity_of(q).key for layer in self.layers for q in (*layer.pre_activations, *layer.outputs))

    def initial_values(self) -> tuple[float, ...]:
        """The spec's parameter values, in the order of `parameters`."""
        values = []
        for layer in self.spec.layers:
            values += [w for row in layer.weights for w in row]
            if layer.bias is not None:
                values += [layer.bias] if layer.shared_bias else list(layer.bias)
        return tuple(values)

    def loss_symbol(self, sample: int | None = None, updated: bool = False) -> sp.Symbol:
        return symbol(Quantity(Kind.LOSS, sample=sample, updated=updated))

    @cached_property
    def per_sample_loss(self) -> sp.Expr:
        return self.loss.per_sample(self.predictions, self.targets)

    def layer_of(self, parameter: sp.Symbol) -> NetworkLayer:
        return next(layer for layer in self.layers if parameter in layer.parameters)
