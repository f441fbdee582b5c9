"""The circuit picture as SVG for the Markdown solution: gates, wires, every forward value
above its wire (dark green) and every gradient below it (dark red), names small and grey.

Drawn from the `CircuitDiagram` record as it is laid out (centimetres, scaled here); each
text is set in the slot the layout kept for it, smaller or squeezed when it would not fit,
so no text runs into another whatever font the viewer has. Built with
xml.etree.ElementTree: escaped, valid and the same bytes for the same record."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..model.circuit import Gate
from ..solution.circuit_diagram import CircuitDiagram, Slot, WireKind
from .printing import number_text
from .svg import FONT, SANS_SERIF

SCALE = 36.0  # pixels per centimetre of the layout
MARGIN = 4.0  # pixels around everything drawn
MAX_PIXELS = 720  # wider pictures are scaled down to this (GitHub's Markdown column)
NUMBER_SIZE = 10.5  # pixels
NAME_SIZE = 9.0
SIGN_SIZE = 14.0  # in a round gate
WORD_SIZE = 11.0  # in a boxed gate
SMALLEST = 0.75  # a text is made no smaller than this share of its size; beyond, it is squeezed

VALUE_COLOUR = "#13652a"  # dark green
GRADIENT_COLOUR = "#a3151c"  # dark red
NAME_COLOUR = "#6a6f75"  # grey
WIRE_COLOUR = "#333333"

SIGNS = {
    Gate.ADD: "+", Gate.SUBTRACT: "−", Gate.MULTIPLY: "×", Gate.DIVIDE: "÷", Gate.POWER: "^", Gate.NEGATE: "−x",
    Gate.EXP: "exp", Gate.LOG: "log", Gate.SIGMOID: "σ", Gate.TANH: "tanh", Gate.RELU: "ReLU", Gate.MAX: "max",
    Gate.MIN: "min", Gate.ABS: "|·|",
}
TITLE = "Computational graph: each forward value above its wire (green), each gradient below it (red)"


def circuit_svg(diagram: CircuitDiagram, digits: int = 3, exact: bool = False) -> str:
    """The picture at SCALE, or narrower to fit MAX_PIXELS. `digits` and `exact` print the
    values and gradients as number_text does; constants are printed exactly."""
    natural_width = diagram.width * SCALE + 2 * MARGIN
    natural_height = diagram.height * SCALE + 2 * MARGIN
    shrink = min(1.0, MAX_PIXELS / natural_width)
    title = f"{TITLE}; output {diagram.output}"
    root = ET.Element(
        "svg",
        xmlns="http://www.w3.org/2000/svg",
        width=f"{natural_width * shrink:.0f}",
        height=f"{natural_height * shrink:.0f}",
        viewBox=f"0 0 {natural_width:.1f} {natural_height:.1f}",
        role="img",
        **{"aria-label": title, "font-family": FONT},
    )
    ET.SubElement(root, "title").text = title
    ET.SubElement(root, "rect", width="100%", height="100%", fill="white")

    def place(x: float, y: float) -> tuple[float, float]:
        return (x - diagram.left) * SCALE + MARGIN, (diagram.top - y) * SCALE + MARGIN

    wires = ET.SubElement(root, "g", {"class": "wires", "fill": "none", "stroke": WIRE_COLOUR, "stroke-width": "1.2", "stroke-linejoin": "round"})
    for wire in diagram.wires:
        points = " ".join(f"{x:.2f},{y:.2f}" for x, y in (place(*point) for point in wire.points))
        ET.SubElement(wires, "polyline", points=points)
    dots = ET.SubElement(root, "g", {"class": "marks", "fill": WIRE_COLOUR})  # junctions, constants, the arrowhead
    for point in diagram.junctions:
        x, y = place(*point)
        ET.SubElement(dots, "circle", cx=f"{x:.2f}", cy=f"{y:.2f}", r="2.4")
    for wire in diagram.wires:
        if wire.kind == WireKind.CONSTANT:
            x, y = place(*wire.points[0])
            ET.SubElement(dots, "circle", cx=f"{x:.2f}", cy=f"{y:.2f}", r="2")
        if wire.kind == WireKind.OUTPUT:
            x, y = place(*wire.points[-1])  # an arrowhead: the output wire is horizontal
            ET.SubElement(dots, "path", d=f"M{x:.2f},{y:.2f} l-7,-3.5 v7 z")

    gates = ET.SubElement(root, "g", {"class": "gates"})
    for gate in diagram.gates:
        x, y = place(gate.x, gate.y)
        style = {"fill": "#fbfbf8", "stroke": WIRE_COLOUR, "stroke-width": "1.3"}
        if gate.shape == "circle":
            ET.SubElement(gates, "circle", cx=f"{x:.2f}", cy=f"{y:.2f}", r=f"{gate.width / 2 * SCALE:.2f}", **style)
        else:
            width, height = gate.width * SCALE, gate.height * SCALE
            ET.SubElement(
                gates, "rect", x=f"{x - width / 2:.2f}", y=f"{y - height / 2:.2f}", width=f"{width:.2f}", height=f"{height:.2f}",
                rx="5", **style,
            )
        sign = SIGNS[gate.gate]
        size = SIGN_SIZE if gate.shape == "circle" and len(sign) == 1 else WORD_SIZE
        _text(gates, Slot(gate.x, gate.y, gate.width * 0.86, gate.height * 0.8), sign, size, place, fill="#111111")

    numbers = ET.SubElement(root, "g", {"class": "numbers"})
    for wire in diagram.wires:
        constant = wire.kind == WireKind.CONSTANT
        _text(numbers, wire.value_slot, number_text(wire.value, digits, exact=exact or constant), NUMBER_SIZE, place,
              fill=WIRE_COLOUR if constant else VALUE_COLOUR)
        if wire.gradient_slot is not None and wire.gradient is not None:
            _text(numbers, wire.gradient_slot, number_text(wire.gradient, digits, exact=exact), NUMBER_SIZE, place, fill=GRADIENT_COLOUR)
    names = ET.SubElement(root, "g", {"class": "names", "fill": NAME_COLOUR})
    for item in (*diagram.inputs, *diagram.gates):
        _text(names, item.name_slot, item.name, NAME_SIZE, place)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=False) + "\n"


def _text(parent: ET.Element, slot: Slot, content: str, size: float, place, **attributes: str) -> None:
    """A text centred in its slot: at its size if it fits, else smaller, and squeezed to
    the slot's width if even that is too wide."""
    room = slot.width * SCALE - 2
    width = SANS_SERIF.math(content, size).width
    if width > room:
        size = max(size * room / width, size * SMALLEST)
        width = SANS_SERIF.math(content, size).width
    x, y = place(slot.x, slot.y)
    baseline = y + 0.26 * size  # the middle of a line of digits on the slot's centre
    element = ET.SubElement(
        parent, "text", {"x": f"{x:.2f}", "y": f"{baseline:.2f}", "font-size": f"{size:.3g}", "text-anchor": "middle", **attributes}
    )
    if width > room:
        element.set("textLength", f"{room:.2f}")
        element.set("lengthAdjust", "spacingAndGlyphs")
    element.text = content
