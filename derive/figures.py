"""The pictures of a solution as records: the network diagram (where each input and
unit sits, each edge with its weight) and the loss curve (the points to plot and the
axis ticks). TikZ/pgfplots templates and the SVG writer only draw what is here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import sympy as sp

from .network import Network

# Layout in centimetres: the TikZ picture uses them as they are, the SVG scales them.
COLUMN_GAP = 4.5
ROW_GAP = 1.8
MAX_HEIGHT = 12.0
# More points than this make pgfplots slow and the SVG heavy; the curve keeps its shape.
MAX_CURVE_POINTS = 200


@dataclass(frozen=True)
class DiagramNode:
    symbol: sp.Symbol  # x_j, or the unit's activation
    x: float
    y: float
    is_input: bool
    bias: sp.Symbol | None = None
    bias_value: float | None = None


@dataclass(frozen=True)
class DiagramEdge:
    source: int  # index into Diagram.nodes
    target: int
    weight: sp.Symbol
    value: float
    position: float  # where along the edge (0 at the source) its label sits


@dataclass(frozen=True)
class DiagramColumn:
    x: float
    y: float  # the title's height, above the tallest column
    title: str  # "inputs", "layer 1: ReLU", …


@dataclass(frozen=True)
class Diagram:
    nodes: tuple[DiagramNode, ...]
    edges: tuple[DiagramEdge, ...]
    columns: tuple[DiagramColumn, ...]
    width: float
    height: float


def network_diagram(network: Network, values: Sequence[float]) -> Diagram:
    """Inputs on the left, one column per layer, units spread evenly down each column."""
    value_of = dict(zip(network.parameters, values))
    columns = [list(network.inputs)] + [list(layer.outputs) for layer in network.layers]
    tallest = max(len(column) for column in columns)
    gap = min(ROW_GAP, MAX_HEIGHT / max(tallest - 1, 1))
    height = gap * (tallest - 1)
    index_of: dict[sp.Symbol, int] = {}
    nodes: list[DiagramNode] = []
    for c, column in enumerate(columns):
        top = (height + gap * (len(column) - 1)) / 2
        for r, symbol in enumerate(column):
            bias = network.layers[c - 1].biases[r] if c > 0 else None
            index_of[symbol] = len(nodes)
            nodes.append(
                DiagramNode(
                    symbol=symbol,
                    x=round(c * COLUMN_GAP, 3),
                    y=round(top - r * gap, 3),
                    is_input=c == 0,
                    bias=bias,
                    bias_value=value_of.get(bias) if bias is not None else None,
                )
            )
    edges = []
    for layer in network.layers:
        count = len(layer.inputs) * layer.units
        for i, row in enumerate(layer.weights):
            for j, weight in enumerate(row):
                # Every edge of a layer gets its own distance along the edge for its label
                # (grouped by target unit), so that labels of crossing or converging edges
                # do not land on one another.
                position = 0.5 if count == 1 else 0.3 + 0.4 * (i * len(layer.inputs) + j) / (count - 1)
                edges.append(
                    DiagramEdge(index_of[layer.inputs[j]], index_of[layer.outputs[i]], weight, value_of[weight], round(position, 3))
                )
    titles = ["inputs"] + [
        f"layer {layer.number}: {layer.activation.label}" + (" (output)" if layer.is_output else "") for layer in network.layers
    ]
    return Diagram(
        nodes=tuple(nodes),
        edges=tuple(edges),
        columns=tuple(DiagramColumn(round(c * COLUMN_GAP, 3), round(height + 1.0, 3), title) for c, title in enumerate(titles)),
        width=(len(columns) - 1) * COLUMN_GAP,
        height=height,
    )


@dataclass(frozen=True)
class LossCurve:
    points: tuple[tuple[int, float], ...]  # (update, loss before it); the last is the loss after training
    x_ticks: tuple[float, ...]
    y_ticks: tuple[float, ...]
    x_range: tuple[float, float]
    y_range: tuple[float, float]


def loss_curve(losses: Sequence[float]) -> LossCurve:
    """The loss before update 1, 2, …, n and after the last one (plotted at n + 1)."""
    points = [(step, loss) for step, loss in enumerate(losses, start=1)]
    if len(points) > MAX_CURVE_POINTS:
        stride = (len(points) - 1) / (MAX_CURVE_POINTS - 1)
        points = [points[round(k * stride)] for k in range(MAX_CURVE_POINTS)]
    low, high = min(losses), max(losses)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    y_ticks = _nice_ticks(low, high)
    x_ticks = tuple(t for t in _nice_ticks(1, len(losses)) if float(t).is_integer() and t >= 1)
    return LossCurve(
        points=tuple(points),
        x_ticks=x_ticks or (1.0, float(len(losses))),
        y_ticks=y_ticks,
        x_range=(1.0, float(len(losses))),
        y_range=(min(y_ticks[0], low), max(y_ticks[-1], high)),
    )


def _nice_ticks(low: float, high: float, count: int = 5) -> tuple[float, ...]:
    """About `count` round numbers (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return tuple(ticks)
