"""How quantities are written: the LaTeX name of every symbol.

The derivation never looks here; a notation only maps quantities to LaTeX, so other
notations can be added without touching the derivation.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from . import functions
from .quantities import Kind, Partial, Quantity, quantity_of

_SUBSCRIPT = str.maketrans("0123456789,", "₀₁₂₃₄₅₆₇₈₉,")
_SUPERSCRIPT = str.maketrans("0123456789()*", "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾*")


def _index(*indices: int) -> str:
    # w_{12} is unambiguous only while every index is one digit.
    if any(i > 9 for i in indices):
        return ",".join(str(i) for i in indices)
    return "".join(str(i) for i in indices)


@dataclass(frozen=True)
class LayeredNotation:
    """Layer-indexed notation: w^{(l)}_{ij}, b^{(l)}_i, z^{(l)}_i, a^{(l)}_i, ŷ, E, η."""

    output_layer: int
    outputs: int
    samples: int

    name = "layered"
    learning_rate = r"\eta"
    loss = "E"
    generic = {
        functions.PRE_ACTIVATION: "z",
        functions.OUTPUT: "a",
        functions.PREDICTIONS.label: r"\hat{y}",
        functions.TARGETS.label: "y",
        functions.UNIT: "i",
        functions.TERM: "k",
        functions.COUNT: "K",
    }

    def latex(self, quantity: Quantity | Partial) -> str:
        if isinstance(quantity, Partial):
            return rf"\frac{{\partial {self.latex(quantity.of)}}}{{\partial {self.latex(quantity.wrt)}}}"
        star = "*" if quantity.updated else ""
        kind, layer, unit = quantity.kind, quantity.layer, quantity.unit
        if kind is Kind.INPUT:
            return f"x_{{{unit}}}"
        if kind is Kind.TARGET:
            return "y" if self.outputs == 1 else f"y_{{{unit}}}"
        if kind is Kind.LEARNING_RATE:
            return self.learning_rate
        if kind is Kind.LOSS:
            sample = f"_{{{quantity.sample}}}" if quantity.sample is not None and self.samples > 1 else ""
            return f"{self.loss}{sample}^{{{star}}}" if star else f"{self.loss}{sample}"
        if kind is Kind.ACTIVATION and layer == self.output_layer:
            base = r"\hat{y}" if self.outputs == 1 else rf"\hat{{y}}_{{{unit}}}"
            return f"{base}^{{{star}}}" if star else base
        if kind is Kind.WEIGHT and unit is None:
            return f"W^{{({layer}){star}}}"
        letter = {Kind.WEIGHT: "w", Kind.BIAS: "b", Kind.PRE_ACTIVATION: "z", Kind.ACTIVATION: "a"}[kind]
        if unit is None:
            return f"{letter}^{{({layer}){star}}}"
        indices = _index(unit, quantity.source) if kind is Kind.WEIGHT else _index(unit)
        return f"{letter}^{{({layer}){star}}}_{{{indices}}}"

    def text(self, quantity: Quantity) -> str:
        """The symbol as plain Unicode text (for pictures that cannot typeset LaTeX): a⁽¹⁾₀, ŷ, x₂."""
        kind, layer, unit = quantity.kind, quantity.layer, quantity.unit
        star = "*" if quantity.updated else ""
        if kind is Kind.INPUT:
            return "x" + str(unit).translate(_SUBSCRIPT)
        if kind is Kind.ACTIVATION and layer == self.output_layer:
            return "ŷ" + star + ("" if self.outputs == 1 else str(unit).translate(_SUBSCRIPT))
        letter = {Kind.WEIGHT: "w", Kind.BIAS: "b", Kind.PRE_ACTIVATION: "z", Kind.ACTIVATION: "a"}[kind]
        indices = "" if unit is None else (_index(unit, quantity.source) if kind is Kind.WEIGHT else _index(unit))
        return letter + f"({layer}){star}".translate(_SUPERSCRIPT) + indices.translate(_SUBSCRIPT)

    def symbol_names(self, symbols) -> dict[sp.Symbol, str]:
        """LaTeX names for every symbol of `symbols` that is a quantity or a generic symbol."""
        names = dict(self.generic)
        for sym in symbols:
            quantity = quantity_of(sym)
            if quantity is not None:
                names[sym] = self.latex(quantity)
        return names


NOTATIONS = {"layered": LayeredNotation}
