"""PDF through the real toolchain, the pictures (TikZ/pgfplots in LaTeX, SVG beside
the Markdown), long equations, hostile titles, and what happens without TeX."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import derive
from derive.cli import main
from derive.views import pdf as pdf_module
from derive.views.pdf import LatexFailed, compile_pdf
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
        ("students", ["0.633", "1.002", "0.692"]),
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
        assert "Training" in text and "updates done" in text  # the pgfplots loss curve


def pages(pdf: Path) -> int:
    info = subprocess.run([tool("pdfinfo"), str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, flags=re.MULTILINE).group(1))


def numbers_in(pdf: Path) -> set[str]:
    return {n.replace("−", "-") for n in re.findall(r"[−-]?\d+(?:\.\d+)?", pdf_text(pdf))}


# Every number Esuli's handout prints (../shared/seeds), in its order. The handout truncates
# where derive rounds, and carries its truncated values on: those differ in the last digit.
HANDOUT = [
    "0.2", "-1.2", "0.9", "-0.5", "-1.2", "0.3", "-0.1", "0.2", "-1.1", "-0.1", "0.9", "0.2", "0.5", "0",
    "0.39", "-0.54", "-0.1", "0.2", "0.29", "-0.34", "0.203", "0.103", "0.526", "0.5", "1", "0.138",
    "0.526", "0.249", "0.29", "0.038", "0.1", "0.7", "0.696", "0.131", "-0.113", "0.092", "1", "0.9",
    "0.082", "0.191", "-0.144", "0.018", "0.046", "-1.202", "0.895", "-0.109",
    "0.379", "0.27", "0.188", "0.075", "0.518", "0.134",
]
TRUNCATED = {"0.082": "0.083", "0.191": "0.192", "0.379": "0.38", "0.27": "0.271", "0.188": "0.189",
             "0.075": "0.076", "0.518": "0.519", "0.134": "0.135"}


def test_the_handouts_length_and_numbers(pdfs):
    """As long as the handout it reproduces, with every number it prints."""
    assert pages(pdfs / "esuli.pdf") <= 4
    assert pages(pdfs / "students.pdf") <= 8
    shown = numbers_in(pdfs / "esuli.pdf")
    for number in HANDOUT:
        ours = TRUNCATED.get(number, number)
        assert abs(float(ours) - float(number)) <= 0.0011
        assert ours in shown, number
    students = numbers_in(pdfs / "students.pdf")
    table = ["2", "5", "0", "4", "6", "0", "6", "7", "1", "8", "8", "1", "3", "4", "0", "7", "6", "1"]
    assert set(table) <= students and {"0.633", "1.002"} <= students


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
        assert "updates done" in [t.text for t in curve.iter(f"{SVG}text")]


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


def test_no_tex_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code = main(["solve", "esuli", "--format", "md,pdf", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        "PDF output needs latexmk and pdflatex (TeX Live); install: "
        "apt-get install texlive-latex-base texlive-latex-recommended texlive-pictures latexmk"
    )
    assert not (tmp_path / "out").exists()  # all or nothing


def test_latex_error_is_reported_with_its_line_and_kept_files():
    with pytest.raises(LatexFailed) as failure:
        compile_pdf("\\documentclass{article}\n\\begin{document}\n\\undefinedmacro\n\\end{document}\n", "broken")
    message = str(failure.value)
    assert message.startswith("broken: LaTeX failed: line 3: Undefined control sequence")
    kept = Path(re.search(r"kept in (\S+)$", message).group(1))
    assert (kept / "solution.tex").exists() and (kept / "solution.log").exists()
    assert failure.value.exit_code == 1


def test_latex_error_through_the_cli_exits_1_without_a_pdf(tmp_path, monkeypatch, capsys):
    render_module = sys.modules["derive.views.document"]  # the module, not the function derive.render
    monkeypatch.setattr(render_module, "latex_view", lambda solution, options: {f"{options.stem}.tex": "\\begin{document}"})
    code = main(["solve", "esuli", "--format", "json,pdf", "--output", str(tmp_path)])
    assert code == 1
    assert "esuli: LaTeX failed:" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # all or nothing: not even the JSON


def test_pdf_to_a_named_file(tmp_path):
    target = tmp_path / "handout.pdf"
    assert main(["solve", "elbasheer", "--format", "pdf", "--output", str(target)]) == 0
    assert target.read_bytes().startswith(b"%PDF")
    # the elbasheer neuron by hand: z = 2 · 9 + 3 = 21, E = (1 − 21)² = 400, ∂E/∂w = 2 (21 − 1) · 9 = 360
    text = pdf_text(target)
    assert "Backpropagation" in text and {"21", "400", "360", "-1.6", "-11.8"} <= numbers_in(target)


# -- the format cache ---------------------------------------------------------------------------

SMALL = "\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\nThe number $0.731$.\n\\end{document}\n"


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "x.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def test_the_preamble_is_compiled_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("DERIVE_CACHE_DIR", str(tmp_path / "cache"))
    first = compile_pdf(SMALL, "small")
    formats = list((tmp_path / "cache" / "latex").glob("derive-*.fmt"))
    assert len(formats) == 1
    made = formats[0].stat().st_mtime_ns
    second = compile_pdf(SMALL.replace("0.731", "0.732"), "small")
    assert list((tmp_path / "cache" / "latex").glob("*")) == formats and formats[0].stat().st_mtime_ns == made
    assert "0.731" in _text(first, tmp_path) and "0.732" in _text(second, tmp_path)
    # the same PDF text as without the cache
    monkeypatch.setenv("DERIVE_CACHE_DIR", "")
    assert _text(compile_pdf(SMALL, "small"), tmp_path) == _text(first, tmp_path)


def test_another_preamble_or_tex_version_gets_its_own_format(tmp_path, monkeypatch):
    monkeypatch.setenv("DERIVE_CACHE_DIR", str(tmp_path / "cache"))
    one = pdf_module.format_file("\\documentclass{article}\n")
    other = pdf_module.format_file("\\documentclass{article}\n\\usepackage{amssymb}\n")
    assert one is not None and other is not None and one != other
    monkeypatch.setattr(pdf_module, "_tex_version", lambda: "pdfTeX 3.14159265-2.6-1.40.99 (a newer TeX)")
    newer = pdf_module.format_file("\\documentclass{article}\n")
    assert newer not in (one, other) and newer.is_file()


def test_a_broken_format_is_replaced_and_the_document_still_compiles(tmp_path, monkeypatch):
    monkeypatch.setenv("DERIVE_CACHE_DIR", str(tmp_path / "cache"))
    compile_pdf(SMALL, "small")
    (fmt,) = (tmp_path / "cache" / "latex").glob("derive-*.fmt")
    fmt.write_bytes(b"not a format file")
    assert "0.731" in _text(compile_pdf(SMALL, "small"), tmp_path)  # the plain path
    assert not fmt.exists()  # removed: made again next time
    compile_pdf(SMALL, "small")
    assert fmt.is_file() and fmt.stat().st_size > 1000


def test_an_unwritable_cache_falls_back_to_the_plain_path(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DERIVE_CACHE_DIR", str(blocker / "cache"))
    assert pdf_module.format_file("\\documentclass{article}\n") is None
    assert "0.731" in _text(compile_pdf(SMALL, "small"), tmp_path)


def test_a_latex_error_with_the_format_names_the_line_of_the_whole_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DERIVE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(LatexFailed, match="line 5: Undefined control sequence"):
        compile_pdf(SMALL.replace("\\end{document}", "\\undefinedmacro\n\\end{document}"), "broken")
    assert list((tmp_path / "cache" / "latex").glob("derive-*.fmt"))  # the format path was the one taken
