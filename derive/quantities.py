"""The named quantities of a network (parameters, pre-activations, losses, partial
derivatives) and the SymPy symbol that stands for each.

A quantity knows its JSON key; how it is written in LaTeX is the notation module's
business. Symbols are made through `symbol()` so that any symbol found in an
expression can be mapped back to its quantity (`quantity_of`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

import sympy as sp


class Kind(Enum):
    INPUT = "x"
    TARGET = "y"
    WEIGHT = "W"
    BIAS = "b"
    PRE_ACTIVATION = "z"
    ACTIVATION = "a"
    LOSS = "E"
    LEARNING_RATE = "eta"


@dataclass(frozen=True)
class Quantity:
    """One named value. `unit` None on a weight or bias means the whole matrix/vector
    (or a bias shared by the layer); `sample` numbers a per-sample loss from 1;
    `updated` marks the value after the gradient-descent update."""

    kind: Kind
    layer: int = 0
    unit: int | None = None
    source: int | None = None
    sample: int | None = None
    updated: bool = False
    shared: bool = False

    @property
    def key(self) -> str:
        """The JSON answer-key name (derive-solution/1)."""
        kind, layer, unit = self.kind, self.layer, self.unit
        if kind is Kind.WEIGHT:
            return f"W{layer}[{unit},{self.source}]"
        if kind is Kind.BIAS:
            return f"b{layer}" if self.shared else f"b{layer}[{unit}]"
        if kind in (Kind.PRE_ACTIVATION, Kind.ACTIVATION):
            return f"{kind.value}{layer}[{unit}]"
        if kind in (Kind.INPUT, Kind.TARGET):
            return f"{kind.value}[{unit}]"
        if kind is Kind.LOSS:
            return "loss"
        return kind.value

    def after_update(self) -> Quantity:
        return replace(self, updated=True)

    @property
    def _name(self) -> str:
        name = self.key if self.kind is not Kind.LOSS else "E"
        if self.unit is None and self.kind in (Kind.WEIGHT, Kind.BIAS) and not self.shared:
            name = f"{self.kind.value}{self.layer}[*]"  # the whole matrix or vector
        if self.sample is not None:
            name += f"@{self.sample}"
        return name + ("*" if self.updated else "")


@dataclass(frozen=True)
class Partial:
    """The partial derivative ∂of/∂wrt, as a quantity of its own."""

    of: Quantity
    wrt: Quantity

    @property
    def _name(self) -> str:
        return f"∂{self.of._name}/∂{self.wrt._name}"


_QUANTITIES: dict[sp.Symbol, Quantity | Partial] = {}


def symbol(quantity: Quantity | Partial) -> sp.Symbol:
    sym = sp.Symbol(quantity._name)
    known = _QUANTITIES.setdefault(sym, quantity)
    assert known == quantity, f"two quantities named {sym}"
    return sym


def quantity_of(sym: sp.Symbol) -> Quantity | Partial | None:
    return _QUANTITIES.get(sym)


def partial(of: sp.Symbol, wrt: sp.Symbol) -> sp.Symbol:
    return symbol(Partial(_QUANTITIES[of], _QUANTITIES[wrt]))


def updated(sym: sp.Symbol) -> sp.Symbol:
    """The symbol of the same quantity after the update (w → w*)."""
    return symbol(_QUANTITIES[sym].after_update())
