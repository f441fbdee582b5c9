"""SVG pictures for the Markdown solution, drawn from the figure records without TeX.

Built with xml.etree.ElementTree, so every label is escaped and the file is valid XML.
Symbols are written in plain Unicode (a⁽¹⁾₀, ŷ) since an SVG shown as an image on
GitHub cannot typeset LaTeX.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .figures import Diagram, LossCurve
from .printing import number_text
from .quantities import quantity_of

SCALE = 40.0  # pixels per centimetre of the layout
MARGIN = 60.0
NODE_RADIUS = 17.0
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


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


def _label(parent: ET.Element, x: float, y: float, content: str, size: float, **attributes: str) -> None:
    """Text on a white ground, readable where it crosses a line."""
    width = 0.62 * size * len(content) + 4
    ET.SubElement(
        parent, "rect", x=f"{x - width / 2:.1f}", y=f"{y - size:.1f}", width=f"{width:.1f}", height=f"{size + 4:g}",
        fill="white", **{"fill-opacity": "0.9"},
    )
    _text(parent, x, y, content, size, **attributes)


def _document(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=False) + "\n"


def network_svg(diagram: Diagram, notation, digits: int) -> str:
    """Inputs and units as circles labelled with their symbols, every edge labelled
    with its weight, each unit's bias under it."""
    width = diagram.width * SCALE + 2 * MARGIN + 40
    height = diagram.height * SCALE + 2 * MARGIN + 40
    root = _svg(width, height, "Network: inputs, units, weights and biases")

    def position(node) -> tuple[float, float]:
        return MARGIN + 20 + node.x * SCALE, MARGIN + 10 + (diagram.height - node.y) * SCALE

    for column in diagram.columns:
        _text(root, MARGIN + 20 + column.x * SCALE, 22, column.title, 12, fill="#444")
    edges = ET.SubElement(root, "g", stroke="#888", **{"stroke-width": "1"})
    labels = ET.SubElement(root, "g", fill="#222")
    for edge in diagram.edges:
        (x1, y1), (x2, y2) = position(diagram.nodes[edge.source]), position(diagram.nodes[edge.target])
        ET.SubElement(edges, "line", x1=f"{x1:.1f}", y1=f"{y1:.1f}", x2=f"{x2:.1f}", y2=f"{y2:.1f}")
        t = edge.position
        _label(labels, x1 + (x2 - x1) * t, y1 + (y2 - y1) * t + 4, number_text(edge.value, digits), 11)
    nodes = ET.SubElement(root, "g")
    for node in diagram.nodes:
        x, y = position(node)
        unit = ET.SubElement(nodes, "g", **{"class": "input" if node.is_input else "unit"})
        ET.SubElement(
            unit, "circle", cx=f"{x:.1f}", cy=f"{y:.1f}", r=f"{NODE_RADIUS:g}",
            fill="#eef3fb" if node.is_input else "#fff7e6", stroke="#333", **{"stroke-width": "1.2"},
        )
        _text(unit, x, y + 5, notation.text(quantity_of(node.symbol)), 14)
        if node.bias is not None:
            bias = f"{notation.text(quantity_of(node.bias))} = {number_text(node.bias_value, digits)}"
            _label(unit, x, y + NODE_RADIUS + 15, bias, 11, fill="#555")
    return _document(root)


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
    _text(root, (left + width - right) / 2, height - 10, "update (step)", 12)
    _text(root, 16, (top + height - bottom) / 2, f"loss {loss_name}", 12, transform=f"rotate(-90 16 {(top + height - bottom) / 2:.1f})")
    points = " ".join(f"{to_x(step):.1f},{to_y(loss):.1f}" for step, loss in curve.points)
    ET.SubElement(root, "polyline", points=points, fill="none", stroke="#1f5fbf", **{"stroke-width": "2"})
    if len(curve.points) <= 50:
        marks = ET.SubElement(root, "g", fill="#1f5fbf")
        for step, loss in curve.points:
            ET.SubElement(marks, "circle", cx=f"{to_x(step):.1f}", cy=f"{to_y(loss):.1f}", r="3")
    return _document(root)
