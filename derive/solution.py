"""The worked solution as a plain record: equations (SymPy expressions plus the numbers
to substitute) and values. Templates only format it; `to_dict` is the JSON answer key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

import sympy as sp

from .figures import Diagram, LossCurve
from .network import Network
from .numeric import Forward, ParameterUpdate
from .quantities import quantity_of
from .spec import Rounding, Spec

FORMAT = "derive-solution/1"


@dataclass(frozen=True, eq=False)
class Form:
    """One right-hand side: an expression, shown with symbols (values None) or with
    every symbol that has a value replaced by its number."""

    expr: sp.Basic
    values: Mapping[sp.Symbol, float] | None = None


@dataclass(frozen=True, eq=False)
class Equation:
    """lhs = forms… = value, as one displayed line."""

    lhs: sp.Basic
    forms: tuple[Form, ...]
    value: float | None = None


def equation(lhs: sp.Basic, forms: list[Form], value: float | None = None) -> Equation:
    """An equation without the forms a reader would find repeated: a form identical to
    the one before, a lone substituted symbol (it is the value), a value after a constant."""
    kept: list[Form] = []
    for form in forms:
        if kept and kept[-1].expr == form.expr and (kept[-1].values is None) == (form.values is None):
            continue
        if kept and kept[-1].values is None and form.values is not None and not (form.expr.free_symbols & set(form.values)):
            continue  # nothing to substitute: the numbers form would repeat the symbolic one
        if form.values is not None and form.expr.is_Symbol and value is not None:
            continue
        kept.append(form)
    if kept and kept[-1].expr.is_Number and value is not None and float(kept[-1].expr) == value:
        value = None
    return Equation(lhs, tuple(kept), value)


class LossChange(Enum):
    FELL = "fell"
    ROSE = "rose"
    UNCHANGED = "unchanged"


class NoteKind(Enum):
    INACTIVE = "inactive"  # a ReLU with z < 0 for this sample: no gradient flows through it
    AT_KINK = "at_kink"  # a (leaky) ReLU with z exactly 0: the left derivative is taken
    DEAD = "dead"  # a ReLU active at the start, with z <= 0 for every sample after training
    NEVER_ACTIVE = "never_active"  # a ReLU with z <= 0 for every sample, before and after


@dataclass(frozen=True)
class Note:
    kind: NoteKind
    unit: sp.Symbol  # the unit's activation
    pre_activation: sp.Symbol
    value: float  # the pre-activation's value
    sample: int | None = None  # from 1
    slope: float | None = None  # the derivative taken at a kink (the left one)


@dataclass(frozen=True)
class LayerForward:
    number: int
    activation: str
    is_output: bool
    pre_activations: tuple[Equation, ...]
    activations: tuple[Equation, ...]


@dataclass(frozen=True)
class SampleForward:
    sample: int  # from 1
    layers: tuple[LayerForward, ...]
    loss: Equation
    prediction: tuple[float, ...]


@dataclass(frozen=True)
class ForwardPass:
    samples: tuple[SampleForward, ...]
    loss: Equation  # the combined loss (the sample's own loss when there is one sample)
    value: float


@dataclass(frozen=True)
class ParameterGradient:
    parameter: sp.Symbol
    factors: tuple[Equation, ...]  # ∂z_i/∂θ for each unit θ feeds
    gradient: Equation  # the Leibniz product, its numbers, the result


@dataclass(frozen=True)
class LayerBackward:
    number: int
    following: int | None  # the layer whose factors this layer's ∂E/∂a reuses
    activation: str
    is_output: bool
    elementwise: bool
    shortcut: bool  # ∂E/∂z = ŷ − y in one step: no ∂E/∂a and ∂a/∂z shown
    upstream: tuple[Equation, ...]  # ∂E/∂a per unit (reused by every parameter of the unit)
    local: tuple[Equation, ...]  # ∂a_k/∂z_i
    deltas: tuple[Equation, ...]  # ∂E/∂z_i, for layers whose activation is not elementwise
    parameters: tuple[ParameterGradient, ...]
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class SampleBackward:
    sample: int
    layers: tuple[LayerBackward, ...]


@dataclass(frozen=True)
class DetailedStep:
    """The first update, written out in full."""

    samples: tuple[int, ...]  # from 1
    forward: ForwardPass
    backward: tuple[SampleBackward, ...]
    combined: tuple[Equation, ...]  # ∂E/∂θ from the per-sample gradients (several samples)
    batch: str  # "mean" or "sum", how `combined` is formed
    updates: tuple[Equation, ...]
    repeated: ForwardPass  # the same samples, with the updated parameters
    loss_change: LossChange
    frozen: tuple[sp.Symbol, ...]  # parameters that are not trained
    # Every number of the step by symbol: per sample, and for the update (other views use them).
    values: tuple[Mapping[sp.Symbol, float], ...] = ()
    update_values: Mapping[sp.Symbol, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerDescription:
    number: int
    units: int
    activation: str
    is_output: bool
    weights: Equation
    bias: Equation | None
    shared_bias: bool
    train_bias: bool


@dataclass(frozen=True)
class NetworkDescription:
    inputs: int
    layers: tuple[LayerDescription, ...]
    activations: tuple[tuple[Equation, Equation], ...]  # definition and derivative of each activation used
    loss: Equation
    loss_label: str
    learning_rate: Equation
    shortcut: Equation | None  # ∂E/∂z of the output layer simplified, derived once


@dataclass(frozen=True)
class DataTable:
    headers: tuple[sp.Symbol, ...]
    rows: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class SummaryRow:
    symbol: sp.Basic
    values: tuple[float, ...]


@dataclass(frozen=True)
class Summary:
    """The final values alone (--detail answers): the first update's forward values per
    sample, its loss, each parameter's gradient and updated value."""

    samples: tuple[int, ...]  # from 1
    forward: tuple[SummaryRow, ...]
    loss: SummaryRow
    gradients: tuple[SummaryRow, ...]  # the gradient's symbol; values: (gradient, updated value)
    updated: tuple[sp.Symbol, ...]


@dataclass(frozen=True)
class LossRow:
    step: int
    samples: tuple[int, ...]  # from 1
    loss: float


@dataclass(frozen=True)
class Training:
    """Several updates: the loss before each (a selection when there are many) and the end."""

    rows: tuple[LossRow, ...]
    per_sample: bool  # one update per sample: the rows say which
    updates: int
    all_rows: bool
    final_parameters: tuple[Equation, ...]
    final_loss: float
    initial_loss: float
    curve: LossCurve


@dataclass(frozen=True, eq=False)
class Solution:
    spec: Spec
    network: Network = field(repr=False)
    description: NetworkDescription = field(repr=False)
    data: DataTable = field(repr=False)
    diagram: Diagram = field(repr=False)
    detail: DetailedStep = field(repr=False)
    summary: Summary = field(repr=False)
    training: Training | None = field(repr=False)
    notes: tuple[Note, ...]  # about the trained network (dead units)
    updates: tuple[ParameterUpdate, ...] = field(repr=False)
    final: tuple[Forward, ...] = field(repr=False)
    final_loss: float = 0.0
    rounding: Rounding = Rounding.EXACT
    digits: int = 3  # the decimals carried (rounding CARRY)

    @property
    def title(self) -> str:
        return self.spec.title

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer key (format derive-solution/1); full double precision."""
        network = self.network
        trainable_set = set(network.trainable)
        trainable = [n for n, p in enumerate(network.parameters) if p in trainable_set]
        keys = [_key(p) for p in network.parameters]
        steps = []
        for update in self.updates:
            steps.append(
                {
                    "step": update.step,
                    "forward": [self._record(f) for f in update.forwards],
                    "loss": update.loss,
                    "gradients": {keys[n]: update.gradient[n] for n in trainable},
                    "updated": {keys[n]: update.after[n] for n in trainable},
                }
            )
        rounding = {"mode": self.rounding.value}
        if self.rounding is Rounding.CARRY:
            rounding["digits"] = self.digits
        return {
            "format": FORMAT,
            "title": self.title,
            "rounding": rounding,
            "steps": steps,
            "final": {"forward": [self._record(f) for f in self.final], "loss": self.final_loss},
        }

    def _record(self, forward: Forward) -> dict[str, float]:
        record: dict[str, float] = {}
        for layer, pre, out in zip(self.network.layers, forward.pre, forward.out):
            for z, a, z_value, a_value in zip(layer.pre_activations, layer.outputs, pre, out):
                record[_key(z)] = z_value
                record[_key(a)] = a_value
        record["loss"] = forward.loss
        return record

    def _repr_markdown_(self) -> str:
        from .render import render

        return render(self, "md")


def _key(sym: sp.Symbol) -> str:
    return quantity_of(sym).key
