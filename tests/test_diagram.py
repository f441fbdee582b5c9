"""The network diagram read back from what a reader gets: the SVG beside the Markdown
and the TikZ picture in the LaTeX. No label touches another label, a circle, a title or
any edge but its own; each weight sits on its own edge, each bias next to its unit; the
text is large and dark; TeX's own boxes fit the sizes the picture gives them; the SVG is
cropped to what it draws. The geometry is shapely's, not the layout's own."""

from __future__ import annotations

import base64
import math
import random
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import pytest
from shapely.geometry import LineString, Point, box

import derive
from derive.views.svg import SANS_SERIF
from tests.test_render import compile_latex

SVG = "{http://www.w3.org/2000/svg}"
POINT = 2.54 / 72.27  # centimetres per TeX point
FULL = ["1-1", "2-2-1", "3-2-1", "2-3-2", "3-3-1", "2-2-2-1"]  # every weight and bias written
DENSE = ["8-4-3", "4-8-8-3"]  # layers too dense for their weights go without
CASES = [(shape, seed) for shape in FULL + DENSE for seed in (1, 2)]
CROP = 8.0  # px: the most blank margin the SVG may keep around what it draws
WEIGHTS_LEFT_OUT = r"ayers? ([\d, and]+?) ha(?:s|ve) too many edges to label"
BIASES_LEFT_OUT = r"units of layers? ([\d, and]+?) have no room beside them"


def shape_spec(shape: str, seed: int) -> dict:
    """A network of this shape, its weights and biases drawn from -1..1 with one or two decimals."""
    rng = random.Random(f"{shape}/{seed}")

    def value() -> float:
        return round(rng.uniform(-1, 1), rng.choice((1, 2)))

    inputs, *units = (int(n) for n in shape.split("-"))
    layers, fan_in = [], inputs
    for k, count in enumerate(units):
        activation = "sigmoid" if k == len(units) - 1 else "relu"
        weights = [[value() for _ in range(fan_in)] for _ in range(count)]
        layers.append({"units": count, "activation": activation, "weights": weights, "bias": [value() for _ in range(count)]})
        fan_in = count
    sample = {"x": [value() for _ in range(inputs)], "y": [round(rng.uniform(0, 1), 2) for _ in range(units[-1])]}
    return {"title": f"A {shape} network", "inputs": inputs, "layers": layers, "loss": "half_sse", "learning_rate": 0.1, "data": [sample]}


def units_of(shape: str) -> list[int]:
    return [int(n) for n in shape.split("-")]


@pytest.fixture(scope="module")
def solutions():
    return {case: derive.solve(shape_spec(*case)) for case in CASES}


@dataclass
class Picture:
    """What a picture draws, in its own unit (px in the SVG, cm in TikZ)."""

    near: float  # how far from its circle a bias label may be
    circles: list = field(default_factory=list)  # the stroke included
    centres: list = field(default_factory=list)
    edges: list = field(default_factory=list)  # (the line, its outline with the stroke)
    weights: list = field(default_factory=list)  # label boxes
    biases: list = field(default_factory=list)  # (label box, the index of its unit's circle)
    titles: list = field(default_factory=list)
    symbols: list = field(default_factory=list)  # (text box, the index of its circle)


def check_no_overlap(picture: Picture) -> dict[int, int]:
    """Fails on any label that touches what it must not; returns how many labels sit on each edge."""
    labels = picture.weights + [label for label, _ in picture.biases]
    for k, label in enumerate(labels):
        assert not any(label.intersects(other) for other in labels[k + 1:]), f"labels overlap at {label.bounds}"
        assert not any(label.intersects(circle) for circle in picture.circles), f"a label on a circle at {label.bounds}"
        assert not any(label.intersects(title) for title in picture.titles), f"a label on a title at {label.bounds}"
    on_edge = dict.fromkeys(range(len(picture.edges)), 0)
    for label in picture.weights:
        crossed = [k for k, (_, outline) in enumerate(picture.edges) if label.intersects(outline)]
        assert len(crossed) == 1, f"a weight label at {label.bounds} crosses {len(crossed)} edges"
        width = label.bounds[2] - label.bounds[0]
        assert picture.edges[crossed[0]][0].distance(label.centroid) < 0.01 * width, "a weight label not centred on its edge"
        on_edge[crossed[0]] += 1
    for label, unit in picture.biases:
        assert not any(label.intersects(outline) for _, outline in picture.edges), f"a bias label on an edge at {label.bounds}"
        distances = [label.distance(circle) for circle in picture.circles]
        assert min(range(len(distances)), key=distances.__getitem__) == unit, "a bias label nearer another unit than its own"
        assert distances[unit] <= picture.near, "a bias label far from its unit"
    assert len({unit for _, unit in picture.biases}) == len(picture.biases), "two bias labels by one unit"
    for text, circle in picture.symbols:
        assert picture.circles[circle].contains(text), "a symbol sticks out of its circle"
    for k, title in enumerate(picture.titles):
        assert not any(title.intersects(other) for other in picture.titles[k + 1:]), "titles overlap"
        assert not any(title.intersects(circle) for circle in picture.circles), "a title on a circle"
        assert not any(title.intersects(outline) for _, outline in picture.edges), "a title on an edge"
    return on_edge


def check_layers(picture: Picture, on_edge: dict[int, int]) -> list[int]:
    """Every edge of a layer has exactly one label, or none of them has; returns the layers without."""
    columns = sorted({round(x, 1) for x, _ in picture.centres})
    left_out = []
    for layer, (left, right) in enumerate(zip(columns, columns[1:]), start=1):
        counts = [on_edge[k] for k, (line, _) in enumerate(picture.edges) if left < line.centroid.x < right]
        assert counts and set(counts) in ({0}, {1}), f"layer {layer}: labels per edge {counts}"
        if counts[0] == 0:
            left_out.append(layer)
    return left_out


def named_layers(pattern: str, text: str) -> list[int]:
    """The layers a caption names: "Layers 1, 2 and 3 have too many edges to label" → [1, 2, 3]."""
    found = re.search(pattern, " ".join(text.split()))
    return [int(n) for n in re.findall(r"\d+", found.group(1))] if found else []


def check_counts(picture: Picture, shape: str, caption: str) -> None:
    """All there; what is left out is said in the caption, and only in the dense networks."""
    units = units_of(shape)
    assert len(picture.circles) == sum(units) and len(picture.edges) == sum(a * b for a, b in zip(units, units[1:]))
    left_out = check_layers(picture, check_no_overlap(picture))
    assert left_out == named_layers(WEIGHTS_LEFT_OUT, caption)
    missing = named_layers(BIASES_LEFT_OUT, caption)
    assert len(picture.biases) == sum(count for layer, count in enumerate(units[1:], start=1) if layer not in missing)
    if shape in FULL:
        assert not left_out and not missing
    else:
        assert 1 in left_out


# --- the SVG ----------------------------------------------------------------------------------


def network_svg(solution) -> ET.Element:
    """The network picture inlined in the Markdown."""
    markdown = derive.render(solution, "md")
    pictures = [ET.fromstring(base64.b64decode(p)) for p in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", markdown)]
    return next(root for root in pictures if root.find(f"{SVG}title").text.startswith("Network"))


def walk(element: ET.Element, inherited: dict, dx: float = 0.0, dy: float = 0.0):
    """Every element with the attributes it inherits and the translation of its groups."""
    moved = re.fullmatch(r"\s*translate\(\s*([-\d.]+)[ ,]+([-\d.]+)\s*\)\s*", element.get("transform") or "translate(0,0)")
    assert moved, f"transform not understood: {element.get('transform')}"
    dx, dy = dx + float(moved.group(1)), dy + float(moved.group(2))
    attributes = {**inherited, **{k: v for k, v in element.attrib.items() if k != "transform"}}
    yield element, attributes, dx, dy
    for child in element:
        yield from walk(child, attributes, dx, dy)


def text_box(attributes: dict, dx: float, dy: float):
    """A text's box: as wide as textLength, to which its glyphs are stretched, and the font's em high."""
    assert attributes.get("text-anchor") == "middle" and attributes.get("lengthAdjust") == "spacingAndGlyphs"
    x, y, size, length = (float(attributes[k]) for k in ("x", "y", "font-size", "textLength"))
    return box(dx + x - length / 2, dy + y - 0.76 * size, dx + x + length / 2, dy + y + 0.24 * size)


def dark(colour: str) -> bool:
    """#333 or darker in every channel."""
    digits = colour.lstrip("#")
    digits = "".join(c * 2 for c in digits) if len(digits) == 3 else digits
    return colour == "black" or all(int(digits[k:k + 2], 16) <= 0x33 for k in (0, 2, 4))


def svg_picture(root: ET.Element) -> tuple[Picture, list[str], list]:
    """The picture an SVG draws, the lines of the note under it, and the outline of everything drawn."""
    picture, notes, drawn = Picture(near=20.0), [], []
    elements = list(walk(root, {}))
    parent = {child: element for element, _, _, _ in elements for child in element}
    for k, (element, attributes, dx, dy) in enumerate(elements):
        tag = element.tag.removeprefix(SVG)
        stroke = float(attributes.get("stroke-width", 1)) if attributes.get("stroke", "none") != "none" else 0.0
        if tag == "line":
            line = LineString([(dx + float(attributes[x]), dy + float(attributes[y])) for x, y in (("x1", "y1"), ("x2", "y2"))])
            picture.edges.append((line, line.buffer(stroke / 2, cap_style="flat")))
            drawn.append(picture.edges[-1][1])
        elif tag == "circle":
            picture.centres.append((dx + float(attributes["cx"]), dy + float(attributes["cy"])))
            picture.circles.append(Point(picture.centres[-1]).buffer(float(attributes["r"]) + stroke / 2, quad_segs=64))
            drawn.append(picture.circles[-1])
        elif tag == "rect" and attributes.get("width") != "100%":  # a label's box; its text follows
            x, y, width, height = (float(attributes[k]) for k in ("x", "y", "width", "height"))
            label = box(dx + x, dy + y, dx + x + width, dy + y + height)
            text, text_attributes, tx, ty = elements[k + 1]
            assert text.tag == f"{SVG}text" and label.contains(text_box(text_attributes, tx, ty)), "a label's text sticks out of its box"
            assert float(text_attributes["font-size"]) >= 12 and dark(text_attributes["fill"]), "a label too small or too light"
            if parent[element].get("class") == "unit":
                picture.biases.append((label, len(picture.circles) - 1))
            else:
                picture.weights.append(label)
            drawn.append(label)
        elif tag == "text" and elements[k - 1][0].tag != f"{SVG}rect":
            text = text_box(attributes, dx, dy)
            drawn.append(text)
            assert float(attributes["font-size"]) >= 12 and dark(attributes["fill"]), f"{element.text} too small or too light"
            if parent[element].get("class") in ("input", "unit"):
                picture.symbols.append((text, len(picture.circles) - 1))
            elif parent[element] is root:
                notes.append(element.text)
            else:
                picture.titles.append(text)
    return picture, notes, drawn


@pytest.mark.parametrize("shape,seed", CASES)
def test_svg_labels_do_not_overlap(solutions, shape, seed):
    picture, notes, _ = svg_picture(network_svg(solutions[shape, seed]))
    check_counts(picture, shape, " ".join(notes))
    if shape in FULL:
        assert not notes


@pytest.mark.parametrize("shape,seed", CASES)
def test_svg_is_cropped_to_what_it_draws(solutions, shape, seed):
    root = network_svg(solutions[shape, seed])
    _, _, drawn = svg_picture(root)
    left, top, width, height = (float(v) for v in root.get("viewBox").split())
    assert (float(root.get("width")), float(root.get("height"))) == (width, height) and width <= 900
    bounds = [shape.bounds for shape in drawn]
    x0, y0 = min(b[0] for b in bounds), min(b[1] for b in bounds)
    x1, y1 = max(b[2] for b in bounds), max(b[3] for b in bounds)
    margins = (x0 - left, y0 - top, left + width - x1, top + height - y1)
    assert all(-0.5 <= margin <= CROP for margin in margins), margins


# --- the TikZ picture -----------------------------------------------------------------------


@dataclass
class Tikz:
    picture: Picture
    styles: dict[str, str]  # name → the style's keys, as written
    labels: list  # (style, text, width, height, depth): each label's and title's box in cm
    symbols: list  # (text, the circle's radius in cm)
    caption: str


STYLE = re.compile(r"([\w ]+)/\.style=\{((?:[^{}]|\{[^{}]*\})*)\}")
AT = r" at \((-?[\d.]+), (-?[\d.]+)\) "


def tikz_picture(tex: str) -> Tikz:
    """The network's picture: the part drawn once (edges, circles, titles: a box reused by
    every picture that draws the same) and the labels drawn over it, read together."""
    start = tex.index(r"\begin{tikzpicture}")
    end = tex.rindex(r"\end{tikzpicture}", start, tex.index(r"\end{figure}", start))
    source = tex[start:end]
    options = source[:source.index("]\n")]
    assert "scale" not in options and "x=1cm, y=1cm" in options, "the picture is scaled"
    assert not re.search(r"\\(resizebox|scalebox)", tex[max(0, start - 300):start]), "the picture is scaled"
    styles = {name.strip(): keys for name, keys in STYLE.findall(options)}

    def length(style: str, key: str, unit: str) -> float:
        return float(re.search(key + r"=([\d.]+)" + unit, styles[style]).group(1)) * (POINT if unit == "pt" else 1.0)

    radius = length("circle node", "minimum size", "cm") / 2
    circle_line, edge_line = length("circle node", "line width", "pt"), length("edge", "line width", "pt")
    picture, labels, symbols, boxes = Picture(near=0.5), [], [], []
    for line in source.splitlines():
        if edge := re.fullmatch(r"\\draw\[edge\] \((-?[\d.]+), (-?[\d.]+)\) -- \((-?[\d.]+), (-?[\d.]+)\);", line):
            x1, y1, x2, y2 = map(float, edge.groups())
            segment = LineString([(x1, y1), (x2, y2)])
            picture.edges.append((segment, segment.buffer(edge_line / 2, cap_style="flat")))
        elif node := re.fullmatch(r"\\node\[(?:input|unit)\]" + AT + r"\{\$(.*)\$\};", line):
            x, y = float(node.group(1)), float(node.group(2))
            picture.centres.append((x, y))
            picture.circles.append(Point(x, y).buffer(radius + circle_line / 2, quad_segs=64))
            symbols.append((node.group(3), radius))
        elif node := re.fullmatch(r"\\node\[title, minimum width=([\d.]+)cm, text height=([\d.]+)cm, text depth=([\d.]+)cm\]"
                                  + AT + r"\{(.*)\};", line):
            width, height, depth, x, y = map(float, node.group(1, 2, 3, 4, 5))
            labels.append(("title", node.group(6).strip(), width, height, depth))
            picture.titles.append(box(x - width / 2, y - (height + depth) / 2, x + width / 2, y + (height + depth) / 2))
        elif label := re.fullmatch(r"\\derivelabel" + r"\{(-?[\d.]+)\}" * 6 + r"\{(.*)\}", line):
            # its box (left, bottom, width, height), and the text's centre and baseline
            left, bottom, width, height, x, baseline = map(float, label.groups()[:6])
            assert abs(left + width / 2 - x) < 0.002 and bottom <= baseline <= bottom + height, line
            labels.append(("label", label.group(7), width, bottom + height - baseline, baseline - bottom))
            boxes.append(box(left, bottom, left + width, bottom + height))
        else:
            assert not line.startswith(("\\node", "\\draw", "\\derivelabel{")), f"not understood: {line}"
    for extent in boxes:  # a weight's label is centred on an edge, a bias's is clear of all of them
        if any(segment.distance(extent.centroid) < 0.005 for segment, _ in picture.edges):
            picture.weights.append(extent)
        else:
            distances = [extent.distance(circle) for circle in picture.circles]
            picture.biases.append((extent, min(range(len(distances)), key=distances.__getitem__)))
    caption = tex[end:tex.index(r"\end{figure}", end)]
    return Tikz(picture, styles, labels, symbols, caption)


@pytest.fixture(scope="module")
def latex(solutions):
    return {case: derive.render(solution, "tex") for case, solution in solutions.items()}


@pytest.mark.parametrize("shape,seed", CASES)
def test_tikz_labels_do_not_overlap(latex, shape, seed):
    drawn = tikz_picture(latex[shape, seed])
    check_counts(drawn.picture, shape, drawn.caption)
    assert all(unit >= units_of(shape)[0] for _, unit in drawn.picture.biases), "a bias label by an input"
    outlines = [circle for circle in drawn.picture.circles] + [outline for _, outline in drawn.picture.edges]
    outlines += drawn.picture.weights + [label for label, _ in drawn.picture.biases] + drawn.picture.titles
    width = max(shape.bounds[2] for shape in outlines) - min(shape.bounds[0] for shape in outlines)
    assert width <= 15.0, f"the picture is {width:.2f} cm wide"


@pytest.mark.parametrize("shape,seed", CASES)
def test_tikz_text_is_large_and_black(latex, shape, seed):
    styles = tikz_picture(latex[shape, seed]).styles
    for style in ("label", "title", "circle node"):
        size = re.search(r"font=\\fontsize\{([\d.]+)\}", styles[style])
        assert size and float(size.group(1)) >= 9, style
    assert "text=black" in styles["label"] and "text=black" in styles["title"] and "fill=white" in styles["label"]


def test_tex_boxes_fit_their_texts(latex, tmp_path):
    """TeX sets every label, title and symbol in the picture's own fonts: each fits the
    box the picture gives it (so that TeX's box is that box), at 9 pt or more."""
    body, expected = [], []
    for tex in latex.values():
        drawn = tikz_picture(tex)
        fonts = {style: re.search(r"font=(\\fontsize\{[\d.]+\}\{[\d.]+\}\\selectfont)", drawn.styles[style]).group(1)
                 for style in ("label", "title", "circle node")}
        texts = [(fonts[style], f"${text}$" if style == "label" else text, (width, height, depth)) for style, text, width, height, depth in drawn.labels]
        texts += [(fonts["circle node"], f"${text}$", radius) for text, radius in drawn.symbols]
        for font, text, room in texts:
            body.append(rf"\sbox\measured{{{font}\xdef\measuredsize{{\f@size}}{text}}}"
                        rf"\typeout{{MEASURED {len(expected)} \the\wd\measured\space\the\ht\measured\space\the\dp\measured\space\measuredsize}}")
            expected.append((text, room))
    tex = next(iter(latex.values()))
    preamble = tex[:tex.index(r"\begin{document}")]
    _, log = compile_latex(preamble + "\\makeatletter\n\\newsavebox\\measured\n\\begin{document}\n" + "\n".join(body) + "\nmeasured\n\\end{document}\n", tmp_path)
    measured = {int(k): tuple(map(float, rest)) for k, *rest in re.findall(r"MEASURED (\d+) ([\d.]+)pt ?([\d.]+)pt ?([\d.]+)pt ?([\d.]+)", log)}
    assert len(measured) == len(expected)
    for k, (text, room) in enumerate(expected):
        width, height, depth, size = measured[k]
        assert size >= 9, f"{text} at {size} pt"
        if isinstance(room, float):  # a symbol: inside its circle, which TikZ would grow otherwise
            assert math.hypot(width, height + depth) / 2 <= room / POINT + 0.01, f"{text}: {width:.2f}×{height + depth:.2f} pt"
        else:
            box_width, box_height, box_depth = (v / POINT for v in room)
            assert width <= box_width + 0.01 and height <= box_height + 0.01 and depth <= box_depth + 0.01, (
                f"{text}: TeX's {width:.2f}×({height:.2f}+{depth:.2f}) pt, the box {box_width:.2f}×({box_height:.2f}+{box_depth:.2f}) pt"
            )


# --- the record -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["2-2-1", "4-8-8-3"])
def test_the_drawing_records_what_it_leaves_out(solutions, shape):
    diagram = solutions[shape, 1].diagram
    drawing = diagram.drawn(
        SANS_SERIF, ["a₀"] * len(diagram.nodes), ["−0.25"] * len(diagram.edges),
        [None if node.bias is None else "b₀ = 0.5" for node in diagram.nodes],
    )
    for edge, drawn in zip(diagram.edges, drawing.edges):
        assert (drawn.weight is None) == (edge.layer in drawing.unlabelled_layers)
    for node, drawn in zip(diagram.nodes, drawing.nodes):
        assert (drawn.bias is None) == (node.is_input or node.column in drawing.unlabelled_biases)
    assert bool(drawing.unlabelled_layers) == (shape == "4-8-8-3")


# --- one picture's fixed part, drawn once for a set ---------------------------------------------


def test_a_sets_pictures_draw_their_fixed_part_once(tmp_path):
    """In sheets.pdf every variant's picture reuses one box of what does not depend on the
    numbers (edges, circles, titles), drawn by the first; the weights and biases are each
    variant's own, and they are what the PDF shows."""
    from derive.exercises.sheets import exercise_files
    from derive.exercises.variants import exercise
    from tests.test_render import pdf_text

    variants = exercise("esuli", seed=11, count=3) + exercise("students", seed=11, count=2)
    tex = exercise_files(variants, ["pdf"])["sheets.pdf"].tex
    names = re.findall(r"\\ifcsname (derive@network@\w+)\\endcsname", tex)
    assert len(names) == 5 and len(set(names)) == 2  # two networks of their own shapes: two boxes
    assert tex.count("\\begin{tikzpicture}") == 10  # per picture: the box's (skipped when it exists) and the labels'
    parts = tex.split("\\ifcsname ")[1:]
    for variant, part in zip(variants, parts):
        picture = tikz_picture("\\begin{figure}" + "\\ifcsname " + part)
        weights = [w for layer in variant.spec.layers for row in layer.weights for w in row]
        assert sorted(float(text.replace("−", "-")) for style, text, *_ in picture.labels if style == "label" and "=" not in text) == sorted(weights)
    pdf, _ = compile_latex(tex, tmp_path)
    pages = pdf_text(pdf).split("\f")
    for variant in variants:
        text = "".join(p for p in pages if f"Exercise {variant.id}" in p)  # its pages (the picture floats)
        biases = [b for layer in variant.spec.layers for b in layer.bias]
        for bias in biases:
            assert f"= {bias:g}".replace("-", "−") in text, (variant.id, bias)
