"""The circuit picture of CS231n as a record: inputs on the left, one gate per node, a
wire for each use of a value with its forward value above it and its gradient below it.

Layout (a layered drawing, in centimetres: the TikZ picture uses them as they are, the
SVG scales them):

* A gate's column is the longest path to it from the inputs (inputs are column 0). A
  wire that skips columns runs through a "dummy" place in each column it crosses, so no
  wire passes through a gate.
* Within a column, places are ordered by the barycentre heuristic (sweeps left to right
  and back, keeping the order with the fewest crossings), then set as close as they can
  to the height of the wires coming in (inputs: of the gates they feed), no closer to
  each other than what each place holds above and below its own wires.
* Between two columns a channel: first the labels of the values that split (a value used
  more than once: its trunk, with ∂f/∂name), then one vertical track per value that
  changes height, then the labels of the wires coming into the next column's gates (one
  lane per operand; a two-operand gate's lanes are apart enough for a gradient below
  the upper one and a value above the lower one). Only horizontal lines run where labels
  are, so a label meets no wire but its own.
* Every text has a slot of fixed size (numbers NUMBER_WIDTH × NUMBER_HEIGHT; names by
  their length); the writers set the text to fit its slot. Numbers are floats here, the
  writers print them.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..model.circuit import Circuit, Gate
from .figures import Box, crosses, overlap, widened

# Sizes in centimetres.
NUMBER_WIDTH = 1.2  # the slot of a value or gradient: "−0.123" at 8 pt (TeX) or 10.5 px (SVG) and some room
NUMBER_HEIGHT = 0.34
NAME_CHARACTER = 0.15  # per character of a name (small type)
NAME_HEIGHT = 0.28
NAME_PADDING = 0.06  # on each side of a name's text
GAP = 0.04  # between a wire and the box of its label
CLEARANCE = 0.12  # between what two places of a column hold
LANE = 0.5  # a two-operand gate's lanes, above and below its centre: room for a binary gate feeding one lane and a wire straight into the other
DIAMETER = 0.64  # of a round gate
BOX_HEIGHT = 0.56  # of a gate written as a word
BOX_WIDTHS = {Gate.EXP: 0.8, Gate.LOG: 0.8, Gate.MAX: 0.8, Gate.MIN: 0.8, Gate.TANH: 0.95, Gate.RELU: 1.05}
CONVERGE = 0.32  # where two lanes run into the gate, before a column with a two-operand gate
STRAIGHT = 0.1  # the same before a column of one-operand gates
PAD = 0.1  # around the trunk labels, and where no track is needed
TRACK = 0.16  # between the vertical tracks of a channel
TAIL = 0.3  # of the output wire after its labels
INPUT_GAP = 0.08  # between an input's name and the start of its wire
SNAP = 0.35  # a step in a wire smaller than this is taken out where it can be
ROUNDS = 8  # of placing the heights from the right, then from the left

ROUND_GATES = frozenset(Gate) - frozenset(BOX_WIDTHS)


class WireKind:
    SINGLE = "single"  # a value used once: from its source to the gate
    TRUNK = "trunk"  # a value used more than once, from its source to where it splits; ∂f/∂name
    BRANCH = "branch"  # one use of a value used more than once; the gradient is this use's contribution
    CONSTANT = "constant"  # a number in the expression: a stub with its value, no gradient
    OUTPUT = "output"  # out of the last gate; its gradient is 1


@dataclass(frozen=True)
class Slot:
    """A box kept for one line of text, centred at (x, y). The writers set the text in it:
    smaller or squeezed if it would not fit."""

    x: float
    y: float
    width: float
    height: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        """left, bottom, right, top"""
        return self.x - self.width / 2, self.y - self.height / 2, self.x + self.width / 2, self.y + self.height / 2


@dataclass(frozen=True)
class DrawnGate:
    name: str  # the node's name, written small and grey in `name_slot`
    gate: Gate  # the writers draw its sign: + − × ÷ ^ −x exp log σ tanh ReLU max min |·|
    shape: str  # "circle" (a sign) or "box" (a word)
    x: float  # centre
    y: float
    width: float
    height: float
    column: int
    name_slot: Slot


@dataclass(frozen=True)
class DrawnInput:
    name: str  # written small and grey in `name_slot`, left of where its wire starts
    x: float
    y: float
    name_slot: Slot


@dataclass(frozen=True)
class Wire:
    """A polyline from left to right. `value` goes in `value_slot` above the wire, the
    `gradient` in `gradient_slot` below it (neither for a constant's gradient)."""

    kind: str  # a WireKind
    name: str  # the value it carries: an input's or a node's name ("" for a constant)
    source: str | None  # the input or node it comes from (None for a constant)
    target: str | None  # the gate it goes into (None for a trunk and the output)
    position: int | None  # the operand's position at the target
    points: tuple[tuple[float, float], ...]
    value: float
    gradient: float | None
    value_slot: Slot
    gradient_slot: Slot | None


@dataclass(frozen=True)
class CircuitDiagram:
    inputs: tuple[DrawnInput, ...]
    gates: tuple[DrawnGate, ...]  # in the circuit's order; the last one is the output
    wires: tuple[Wire, ...]
    junctions: tuple[tuple[float, float], ...]  # where a wire splits: a dot
    number_width: float  # of every number's slot
    number_height: float
    name_height: float
    left: float  # everything drawn lies in [left, right] × [bottom, top]
    bottom: float
    right: float
    top: float

    @property
    def output(self) -> str:
        """The name of the circuit's output (its last gate)."""
        return self.gates[-1].name

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.top - self.bottom

    @property
    def slots(self) -> tuple[Slot, ...]:
        """Every text's slot: the numbers on the wires, then the names."""
        numbers = [slot for wire in self.wires for slot in (wire.value_slot, wire.gradient_slot) if slot is not None]
        return tuple(numbers) + tuple(item.name_slot for item in (*self.inputs, *self.gates))


def circuit_diagram(circuit: Circuit, values: Mapping[str, float] | None = None, gradients: Mapping[str, float] | None = None) -> CircuitDiagram:
    """The laid-out picture of a circuit. `values` and `gradients` (name → number) replace
    the circuit's own forward values and ∂f/∂name where given, for a document that shows
    carried (rounded) numbers; a branch's gradient is then the gate's given gradient times
    the local gradient at that operand."""
    return _Layout(circuit, dict(values or {}), dict(gradients or {})).diagram()


def _name_width(name: str) -> float:
    return round(len(name) * NAME_CHARACTER + 2 * NAME_PADDING, 3)


def _isotonic(targets: list[float], weights: list[float]) -> list[float]:
    """The non-decreasing sequence nearest the targets (weighted least squares): pool
    adjacent violators."""
    blocks: list[list[float]] = []  # value, weight, count
    for target, weight in zip(targets, weights):
        blocks.append([target, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return [value for value, _, count in blocks for _ in range(int(count))]


@dataclass(eq=False)
class _Place:
    """A gate, an input or a dummy (a wire crossing a column) during the layout."""

    kind: str  # "input", "gate", "dummy"
    name: str  # the input's or node's name; a dummy's source
    column: int
    ins: list[tuple[_Place, float]] = field(default_factory=list)  # (source place, lane offset here)
    outs: list[tuple[_Place, float]] = field(default_factory=list)  # (destination place, lane offset there)
    above: float = 0.0  # what it holds above and below its centre line
    below: float = 0.0
    y: float = 0.0
    order: int = 0


class _Layout:
    def __init__(self, circuit: Circuit, values: dict[str, float], gradients: dict[str, float]):
        self.circuit = circuit
        self.values, self.gradients = values, gradients
        self.nodes = {node.name: node for node in circuit.nodes}
        self.column: dict[str, int] = {item.name: 0 for item in circuit.inputs}
        for node in circuit.nodes:
            self.column[node.name] = 1 + max((self.column[o] for o in node.operands if isinstance(o, str)), default=0)
        self.columns = self.column[circuit.output] + 1
        self.uses: dict[str, list[tuple[str, int]]] = {name: [] for name in self.column}
        for node in circuit.nodes:
            for position, operand in enumerate(node.operands):
                if isinstance(operand, str):
                    self.uses[operand].append((node.name, position))
        self.splits = {name for name, uses in self.uses.items() if len(uses) > 1}
        self._places()
        self._columns()

    # Places and their connections ---------------------------------------------------

    def _places(self) -> None:
        self.place: dict[str, _Place] = {}
        self.by_column: list[list[_Place]] = [[] for _ in range(self.columns)]
        for item in self.circuit.inputs:
            self._add(_Place("input", item.name, 0))
        for node in self.circuit.nodes:
            self._add(_Place("gate", node.name, self.column[node.name]))
        dummies: dict[tuple[str, int], _Place] = {}
        self.paths: dict[tuple[str, int], list[_Place]] = {}  # (gate, position) → places from the source to the gate
        for node in self.circuit.nodes:
            gate = self.place[node.name]
            for position, operand in enumerate(node.operands):
                if not isinstance(operand, str):
                    continue
                path = [self.place[operand]]
                for column in range(self.column[operand] + 1, gate.column):
                    dummy = dummies.get((operand, column))
                    if dummy is None:
                        dummy = dummies[operand, column] = _Place("dummy", operand, column)
                        self.by_column[column].append(dummy)
                        self._connect(path[-1], dummy, 0.0)
                    path.append(dummy)
                self._connect(path[-1], gate, self.lane(node.name, position))
                self.paths[node.name, position] = path

    def _add(self, place: _Place) -> None:
        self.place[place.name] = place
        self.by_column[place.column].append(place)

    @staticmethod
    def _connect(source: _Place, destination: _Place, lane: float) -> None:
        source.outs.append((destination, lane))
        destination.ins.append((source, lane))

    def lane(self, gate: str, position: int) -> float:
        """The height of an operand's lane above the gate's centre."""
        if len(self.nodes[gate].operands) == 1:
            return 0.0
        return LANE if position == 0 else -LANE

    # Sizes of gates and columns -------------------------------------------------------

    def size(self, gate: Gate) -> tuple[str, float, float]:
        if gate in BOX_WIDTHS:
            return "box", BOX_WIDTHS[gate], BOX_HEIGHT
        return "circle", DIAMETER, DIAMETER

    def _columns(self) -> None:
        self.half = [0.0] * self.columns  # the widest gate's half width
        self.converge = [STRAIGHT] * self.columns
        for node in self.circuit.nodes:
            column = self.column[node.name]
            self.half[column] = max(self.half[column], self.size(node.gate)[1] / 2)
            if len(node.operands) == 2:
                self.converge[column] = CONVERGE
        self.trunk = [PAD] * self.columns  # from a place's right side to its channel's tracks
        for name in self.splits:
            self.trunk[self.column[name]] = NUMBER_WIDTH + 2 * PAD
        self.trunk[-1] = NUMBER_WIDTH + PAD + TAIL  # the output wire
        self.extra = [0.0] * self.columns  # a wider lane zone for a long name
        self.name_boxes: dict[str, Box] = {}  # relative to the place's centre
        for place in self.place.values():
            self._extents(place)

    def lane_zone(self, column: int) -> tuple[float, float]:
        """Where the labels of the wires into a column's gates go, relative to its centre."""
        end = -self.half[column] - self.converge[column]
        return end - NUMBER_WIDTH, end

    def trunk_zone(self, column: int) -> tuple[float, float]:
        start = self.half[column] + PAD
        return start, start + NUMBER_WIDTH

    def _own(self, place: _Place) -> tuple[list[Box], list[tuple[float, float, float, float]]]:
        """The boxes and segments a place draws, relative to its centre (names aside)."""
        boxes: list[Box] = []
        segments = []
        column = place.column
        if place.kind == "gate":
            node = self.nodes[place.name]
            _, width, height = self.size(node.gate)
            boxes.append((-width / 2, -height / 2, width / 2, height / 2))
            left, right = self.lane_zone(column)
            for position in range(len(node.operands)):
                lane = self.lane(node.name, position)
                # A constant has no gradient, but its room is kept: a wire passing under
                # its stub would run too close to it.
                boxes.append((left, lane + GAP, right, lane + GAP + NUMBER_HEIGHT))
                boxes.append((left, lane - GAP - NUMBER_HEIGHT, right, lane - GAP))
                port = self.port(node.gate, width, height, lane)
                segments.append((right, lane, *port))
        if place.kind != "dummy" and (place.name in self.splits or place.name == self.circuit.output):
            left, right = self.trunk_zone(column)
            boxes.append((left, GAP, right, GAP + NUMBER_HEIGHT))
            boxes.append((left, -GAP - NUMBER_HEIGHT, right, -GAP))
        return boxes, segments

    def port(self, gate: Gate, width: float, height: float, lane: float) -> tuple[float, float]:
        """Where an operand's wire enters a gate, relative to its centre."""
        if lane == 0:
            return -width / 2, 0.0
        side = 1 if lane > 0 else -1
        if gate in BOX_WIDTHS:
            return -width / 2, side * height / 4
        rise = 0.5 * width / 2
        return -math.sqrt((width / 2) ** 2 - rise**2), side * rise

    def _extents(self, place: _Place) -> None:
        boxes, segments = self._own(place)
        if place.kind == "input":
            width = _name_width(place.name)
            self.name_boxes[place.name] = (-INPUT_GAP - width, -NAME_HEIGHT / 2, -INPUT_GAP, NAME_HEIGHT / 2)
        elif place.kind == "gate":
            self.name_boxes[place.name] = self._name_box(place, boxes, segments)
        if place.name in self.name_boxes and place.kind != "dummy":
            boxes = boxes + [self.name_boxes[place.name]]
        place.above = max((box[3] for box in boxes), default=0.0)
        place.below = max((-box[1] for box in boxes), default=0.0)

    def _name_box(self, place: _Place, boxes: list[Box], segments) -> Box:
        """Just over the gate if nothing of its own is there; else over all it holds,
        within its column (a long name widens the column's lane zone)."""
        node = self.nodes[place.name]
        height = self.size(node.gate)[2]
        name_width = _name_width(place.name)
        # The column's own stretch: tracks run on either side of it.
        left_limit, right_limit = self.lane_zone(place.column)[0], self.half[place.column] + self.trunk[place.column]
        bottom = height / 2 + GAP
        close = (-name_width / 2, bottom, name_width / 2, bottom + NAME_HEIGHT)
        inside = left_limit <= close[0] and close[2] <= right_limit
        if inside and not any(overlap(widened(close, GAP), box) for box in boxes[1:]) and not any(crosses(close, s) for s in segments):
            return close
        bottom = max(box[3] for box in boxes) + GAP
        right = min(name_width / 2, right_limit)
        left = right - name_width
        if left < left_limit - self.extra[place.column]:
            self.extra[place.column] = left_limit - left
        return (left, bottom, right, bottom + NAME_HEIGHT)

    # Order within columns -----------------------------------------------------------

    def _order(self) -> None:
        for column in self.by_column:
            for index, place in enumerate(column):
                place.order = index
        best = [list(column) for column in self.by_column]
        fewest = self._crossings()
        for sweep in range(8):
            if sweep % 2 == 0:
                for column in self.by_column[1:]:
                    self._sort(column, forward=True)
            else:
                for column in reversed(self.by_column[:-1]):
                    self._sort(column, forward=False)
            crossings = self._crossings()
            if crossings < fewest:
                fewest, best = crossings, [list(column) for column in self.by_column]
        self.by_column = best
        for column in self.by_column:
            for index, place in enumerate(column):
                place.order = index
        self._transpose()

    def _transpose(self) -> None:
        """Neighbours in a column change places while that takes out crossings."""

        def around(c: int) -> int:
            return (self._channel(c - 1) if c > 0 else 0) + self._channel(c)

        for _ in range(20):
            improved = False
            for c, column in enumerate(self.by_column):
                for i in range(len(column) - 1):
                    before = around(c)
                    column[i], column[i + 1] = column[i + 1], column[i]
                    column[i].order, column[i + 1].order = i, i + 1
                    if around(c) < before:
                        improved = True
                    else:
                        column[i], column[i + 1] = column[i + 1], column[i]
                        column[i].order, column[i + 1].order = i, i + 1
            if not improved:
                break

    @staticmethod
    def _sort(column: list[_Place], forward: bool) -> None:
        """By the barycentre of the places linked on the left (or right); a lane above a
        gate's centre counts a quarter place higher."""
        def key(place: _Place) -> tuple[float, int]:
            if forward:
                links = [source.order + lane / (4 * LANE) for source, lane in place.ins]
            else:
                links = [destination.order - lane / (4 * LANE) for destination, lane in place.outs]
            return (sum(links) / len(links) if links else float(place.order), place.order)

        column.sort(key=key)
        for index, place in enumerate(column):
            place.order = index

    def _crossings(self) -> int:
        return sum(self._channel(c) for c in range(self.columns - 1))

    def _channel(self, c: int) -> int:
        """The crossings of the wires between column c and the next."""
        if not 0 <= c < self.columns - 1:
            return 0
        links = [(source.order, destination.order - lane / (4 * LANE)) for source in self.by_column[c] for destination, lane in source.outs]
        return sum(1 for i, (a1, b1) in enumerate(links) for a2, b2 in links[i + 1 :] if (a1 - a2) * (b1 - b2) < 0)

    # Heights ------------------------------------------------------------------------

    def _heights(self) -> None:
        """Places as close to their wanted heights as their order and sizes allow. In
        depth (downwards) while placing."""
        depth: dict[int, float] = {}

        def place_column(column: list[_Place], wanted: list[float | None]) -> None:
            known = [w for w in wanted if w is not None]
            fallback = sum(known) / len(known) if known else 0.0
            targets = [fallback if w is None else w for w in wanted]
            weights = [1e-3 if w is None else 1.0 for w in wanted]
            offsets, total = [], 0.0
            for index, place in enumerate(column):
                if index:
                    total += column[index - 1].below + place.above + CLEARANCE
                offsets.append(total)
            fitted = _isotonic([t - o for t, o in zip(targets, offsets)], weights)
            for place, value, offset in zip(column, fitted, offsets):
                depth[id(place)] = value + offset

        def from_left(place: _Place) -> float | None:
            links = [depth[id(source)] + lane for source, lane in place.ins]
            return sum(links) / len(links) if links else None

        def from_right(place: _Place) -> float | None:
            links = [depth[id(destination)] - lane for destination, lane in place.outs]
            return sum(links) / len(links) if links else None

        # Gates follow the wires coming in; inputs and dummies (which have one wire in)
        # follow the lanes they feed, so long wires run straight into their gates.
        place_column(self.by_column[0], [0.0] * len(self.by_column[0]))
        for column in self.by_column[1:]:
            place_column(column, [from_left(p) for p in column])
        for _ in range(ROUNDS):
            for column in reversed(self.by_column[:-1]):
                place_column(column, [from_right(p) if p.kind != "gate" else depth[id(p)] for p in column])
            for column in self.by_column[1:]:
                place_column(column, [from_left(p) if p.kind == "gate" else depth[id(p)] for p in column])
        for column in self.by_column:
            for place in column:
                place.y = -depth[id(place)]
        self._straighten()

    def _straighten(self) -> None:
        """Small steps look like slips of the pen. For a wire with one, the places on one
        side of it, with all that is joined to them by straight wires and all they would
        push in their columns, move by the step when that leaves fewer small steps in the
        picture (then a smaller sum of them)."""
        links = [(source, destination, lane) for column in self.by_column for source in column for destination, lane in source.outs]
        joined: dict[int, list[tuple[_Place, _Place, float]]] = {}
        for link in links:
            joined.setdefault(id(link[0]), []).append(link)
            joined.setdefault(id(link[1]), []).append(link)

        def step(link) -> float:
            source, destination, lane = link
            return source.y - (destination.y + lane)

        def score() -> tuple[int, float]:
            small = [abs(step(link)) for link in links if 1e-6 < abs(step(link)) < SNAP]
            return len(small), round(sum(small), 6)

        def component(place: _Place, moving: dict[int, _Place]) -> None:
            stack = [place]
            while stack:
                item = stack.pop()
                if id(item) in moving:
                    continue
                moving[id(item)] = item
                for link in joined.get(id(item), ()):
                    if abs(step(link)) <= 1e-6:
                        stack.append(link[1] if link[0] is item else link[0])

        def group(place: _Place, shift: float, cut: tuple[_Place, _Place, float]) -> dict[int, _Place] | None:
            """The places that move with `place` by `shift`; None if the wire being
            straightened would move with them."""
            moving: dict[int, _Place] = {}
            component(place, moving)
            while True:
                pushed = None
                for item in list(moving.values()):
                    column = self.by_column[item.column]
                    neighbour_index = item.order - 1 if shift > 0 else item.order + 1
                    if not 0 <= neighbour_index < len(column) or id(column[neighbour_index]) in moving:
                        continue
                    neighbour = column[neighbour_index]
                    if shift > 0:
                        room = neighbour.y - neighbour.below - CLEARANCE - (item.y + item.above)
                    else:
                        room = item.y - item.below - CLEARANCE - (neighbour.y + neighbour.above)
                    if room < abs(shift) - 1e-9:
                        pushed = neighbour
                        break
                if pushed is None:
                    break
                component(pushed, moving)
            if id(cut[0]) in moving and id(cut[1]) in moving:
                return None
            return moving

        for _ in range(4 * len(links) + 10):
            current = score()
            if current[0] == 0:
                break
            best = None
            for link in links:
                difference = step(link)
                if not 1e-6 < abs(difference) < SNAP:
                    continue
                for place, shift in ((link[1], difference), (link[0], -difference)):
                    moving = group(place, shift, link)
                    if moving is None:
                        continue
                    for item in moving.values():
                        item.y += shift
                    after = score()
                    for item in moving.values():
                        item.y -= shift
                    if after < current and (best is None or after < best[0]):
                        best = (after, list(moving.values()), shift)
            if best is None:
                break
            for item in best[1]:
                item.y += best[2]

    # Across: tracks and columns -------------------------------------------------------

    def _tracks(self) -> None:
        """One vertical track in a channel for each place whose wire changes height there,
        in the order that crosses the fewest wires: a place's lanes leave its track to the
        right, its trunk comes in from the left."""
        self.track: dict[int, float | None] = {}  # id(place) → x after the trunk zone
        self.crossed: dict[int, tuple[float, float]] = {}  # id(place) → the two tracks of an X
        self.track_count = [0] * self.columns
        for c, column in enumerate(self.by_column):
            spines = []
            for place in column:
                lanes = [destination.y + lane for destination, lane in place.outs]
                low, high = min(lanes + [place.y]), max(lanes + [place.y])
                if high - low > 1e-9:
                    spines.append((place, lanes, low, high))
                else:
                    self.track[id(place)] = None

            def cost(left, right) -> int:
                """Crossings with `left`'s track to the left of `right`'s; twice as bad: a
                lane of `left` running close along `right`'s trunk between the tracks, and
                far worse, on it."""
                _, lanes, _, _ = left
                place, _, low, high = right
                crossings = sum(1 for lane in lanes if low - 1e-9 <= lane <= high + 1e-9)
                close = sum(2 if abs(lane - place.y) > 1e-9 else 50 for lane in lanes if abs(lane - place.y) < 2 * CLEARANCE)
                return crossings + close + (1 if left[2] - 1e-9 <= place.y <= left[3] + 1e-9 else 0)

            spines = [spines[k] for k in _least_crossing([[cost(a, b) for b in spines] for a in spines])]
            for k, (place, _, _, _) in enumerate(spines):
                self.track[id(place)] = TRACK * (k + 1)
            self.track_count[c] = len(spines)
            # A wire whose height before or after its track is another's after or before
            # its own would run on that one between the two tracks, whatever their order:
            # it crosses the whole track zone slantwise instead (two that swap heights make
            # an X). Only one with a single lane here and no trunk ending at its track.
            for place, lanes, _, _ in spines:
                if len(lanes) != 1 or (place.kind != "dummy" and place.name in self.splits):
                    continue
                others = [(other, other_lanes) for other, other_lanes, _, _ in spines if other is not place]
                if any(abs(lanes[0] - other.y) < 1e-6 or any(abs(lane - place.y) < 1e-6 for lane in other_lanes) for other, other_lanes in others):
                    self.crossed[id(place)] = (TRACK / 2, TRACK * (len(spines) + 0.5))

    def _across(self) -> None:
        self.x = [0.0] * self.columns
        for c in range(self.columns - 1):
            tracks = TRACK * (self.track_count[c] + 1) if self.track_count[c] else PAD
            self.x[c + 1] = round(
                self.x[c] + self.half[c] + self.trunk[c] + tracks + self.extra[c + 1]
                + NUMBER_WIDTH + self.converge[c + 1] + self.half[c + 1], 3
            )

    # The record ---------------------------------------------------------------------

    def diagram(self) -> CircuitDiagram:
        self._order()
        self._heights()
        for place in (place for column in self.by_column for place in column):
            place.y = round(place.y, 3)
        self._tracks()
        self._across()
        gates = tuple(self._gate(node) for node in self.circuit.nodes)
        inputs = tuple(self._input(item.name) for item in self.circuit.inputs)
        wires: list[Wire] = []
        for name in self.column:
            wires += self._wires_of(name)
        wires += self._constants()
        wires.append(self._output())
        junctions = self._junctions()
        xs = [x for wire in wires for x, _ in wire.points]
        ys = [y for wire in wires for _, y in wire.points]
        boxes = [slot.box for wire in wires for slot in (wire.value_slot, wire.gradient_slot) if slot is not None]
        boxes += [item.name_slot.box for item in (*inputs, *gates)]
        boxes += [(g.x - g.width / 2, g.y - g.height / 2, g.x + g.width / 2, g.y + g.height / 2) for g in gates]
        margin = 0.05
        return CircuitDiagram(
            inputs=inputs,
            gates=gates,
            wires=tuple(wires),
            junctions=junctions,
            number_width=NUMBER_WIDTH,
            number_height=NUMBER_HEIGHT,
            name_height=NAME_HEIGHT,
            left=round(min(xs + [b[0] for b in boxes]) - margin, 3),
            bottom=round(min(ys + [b[1] for b in boxes]) - margin, 3),
            right=round(max(xs + [b[2] for b in boxes]) + margin, 3),
            top=round(max(ys + [b[3] for b in boxes]) + margin, 3),
        )

    def _slot(self, box: Box, x: float, y: float) -> Slot:
        left, bottom, right, top = box
        return Slot(round(x + (left + right) / 2, 3), round(y + (bottom + top) / 2, 3), round(right - left, 3), round(top - bottom, 3))

    def _gate(self, node) -> DrawnGate:
        place = self.place[node.name]
        shape, width, height = self.size(node.gate)
        x = self.x[place.column]
        return DrawnGate(node.name, node.gate, shape, x, place.y, width, height, place.column, self._slot(self.name_boxes[node.name], x, place.y))

    def _input(self, name: str) -> DrawnInput:
        place = self.place[name]
        return DrawnInput(name, 0.0, place.y, self._slot(self.name_boxes[name], 0.0, place.y))

    def value(self, name: str) -> float:
        return float(self.values.get(name, self.circuit.value(name)))

    def gradient(self, name: str) -> float:
        return float(self.gradients.get(name, self.circuit.gradient(name).value))

    def _exit(self, place: _Place) -> tuple[float, float]:
        if place.kind == "gate":
            return round(self.x[place.column] + self.size(self.nodes[place.name].gate)[1] / 2, 3), place.y
        return self.x[place.column], place.y

    def _track_x(self, place: _Place) -> float | None:
        offset = self.track[id(place)]
        if offset is None:
            return None
        return round(self.x[place.column] + self.half[place.column] + self.trunk[place.column] + offset, 3)

    def _entry(self, gate: str, position: int) -> list[tuple[float, float]]:
        """The end of an operand's wire: along its lane to the gate."""
        place = self.place[gate]
        node = self.nodes[gate]
        _, width, height = self.size(node.gate)
        lane = self.lane(gate, position)
        x = self.x[place.column]
        port = self.port(node.gate, width, height, lane)
        return [(round(x + self.lane_zone(place.column)[1], 3), round(place.y + lane, 3)), (round(x + port[0], 3), round(place.y + port[1], 3))]

    def _lane_slots(self, gate: str, position: int, constant: bool = False) -> tuple[Slot, Slot | None]:
        place = self.place[gate]
        left, right = self.lane_zone(place.column)
        lane = self.lane(gate, position)
        x, y = self.x[place.column], place.y
        value = self._slot((left, lane + GAP, right, lane + GAP + NUMBER_HEIGHT), x, y)
        gradient = None if constant else self._slot((left, lane - GAP - NUMBER_HEIGHT, right, lane - GAP), x, y)
        return value, gradient

    def _trunk_slots(self, place: _Place) -> tuple[Slot, Slot]:
        left, right = self.trunk_zone(place.column)
        x = self.x[place.column]
        return (
            self._slot((left, GAP, right, GAP + NUMBER_HEIGHT), x, place.y),
            self._slot((left, -GAP - NUMBER_HEIGHT, right, -GAP), x, place.y),
        )

    def _path(self, gate: str, position: int) -> list[tuple[float, float]]:
        """From the source's side to the gate: along tracks and through dummies."""
        path = self.paths[gate, position] + [self.place[gate]]
        points = [self._exit(path[0])]
        for source, destination in itertools.pairwise(path):
            height = destination.y + (self.lane(gate, position) if destination.kind == "gate" else 0.0)
            track = self._track_x(source)
            if id(source) in self.crossed:
                start = self.x[source.column] + self.half[source.column] + self.trunk[source.column]
                left, right = (round(start + offset, 3) for offset in self.crossed[id(source)])
                points += [(left, source.y), (right, round(height, 3))]
            elif track is not None:
                points += [(track, source.y), (track, round(height, 3))]
        return points + self._entry(gate, position)

    def _wires_of(self, name: str) -> list[Wire]:
        uses = self.uses[name]
        if not uses:
            return []
        place = self.place[name]
        value = self.value(name)
        if len(uses) == 1:
            gate, position = uses[0]
            value_slot, gradient_slot = self._lane_slots(gate, position)
            points = _simplified(self._path(gate, position))
            return [Wire(WireKind.SINGLE, name, name, gate, position, points, value, self.gradient(name), value_slot, gradient_slot)]
        split = self._track_x(place)
        if split is None:
            split = round(self.x[place.column] + self.half[place.column] + self.trunk[place.column], 3)
        exit_ = self._exit(place)
        value_slot, gradient_slot = self._trunk_slots(place)
        wires = [Wire(WireKind.TRUNK, name, name, None, None, (exit_, (split, place.y)), value, self.gradient(name), value_slot, gradient_slot)]
        contributions = {(c.node, c.position): c for c in self.circuit.gradient(name).contributions}
        drawn: list[tuple[tuple[float, float], tuple[float, float]]] = []
        for gate, position in uses:
            contribution = contributions[gate, position]
            share = contribution.value if gate not in self.gradients else self.gradient(gate) * contribution.local
            points = _unshared(_simplified([(split, place.y)] + self._path(gate, position)[1:]), drawn)
            drawn += list(itertools.pairwise(points))
            value_slot, gradient_slot = self._lane_slots(gate, position)
            wires.append(Wire(WireKind.BRANCH, name, name, gate, position, points, value, float(share), value_slot, gradient_slot))
        return wires

    def _constants(self) -> list[Wire]:
        wires = []
        for node in self.circuit.nodes:
            for position, operand in enumerate(node.operands):
                if isinstance(operand, str):
                    continue
                place = self.place[node.name]
                entry = self._entry(node.name, position)
                start = (round(self.x[place.column] + self.lane_zone(place.column)[0], 3), entry[0][1])
                value_slot, _ = self._lane_slots(node.name, position, constant=True)
                wires.append(Wire(WireKind.CONSTANT, "", None, node.name, position, _simplified([start] + entry), float(operand), None, value_slot, None))
        return wires

    def _output(self) -> Wire:
        place = self.place[self.circuit.output]
        start = self._exit(place)
        end = (round(self.x[place.column] + self.half[place.column] + self.trunk[place.column], 3), place.y)
        value_slot, gradient_slot = self._trunk_slots(place)
        name = self.circuit.output
        return Wire(WireKind.OUTPUT, name, name, None, None, (start, end), self.value(name), self.gradient(name), value_slot, gradient_slot)

    def _junctions(self) -> tuple[tuple[float, float], ...]:
        """A dot where three or four directions of one value's wire meet on its track."""
        dots = []
        for column in self.by_column:
            for place in column:
                track = self._track_x(place)
                if track is None:
                    continue
                lanes = {round(destination.y + lane, 3) for destination, lane in place.outs}
                heights = lanes | {place.y}
                low, high = min(heights), max(heights)
                for height in sorted(heights, reverse=True):
                    directions = (height == place.y) + (height in lanes) + (height < high) + (height > low)
                    if directions >= 3:
                        dots.append((track, height))
        return tuple(dots)


def _least_crossing(pairs: list[list[int]]) -> list[int]:
    """An order of tracks with the least sum of pairs[a][b] over a before b: every order
    for a few, else pairwise first, then each moved to where it costs least, while that
    helps."""

    def total(order: list[int]) -> int:
        return sum(pairs[a][b] for i, a in enumerate(order) for b in order[i + 1 :])

    if len(pairs) <= 6:
        return list(min(itertools.permutations(range(len(pairs))), key=lambda order: total(list(order))))
    best = sorted(range(len(pairs)), key=functools.cmp_to_key(lambda a, b: pairs[a][b] - pairs[b][a]))
    for _ in range(20):
        improved = False
        for k in list(best):
            rest = [m for m in best if m != k]
            candidate = min((rest[:i] + [k] + rest[i:] for i in range(len(rest) + 1)), key=total)
            if total(candidate) < total(best):
                best, improved = candidate, True
        if not improved:
            break
    return best


def _unshared(points: tuple[tuple[float, float], ...], drawn: list[tuple[tuple[float, float], tuple[float, float]]]) -> tuple[tuple[float, float], ...]:
    """A branch from where it leaves the branches of its value already drawn (which it
    follows from the split), so no stretch of wire is drawn twice."""

    def reach(a: tuple[float, float], b: tuple[float, float]) -> float:
        """How far from a towards b (0 to 1) the drawn segments cover without a gap."""
        axis = 0 if a[1] == b[1] else 1 if a[0] == b[0] else None
        if axis is None:
            return 0.0
        other = 1 - axis
        low, high = sorted((a[axis], b[axis]))
        pieces = sorted(sorted((p[axis], q[axis])) for p, q in drawn if p[other] == q[other] == a[other] and p[axis] != q[axis])
        forward = b[axis] >= a[axis]
        position = a[axis]
        moved = True
        while moved:
            moved = False
            for start, end in pieces:
                if start - 1e-9 <= position <= end + 1e-9:
                    further = end if forward else start
                    if (further > position + 1e-9) if forward else (further < position - 1e-9):
                        position, moved = further, True
        covered = (min(position, high) - a[axis]) if forward else (a[axis] - max(position, low))
        return max(0.0, min(1.0, covered / (high - low))) if high > low else 0.0

    for index, (a, b) in enumerate(itertools.pairwise(points)):
        share = reach(a, b)
        if share < 1 - 1e-9:
            start = (round(a[0] + share * (b[0] - a[0]), 3), round(a[1] + share * (b[1] - a[1]), 3))
            return _simplified([start, *points[index + 1 :]])
    raise AssertionError("a branch drawn twice")  # each ends in its own lane


def _simplified(points: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """Without repeated points and the middle one of three on a line."""
    kept: list[tuple[float, float]] = []
    for point in points:
        point = (round(point[0], 3), round(point[1], 3))
        if kept and point == kept[-1]:
            continue
        if len(kept) >= 2:
            (x1, y1), (x2, y2) = kept[-2], kept[-1]
            if abs((x2 - x1) * (point[1] - y1) - (y2 - y1) * (point[0] - x1)) < 1e-9:
                kept[-1] = point
                continue
        kept.append(point)
    return tuple(kept)
