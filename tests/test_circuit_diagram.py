"""The circuit picture (CS231n style) read back from its record, its SVG and its TikZ: no
label touches another label, a gate or any wire; no wire runs through a gate; each value
sits above its own wire and each gradient below it; the SVG shows every number and the
TikZ picture compiles and shows them too. The geometry is shapely's, not the layout's own."""

from __future__ import annotations

import math
import random
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jinja2
import jinja2.sandbox
import pytest
from shapely.geometry import LineString, Point, box

from derive.errors import DeriveError
from derive.model.circuit import build_circuit
from derive.solution.circuit_diagram import CircuitDiagram, WireKind, circuit_diagram
from derive.views.circuit_svg import MAX_PIXELS, circuit_svg
from derive.views.printing import number_text

SVG = "{http://www.w3.org/2000/svg}"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
UNARY = ("exp", "log", "sigmoid", "tanh", "relu", "abs", "-")
BINARY = ("+", "-", "*", "/", "^2", "max", "min")


def random_expression(rng: random.Random, operations: int) -> str:
    """An expression of exactly `operations` gates over a…f and a few constants."""
    if operations == 0:
        return rng.choice("abcdef") if rng.random() < 0.85 else str(rng.choice((1, 2, 0.5)))
    if rng.random() < 0.35:
        op, inner = rng.choice(UNARY), random_expression(rng, operations - 1)
        return f"-({inner})" if op == "-" else f"{op}({inner})"
    op = rng.choice(BINARY)
    if op == "^2":
        return f"({random_expression(rng, operations - 1)})^2"
    left = rng.randint(0, operations - 1)
    a, b = random_expression(rng, left), random_expression(rng, operations - 1 - left)
    return f"{op}({a}, {b})" if op in ("max", "min") else f"({a} {op} {b})"


def random_circuit(gates: int, seed: int):
    """The first expression of this size, drawn from the seed, whose values can be computed."""
    for attempt in range(1000):
        rng = random.Random(f"{gates}/{seed}/{attempt}")
        text = random_expression(rng, gates)
        names = sorted(set(text) & set("abcdef"))
        try:
            circuit = build_circuit(text, {name: round(rng.uniform(-2, 2), 1) for name in names})
        except DeriveError:
            continue
        if len(circuit.nodes) == gates:
            return circuit
    raise AssertionError("no computable random expression")


def random_nodes(count: int, seed: int):
    """Named nodes, each using one or two earlier values: nodes feeding several gates."""
    rng = random.Random(seed)
    names, lines = ["x", "y", "z"], []
    for k in range(count):
        a, b = rng.choice(names), rng.choice(names[-4:])
        op = rng.choice(("{a} + {b}", "{a} * {b}", "{a} - {b}", "tanh({a})", "sigmoid({a})", "max({a}, {b})", "relu({a}) + 1"))
        name = f"h{k}" if k % 7 else f"hidden_value_number_{k}"  # some long names
        lines.append(f"{name} = " + op.format(a=a, b=b))
        names.append(name)
    # Every node used: the last one adds up those nothing else uses.
    used = {word for line in lines for word in line.split("=", 1)[1].replace("(", " ").replace(")", " ").replace(",", " ").split()}
    unused = [name for name in names[3:] if name not in used]
    lines.append("out = " + " + ".join(unused))
    values = {"x": 0.5, "y": -1.5, "z": 2.0}
    return build_circuit(lines, {name: value for name, value in values.items() if name in used})


CASES = {
    "cs231n add-multiply": lambda: build_circuit("(x + y) * z", {"x": -2, "y": 5, "z": -4}),
    "sigmoid neuron": lambda: build_circuit("1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))", {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}),
    "staged": lambda: build_circuit("(x + sigmoid(y)) / (sigmoid(x) + (x + y)^2)", {"x": 3, "y": -4}),
    "shared nodes": lambda: build_circuit(["a = x*y", "b = a + 2", "long_name_of_a_node = max(b, a) * log(abs(a))", "out = long_name_of_a_node * x"], {"x": 3, "y": -4}),
    "every gate": lambda: build_circuit("min(relu(tanh(x) - abs(y)), log(2^x) / -(y)) ^ 2 + max(x, 0.5)", {"x": 0.7, "y": -1.25}),
    "random 15 gates": lambda: random_circuit(15, 1),
    "random 30 gates": lambda: random_circuit(30, 1),
    "random 30 gates again": lambda: random_circuit(30, 2),
    "random 25 named nodes": lambda: random_nodes(25, 3),
    # Once drawn with two values' wires on each other for a stretch: two wires swapping
    # heights (an X now), a lane at another's trunk height (8 tracks in one channel).
    "random 30 gates, a swap": lambda: random_circuit(30, 102),
    "random 25 named nodes, a swap with a split": lambda: random_nodes(25, 224),
    "random 25 named nodes, many tracks": lambda: random_nodes(25, 218),
}


@pytest.fixture(scope="module")
def circuits():
    return {name: make() for name, make in CASES.items()}


@pytest.fixture(scope="module")
def diagrams(circuits):
    return {name: circuit_diagram(circuit) for name, circuit in circuits.items()}


def gate_shape(gate):
    if gate.shape == "circle":
        return Point(gate.x, gate.y).buffer(gate.width / 2, 64)
    return box(gate.x - gate.width / 2, gate.y - gate.height / 2, gate.x + gate.width / 2, gate.y + gate.height / 2)


def slots_of(diagram: CircuitDiagram):
    """(what, slot) for every text of the picture."""
    found = []
    for k, wire in enumerate(diagram.wires):
        found.append((f"value of wire {k} ({wire.kind} {wire.name} → {wire.target})", wire.value_slot))
        if wire.gradient_slot is not None:
            found.append((f"gradient of wire {k} ({wire.kind} {wire.name} → {wire.target})", wire.gradient_slot))
    found += [(f"name {item.name}", item.name_slot) for item in (*diagram.inputs, *diagram.gates)]
    return found


def slot_box(slot):
    return box(*slot.box)


@pytest.mark.parametrize("case", list(CASES))
def test_no_label_touches_another_label_a_gate_or_a_wire(diagrams, case):
    diagram = diagrams[case]
    slots = slots_of(diagram)
    boxes = [(what, slot_box(slot)) for what, slot in slots]
    for i, (what, shape) in enumerate(boxes):
        for other, other_shape in boxes[i + 1 :]:
            assert not shape.intersects(other_shape), f"{case}: {what} overlaps {other}"
        for gate in diagram.gates:
            assert not shape.intersects(gate_shape(gate)), f"{case}: {what} overlaps gate {gate.name}"
        for k, wire in enumerate(diagram.wires):
            assert not shape.intersects(LineString(wire.points)), f"{case}: {what} is on wire {k} ({wire.kind} {wire.name})"


@pytest.mark.parametrize("case", list(CASES))
def test_no_wire_runs_through_a_gate(diagrams, case):
    diagram = diagrams[case]
    for wire in diagram.wires:
        line = LineString(wire.points)
        for gate in diagram.gates:
            assert not line.intersects(gate_shape(gate).buffer(-0.01)), f"{case}: wire {wire.kind} {wire.name} → {wire.target} crosses gate {gate.name}"
        # Left to right, with horizontal and vertical steps but for the last bit into a gate.
        xs = [x for x, _ in wire.points]
        assert xs == sorted(xs), f"{case}: wire {wire.name} → {wire.target} goes back"


@pytest.mark.parametrize("case", list(CASES))
def test_no_stretch_of_wire_is_drawn_twice(diagrams, case):
    """Wires cross or meet at a point, never run on each other: neither two values'
    wires nor two branches of one value (which leave each other where they split)."""
    segments = [
        (k, LineString([a, b])) for k, wire in enumerate(diagrams[case].wires) for a, b in zip(wire.points, wire.points[1:])
    ]
    for i, (k, segment) in enumerate(segments):
        for m, other in segments[i + 1 :]:
            if k != m:
                assert segment.intersection(other).length < 1e-9, f"{case}: wires {k} and {m} share {segment.intersection(other)}"


@pytest.mark.parametrize("case", list(CASES))
def test_each_value_sits_above_its_wire_and_each_gradient_below(diagrams, case):
    diagram = diagrams[case]
    for wire in diagram.wires:
        horizontal = [(a, b) for a, b in zip(wire.points, wire.points[1:]) if a[1] == b[1]]
        left, bottom, right, top = wire.value_slot.box
        under = [a for a, b in horizontal if a[0] <= left + 1e-9 and right - 1e-9 <= b[0] and a[1] < bottom]
        assert under, f"{case}: the value of {wire.name} → {wire.target} is not over a straight part of its wire"
        height = under[0][1]
        assert bottom - height < 0.1, f"{case}: the value of {wire.name} is far from its wire"
        if wire.gradient_slot is not None:
            left, bottom, right, top = wire.gradient_slot.box
            assert left == wire.value_slot.box[0] and 0 < height - top < 0.1, f"{case}: the gradient of {wire.name} is not under its wire"
        assert (wire.gradient_slot is None) == (wire.kind == WireKind.CONSTANT)


@pytest.mark.parametrize("case", list(CASES))
def test_columns_are_longest_paths_and_everything_is_inside_the_extent(circuits, diagrams, case):
    circuit, diagram = circuits[case], diagrams[case]
    column = {item.name: 0 for item in circuit.inputs}
    for node in circuit.nodes:
        column[node.name] = 1 + max((column[o] for o in node.operands if isinstance(o, str)), default=0)
    gates = {gate.name: gate for gate in diagram.gates}
    assert [gate.name for gate in diagram.gates] == [node.name for node in circuit.nodes]
    for name, gate in gates.items():
        assert gate.column == column[name]
    x_of = {}
    for gate in diagram.gates:
        x_of.setdefault(gate.column, gate.x)
        assert gate.x == x_of[gate.column]
    assert sorted(x_of.values()) == [x_of[c] for c in sorted(x_of)]
    shapes = [gate_shape(gate) for gate in diagram.gates] + [slot_box(slot) for _, slot in slots_of(diagram)]
    shapes += [LineString(wire.points) for wire in diagram.wires]
    frame = box(diagram.left, diagram.bottom, diagram.right, diagram.top)
    assert all(frame.contains(shape) for shape in shapes)


def test_the_numbers_are_the_circuits(circuits, diagrams):
    """Values and ∂f/∂name as the circuit has them; where a value splits, the branches
    carry the contributions, which add up to the trunk's gradient; constants carry none."""
    for case, diagram in diagrams.items():
        circuit = circuits[case]
        wires = diagram.wires
        assert wires[-1].kind == WireKind.OUTPUT and wires[-1].gradient == 1.0 and wires[-1].value == circuit.value(circuit.output)
        for wire in wires:
            if wire.kind == WireKind.CONSTANT:
                assert wire.gradient is None and wire.source is None
                continue
            assert wire.value == circuit.value(wire.name)
            if wire.kind in (WireKind.SINGLE, WireKind.TRUNK):
                assert wire.gradient == circuit.gradient(wire.name).value
        uses = {}
        for node in circuit.nodes:
            for operand in node.operands:
                if isinstance(operand, str):
                    uses[operand] = uses.get(operand, 0) + 1
        for name, count in uses.items():
            kinds = [wire.kind for wire in wires if wire.name == name and wire.kind != WireKind.OUTPUT]
            assert kinds == ([WireKind.SINGLE] if count == 1 else [WireKind.TRUNK] + [WireKind.BRANCH] * count), (case, name)
            if count > 1:
                branches = sum(wire.gradient for wire in wires if wire.name == name and wire.kind == WireKind.BRANCH)
                assert math.isclose(branches, circuit.gradient(name).value, rel_tol=1e-12, abs_tol=1e-12)
        constants = sum(1 for node in circuit.nodes for operand in node.operands if not isinstance(operand, str))
        assert sum(1 for wire in wires if wire.kind == WireKind.CONSTANT) == constants
    assert diagrams["staged"].junctions, "x and y split: dots where they do"


def test_given_numbers_replace_the_circuits():
    circuit = build_circuit("(x + sigmoid(y)) / (sigmoid(x) + (x + y)^2)", {"x": 3, "y": -4})
    diagram = circuit_diagram(circuit, values={"q1": 0.018}, gradients={"x": 2.06, "q2": 0.512})
    wire = next(w for w in diagram.wires if w.name == "q1")
    assert wire.value == 0.018 and wire.gradient == circuit.gradient("q1").value
    trunk = next(w for w in diagram.wires if w.name == "x" and w.kind == WireKind.TRUNK)
    assert trunk.gradient == 2.06
    branch = next(w for w in diagram.wires if w.name == "x" and w.target == "q2")
    assert branch.gradient == 0.512 * 1.0  # the gate's given gradient × the local gradient of +
    assert circuit_diagram(circuit) == circuit_diagram(circuit), "the layout is deterministic"


def svg_texts(svg: str) -> tuple[ET.Element, list[str]]:
    root = ET.fromstring(svg)
    return root, [element.text for element in root.iter(f"{SVG}text")]


@pytest.mark.parametrize("case", list(CASES))
def test_the_svg_shows_every_value_and_gradient(diagrams, case):
    diagram = diagrams[case]
    svg = circuit_svg(diagram, digits=3)
    assert svg == circuit_svg(diagram, digits=3), "the same bytes each time"
    root, texts = svg_texts(svg)
    assert root.find(f"{SVG}title").text and root.get("aria-label") and root.get("role") == "img"
    assert float(root.get("width")) <= MAX_PIXELS
    for wire in diagram.wires:
        assert number_text(wire.value, 3, exact=wire.kind == WireKind.CONSTANT) in texts, (case, wire)
        if wire.gradient is not None:
            assert number_text(wire.gradient, 3) in texts, (case, wire)
    for item in (*diagram.inputs, *diagram.gates):
        assert item.name in texts
    assert len(root.findall(f".//{SVG}polyline")) == len(diagram.wires)


def test_the_svg_of_the_neuron_is_at_full_size_and_signs_are_unicode(diagrams):
    root, texts = svg_texts(circuit_svg(diagrams["sigmoid neuron"]))
    assert float(root.get("width")) == pytest.approx(float(root.get("viewBox").split()[2]), abs=1), "narrow enough not to be scaled"
    assert {"×", "+", "−x", "exp", "÷"} <= set(texts)
    assert "0.731" in texts and "−0.197" in texts and "0.393" in texts  # f, ∂f/∂w0, ∂f/∂x0 as in the CS231n notes
    _, texts = svg_texts(circuit_svg(diagrams["every gate"]))
    assert {"min", "ReLU", "tanh", "|·|", "log", "^", "÷", "−x", "max", "−", "+"} <= set(texts)


def environment() -> jinja2.Environment:
    env = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["num"] = lambda value: f"{value:.3f}"
    return env


DOCUMENT = r"""\documentclass[10pt]{article}
\usepackage[T1]{fontenc}
\usepackage[utf8]{inputenc}
\usepackage{lmodern}
\usepackage{amsmath,amssymb}
\usepackage[a4paper,margin=2cm]{geometry}
\usepackage{tikz}
\begin{document}
{% import "tex/circuit.j2" as circuit with context %}
{% for diagram in diagrams %}
{{ circuit.circuit_diagram(diagram) }}
\clearpage
{% endfor %}
\end{document}
"""


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def test_the_tikz_picture_compiles_and_shows_every_number(diagrams, tmp_path):
    names = ["sigmoid neuron", "staged", "shared nodes", "every gate", "random 30 gates"]
    tex = environment().from_string(DOCUMENT).render(diagrams=[diagrams[name] for name in names])
    assert tex.count(r"\begin{tikzpicture}") == len(names)
    (tmp_path / "circuit.tex").write_text(tex)
    result = subprocess.run(
        [tool("pdflatex"), "-halt-on-error", "-interaction=nonstopmode", "-no-shell-escape", "circuit.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    log = (tmp_path / "circuit.log").read_text(errors="replace")
    assert "Overfull" not in log
    pages = subprocess.run([tool("pdftotext"), "-layout", "circuit.pdf", "-"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    pages = pages.replace("−", "-").split("\f")
    for page, name in zip(pages, names):
        for wire in diagrams[name].wires:
            assert f"{wire.value:.3f}" in page, (name, wire)
            if wire.gradient is not None:
                assert f"{wire.gradient:.3f}" in page, (name, wire)
        for gate in diagrams[name].gates:
            assert gate.name in page.replace("\\_", "_")
    # A picture to look at: pdftoppm at 80 dpi makes one PNG per page.
    subprocess.run([tool("pdftoppm"), "-png", "-r", "80", "-f", "1", "-l", "2", "circuit.pdf", "page"], cwd=tmp_path, check=True)
    assert (tmp_path / "page-1.png").stat().st_size > 1000


def test_names_with_underscores_are_escaped_in_latex(diagrams):
    tex = str(environment().get_template("tex/circuit.j2").module.circuit_diagram(diagrams["shared nodes"]))
    assert r"long\_name\_of\_a\_node" in tex and "long_name" not in tex
