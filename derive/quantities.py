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
    WEIGHTED_SUM = "s"  # Σ_j w_ij a_j, the pre-activation before its bias
    PRE_ACTIVATION = "z"
    ACTIVATION = "a"
    LOSS = "E"
    LEARNING_RATE = "eta"
    PARAMETER = "theta"  # any weight or bias, in a rule stated once for all of them


# Indices that stand for any unit (i), any input of a unit (j), any sample (n): the general
# forms stated once per layer (∂z_i/∂w_ij = a_j) and the rows of per-sample tables.
ANY_UNIT = -1
ANY_SOURCE = -2
ANY_SAMPLE = -3


@dataclass(frozen=True)
class Quantity:
    """One named value. `unit` None on a weight or bias means the whole matrix/vector
    (or a bias shared by the layer); `sample` numbers a per-sample loss from 1;
    `updated` marks the value after the first gradient-descent update, `final` the value
    after the last of several."""

    kind: Kind
    layer: int = 0
    unit: int | None = None
    source: int | None = None
    sample: int | None = None
    updated: bool = False
    shared: bool = False
    final: bool = False

    @property
    def key(self) -> str:
        """The JSON answer-key name (derive-solution/1)."""
        kind, layer, unit = self.kind, self.layer, self.unit
        if kind is Kind.WEIGHT:
            return f"W{layer}[{unit},{self.source}]"
        if kind is Kind.BIAS:
            return f"b{layer}" if self.shared else f"b{layer}[{unit}]"
        if kind in (Kind.PRE_ACTIVATION, Kind.ACTIVATION, Kind.WEIGHTED_SUM):
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
        return name + ("*" if self.updated else "") + ("^final" if self.final else "")


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


def final(sym: sp.Symbol) -> sp.Symbol:
    """The symbol of the same quantity after the last of several updates."""
    return symbol(replace(_QUANTITIES[sym], final=True))


def for_sample(sym: sp.Symbol, sample: int) -> sp.Symbol:
    """The symbol of a loss (or of a partial derivative of a loss) for one sample; ANY_SAMPLE
    names the loss of sample n."""
    quantity = _QUANTITIES[sym]
    if isinstance(quantity, Partial):
        return symbol(Partial(replace(quantity.of, sample=sample), quantity.wrt))
    return symbol(replace(quantity, sample=sample))
