"""PDF through the real toolchain, the pictures (TikZ/pgfplots in LaTeX, SVG beside
the Markdown), long equations, hostile titles, and what happens without TeX."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import derive
from derive.cli import main
from derive.pdf import LatexFailed, compile_pdf
from tests.test_render import INJECTION, compile_latex, pdf_text, tool

SPECS = Path(__file__).resolve().parent / "specs"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory):
    """The three built-in examples in one call: compiled in parallel."""
    out = tmp_path_factory.mktemp("pdf")
    assert main(["solve", "esuli", "elbasheer", "students", "--format", "pdf", "--output", str(out)]) == 0
    return out


def test_only_the_pdfs_reach_the_output_directory(pdfs):
    assert sorted(p.name for p in pdfs.iterdir()) == ["elbasheer.pdf", "esuli.pdf", "students.pdf"]


@pytest.mark.parametrize(
    "name,numbers",
    [
        ("esuli", ["0.526", "0.249", "0.038", "0.696", "0.092", "−0.144", "0.135"]),
        ("elbasheer", ["21", "400", "360", "−1.6", "2.6", "−11.8"]),
        ("students", ["0.633", "1.002", "0.693"]),
    ],
)
def test_examples_compile_with_their_numbers_and_headings(pdfs, name, numbers):
    text = pdf_text(pdfs / f"{name}.pdf")
    for heading in ("Network", "Data", "Forward pass", "Backpropagation", "Gradient-descent update",
                    "Forward pass with the updated parameters"):
        assert heading in text
    for number in numbers:
        assert number in text, number
    assert "The network: every input and unit" in text  # the TikZ figure's caption
    if name == "students":
        assert "Training" in text and "update (step)" in text  # the pgfplots loss curve


def test_svg_pictures_beside_the_markdown(tmp_path):
    assert main(["solve", "students", str(SPECS / "wide-8-4-3.yaml"), "--format", "md", "--output", str(tmp_path)]) == 0
    for name, units in (("students", [2, 2, 1]), ("wide-8-4-3", [8, 4, 3])):
        markdown = (tmp_path / f"{name}.md").read_text()
        assert f"]({name}.network.svg)" in markdown and f"]({name}.loss.svg)" in markdown
        network = ET.parse(tmp_path / f"{name}.network.svg").getroot()
        assert network.tag == f"{SVG}svg" and float(network.get("width")) <= 900  # GitHub's page width
        groups = network.iter(f"{SVG}g")
        nodes = [g for g in groups if g.get("class") in ("input", "unit")]
        assert [sum(1 for g in nodes if g.get("class") == "input")] == units[:1]
        assert sum(1 for g in nodes if g.get("class") == "unit") == sum(units[1:])
        texts = [t.text for t in network.iter(f"{SVG}text")]
        edges = sum(a * b for a, b in zip(units, units[1:]))
        assert len(list(network.iter(f"{SVG}line"))) == edges
        assert "x₀" in texts and "ŷ" + ("" if units[-1] == 1 else "₀") in texts
        curve = ET.parse(tmp_path / f"{name}.loss.svg").getroot()
        points = curve.find(f"{SVG}polyline").get("points").split()
        steps = derive.load_spec(name if name == "students" else str(SPECS / f"{name}.yaml")).steps
        assert len(points) == steps + 1
        assert "update (step)" in [t.text for t in curve.iter(f"{SVG}text")]


def test_wide_network_has_no_overfull_lines(tmp_path):
    solution = derive.solve(str(SPECS / "wide-8-4-3.yaml"))
    _, log = compile_latex(derive.render(solution, "tex"), tmp_path)
    overfull = [float(x) for x in re.findall(r"Overfull \\hbox \((\d+\.\d+)pt too wide\)", log)]
    assert not [x for x in overfull if x > 10], overfull


def test_hostile_title_prints_literally_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = derive.load_spec("elbasheer").to_dict()
    spec["title"] = INJECTION
    pdf = derive.render(derive.solve(spec), "pdf")
    (tmp_path / "title.pdf").write_bytes(pdf)
    text = " ".join(pdf_text(tmp_path / "title.pdf").split())
    assert INJECTION in text
    assert "root:" not in text  # /etc/passwd was not read
    assert not list(tmp_path.rglob("pwned")) and not Path("/tmp/pwned").exists()


def test_no_tex_exits_2_and_writes_the_other_formats(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code = main(["solve", "esuli", "--format", "md,pdf", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        "PDF output needs latexmk and pdflatex (TeX Live); install: "
        "apt-get install texlive-latex-base texlive-latex-recommended texlive-pictures latexmk"
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["esuli.md", "esuli.network.svg"]


def test_latex_error_is_reported_with_its_line_and_kept_files():
    with pytest.raises(LatexFailed) as failure:
        compile_pdf("\\documentclass{article}\n\\begin{document}\n\\undefinedmacro\n\\end{document}\n", "broken")
    message = str(failure.value)
    assert message.startswith("broken: LaTeX failed: line 3: Undefined control sequence")
    kept = Path(re.search(r"kept in (\S+)$", message).group(1))
    assert (kept / "solution.tex").exists() and (kept / "solution.log").exists()
    assert failure.value.exit_code == 1


def test_latex_error_through_the_cli_exits_1_without_a_pdf(tmp_path, monkeypatch, capsys):
    render_module = sys.modules["derive.render"]  # the module, not the function derive.render
    monkeypatch.setattr(render_module, "_latex", lambda solution, options: {f"{options.stem}.tex": "\\begin{document}"})
    code = main(["solve", "esuli", "--format", "json,pdf", "--output", str(tmp_path)])
    assert code == 1
    assert "esuli: LaTeX failed:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["esuli.json"]


def test_pdf_to_a_named_file(tmp_path):
    target = tmp_path / "handout.pdf"
    assert main(["solve", "elbasheer", "--format", "pdf", "--output", str(target)]) == 0
    assert target.read_bytes().startswith(b"%PDF")
    assert tool("pdftotext")
