"""The pictures of a solution as records: the network diagram (its inputs, units and
edges, then, with every label measured, where each circle, edge and label sits) and the
loss curve (the points to plot and the axis ticks). TikZ/pgfplots templates and the SVG
writer only draw what is here."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from dataclasses import dataclass
from string import ascii_letters
from typing import Protocol, Sequence

import sympy as sp

from ..model.network import Network

# Layout in centimetres: the TikZ picture uses them as they are, the SVG scales them.
ROW_GAPS = (1.8, 2.2, 2.6)  # between the units of a column, tried from the smallest
MAX_HEIGHT = 12.0
COLUMN_GAPS = tuple(3.0 + 0.5 * k for k in range(9))
COMFORTABLE_GAP = 4.5  # narrower columns only where the page is too narrow for these
MIN_RADIUS = 0.45
CLEARANCE = 0.06  # around a label's box: more than half of any line's width
PADDING = 0.04  # white between a label's text and the edge of its box
STEP = 0.08  # between the positions tried along an edge
SPREADS = (0.0, 0.5, 1.0)  # how far a short column is spread towards the tallest one's height
SEARCH_LIMIT = 2000  # choices tried for one layer's labels before it is given up
# More points than this make pgfplots slow and the SVG heavy; the curve keeps its shape.
MAX_CURVE_POINTS = 200


@dataclass(frozen=True)
class DiagramNode:
    symbol: sp.Symbol  # x_j, or the unit's activation
    column: int  # 0 for the inputs, l for layer l
    row: int  # from the top
    bias: sp.Symbol | None = None
    bias_value: float | None = None

    @property
    def is_input(self) -> bool:
        return self.column == 0


@dataclass(frozen=True)
class DiagramEdge:
    source: int  # index into Diagram.nodes
    target: int
    weight: sp.Symbol
    value: float
    layer: int


@dataclass(frozen=True)
class Extent:
    """A text's size in its typeface's unit."""

    width: float
    height: float  # above the baseline
    depth: float  # below it


class Typeface(Protocol):
    """How a picture writer sets its texts: sizes, and the extent of a text at a size."""

    unit: float  # centimetres per unit of size and extent
    max_width: float  # centimetres: of everything drawn, titles and labels included
    label_size: float  # weights and biases
    symbol_size: float  # in the circles
    title_size: float

    def math(self, text: str, size: float) -> Extent: ...

    def plain(self, text: str, size: float) -> Extent: ...


@dataclass(frozen=True)
class Label:
    """One line of text in a box centred at (x, y); the text's baseline is `descent`
    above the box's bottom. In centimetres."""

    text: str
    x: float
    y: float
    width: float
    ascent: float
    descent: float
    text_width: float  # of the text alone, which the box centres with padding around it

    @property
    def height(self) -> float:
        return self.ascent + self.descent

    @property
    def left(self) -> float:
        return round(self.x - self.width / 2, 3)

    @property
    def bottom(self) -> float:
        return round(self.y - self.height / 2, 3)

    @property
    def baseline(self) -> float:
        """The height of the text's baseline."""
        return round(self.y - self.height / 2 + self.descent, 3)


@dataclass(frozen=True)
class DrawnNode:
    x: float
    y: float
    symbol: Label  # centred in the circle
    is_input: bool
    bias: Label | None  # None for an input, a unit without bias, or a layer whose biases are left out


@dataclass(frozen=True)
class DrawnEdge:
    x1: float  # where the edge leaves its source's circle
    y1: float
    x2: float  # where it enters its target's circle
    y2: float
    weight: Label | None  # on the edge; None where the layer's weights are left out


@dataclass(frozen=True)
class Drawing:
    """The diagram laid out for one typeface: no label overlaps another label, a circle,
    a title or any edge but its own."""

    nodes: tuple[DrawnNode, ...]
    edges: tuple[DrawnEdge, ...]
    titles: tuple[Label, ...]  # the lines over the columns
    radius: float
    diameter: float
    label_size: float  # in the typeface's unit
    symbol_size: float
    title_size: float
    unlabelled_layers: tuple[int, ...]  # too many edges to label: their weights are in the weight matrices
    unlabelled_biases: tuple[int, ...]  # no free place next to every unit: their biases are in the Network section
    left: float  # everything drawn lies in [left, right] × [bottom, top]
    bottom: float
    right: float
    top: float

    @property
    def labels(self) -> tuple[Label, ...]:
        """The weights and biases."""
        weights = tuple(edge.weight for edge in self.edges if edge.weight is not None)
        return weights + tuple(node.bias for node in self.nodes if node.bias is not None)

    @property
    def frame(self) -> Box:
        """Where the circles and the titles lie (the edges run between circles): the part of
        the picture that does not depend on the numbers, the same for every variant of a
        network laid out alike, so that LaTeX can draw it once and reuse it."""
        boxes = [(n.x - self.radius, n.y - self.radius, n.x + self.radius, n.y + self.radius) for n in self.nodes]
        boxes += [_label_box(title) for title in self.titles]
        return tuple(round(f(box[k] for box in boxes), 3) for k, f in enumerate((min, min, max, max)))  # type: ignore[return-value]


@dataclass(frozen=True)
class Diagram:
    """What the network diagram shows; where it goes depends on the size of its labels,
    so each picture writer lays it out with its own typeface (`drawn`)."""

    nodes: tuple[DiagramNode, ...]
    edges: tuple[DiagramEdge, ...]
    titles: tuple[tuple[str, ...], ...]  # the lines over each column

    def drawn(self, typeface: Typeface, symbols: Sequence[str], weights: Sequence[str], biases: Sequence[str | None]) -> Drawing:
        """The layout for texts as the writer sets them: each node's symbol, each edge's
        weight, each node's bias label (None: no bias), in the order of nodes and edges."""
        return _drawn(self, typeface, tuple(symbols), tuple(weights), tuple(biases))

    def drawn_in_latin_modern(self, symbols: Sequence[str], weights: Sequence[str], biases: Sequence[str | None]) -> Drawing:
        """The layout for the TikZ picture, whose texts are LaTeX."""
        return self.drawn(LATIN_MODERN, symbols, weights, biases)


@lru_cache(maxsize=32)
def _drawn(diagram: Diagram, typeface: Typeface, symbols: tuple[str, ...], weights: tuple[str, ...], biases: tuple[str | None, ...]) -> Drawing:
    """`Diagram.drawn`, laid out once for the same texts: a variant's sheet and worked
    solution show the same picture."""
    return _Layout(diagram, typeface, symbols, weights, biases).best()


def network_diagram(network: Network, values: Sequence[float]) -> Diagram:
    """Inputs on the left, one column per layer, units down each column in order."""
    value_of = dict(zip(network.parameters, values))
    nodes = [DiagramNode(symbol, 0, row) for row, symbol in enumerate(network.inputs)]
    for layer in network.layers:
        nodes += [
            DiagramNode(symbol, layer.number, row, bias, value_of.get(bias) if bias is not None else None)
            for row, (symbol, bias) in enumerate(zip(layer.outputs, layer.biases))
        ]
    index_of = {node.symbol: k for k, node in enumerate(nodes)}
    edges = tuple(
        DiagramEdge(index_of[layer.inputs[j]], index_of[layer.outputs[i]], weight, value_of[weight], layer.number)
        for layer in network.layers
        for i, row in enumerate(layer.weights)
        for j, weight in enumerate(row)
    )
    titles = [("inputs",)] + [
        (f"layer {layer.number}" + (" (output)" if layer.is_output else ""), layer.activation.label) for layer in network.layers
    ]
    return Diagram(nodes=tuple(nodes), edges=edges, titles=tuple(titles))


Box = tuple[float, float, float, float]  # left, bottom, right, top
Segment = tuple[float, float, float, float]  # x1, y1, x2, y2


def widened(box: Box, margin: float) -> Box:
    return box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin


def overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _distance(box: Box, x: float, y: float) -> float:
    """From a point to the nearest point of a box."""
    return math.hypot(max(box[0] - x, 0.0, x - box[2]), max(box[1] - y, 0.0, y - box[3]))


def crosses(box: Box, segment: Segment) -> bool:
    """Whether a segment meets a box (Liang–Barsky clipping)."""
    x1, y1, x2, y2 = segment
    dx, dy = x2 - x1, y2 - y1
    low, high = 0.0, 1.0
    for p, q in ((-dx, x1 - box[0]), (dx, box[2] - x1), (-dy, y1 - box[1]), (dy, box[3] - y1)):
        if p == 0:
            if q < 0:
                return False
            continue
        s = q / p
        if p < 0:
            low = max(low, s)
        else:
            high = min(high, s)
        if low > high:
            return False
    return True


@dataclass(frozen=True)
class _Text:
    """A label's text and the size of its box (text and padding), in centimetres."""

    text: str
    width: float
    ascent: float
    descent: float
    text_width: float

    def at(self, x: float, y: float) -> Label:
        return Label(self.text, round(x, 3), round(y, 3), self.width, self.ascent, self.descent, self.text_width)

    def box(self, x: float, y: float) -> Box:
        half_width, half_height = self.width / 2, (self.ascent + self.descent) / 2
        return x - half_width, y - half_height, x + half_width, y + half_height


def _up(value: float) -> float:
    """Rounded up to the record's precision, so that a box never shrinks below its text."""
    return math.ceil(value * 1000 - 1e-9) / 1000


def _texts(typeface: Typeface, texts: Sequence[str], size: float, plain: bool = False) -> list[_Text]:
    """Boxes of one height and baseline for a kind of label, each as wide as its text."""
    measure = typeface.plain if plain else typeface.math
    extents = [measure(text, size) for text in texts]
    ascent = _up(max((e.height for e in extents), default=0) * typeface.unit + PADDING)
    descent = _up(max((e.depth for e in extents), default=0) * typeface.unit + PADDING)
    return [
        _Text(text, _up(e.width * typeface.unit) + 2 * PADDING, ascent, descent, _up(e.width * typeface.unit))
        for text, e in zip(texts, extents)
    ]


# Directions (degrees) tried for a bias label around its unit, the most wanted first: under it.
_BIAS_DIRECTIONS = (270, 255, 285, 240, 300, 225, 315, 90, 105, 75, 120, 60, 135, 45, 210, 330, 150, 30, 180, 0, 195, 345, 165, 15)


class _Layout:
    """Searches the column gap, and each label's place, for a diagram in a typeface."""

    def __init__(self, diagram: Diagram, typeface: Typeface, symbols: Sequence[str], weights: Sequence[str], biases: Sequence[str | None]):
        self.diagram, self.typeface = diagram, typeface
        self.symbols = _texts(typeface, symbols, typeface.symbol_size)
        self.radius = _up(max(MIN_RADIUS, max(math.hypot(t.width, t.ascent + t.descent) / 2 for t in self.symbols)))
        self.weights = _texts(typeface, weights, typeface.label_size)
        biased = [k for k, text in enumerate(biases) if text is not None]
        self.biases = dict(zip(biased, _texts(typeface, [biases[k] for k in biased], typeface.label_size)))
        self.bias_offsets = {k: self._offsets(text) for k, text in self.biases.items()}
        lines = iter(_texts(typeface, [line for title in diagram.titles for line in title], typeface.title_size, plain=True))
        self.titles = [[next(lines) for _ in title] for title in diagram.titles]
        self.columns = len(diagram.titles)
        self.sizes = [sum(1 for node in diagram.nodes if node.column == c) for c in range(self.columns)]
        self.layers = sorted({edge.layer for edge in diagram.edges})

    def best(self) -> Drawing:
        """The most compact layout (columns no closer than comfortable where the page
        allows) that writes the most layers' weights and biases. The widest column gap
        that fits the page, with each row gap and spread, tells how many can be
        written at all."""
        tallest = max(self.sizes) - 1
        row_gaps = [gap for gap in ROW_GAPS if gap * tallest <= MAX_HEIGHT] or [max(MAX_HEIGHT / tallest, 2 * self.radius + 0.4)]
        spreads = SPREADS if len(set(self.sizes)) > 1 else (0.0,)
        gaps = [gap for gap in COLUMN_GAPS if (self.columns - 1) * gap + 2 * self.radius <= self.typeface.max_width]
        gaps = gaps or [(self.typeface.max_width - 4 * self.radius) / max(self.columns - 1, 1)]
        # The order of preference: from the comfortable gap up, then down from it.
        preferred = [gap for gap in gaps if gap >= COMFORTABLE_GAP] + [gap for gap in reversed(gaps) if gap < COMFORTABLE_GAP]
        configurations = [(row_gap, spread) for row_gap in row_gaps for spread in spreads]
        widest = {}
        for row_gap, spread in configurations:
            probes = (self._attempt(gap, row_gap, spread) for gap in reversed(gaps))
            probe = next((drawing for drawing in probes if drawing.right - drawing.left <= self.typeface.max_width), None)
            if probe is None:
                continue
            widest[row_gap, spread] = probe
            if _score(probe) == (0, 0):
                # Everything written: the most preferred gap that still does it.
                return next((d for gap in preferred if (d := self._fitting(gap, row_gap, spread, probe)) is not None), probe)
        if not widest:  # nothing fits the page: as narrow as it gets
            return self._attempt(gaps[0], *configurations[0])
        best = max(widest.values(), key=_score)
        hopeless = set.intersection(*(set(drawing.unlabelled_layers) for drawing in widest.values()))
        for row_gap, spread in widest:
            for gap in preferred:
                found = self._fitting(gap, row_gap, spread, best, hopeless)
                if found is not None:
                    return found
        return best

    def _fitting(self, gap: float, row_gap: float, spread: float, rival: Drawing, hopeless: set[int] | None = None) -> Drawing | None:
        """The layout if it writes as much as the rival and fits the page."""
        drawing = self._attempt(gap, row_gap, spread, hopeless, rival)
        if drawing is not None and _score(drawing) >= _score(rival) and drawing.right - drawing.left <= self.typeface.max_width:
            return drawing
        return None

    def _attempt(self, gap: float, row_gap: float, spread: float, hopeless: set[int] | None = None, rival: Drawing | None = None) -> Drawing | None:
        """The layout with columns `gap` apart, units `row_gap` apart but spread down
        their column by `spread` (1: over the tallest column's height), and no try at
        labelling the `hopeless` layers; None as soon as it writes fewer biases or
        weights than the `rival`."""
        height = row_gap * (max(self.sizes) - 1)
        centres = []
        for node in self.diagram.nodes:
            count = self.sizes[node.column]
            step = row_gap + spread * (height / (count - 1) - row_gap) if count > 1 else 0.0
            top = (height + step * (count - 1)) / 2
            centres.append((round(node.column * gap, 3), round(top - node.row * step, 3)))
        segments = [self._segment(centres[edge.source], centres[edge.target]) for edge in self.diagram.edges]
        obstacles = _Obstacles(segments, centres, self.radius)
        bias_labels, unlabelled_biases = self._place_biases(centres, obstacles)
        if rival is not None and len(unlabelled_biases) > len(rival.unlabelled_biases):
            return None
        weight_labels: dict[int, Label] = {}
        unlabelled_layers = []
        for layer in self.layers:
            placed = None if layer in (hopeless or ()) else self._place_weights(layer, segments, obstacles)
            if placed is None:
                unlabelled_layers.append(layer)
                if rival is not None and len(unlabelled_layers) > len(rival.unlabelled_layers):
                    return None
            else:
                weight_labels.update(placed)
        drawn_nodes = tuple(
            DrawnNode(x, y, self.symbols[k].at(x, y), node.is_input, bias_labels.get(k))
            for k, (node, (x, y)) in enumerate(zip(self.diagram.nodes, centres))
        )
        drawn_edges = tuple(
            DrawnEdge(*(round(v, 3) for v in segment), weight_labels.get(k))
            for k, (edge, segment) in enumerate(zip(self.diagram.edges, segments))
        )
        boxes = [(x - self.radius, y - self.radius, x + self.radius, y + self.radius) for x, y in centres]
        boxes += [_label_box(label) for label in (*weight_labels.values(), *bias_labels.values())]
        titles = self._titles(centres, max(box[3] for box in boxes))
        boxes += [_label_box(title) for title in titles]
        return Drawing(
            nodes=drawn_nodes,
            edges=drawn_edges,
            titles=tuple(titles),
            radius=self.radius,
            diameter=round(2 * self.radius, 3),
            label_size=self.typeface.label_size,
            symbol_size=self.typeface.symbol_size,
            title_size=self.typeface.title_size,
            unlabelled_layers=tuple(unlabelled_layers),
            unlabelled_biases=tuple(unlabelled_biases),
            left=round(min(box[0] for box in boxes), 3),
            bottom=round(min(box[1] for box in boxes), 3),
            right=round(max(box[2] for box in boxes), 3),
            top=round(max(box[3] for box in boxes), 3),
        )

    def _segment(self, source: tuple[float, float], target: tuple[float, float]) -> Segment:
        """From circle to circle."""
        (x1, y1), (x2, y2) = source, target
        length = math.hypot(x2 - x1, y2 - y1)
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        r = self.radius
        return x1 + r * ux, y1 + r * uy, x2 - r * ux, y2 - r * uy

    def _place_biases(self, centres: list[tuple[float, float]], obstacles: _Obstacles) -> tuple[dict[int, Label], list[int]]:
        """Each bias next to its unit, clear of every edge: the same side for a whole
        column where it can, else the first free side for each unit; a column with a
        unit left without a place gets none."""
        labels: dict[int, Label] = {}
        unplaced = []
        for column in range(1, self.columns):
            units = [k for k in self.biases if self.diagram.nodes[k].column == column]
            sides = (self._bias_boxes(units, [direction], centres, obstacles) for direction in _BIAS_DIRECTIONS)
            chosen = next((boxes for boxes in sides if len(boxes) == len(units)), None)
            if chosen is None:
                chosen = self._bias_boxes(units, _BIAS_DIRECTIONS, centres, obstacles)
            if len(chosen) < len(units):
                unplaced.append(column)
                continue
            for k, box in chosen.items():
                labels[k] = self.biases[k].at((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                obstacles.boxes.append(box)
        return labels, unplaced

    def _bias_boxes(self, units: list[int], directions: Sequence[int], centres: list[tuple[float, float]], obstacles: _Obstacles) -> dict[int, Box]:
        """A free box in one of the directions for each unit in turn, as long as there is one."""
        chosen: dict[int, Box] = {}
        for k in units:
            (cx, cy), text = centres[k], self.biases[k]
            boxes = (text.box(cx + dx, cy + dy) for direction in directions for dx, dy in self.bias_offsets[k][direction])
            box = next((box for box in boxes if self._bias_fits(box, k, centres, obstacles, chosen)), None)
            if box is None:
                break
            chosen[k] = box
        return chosen

    def _bias_fits(self, box: Box, k: int, centres: list[tuple[float, float]], obstacles: _Obstacles, chosen: dict[int, Box]) -> bool:
        """Free, and nearer its own unit than any other, so that it reads as that unit's."""
        own = _distance(box, *centres[k])
        if any(_distance(box, x, y) < own + self.radius for j, (x, y) in enumerate(centres) if j != k):
            return False
        grown = widened(box, CLEARANCE)
        return not any(overlap(grown, other) for other in chosen.values()) and obstacles.free(grown)

    def _offsets(self, text: _Text) -> dict[int, list[tuple[float, float]]]:
        """Where a bias box may sit from its unit's centre in each direction: just off
        the circle, or a little further."""
        offsets = {}
        reach = self.radius + CLEARANCE
        for direction in _BIAS_DIRECTIONS:
            ux, uy = math.cos(math.radians(direction)), math.sin(math.radians(direction))
            near, far = 0.0, reach + text.width + text.ascent + text.descent
            while far - near > 0.002:  # bisection: the box's distance from the centre grows along the ray
                middle = (near + far) / 2
                near, far = (middle, far) if _distance(text.box(middle * ux, middle * uy), 0.0, 0.0) < reach else (near, middle)
            offsets[direction] = [((far + extra) * ux, (far + extra) * uy) for extra in (0.0, 0.1, 0.2)]
        return offsets

    def _place_weights(self, layer: int, segments: list[Segment], obstacles: _Obstacles) -> dict[int, Label] | None:
        """Every weight of the layer on its own edge, or None when they do not all fit.
        Places well clear of other edges come first, then the middle of the edge."""
        domains = {}
        for k, edge in enumerate(self.diagram.edges):
            if edge.layer != layer:
                continue
            text, (x1, y1, x2, y2) = self.weights[k], segments[k]
            count = max(int(math.hypot(x2 - x1, y2 - y1) / STEP), 1)
            steps = sorted(range(count + 1), key=lambda s: abs(s / count - 0.5))
            boxes = [text.box(x1 + (x2 - x1) * s / count, y1 + (y2 - y1) * s / count) for s in steps]
            # well clear first, then merely free (a box free with the wider margin is free with
            # the narrower one: it is looked at once)
            clear, free = [], []
            for box in boxes:
                if obstacles.free(widened(box, 3 * CLEARANCE), own=k):
                    clear.append(box)
                elif obstacles.free(widened(box, CLEARANCE), own=k):
                    free.append(box)
            if not clear and not free:
                return None
            domains[k] = clear + free
        chosen = _choose(domains)
        if chosen is None:
            return None
        obstacles.boxes.extend(chosen.values())
        return {k: self.weights[k].at((box[0] + box[2]) / 2, (box[1] + box[3]) / 2) for k, box in chosen.items()}

    def _titles(self, centres: list[tuple[float, float]], content_top: float) -> list[Label]:
        """Each column's lines above everything, the blocks level at the top; a block
        raised over its left neighbour's where the two would touch."""
        labels: list[Label] = []
        previous: Box | None = None
        line_height = self.titles[0][0].ascent + self.titles[0][0].descent
        pitch = line_height + CLEARANCE

        def height(lines: list[_Text]) -> float:
            return pitch * len(lines) - CLEARANCE

        level_top = content_top + 3 * CLEARANCE + max(height(lines) for lines in self.titles)
        for column, lines in enumerate(self.titles):
            x = next(cx for node, (cx, _) in zip(self.diagram.nodes, centres) if node.column == column)
            width = max(line.width for line in lines)
            block = (x - width / 2, level_top - height(lines), x + width / 2, level_top)
            if previous is not None and overlap(widened(block, 3 * CLEARANCE), previous):
                bottom = previous[3] + 3 * CLEARANCE
                block = (block[0], bottom, block[2], bottom + height(lines))
            for k, line in enumerate(lines):
                labels.append(line.at(x, block[3] - line_height / 2 - pitch * k))
            previous = block
        return labels


def _score(drawing: Drawing) -> tuple[int, int]:
    return -len(drawing.unlabelled_layers), -len(drawing.unlabelled_biases)


def _label_box(label: Label) -> Box:
    return label.x - label.width / 2, label.y - label.height / 2, label.x + label.width / 2, label.y + label.height / 2


class _Obstacles:
    """What a label may not touch: edges (found through a grid of cells), circles
    (through their columns), placed labels."""

    CELL = 0.5

    def __init__(self, segments: list[Segment], centres: list[tuple[float, float]], radius: float):
        self.segments, self.radius = segments, radius
        self.columns: dict[float, list[float]] = {}
        for x, y in centres:
            self.columns.setdefault(x, []).append(y)
        self.boxes: list[Box] = []
        self.grid: dict[tuple[int, int], list[int]] = {}
        size = self.CELL
        for k, (x1, y1, x2, y2) in enumerate(segments):
            (x1, y1), (x2, y2) = sorted([(x1, y1), (x2, y2)])
            slope = (y2 - y1) / (x2 - x1) if x2 > x1 else 0.0
            for i in range(math.floor(x1 / size), math.floor(x2 / size) + 1):
                # The part of the segment over this column of cells, and the cells it passes.
                low, high = max(x1, i * size), min(x2, (i + 1) * size)
                ends = (y1 + slope * (low - x1), y1 + slope * (high - x1)) if x2 > x1 else (y1, y2)
                for j in range(math.floor(min(ends) / size), math.floor(max(ends) / size) + 1):
                    self.grid.setdefault((i, j), []).append(k)

    def free(self, box: Box, own: int | None = None) -> bool:
        """Whether a (grown) box keeps off every circle, every edge but its own, and every placed label."""
        left, bottom, right, top = box
        radius = self.radius
        for x, ys in self.columns.items():
            if left - radius < x < right + radius:
                across = max(left - x, 0.0, x - right)  # as _distance, the column's part once
                if any(math.hypot(across, max(bottom - y, 0.0, y - top)) < radius for y in ys):
                    return False
        for other in self.boxes:  # overlap(box, other)
            if left < other[2] and other[0] < right and bottom < other[3] and other[1] < top:
                return False
        size, grid, segments, seen = self.CELL, self.grid, self.segments, set()
        for i in range(math.floor(left / size), math.floor(right / size) + 1):
            for j in range(math.floor(bottom / size), math.floor(top / size) + 1):
                for k in grid.get((i, j), ()):
                    if k != own and k not in seen:
                        seen.add(k)
                        if crosses(box, segments[k]):
                            return False
        return True


def _choose(domains: dict[int, list[Box]]) -> dict[int, Box] | None:
    """One box for each label from its candidates, no two overlapping: a backtracking
    search, the label with the fewest candidates left first."""
    tried = 0

    def search(left: dict[int, list[Box]]) -> dict[int, Box] | None:
        nonlocal tried
        if not left:
            return {}
        label = min(left, key=lambda k: len(left[k]))
        for box in left[label]:
            tried += 1
            if tried > SEARCH_LIMIT:
                return None
            grown = widened(box, CLEARANCE)
            rest = {}
            for other, candidates in left.items():
                if other != label:
                    rest[other] = [c for c in candidates if not overlap(grown, c)]
                    if not rest[other]:
                        break
            else:
                found = search(rest)
                if found is not None:
                    return {label: box, **found}
                if tried > SEARCH_LIMIT:
                    return None
        return None

    return search(domains)


# Latin Modern, for the TikZ picture (11 pt article, lmodern): widths of the 10 pt
# design in thousandths of an em, math italic with its italic correction.
_ITALIC = dict(zip(ascii_letters, (
    529, 429, 433, 520, 466, 597, 513, 576, 345, 469, 552, 318, 878, 600, 485, 503, 482, 479, 469, 361, 572, 521, 743, 572, 526, 509,
    750, 809, 786, 856, 796, 782, 786, 912, 518, 651, 921, 681, 1079, 912, 791, 781, 791, 767, 671, 723, 792, 806, 1083, 907, 803, 754,
)))
_ROMAN = dict(zip(ascii_letters, (
    500, 556, 444, 556, 444, 306, 500, 556, 278, 306, 528, 278, 833, 556, 500, 556, 528, 392, 394, 389, 556, 528, 722, 528, 528, 444,
    750, 708, 722, 764, 681, 653, 785, 750, 361, 514, 778, 625, 917, 750, 778, 681, 778, 736, 556, 722, 750, 750, 1028, 750, 750, 611,
)))
_GREEK = {
    "alpha": 644, "beta": 619, "gamma": 574, "delta": 483, "epsilon": 406, "varepsilon": 467, "zeta": 512, "eta": 533, "theta": 498,
    "vartheta": 592, "iota": 354, "kappa": 577, "lambda": 584, "mu": 603, "nu": 558, "xi": 484, "pi": 606, "rho": 518, "sigma": 608,
    "tau": 551, "upsilon": 577, "phi": 596, "varphi": 655, "chi": 626, "psi": 688, "omega": 659, "ell": 417, "Gamma": 625,
    "Delta": 834, "Theta": 778, "Lambda": 695, "Xi": 667, "Pi": 750, "Sigma": 723, "Upsilon": 778, "Phi": 723, "Psi": 778, "Omega": 723,
}
# (width, height, depth, class) of the other characters and symbols; the depth of − is more than its share at small sizes.
_MATH_SIGNS = {
    ".": (278, 106, 0, "ord"), ",": (278, 106, 194, "punct"), "(": (389, 750, 250, "open"), ")": (389, 750, 250, "close"),
    "=": (778, 367, 0, "rel"), "+": (778, 583, 167, "bin"), "-": (778, 583, 167, "bin"), "*": (500, 465, 0, "bin"),
    r"\times": (778, 583, 167, "bin"), r"\cdot": (278, 500, 0, "bin"), r"\prime": (275, 556, 0, "ord"),
}
_TEXT_SIGNS = {":": 278, ";": 278, "(": 389, ")": 389, " ": 333, ",": 278, "-": 333, ".": 278}
_DIGIT = 500
_UNKNOWN = (1000, 750, 250, "ord")  # a wide character: a symbol not in the tables
_BOLD = 1.21  # a bold letter is at most this much wider than the roman one
_ASCENDERS = set("bdfhijklt")
_DESCENDERS = set("fgjpqyQ")
_ACCENTS = {"hat", "tilde", "bar", "vec", "widehat", "widetilde"}
_FONTS = {"mathbf": "bold", "boldsymbol": "bold", "mathrm": "roman", "mathsf": "roman", "mathit": "italic", "mathcal": "calligraphic"}
# The smaller design sizes are wider and taller than the 10 pt one scaled: the most over the glyphs above.
_WIDER = {5: 1.65, 6: 1.37, 7: 1.22, 8: 1.075, 9: 1.033, 10: 1.0}
_TALLER = {5: 1.16, 6: 1.14, 7: 1.09, 8: 1.06, 9: 1.04, 10: 1.0}
# Text, script and scriptscript sizes of LaTeX's math at a text size (the 11 pt article's).
_MATH_SIZES = {9: (9, 6, 5), 10: (10, 7, 5), 10.95: (10.95, 8, 6)}
_SPACING = {"thin": 3, "med": 4, "thick": 5}  # in mu, 1/18 em


def _design(size: float) -> int:
    """The Latin Modern design size lmodern takes for a size."""
    return next((design for limit, design in ((5.5, 5), (6.5, 6), (7.5, 7), (8.5, 8), (9.5, 9)) if size < limit), 10)


@dataclass
class _Atom:
    width: float
    height: float
    depth: float
    kind: str  # TeX's atom class: ord, bin, rel, punct, open, close
    sup: Extent | None = None
    sub: Extent | None = None


class _MathReader:
    """A small LaTeX math box builder: enough of TeX's rules (scripts, spacing between
    atom classes) to give an upper bound of the extent of a symbol or a number."""

    def __init__(self, latex: str, size: float):
        self.tokens = re.findall(r"\\[A-Za-z]+|\\.|\s+|.", latex)
        self.position = 0
        self.sizes = _MATH_SIZES[size]

    def extent(self) -> Extent:
        return self._hlist(self._list(0, "italic"), 0)

    def _next(self) -> str | None:
        token = self.tokens[self.position] if self.position < len(self.tokens) else None
        self.position += 1
        return token

    def _list(self, level: int, font: str) -> list[_Atom]:
        atoms: list[_Atom] = []
        while (token := self._next()) is not None and token != "}":
            if token.isspace():
                continue
            if token in ("^", "_", "'"):
                script_level = min(level + 1, 2)
                if token == "'":  # a prime is a superscript
                    script = self._hlist([self._sign(r"\prime", script_level)], script_level)
                else:
                    script = self._argument(script_level, font)
                if not atoms or (atoms[-1].sup if token != "_" else atoms[-1].sub) is not None:
                    atoms.append(_Atom(0, 0, 0, "ord"))
                if token == "_":
                    atoms[-1].sub = script
                else:
                    atoms[-1].sup = script
                continue
            atoms.append(self._nucleus(token, level, font))
        return atoms

    def _argument(self, level: int, font: str) -> Extent:
        token = self._next()
        while token is not None and token.isspace():
            token = self._next()
        if token == "{":
            return self._hlist(self._list(level, font), level)
        return self._hlist([self._nucleus(token or "", level, font)], level)

    def _raw_argument(self) -> str:
        """A {…} argument as written, for \\text."""
        token = self._next()
        while token is not None and token.isspace():
            token = self._next()
        if token != "{":
            return token or ""
        depth, characters = 0, []
        while (token := self._next()) is not None and not (token == "}" and depth == 0):
            depth += (token == "{") - (token == "}")
            characters.append(token)
        return "".join(characters)

    def _em(self, level: int) -> tuple[float, float, float]:
        """Points per thousandth of an em for widths, heights and depths at a level."""
        size = self.sizes[level]
        return size * _WIDER[_design(size)] / 1000, size * _TALLER[_design(size)] / 1000, size / 1000

    def _sign(self, token: str, level: int) -> _Atom:
        width, height, depth, kind = _MATH_SIGNS.get(token, _UNKNOWN)
        w, h, d = self._em(level)
        return _Atom(width * w, height * h, depth * d, kind)

    def _nucleus(self, token: str, level: int, font: str) -> _Atom:
        w, h, d = self._em(level)
        bold = _BOLD if font == "bold" else 1.0
        if token == "{":
            extent = self._hlist(self._list(level, font), level)
            return _Atom(extent.width, extent.height, extent.depth, "ord")
        if token.isdigit():
            return _Atom(_DIGIT * bold * w, 644 * h, 0, "ord")
        if token in _ITALIC:
            width = 1000 if font == "calligraphic" else (_ITALIC if font == "italic" else _ROMAN)[token] * bold
            height = 694 if token in _ASCENDERS or token.isupper() else 450
            return _Atom(width * w, height * h, (194 if token in _DESCENDERS else 0) * d, "ord")
        name = token[1:]
        if name in _ACCENTS:
            extent = self._argument(level, font)
            return _Atom(extent.width, extent.height + 300 * h, extent.depth, "ord")
        if name in _FONTS:
            extent = self._argument(level, _FONTS[name])
            return _Atom(extent.width, extent.height, extent.depth, "ord")
        if name == "text":
            extent = _plain(self._raw_argument(), self.sizes[level])
            return _Atom(extent.width, extent.height, extent.depth, "ord")
        if name in _GREEK:
            return _Atom(_GREEK[name] * bold * w, 716 * h, 194 * d, "ord")
        return self._sign(token, level)

    def _hlist(self, atoms: list[_Atom], level: int) -> Extent:
        kinds = [atom.kind for atom in atoms]
        for k, kind in enumerate(kinds):
            # A binary sign with nothing to combine on one side is an ordinary one (a minus sign).
            alone_before = k == 0 or kinds[k - 1] in ("bin", "rel", "open", "punct")
            alone_after = k == len(kinds) - 1 or kinds[k + 1] in ("rel", "close", "punct")
            if kind == "bin" and (alone_before or alone_after):
                kinds[k] = "ord"
        extents = [self._scripted(atom, level) for atom in atoms]
        width = sum(e.width for e in extents)
        if level == 0:  # scripts have no spaces around signs
            mu = self.sizes[0] / 18
            for left, right in zip(kinds, kinds[1:]):
                if "rel" in (left, right) and left != right:
                    width += _SPACING["thick"] * mu
                elif "bin" in (left, right):
                    width += _SPACING["med"] * mu
                elif left == "punct":
                    width += _SPACING["thin"] * mu
        return Extent(width, max((e.height for e in extents), default=0), max((e.depth for e in extents), default=0))

    def _scripted(self, atom: _Atom, level: int) -> Extent:
        """A nucleus with its scripts, placed as TeX's rule 18 does (with the text font's parameters)."""
        sup, sub = atom.sup, atom.sub
        if sup is None and sub is None:
            return Extent(atom.width, atom.height, atom.depth)
        size, script = self.sizes[level], self.sizes[min(level + 1, 2)]
        x_height, rule = 0.431 * size, 0.04 * size
        width = atom.width + max(sup.width if sup else 0, sub.width if sub else 0) + 0.5  # \scriptspace
        height, depth = atom.height, atom.depth
        if sup is not None:
            up = max(0.413 * size, sup.depth + x_height / 4, atom.height - 0.386 * script)
        if sub is not None:
            down = max(0.15 * size if sup is None else 0.247 * size, sub.height - 0.8 * x_height, atom.depth + 0.05 * script)
        if sup is not None and sub is not None and (up - sup.depth) - (sub.height - down) < 4 * rule:
            down = 4 * rule - (up - sup.depth) + sub.height
            lift = 0.8 * x_height - (up - sup.depth)
            if lift > 0:
                up, down = up + lift, down - lift
        if sup is not None:
            height = max(height, up + sup.height)
        if sub is not None:
            depth = max(depth, down + sub.depth)
        return Extent(width, height, depth)


def _plain(text: str, size: float) -> Extent:
    """Roman text: the sum of its characters (a space after punctuation is wider)."""
    w, h, d = size * _WIDER[_design(size)] / 1000, size * _TALLER[_design(size)] / 1000, size / 1000
    width = 0.0
    for previous, character in zip(" " + text, text):
        if character in _ROMAN:
            width += _ROMAN[character]
        elif character.isdigit():
            width += _DIGIT
        else:
            width += _TEXT_SIGNS.get(character, _UNKNOWN[0]) + (111 if character == " " and previous in ".,:;!?" else 0)
    brackets = bool(set(text) & set("()"))
    depth = 250 if brackets else 194 if set(text) & (_DESCENDERS | {","}) else 0
    return Extent(width * w, (750 if brackets else 694) * h, depth * d)


@dataclass(frozen=True)
class LatinModern:
    """The TikZ picture's type: labels \\footnotesize (9 pt), symbols \\normalsize,
    titles \\small in the 11 pt article. Extents in points are upper bounds of TeX's."""

    unit: float = 2.54 / 72.27
    max_width: float = 15.0  # the 16 cm of text between the page's margins, and some room
    label_size: float = 9
    symbol_size: float = 10.95
    title_size: float = 10

    def math(self, text: str, size: float) -> Extent:
        extent = _MathReader(text, size).extent()
        return Extent(extent.width * 1.005 + 0.05, extent.height + 0.1, extent.depth + 0.1)

    def plain(self, text: str, size: float) -> Extent:
        extent = _plain(text, size)
        return Extent(extent.width * 1.005 + 0.05, extent.height + 0.1, extent.depth + 0.1)


LATIN_MODERN = LatinModern()


@dataclass(frozen=True)
class LossCurve:
    points: tuple[tuple[int, float], ...]  # (updates done, the loss then)
    x_ticks: tuple[float, ...]
    y_ticks: tuple[float, ...]
    x_range: tuple[float, float]
    y_range: tuple[float, float]


def loss_curve(points: Sequence[tuple[int, float]]) -> LossCurve:
    """The loss after 0, 1, …, n updates (the table of the loss shows the same points); more
    than MAX_CURVE_POINTS are thinned evenly, keeping the first and the last."""
    if len(points) > MAX_CURVE_POINTS:
        stride = (len(points) - 1) / (MAX_CURVE_POINTS - 1)
        points = [points[round(k * stride)] for k in range(MAX_CURVE_POINTS)]
    points = list(points)
    losses = [loss for _, loss in points]
    first, last = points[0][0], points[-1][0]
    low, high = min(losses), max(losses)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    y_ticks = _nice_ticks(low, high)
    x_ticks = tuple(t for t in _nice_ticks(first, max(last, first + 1)) if float(t).is_integer() and first <= t <= last)
    return LossCurve(
        points=tuple(points),
        x_ticks=x_ticks or (float(first), float(last)),
        y_ticks=y_ticks,
        x_range=(float(first), float(last)),
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
