"""Teaching options: notation presets and overrides, carried rounding, shortcut deltas,
detail levels and template overrides."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sympy as sp

import derive
from derive.cli import main
from derive.model.functions import LOSSES, SHORTCUTS, activation
from derive.views.notation import symbol_problem
from tests.test_render import compile_latex, markdown_tokens, pdf_text

PRESETS = [("layered", "esuli"), ("layered", "elbasheer"), ("layered", "students"), ("esuli", "esuli"),
           ("esuli", "elbasheer"), ("esuli", "students"), ("flat", "esuli"), ("flat", "elbasheer"), ("flat", "students"),
           ("matrix", "esuli"), ("matrix", "elbasheer"), ("matrix", "students"), ("single", "elbasheer")]


@pytest.mark.parametrize("notation,example", PRESETS)
def test_each_preset_renders_each_example(notation, example, tmp_path):
    solution = derive.solve(example)
    markdown = derive.render(solution, "md", notation=notation)
    assert sum(1 for t in markdown_tokens(markdown) if t.type == "math_block") > 5
    pdf, log = compile_latex(derive.render(solution, "tex", notation=notation), tmp_path)
    assert "Backpropagation" in pdf_text(pdf)


def test_single_is_for_one_neuron(capsys):
    with pytest.raises(derive.DeriveError, match="the single notation is for one neuron"):
        derive.render(derive.solve("esuli"), "md", notation="single")
    assert main(["solve", "esuli", "--notation", "single", "--output", "-", "--format", "md"]) == 2


def test_esuli_preset_uses_the_handouts_symbols():
    text = derive.render(derive.solve("esuli"), "md", notation="esuli")
    for symbol in ("W_{0}", "W_{out}", "b_{hid}", "b_{out}", "w_{100}", "w_{012}", "b_{10}", "h_{pre,0}", "h_{0}",
                   "o_{pre}", r"\frac{\partial E}{\partial o}", r"\mu", "w^{*}_{100}", "o^{*}", "E^{*}"):
        assert symbol in text, symbol
    assert "z^{(1)}" not in text and r"\eta" not in text


def test_flat_preset_numbers_the_handouts_eight_weights():
    text = derive.render(derive.solve("esuli"), "md", notation="flat")
    assert all(f"w_{{{n}}}" in text for n in range(1, 9)) and "w_{9}" not in text
    for symbol in ("x_{1}", "x_{3}", "z_{1}", "z_{3}", "h_{1}", "h_{2}", "b_{3}", r"\hat{y}", r"\frac{\partial L}{\partial w_{7}}"):
        assert symbol in text, symbol
    assert "x_{0}" not in text


def test_single_preset_writes_one_neuron():
    text = derive.render(derive.solve("elbasheer"), "md", notation="single", detail="full")
    for symbol in (r"z &= w \cdot x + b", r"y_{\text{pred}}", r"y_{\text{true}}", r"\alpha", r"w^{\text{new}} &= w - \alpha"):
        assert symbol in text, symbol
    handout = derive.render(derive.solve("elbasheer"), "md", notation="single")
    assert r"\theta^{\text{new}} = \theta - \alpha" in handout and r"w^{\text{new}} &= 2 - 0.01 \cdot 360 = -1.6" in handout


def test_matrix_preset_writes_every_section_in_vectors():
    text = derive.render(derive.solve("esuli"), "md", notation="matrix")
    for line in (
        r"\mathbf{W}^{(1)} \mathbf{x} &= \left[\begin{matrix}0.2 & -1.2 & 0.9\\-0.5 & -1.2 & 0.3\end{matrix}\right]",  # W x
        r"\mathbf{z}^{(1)} &= \mathbf{W}^{(1)} \mathbf{x} + \mathbf{b}^{(1)} = \left[\begin{matrix}0.39\\-0.54\end{matrix}\right] + ",  # then + b
        r"\mathbf{a}^{(1)} &= \operatorname{ReLU}{\left(\mathbf{z}^{(1)} \right)} = ",  # the activation
        r"\frac{\partial E}{\partial \mathbf{a}^{(1)}} &= \left(\mathbf{W}^{(2)}\right)^{T} \frac{\partial E}{\partial \mathbf{z}^{(2)}}",  # Wᵀ δ
        r"\frac{\partial E}{\partial \mathbf{z}^{(1)}} &= \frac{\partial E}{\partial \mathbf{a}^{(1)}} \odot \frac{\partial \mathbf{a}^{(1)}}{\partial \mathbf{z}^{(1)}}",
        r"\frac{\partial E}{\partial \mathbf{W}^{(1)}} &= \frac{\partial E}{\partial \mathbf{z}^{(1)}} \mathbf{x}^{T}",  # outer product
        r"\mathbf{W}^{(1)*} &= \mathbf{W}^{(1)} - \eta \frac{\partial E}{\partial \mathbf{W}^{(1)}}",
        r"\mathbf{z}^{(1)*} &= \mathbf{W}^{(1)*} \mathbf{x} + \mathbf{b}^{(1)*}",  # the repeated forward pass
    ):
        assert line in text, line
    # Vectors and matrices are bold throughout, scalars are not.
    assert not re.search(r"(?<!mathbf\{)\bW\^\{\(", text) and r"\mathbf{b}^{(2)*}" in text


def test_notation_from_the_spec_with_overrides(tmp_path):
    spec = derive.load_spec("esuli").to_dict()
    spec["notation"] = {"base": "esuli", "loss": "L", "learning_rate": r"\alpha"}
    text = derive.render(derive.solve(spec), "md")
    assert r"\frac{\partial L}{\partial o}" in text and r"\alpha" in text and "w_{100}" in text
    spec["notation"] = {"base": "esuli", "loss": r"\input{/etc/passwd}"}
    with pytest.raises(derive.SpecError, match=r"notation\.loss: expected a LaTeX symbol"):
        derive.load_spec(spec)
    spec["notation"] = "greek"
    with pytest.raises(derive.SpecError, match="notation.base: unknown notation 'greek'"):
        derive.load_spec(spec)


def test_safe_symbols():
    assert all(symbol_problem(s) is None for s in ("L", r"\mathcal{L}", r"\hat{y}", r"E_{\text{train}}"))
    assert all(symbol_problem(s) is not None for s in (r"\input{x}", r"\def\x{}", "", "a$b"))


# -- carried rounding ----------------------------------------------------------------------------------


def _decimals(value: float) -> int:
    text = repr(value)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


def _walk(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
    elif isinstance(node, float):
        yield node


@pytest.mark.parametrize("example", ["esuli", "elbasheer", "students"])
def test_carry_json_shows_at_most_digits_decimals(example):
    key = derive.solve(example, digits=3).to_dict()
    assert key["rounding"] == {"mode": "carry", "digits": 3}  # the default
    shown = [step["shown"] for step in key["steps"]] + [key["final"]["shown"]]
    assert all(_decimals(v) <= 3 for v in _walk(shown))
    exact = derive.solve(example, rounding="exact").to_dict()
    assert exact["rounding"] == {"mode": "exact"}
    # beside the full-precision values
    assert [{k: v for k, v in step.items() if k != "shown"} for step in key["steps"]] == exact["steps"]


# Every displayed line recomputed on a calculator: tests/test_every_line.py.


def test_carry_in_the_spec_and_the_command(tmp_path):
    spec = derive.load_spec("esuli").to_dict()
    spec["rounding"] = "carry"
    assert derive.solve(spec).to_dict()["rounding"]["mode"] == "carry"
    assert main(["solve", "esuli", "--rounding", "carry", "--format", "json", "--output", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "esuli.json").read_text())["steps"][0]["shown"]["gradients"]["W1[0,0]"] == 0.083
    assert main(["solve", "esuli", "--rounding", "exact", "--format", "md", "--output", str(tmp_path)]) == 0
    assert "computed at full precision" in (tmp_path / "esuli.md").read_text()
    text = derive.render(derive.solve("esuli", rounding="carry"), "md")
    assert "rounded to 3 decimals as soon as it is shown" in text


def test_carry_exercise_records_it(tmp_path):
    variant = derive.exercise("esuli", 5, rounding="carry")[0]
    key = variant.key()
    assert key["rounding"] == {"mode": "carry", "digits": 3}
    assert all(_decimals(q["value"]) <= 3 for q in key["questions"])


# -- shortcut deltas -------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", list(SHORTCUTS))
def test_shortcut_is_the_derivative_of_the_composition(pair):
    """sympy.diff of the loss of the activation, against the shortcut shown."""
    name, loss_name = pair
    count = 1 if name == "sigmoid" else 3
    zs = sp.symbols(f"z0:{count}")
    ys = sp.symbols(f"y0:{count}", positive=True)
    act, loss = activation(name), LOSSES[loss_name]
    predictions = [act.unit_output(tuple(zs), k) for k in range(count)]
    p = sp.symbols(f"p0:{count}")
    composed = loss.per_sample(p, ys).xreplace(dict(zip(p, predictions)))
    shortcut = SHORTCUTS[pair](predictions[0], ys[0], count)
    difference = sp.diff(composed, zs[0]) - shortcut
    if name == "softmax":
        difference = difference.subs(ys[-1], 1 - sum(ys[:-1]))  # cross-entropy targets sum to 1
    assert sp.simplify(difference) == 0


def test_shortcut_shown_once_and_optional():
    text = derive.render(derive.solve("students"), "md")
    assert r"\frac{\partial E_{1}}{\partial z^{(2)}_{0}} = \hat{y} - y = 0.633 - 0 = 0.633" in text
    assert "**Shortcut**" in text and r"\frac{\partial E}{\partial \hat{y}} \cdot \frac{\partial \hat{y}}{\partial z^{(2)}_{0}}" in text
    without = derive.render(derive.solve("students", shortcut=False), "md")
    assert "Shortcut" not in without and r"\frac{\partial \hat{y}}{\partial z^{(2)}_{0}} = \sigma'\left(z^{(2)}_{0}\right)" in without
    full = derive.render(derive.solve("students", shortcut=False), "md", detail="full")
    assert r"\frac{\partial \hat{y}}{\partial z^{(2)}_{0}} = \frac{e^{- z^{(2)}_{0}}}" in full
    assert derive.solve("students", shortcut=False).to_dict()["steps"][0]["gradients"] == pytest.approx(
        derive.solve("students").to_dict()["steps"][0]["gradients"], rel=1e-12
    )


# -- detail and templates --------------------------------------------------------------------------------


def test_detail_levels():
    solution = derive.solve("students")
    handout = derive.render(solution, "md")
    full = derive.render(solution, "md", detail="full")
    compact = derive.render(solution, "md", detail="compact")
    answers = derive.render(solution, "md", detail="answers")
    assert "The chain rule gives" in handout and "The chain rule gives" in full
    assert "The chain rule gives" not in compact
    assert compact.count("$$") == handout.count("$$")  # the same equations, without the sentences
    # The handout works sample 1 in full and tables the others; full writes out every sample.
    assert "### Every sample" in handout and "### Sample 2" not in handout
    assert all(f"### Sample {n}" in full for n in range(1, 7)) and "### Every sample" not in full
    assert "Backpropagation" not in answers and "## Gradients and updated parameters" in answers
    esuli_answers = derive.render(derive.solve("esuli"), "md", detail="answers")
    assert r"| $\frac{\partial E}{\partial w^{(2)}_{00}}$ | $0.038$ | $w^{(2)*}_{00}$ | $0.696$ |" in esuli_answers
    assert any(t.type == "table_open" for t in markdown_tokens(answers))


def test_detail_answers_compiles(tmp_path):
    pdf, _ = compile_latex(derive.render(derive.solve("students"), "tex", detail="answers"), tmp_path)
    assert "Gradients and updated parameters" in pdf_text(pdf)


def test_template_dir_overrides_a_template(tmp_path):
    (tmp_path / "md").mkdir()
    builtin = Path(__import__("derive.views.document", fromlist=["template_dir"]).template_dir())
    macros = (builtin / "md" / "macros.j2").read_text()
    (tmp_path / "md" / "macros.j2").write_text(macros.replace("*Generated by derive {{ version }}.*", "*Course NN101, week 3.*"))
    (tmp_path / "solution.md.j2").write_text('{% import "md/macros.j2" as m with context %}\n# NN101: {{ solution.title }}\n\n{% include "solution.body.j2" %}\n')
    text = derive.render(derive.solve("esuli"), "md", template_dir=str(tmp_path))
    assert text.startswith("# NN101: Forward and backward pass") and "*Course NN101, week 3.*" in text
    out = tmp_path / "out"
    assert main(["solve", "esuli", "--format", "md", "--template-dir", str(tmp_path), "--output", str(out)]) == 0
    assert (out / "esuli.md").read_text().startswith("# NN101:")


def test_unknown_view_options():
    solution = derive.solve("esuli")
    with pytest.raises(derive.DeriveError, match="unknown detail 'short'; choose one of handout, compact, full, answers"):
        derive.render(solution, "md", detail="short")
    with pytest.raises(derive.DeriveError, match="unknown notation 'greek'"):
        derive.render(solution, "md", notation="greek")
