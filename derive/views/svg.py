"""SVG pictures for the Markdown solution, drawn from the figure records without TeX.

Built with xml.etree.ElementTree, so every label is escaped and the file is valid XML.
Symbols are written in plain Unicode (a⁽¹⁾₀, ŷ) since an SVG shown as an image on
GitHub cannot typeset LaTeX.
"""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..solution.figures import Diagram, Drawing, Extent, Label, LossCurve
from .printing import number_text
from ..model.quantities import quantity_of

SCALE = 40.0  # pixels per centimetre of the layout
MARGIN = 4.0  # around everything drawn
MAX_PIXELS = 900  # the width of GitHub's page
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
# Advance widths in em of DejaVu Sans-like faces, by kind of character; the rest are 0.6.
_ADVANCES = (
    ("0123456789", 0.64), (".,:;'!|", 0.32), ("ijlIft()[] ", 0.36), ("rsz", 0.52), ("mwMW", 0.95),
    ("−+=×", 0.84), ("₀₁₂₃₄₅₆₇₈₉₍₎₊₋⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾⁺⁻", 0.42), ("ABCDEFGHJKLNOPQRSTUVXYZ", 0.72),
)
_ADVANCE = {character: advance for characters, advance in _ADVANCES for character in characters}


@dataclass(frozen=True)
class SansSerif:
    """The SVG's type, in pixels. A text's width is estimated from its characters and
    every text is drawn stretched to exactly that width (textLength), so its box is
    known whatever font the viewer has."""

    unit: float = 1 / SCALE
    max_width: float = (MAX_PIXELS - 2 * MARGIN) / SCALE
    label_size: float = 13
    symbol_size: float = 15
    title_size: float = 13

    def math(self, text: str, size: float) -> Extent:
        width = sum(_ADVANCE.get(character, 0.6) for character in text) * size
        return Extent(round(width, 1), 0.76 * size, 0.24 * size)

    plain = math


SANS_SERIF = SansSerif()


def _svg(width: float, height: float, title: str) -> ET.Element:
    root = ET.Element(
        "svg",
        xmlns="http://www.w3.org/2000/svg",
        width=f"{width:.0f}",
        height=f"{height:.0f}",
        viewBox=f"0 0 {width:.0f} {height:.0f}",
        role="img",
        **{"font-family": FONT},
    )
    ET.SubElement(root, "title").text = title
    ET.SubElement(root, "rect", width="100%", height="100%", fill="white")
    return root


def _text(parent: ET.Element, x: float, y: float, content: str, size: float, **attributes: str) -> ET.Element:
    element = ET.SubElement(
        parent, "text", {"x": f"{x:.1f}", "y": f"{y:.1f}", "font-size": f"{size:g}", "text-anchor": "middle", **attributes}
    )
    element.text = content
    return element


def _document(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=False) + "\n"


def _label(parent: ET.Element, label: Label, place, size: float, **attributes: str) -> None:
    """A text stretched to its measured width, on a white box that hides the lines under it."""
    x, y = place(label.x - label.width / 2, label.y + label.height / 2)
    width, height = f"{label.width * SCALE:.2f}", f"{label.height * SCALE:.2f}"
    ET.SubElement(parent, "rect", x=f"{x:.2f}", y=f"{y:.2f}", width=width, height=height, fill="white")
    _set(parent, label, place, size, **attributes)


def _set(parent: ET.Element, label: Label, place, size: float, **attributes: str) -> None:
    """A label's text alone, on its baseline, stretched to its measured width."""
    x, baseline = place(label.x, label.y - label.height / 2 + label.descent)
    _text(
        parent, x, baseline, label.text, size,
        textLength=f"{label.text_width * SCALE:.2f}", lengthAdjust="spacingAndGlyphs", **attributes,
    )


def network_svg(diagram: Diagram, notation, digits: int) -> str:
    """Inputs and units as circles labelled with their symbols, every edge with its
    weight on it (but in layers too dense for that), each unit's bias next to it; the
    picture cropped to what is drawn."""
    biases = [
        None if node.bias is None else f"{notation.text(quantity_of(node.bias))} = {number_text(node.bias_value, digits, exact=True)}"
        for node in diagram.nodes
    ]
    symbols = [notation.text(quantity_of(node.symbol)) for node in diagram.nodes]
    drawing = diagram.drawn(SANS_SERIF, symbols, [number_text(edge.value, digits, exact=True) for edge in diagram.edges], biases)
    picture_width = (drawing.right - drawing.left) * SCALE
    size = SANS_SERIF.label_size
    # The note under the picture, in lines no wider than the picture (but for a long word).
    notes = textwrap.wrap(_left_out(drawing), max(int(picture_width / (0.7 * size)), 30))
    note_widths = [SANS_SERIF.math(line, size).width for line in notes]
    width = max([picture_width, *note_widths]) + 2 * MARGIN
    picture_height = (drawing.top - drawing.bottom) * SCALE + 2 * MARGIN
    height = picture_height + 1.3 * size * len(notes)
    root = _svg(width, height, "Network: inputs, units, weights and biases")

    def place(x: float, y: float) -> tuple[float, float]:
        return (x - drawing.left) * SCALE + MARGIN, (drawing.top - y) * SCALE + MARGIN

    edges = ET.SubElement(root, "g", stroke="#777", **{"stroke-width": "1"})
    for edge in drawing.edges:
        (x1, y1), (x2, y2) = place(edge.x1, edge.y1), place(edge.x2, edge.y2)
        ET.SubElement(edges, "line", x1=f"{x1:.2f}", y1=f"{y1:.2f}", x2=f"{x2:.2f}", y2=f"{y2:.2f}")
    weights = ET.SubElement(root, "g", fill="#111")
    for edge in drawing.edges:
        if edge.weight is not None:
            _label(weights, edge.weight, place, drawing.label_size)
    for node in drawing.nodes:
        x, y = place(node.x, node.y)
        unit = ET.SubElement(root, "g", **{"class": "input" if node.is_input else "unit"})
        ET.SubElement(
            unit, "circle", cx=f"{x:.2f}", cy=f"{y:.2f}", r=f"{drawing.radius * SCALE:.2f}",
            fill="#eef3fb" if node.is_input else "#fff7e6", stroke="#333", **{"stroke-width": "1.2"},
        )
        _set(unit, node.symbol, place, drawing.symbol_size, fill="#111")
        if node.bias is not None:
            _label(unit, node.bias, place, drawing.label_size, fill="#111")
    titles = ET.SubElement(root, "g", fill="#222")
    for title in drawing.titles:
        _set(titles, title, place, drawing.title_size)
    for k, (line, line_width) in enumerate(zip(notes, note_widths)):
        _text(root, width / 2, picture_height + 1.3 * size * k + size, line, size, fill="#222",
              textLength=f"{line_width:.2f}", lengthAdjust="spacingAndGlyphs")
    return _document(root)


def _left_out(drawing: Drawing) -> str:
    """What the picture leaves to the Network section, as the TikZ caption says it."""
    def named(numbers: tuple[int, ...]) -> str:
        return f"layer {numbers[0]}" if len(numbers) == 1 else "layers " + ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"

    layers, biases = drawing.unlabelled_layers, drawing.unlabelled_biases
    sentences = []
    if len(layers) == 1:
        sentences.append(f"{named(layers).capitalize()} has too many edges to label: its weights are in its weight matrix")
    elif layers:
        sentences.append(f"{named(layers).capitalize()} have too many edges to label: their weights are in their weight matrices")
    if biases:
        sentences.append(f"The units of {named(biases)} have no room beside them for their biases, which are given")
    return " ".join(f"{sentence} in the Network section." for sentence in sentences)


def loss_svg(curve: LossCurve, loss_name: str, digits: int) -> str:
    """The loss before each update (and after the last), with labelled axes."""
    width, height = 560.0, 320.0
    left, right, top, bottom = 70.0, 20.0, 20.0, 50.0
    root = _svg(width, height, "Loss per update")
    (x0, x1), (y0, y1) = curve.x_range, curve.y_range

    def to_x(step: float) -> float:
        return left + (step - x0) / max(x1 - x0, 1e-12) * (width - left - right)

    def to_y(loss: float) -> float:
        return height - bottom - (loss - y0) / max(y1 - y0, 1e-12) * (height - top - bottom)

    axes = ET.SubElement(root, "g", stroke="#333", fill="none")
    ET.SubElement(axes, "line", x1=f"{left}", y1=f"{height - bottom}", x2=f"{width - right}", y2=f"{height - bottom}")
    ET.SubElement(axes, "line", x1=f"{left}", y1=f"{top}", x2=f"{left}", y2=f"{height - bottom}")
    ticks = ET.SubElement(root, "g", fill="#333")
    for step in curve.x_ticks:
        ET.SubElement(axes, "line", x1=f"{to_x(step):.1f}", y1=f"{height - bottom}", x2=f"{to_x(step):.1f}", y2=f"{height - bottom + 5}")
        _text(ticks, to_x(step), height - bottom + 18, f"{step:g}", 11)
    for loss in curve.y_ticks:
        ET.SubElement(axes, "line", x1=f"{left - 5}", y1=f"{to_y(loss):.1f}", x2=f"{left}", y2=f"{to_y(loss):.1f}")
        _text(ticks, left - 8, to_y(loss) + 4, number_text(loss, digits), 11, **{"text-anchor": "end"})
    _text(root, (left + width - right) / 2, height - 10, "updates done", 12)
    _text(root, 16, (top + height - bottom) / 2, f"loss {loss_name}", 12, transform=f"rotate(-90 16 {(top + height - bottom) / 2:.1f})")
    points = " ".join(f"{to_x(step):.1f},{to_y(loss):.1f}" for step, loss in curve.points)
    ET.SubElement(root, "polyline", points=points, fill="none", stroke="#1f5fbf", **{"stroke-width": "2"})
    if len(curve.points) <= 50:
        marks = ET.SubElement(root, "g", fill="#1f5fbf")
        for step, loss in curve.points:
            ET.SubElement(marks, "circle", cx=f"{to_x(step):.1f}", cy=f"{to_y(loss):.1f}", r="3")
    return _document(root)
