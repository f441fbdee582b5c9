"""Rendered output: Markdown parsed as GitHub/Jupyter do (CommonMark, tables, dollar
math) and converted by Pandoc; LaTeX compiled by the real toolchain; the JSON key's
contract; free text printed literally."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

import derive
from derive.views.printing import DEFAULT_DIGITS, format_number
from derive.views.document import Options, render_files

# The network examples; graphs (kind: graph) have tests/test_graph_documents.py.
EXAMPLES = [name for name in derive.examples() if derive.load_spec(name).kind == "network"]
INJECTION = r"\input{/etc/passwd} \write18{touch pwned} $x$ # _ % & ~ ^ { }"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: see the README (apt-get install texlive-latex-recommended latexmk pandoc ...)"
    return path


def compile_latex(tex: str, directory: Path) -> tuple[Path, str]:
    """Compiles with latexmk + pdflatex, no shell escape; returns the PDF and the log."""
    source = directory / "solution.tex"
    source.write_text(tex)
    result = subprocess.run(
        [tool("latexmk"), "-pdf", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error", source.name],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "openout_any": "p", "openin_any": "p", "HOME": str(directory)},
    )
    log = (directory / "solution.log").read_text(errors="replace") if (directory / "solution.log").exists() else ""
    assert result.returncode == 0, result.stdout[-3000:] + log[-3000:]
    return directory / "solution.pdf", log


def pdf_text(pdf: Path) -> str:
    return subprocess.run([tool("pdftotext"), "-raw", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def markdown_tokens(text: str):
    parser = MarkdownIt("commonmark").enable("table").use(dollarmath_plugin, double_inline=True)
    # markdown-it refuses data: links by default; Jupyter shows them in trusted output,
    # which is where the Markdown with pictures inline is for.
    default = parser.validateLink
    parser.validateLink = lambda url: url.startswith("data:image/svg+xml;base64,") or default(url)
    return parser.parse(text)


def flat(tokens):
    for token in tokens:
        yield token
        yield from flat(token.children or [])


@pytest.fixture(scope="module", params=EXAMPLES)
def solution(request):
    return derive.solve(request.param)


def test_markdown_math_and_tables_parse(solution):
    text = derive.render(solution, "md")
    tokens = list(flat(markdown_tokens(text)))
    blocks = [t for t in tokens if t.type == "math_block"]
    # Every display equation is a math block: as many as the $$ pairs in the text.
    assert len(blocks) == text.count("\n$$\n") // 2 > 10
    assert all(block.content.strip() for block in blocks)
    assert any(t.type == "table_open" for t in tokens)
    assert [t.attrs["src"].split(",")[0] for t in tokens if t.type == "image"][:1] == ["data:image/svg+xml;base64"]
    inline = [t for t in tokens if t.type == "math_inline"]
    assert inline, "inline math in the data table and the text"
    # No math leaked into plain text: a stray $ would mean a broken delimiter.
    assert not any("$" in t.content for t in tokens if t.type == "text")


def test_markdown_converts_with_pandoc(solution, tmp_path):
    (files,), _ = render_files([(solution, ["md"], Options(stem="solution"))])
    markdown = tmp_path / "solution.md"
    markdown.write_text(files["solution.md"])
    html = subprocess.run(
        [tool("pandoc"), "-f", "markdown", "-t", "html5", "--mathjax", str(markdown)],
        capture_output=True, text=True, check=True,
    ).stdout
    # Every display equation is display math for Pandoc, and the pictures are images.
    assert html.count('<span class="math display">') == files["solution.md"].count("\n$$\n") // 2
    assert '<img src="solution.network.svg"' in html


@pytest.mark.parametrize("notation,detail", [(None, "handout"), (None, "full"), ("matrix", "handout"), ("flat", "handout")])
def test_every_math_span_converts_to_mathml_with_pandoc(solution, notation, detail, tmp_path):
    """Pandoc's own TeX math reader (texmath, as in --mathml and the docx/odt writers) reads
    every formula: none is left as raw TeX."""
    markdown = tmp_path / "solution.md"
    markdown.write_text(derive.render(solution, "md", notation=notation, detail=detail))
    converted = subprocess.run(
        [tool("pandoc"), "-f", "markdown", "-t", "html5", "--mathml", str(markdown)], capture_output=True, text=True, check=True
    )
    assert "Could not convert TeX math" not in converted.stderr, converted.stderr[:2000]
    assert converted.stdout.count("<math display=\"block\"") == markdown.read_text().count("\n$$\n") // 2


def test_latex_compiles_and_shows_the_numbers(solution, tmp_path):
    pdf, log = compile_latex(derive.render(solution, "tex"), tmp_path)
    text = pdf_text(pdf)
    rule = {"sgd": "Gradient-descent", "momentum": "Momentum", "rmsprop": "RMSprop", "adam": "Adam"}
    for heading in ("Network", "Data", "Forward pass", "Backpropagation", rule[solution.spec.optimizer.name] + " update"):
        assert heading in text
    step = solution.to_dict()["steps"][0]["shown"]  # the values as the document shows them
    for value in list(step["gradients"].values())[:3] + [step["loss"]]:
        shown = format_number(value, DEFAULT_DIGITS)
        if "times" not in shown:
            assert shown.replace("-", "−") in text or shown in text
    overfull = [float(x) for x in re.findall(r"Overfull \\hbox \((\d+\.\d+)pt too wide\)", log)]
    assert not [x for x in overfull if x > 10], overfull


def test_json_key_contract(solution):
    key = json.loads(derive.render(solution, "json"))
    assert key["format"] == "derive-solution/1"
    assert key["title"] == solution.title
    assert [step["step"] for step in key["steps"]] == list(range(1, len(key["steps"]) + 1))
    network = solution.spec
    first = key["steps"][0]
    expected_record = {f"{kind}{l}[{i}]" for l, layer in enumerate(network.layers, 1) for i in range(layer.units) for kind in "za"}
    assert set(first["forward"][0]) == expected_record | {"loss"}
    assert set(first["gradients"]) == set(first["updated"])
    assert set(key["final"]) == {"forward", "loss", "shown"} and len(key["final"]["forward"]) == len(network.data)
    assert all(isinstance(v, float) for v in first["gradients"].values())
    # By default the key has the values as the document shows them (rounded and carried) beside
    # the full-precision ones: the same keys, at most `digits` decimals, close to the exact values.
    assert key["rounding"] == {"mode": "carry", "digits": DEFAULT_DIGITS}
    shown = first["shown"]
    stateful = solution.spec.optimizer.name != "sgd"  # the rule's state after each update
    assert set(shown) == {"forward", "loss", "gradients", "updated"} | ({"state"} if stateful else set())
    assert set(shown["gradients"]) == set(first["gradients"])
    if stateful:
        assert set(first["state"]) == set(shown["state"]) and all(set(v) == set(first["gradients"]) for v in first["state"].values())
    assert all(round(v, DEFAULT_DIGITS) == v for v in shown["gradients"].values())
    assert shown["forward"][0]["a1[0]"] == pytest.approx(first["forward"][0]["a1[0]"], abs=0.01)
    exact = json.loads(derive.render(derive.solve(solution.spec, rounding="exact"), "json"))
    assert exact["rounding"] == {"mode": "exact"} and "shown" not in exact["steps"][0] and "shown" not in exact["final"]
    assert exact["steps"] == [{k: v for k, v in s.items() if k != "shown"} for s in key["steps"]]


def test_jupyter_repr_is_the_markdown(solution):
    assert solution._repr_markdown_() == derive.render(solution, "md")


def test_digits_option():
    """Exact values are only shown with other digits; carried ones are computed anew, since
    what is carried depends on the digits."""
    exact = derive.solve("esuli", rounding="exact")
    assert "0.5257" in derive.render(exact, "md", digits=4)
    assert derive.render(exact, "json", digits=4) == derive.render(exact, "json")
    carried = derive.solve("esuli")
    text = derive.render(carried, "md", digits=4)
    assert "0.5257" in text and "rounded to 4 decimals" in text
    four = json.loads(derive.render(carried, "json", digits=4))
    # By hand at 4 decimals: ∂E/∂a = 0.5257 · 0.2493 · 0.7 = 0.09173 → 0.0917, then 0.0917 · 1 · 0.9 = 0.08253
    # → 0.0825 (the exact gradient is 0.0826).
    assert four["rounding"] == {"mode": "carry", "digits": 4} and four["steps"][0]["shown"]["gradients"]["W1[0,0]"] == 0.0825


def test_unknown_format_is_an_error():
    with pytest.raises(derive.DeriveError, match="unknown format 'pdfx'"):
        derive.render(derive.solve("esuli"), "pdfx")


def hostile_spec() -> dict:
    spec = derive.load_spec("elbasheer").to_dict()
    spec["title"] = INJECTION
    return spec


def test_title_is_literal_in_markdown():
    text = derive.render(derive.solve(hostile_spec()), "md")
    title_line = text.splitlines()[0]
    tokens = list(flat(markdown_tokens(title_line)))
    assert "".join(t.content for t in tokens if t.type == "text") == INJECTION
    assert not any(t.type.startswith("math") for t in tokens)


def test_title_is_literal_in_latex(tmp_path):
    pdf, log = compile_latex(derive.render(derive.solve(hostile_spec()), "tex"), tmp_path)
    assert "passwd" not in log.replace("/etc/passwd}", "")  # the file was not read
    assert not (tmp_path / "pwned").exists()
    flattened = " ".join(pdf_text(pdf).split())
    assert "\\input{/etc/passwd} \\write18{touch pwned} $x$ # _ % & ~ ^ { }" in flattened


BRANCHES = {
    "title": "Réseau λ → softmax ≤ 1 – “quoted” 中",
    "inputs": 2,
    "layers": [
        {"units": 2, "activation": "leaky_relu", "alpha": 0.1, "weights": [[1.0, -1.0], [0.5, 0.5]], "bias": 0.0, "train_bias": False},
        {"units": 3, "activation": "softmax", "weights": [[0.2, -0.1], [0.4, 0.3], [-0.5, 0.1]]},
    ],
    "loss": "cross_entropy",
    "update": "sample",
    "steps": 2,
    "learning_rate": 0.5,
    "data": [{"x": [1, 1], "y": [1, 0, 0]}, {"x": [0.2, 0.9], "y": [0, 1, 0]}, {"x": [0.9, -0.3], "y": [0, 0, 1]}],
}


def test_every_template_branch_renders_and_compiles(tmp_path):
    """Leaky ReLU at its kink, a shared fixed bias, softmax, per-sample updates, several
    steps, a Unicode title: Markdown parses, LaTeX compiles."""
    solution = derive.solve(BRANCHES)
    markdown = derive.render(solution, "md")
    assert "= 0$, where the leaky ReLU (slope 0.1 below 0) has no derivative" in markdown
    assert "The biases $b^{(1)}$ are kept fixed." in markdown
    assert "| updates done | samples | loss $E$ |" in markdown
    assert markdown.startswith("# Réseau λ → softmax ≤ 1 – “quoted” 中\n")
    assert any(t.type == "math_block" for t in flat(markdown_tokens(markdown)))
    pdf, _ = compile_latex(derive.render(solution, "tex"), tmp_path)
    text = pdf_text(pdf)
    assert "Réseau" in text and "quoted" in text and "Training" in text
