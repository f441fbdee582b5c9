"""The named quantities of a network (parameters, pre-activations, losses, partial
derivatives) and the SymPy symbol that stands for each.

A quantity knows its JSON key; how it is written in LaTeX is the notation module's
business. Symbols are made through `symbol()` so that any symbol found in an
expression can be mapped back to its quantity (`quantity_of`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from functools import cached_property

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
    OBJECTIVE = "J"  # the loss plus the weight-decay penalty (λ/2) Σ w²
    HYPERPARAMETER = "hyper"  # a setting of the update rule (β₁, μ, ε) or the weight decay λ, by `name`
    UPDATE_COUNT = "t"  # the number of the update, from 1 (Adam's bias correction)
    NODE = "node"  # an input or a gate of a computational graph, by `name`
    SQUARED_WEIGHTS = "sum_w2"  # Σ w² over every weight, the weight-decay penalty's sum


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
    state: str | None = None  # on a parameter: the update rule's value of that name for it (m, v, m_hat)
    name: str | None = None  # a hyperparameter's name (beta1, weight_decay)

    @cached_property
    def key(self) -> str:
        """The JSON answer-key name (derive-solution/1)."""
        kind, layer, unit = self.kind, self.layer, self.unit
        if self.state is not None:
            return f"{self.state}:{replace(self, state=None, updated=False, final=False).key}"
        if kind in (Kind.HYPERPARAMETER, Kind.NODE):
            return str(self.name)
        if kind is Kind.OBJECTIVE:
            return "loss"
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
        name = {Kind.LOSS: "E", Kind.OBJECTIVE: "J", Kind.HYPERPARAMETER: f"hyper:{self.name}", Kind.NODE: f"node:{self.name}"}.get(self.kind) or self.key
        if self.state is not None:
            name = f"{self.state}:{replace(self, state=None, updated=False, final=False)._name}"
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


_SYMBOLS: dict[Quantity | Partial, sp.Symbol] = {}


def symbol(quantity: Quantity | Partial) -> sp.Symbol:
    sym = _SYMBOLS.get(quantity)
    if sym is not None:
        return sym
    sym = sp.Symbol(quantity._name)
    known = _QUANTITIES.setdefault(sym, quantity)
    assert known == quantity, f"two quantities named {sym}"
    _SYMBOLS[quantity] = sym
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


def state_of(sym: sp.Symbol, name: str, after: bool = True) -> sp.Symbol:
    """The symbol of the update rule's value `name` for a parameter (m of w): after the
    update (starred) or before it."""
    return symbol(replace(_QUANTITIES[sym], state=name, updated=after))


def hyperparameter(name: str) -> sp.Symbol:
    return symbol(Quantity(Kind.HYPERPARAMETER, name=name))


def node(name: str) -> sp.Symbol:
    """An input or a gate of a computational graph."""
    return symbol(Quantity(Kind.NODE, name=name))


def for_sample(sym: sp.Symbol, sample: int) -> sp.Symbol:
    """The symbol of a loss (or of a partial derivative of a loss) for one sample; ANY_SAMPLE
    names the loss of sample n."""
    quantity = _QUANTITIES[sym]
    if isinstance(quantity, Partial):
        return symbol(Partial(replace(quantity.of, sample=sample), quantity.wrt))
    return symbol(replace(quantity, sample=sample))
