"""The student-with-a-calculator checker (tests/calculator.py): its parser and values on
hand-written LaTeX, and then derive's own documents, line by line."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest

import derive
from tests.calculator import (
    FUNCTIONS,
    Check,
    MatrixValue,
    Unparsed,
    check,
    displays,
    equations,
    evaluate,
    function_table,
    is_symbolic,
)
from tests.test_render import BRANCHES


def matrix(*rows) -> MatrixValue:
    return MatrixValue(tuple(tuple(Fraction(str(x)) for x in row) for row in rows))


# -- displays and equations -----------------------------------------------------------


def test_displays_are_the_dollar_dollar_blocks():
    markdown = "Text $x = 1$ inline.\n\n$$\na = 1\n$$\n\nMore.\n\n$$\n\\begin{aligned}b &= 2 \\\\\n&= 2\\end{aligned}\n$$\n"
    assert displays(markdown) == ["a = 1", "\\begin{aligned}b &= 2 \\\\\n&= 2\\end{aligned}"]


def test_a_single_equation_splits_at_its_equals_signs():
    assert equations(r"z = 0.2 \cdot 0.9 + 0.1 = 0.28") == [["z", r"0.2 \cdot 0.9 + 0.1", "0.28"]]


def test_equals_signs_inside_groups_environments_and_text_do_not_split():
    display = (r"x_{i=0} = \left(a = b\right) = \begin{cases} 1 & \text{if } i = k \\ 0 & \text{otherwise} \end{cases}"
               r" = \text{so = that} = 1")
    assert equations(display) == [[
        "x_{i=0}",
        r"\left(a = b\right)",
        r"\begin{cases} 1 & \text{if } i = k \\ 0 & \text{otherwise} \end{cases}",
        r"\text{so = that}",
        "1",
    ]]


def test_relations_are_not_equals_signs():
    display = r"d = \begin{cases} 0 & \text{if } 0.29 \leq 0 \\ 1 & \text{otherwise} \end{cases} = 1"
    assert [len(parts) for parts in equations(display)] == [3]
    assert equations(r"a < b") == [["a < b"]]


def test_aligned_rows_start_equations_add_forms_and_continue_forms():
    display = (
        "\\begin{aligned}E &= \\frac{1}{2} \\Bigl(E_{1} + E_{2} \\\\\n"
        "&\\qquad + E_{3}\\Bigr) \\\\\n"
        "&= \\frac{1}{2} \\Bigl(0.1 + 0.2 \\\\\n"
        "&\\qquad + 0.3\\Bigr) \\\\\n"
        "&= 0.3 \\\\\n"
        "F &= 1 + 1 = 2\\end{aligned}"
    )
    assert equations(display) == [
        ["E", r"\frac{1}{2} \Bigl(E_{1} + E_{2} + E_{3}\Bigr)", r"\frac{1}{2} \Bigl(0.1 + 0.2 + 0.3\Bigr)", "0.3"],
        ["F", "1 + 1", "2"],
    ]


def test_equations_side_by_side_are_split():
    display = r"\begin{aligned}a &= 0.2 - 0.1 \cdot 0.083 = 0.192 & b &= 1 - 0.5 = 0.5 \\" + "\n" + r"c &= 2 = 2\end{aligned}"
    assert equations(display) == [["a", r"0.2 - 0.1 \cdot 0.083", "0.192"], ["b", "1 - 0.5", "0.5"], ["c", "2", "2"]]


def test_a_sum_broken_over_rows_under_a_brace():
    form = r"\underbrace{\begin{aligned}&0.2 \cdot 0.9 + 0.5 \\ &\quad - 0.1\end{aligned}}_{0.58} + 1"
    assert evaluate(form) == Fraction("1.58")
    (under, whole) = check(rf"z = {form} = 1.58", 3)
    assert under.ok and whole.ok and under.shown == Decimal("0.58")


def test_rows_inside_a_matrix_do_not_split_an_aligned_display():
    display = "\\begin{aligned}M &= \\left[\\begin{matrix}1 & 2\\\\3 & 4\\end{matrix}\\right] \\\\\n&= 5\\end{aligned}"
    assert equations(display) == [["M", r"\left[\begin{matrix}1 & 2\\3 & 4\end{matrix}\right]", "5"]]


# -- what is symbolic -----------------------------------------------------------------


@pytest.mark.parametrize("form", [
    r"w^{(1)}_{00}", r"\hat{y}", r"\frac{\partial E}{\partial z}", r"\eta", r"\mathbf{W}", r"\max\left(0, z\right)",
    r"e^{- z}", r"\left(W^{(2)}\right)^{T}", r"\sum_{k=0}^{2} 1", r"\sigma{\left(z \right)}", r"\sigma",
    r"2 \sigma + 1", r"y_{\text{pred}}",
])
def test_symbolic_forms(form):
    assert is_symbolic(form)


@pytest.mark.parametrize("form", [
    r"e^{- 0.5}", r"\left[\begin{matrix}1 & 2\end{matrix}\right]^{T}", r"\operatorname{ReLU}{\left(0.2 \right)}",
    r"\begin{cases} 0 & \text{if } 0.29 \leq 0 \\ 1 & \text{otherwise} \end{cases}", r"\sigma'\left(0.3\right)",
])
def test_numeric_forms(form):
    assert not is_symbolic(form)


# -- values of each construct ---------------------------------------------------------


@pytest.mark.parametrize("form,value", [
    ("0.29", Fraction("0.29")),
    ("-0.34", Fraction("-0.34")),
    ("21", 21),
    ("{-0.34}", Fraction("-0.34")),
    (r"1.23 \times 10^{-4}", Fraction("0.000123")),
    (r"\left(-1.2\right)", Fraction("-1.2")),
    (r"\Bigl(1 + 2\Bigr)", 3),
    (r"\left[0.5 - 1\right]", Fraction("-0.5")),
    (r"\left\{0.5\right\}", Fraction("0.5")),
    ("(1 - 3) - 2", -4),
    ("1 - 2 + 3", 2),
    (r"- 2^{2}", -4),
    (r"2 \cdot -3", -6),
    (r"- 0 \cdot 5 - \left(1 - 0\right) \cdot 2", -2),
    (r"0.205 \cdot 3.3", Fraction("0.6765")),
    (r"0.1 \times 0.2", Fraction("0.02")),
    (r"2 \left(0.5 + 1\right)", 3),
    (r"0.5 (4)", 2),
    (r"\frac{1}{3}", Fraction(1, 3)),
    (r"\frac{1}{6} \Bigl(1.002 + 1.332\Bigr)", Fraction("2.334") / 6),
    (r"\frac{\left(0 - 0.526\right)^{2}}{2}", Fraction("0.138338")),
    (r"\left(-1.2\right)^{2}", Fraction("1.44")),
    (r"2^{-2}", Fraction(1, 4)),
    (r"\operatorname{ReLU}{\left(-0.3\right)}", 0),
    (r"\operatorname{ReLU}{\left(0.3\right)}", Fraction("0.3")),
    (r"\operatorname{ReLU}'\left(0.29\right)", 1),
    (r"\operatorname{ReLU}'\left(0\right)", 0),
    (r"\operatorname{LeakyReLU}{\left(-2\right)}", Fraction("-0.02")),
    (r"\operatorname{LeakyReLU}'(-2)", Fraction("0.01")),
    (r"\operatorname{LeakyReLU}'(2)", 1),
    (r"\max\left(0, -0.34\right)", 0),
    (r"\max\left(0, 0.29\right)", Fraction("0.29")),
    (r"\min\left(0, -0.34\right)", Fraction("-0.34")),
    (r"\begin{cases} 0 & \text{if } 0.29 \leq 0 \\ 1 & \text{otherwise} \end{cases}", 1),
    (r"\begin{cases} 0 & \text{if } {-0.34} \leq 0 \\ 1 & \text{otherwise} \end{cases}", 0),
    (r"\begin{cases} 0.1 \cdot 0 & \text{if } 0 \leq 0 \\ 0 & \text{otherwise} \end{cases}", 0),
    (r"\begin{cases} 5 & \text{if } 0 < 0 \\ 6 & \text{otherwise} \end{cases}", 6),
    (r"\begin{cases} 5 & \text{if } 0 \geq 0 \\ 6 & \text{otherwise} \end{cases}", 5),
    (r"\begin{cases} 5 & \text{if } 0 > 0 \\ 6 & \text{if } 1 > 0 \end{cases}", 6),
    (r"\begin{cases} 5 & \text{for}\: 1 \leq 0 \\ 6 & \text{otherwise} \end{cases}", 6),
    (r"1 \, + \; 2 \quad \cdot \qquad 3 \! + \: 0", 7),
    (r"\displaystyle \frac{1}{2}", Fraction(1, 2)),
])
def test_exact_values(form, value):
    computed = evaluate(form)
    assert isinstance(computed, Fraction) and computed == value


@pytest.mark.parametrize("form,value", [
    (r"e^{- 0.545}", math.exp(-0.545)),
    (r"\frac{1}{1 + e^{- 0.103}}", 1 / (1 + math.exp(-0.103))),
    (r"\exp{\left(1 \right)}", math.e),
    (r"\ln{\left(1 - 0.633 \right)}", math.log(0.367)),
    (r"\log{\left(2 \right)}", math.log(2)),
    (r"\tanh{\left(0.5 \right)}", math.tanh(0.5)),
    (r"\tanh^{2}{\left(0.5 \right)}", math.tanh(0.5) ** 2),
    (r"\tanh'\left(0.5\right)", 1 - math.tanh(0.5) ** 2),
    (r"\sigma{\left(0 \right)}", 0.5),
    (r"\sigma\left(0.2\right)", 1 / (1 + math.exp(-0.2))),
    (r"\sigma'\left(0\right)", 0.25),
    (r"2^{0.5}", math.sqrt(2)),
    (r"\frac{e^{0.3}}{e^{-0.1} + e^{0.3} + e^{0.1}}", math.exp(0.3) / (math.exp(-0.1) + math.exp(0.3) + math.exp(0.1))),
])
def test_values_through_floats(form, value):
    assert evaluate(form) == pytest.approx(value, rel=1e-12)


def test_the_leaky_slope_and_further_functions_come_from_the_table():
    assert evaluate(r"\operatorname{LeakyReLU}{\left(-2\right)}", function_table(leaky_slope="0.1")) == Fraction("-0.2")
    functions = {**FUNCTIONS, "softplus": lambda x: math.log1p(math.exp(float(x)))}
    assert check(r"\operatorname{softplus}{\left(0 \right)} = 0.693", 3, functions)[0].ok
    with pytest.raises(Unparsed, match="softplus"):
        check(r"\operatorname{softplus}{\left(0 \right)} = 0.693", 3)


@pytest.mark.parametrize("form,value", [
    (r"\left[\begin{matrix}0.2 & -1.2\\-0.5 & 0.3\end{matrix}\right]", matrix([0.2, -1.2], [-0.5, 0.3])),
    (r"\begin{bmatrix}1 & 2\\3 & 4\\\end{bmatrix}", matrix([1, 2], [3, 4])),
    (r"\begin{pmatrix}1\\2\end{pmatrix} + \begin{pmatrix}0.5\\-1\end{pmatrix}", matrix([1.5], [1])),
    (r"\left[\begin{matrix}1 & 2\end{matrix}\right] - 0.1 \left[\begin{matrix}0.5 & 1\end{matrix}\right]", matrix([0.95, 1.9])),
    (r"2 \cdot \left[\begin{matrix}1 & 2\end{matrix}\right]", matrix([2, 4])),
    (r"\left[\begin{matrix}1 & 2\end{matrix}\right] \cdot 2", matrix([2, 4])),
    (r"\left[\begin{matrix}1 & 2\\3 & 4\end{matrix}\right] \left[\begin{matrix}1\\-1\end{matrix}\right]", matrix([-1], [-1])),
    (r"\left[\begin{matrix}1 & 2\\3 & 4\end{matrix}\right] \cdot \left[\begin{matrix}0 & 1\\1 & 0\end{matrix}\right]", matrix([2, 1], [4, 3])),
    (r"\left[\begin{matrix}1\\2\end{matrix}\right]^{T}", matrix([1, 2])),
    (r"\left[\begin{matrix}1 & 2\end{matrix}\right]^T \left[\begin{matrix}3\end{matrix}\right]", matrix([3], [6])),
    (r"\left[\begin{matrix}1\\2\end{matrix}\right] \odot \left[\begin{matrix}3\\0.5\end{matrix}\right]", matrix([3], [1])),
    (r"\left[\begin{matrix}0.7 & -1.1\end{matrix}\right]^{T} \left[\begin{matrix}0.131\end{matrix}\right] \odot "
     r"\left[\begin{matrix}1\\0\end{matrix}\right]", matrix([0.0917], [0])),
    (r"\operatorname{ReLU}{\left(\left[\begin{matrix}0.29\\-0.34\end{matrix}\right] \right)}", matrix([0.29], [0])),
    (r"\frac{\left[\begin{matrix}1 & 3\end{matrix}\right]}{2}", matrix([0.5, 1.5])),
])
def test_matrix_values(form, value):
    assert evaluate(form) == value


def test_a_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes"):
        evaluate(r"\left[\begin{matrix}1 & 2\end{matrix}\right] \left[\begin{matrix}1 & 2\end{matrix}\right]")


def test_an_underbrace_stands_for_its_label():
    form = (r"\underbrace{0.2 \cdot 0.9 + \left(-1.2\right) \cdot 0.2 + 0.9 \cdot 0.5}_{0.39}"
            r" + \left(-0.1\right)")
    assert evaluate(form) == Fraction("0.29")
    assert evaluate(r"\underbrace{1 \cdot 0.3333}_{0.333} \cdot 3") == Fraction("0.999")


# -- checks -----------------------------------------------------------------------------


def test_a_line_that_computes_to_its_result():
    assert check(r"z = 0.205 \cdot 3.3 = 0.677", 3) == [Check(r"0.205 \cdot 3.3", Decimal("0.6765"), Decimal("0.677"), True)]


def test_a_wrong_result_is_caught():
    [wrong] = check(r"z = 0.2 \cdot 0.3 = 0.07", 3)
    assert not wrong.ok and wrong.computed == Decimal("0.06") and wrong.shown == Decimal("0.07")


def test_every_numeric_form_of_an_equation_is_checked():
    checks = check(r"a = 0.5 \cdot 2 = 0.25 \cdot 4 = 0.3 + 0.7 = 1", 3)
    assert [c.ok for c in checks] == [True, True, True]
    checks = check(r"a = 0.5 \cdot 2 = 0.25 \cdot 5 = 1", 3)
    assert [c.ok for c in checks] == [True, False]


def test_rounding_is_half_away_from_zero_and_trailing_zeros_drop():
    assert check(r"0.0005 + 0 = 0.001", 3)[0].ok
    assert not check(r"0.0005 + 0 = 0", 3)[0].ok
    assert check(r"-0.0005 + 0 = -0.001", 3)[0].ok
    assert check(r"\frac{1}{3} \cdot 0.0015 = 0.001", 3)[0].ok  # exactly 0.0005: a calculator's ÷ is exact here
    assert check(r"0.145 + 0.145 = 0.29", 3)[0].ok
    assert check(r"0.145 + 0.145 = 0.290", 3)[0].ok
    assert check(r"0.2851 + 0 = 0.29", 2)[0].ok
    assert not check(r"0.2851 + 0 = 0.29", 3)[0].ok


def test_floats_round_from_their_value():
    assert check(r"\hat{y} = \frac{1}{1 + e^{- 0.545}} = 0.633", 3)[0].ok
    assert not check(r"\hat{y} = \frac{1}{1 + e^{- 0.545}} = 0.632", 3)[0].ok


def test_matrices_compare_element_by_element():
    ok = check(r"W = \left[\begin{matrix}0.2 & -1.2\end{matrix}\right] - 0.1 \left[\begin{matrix}0.083 & 0.018\end{matrix}\right]"
               r" = \left[\begin{matrix}0.192 & -1.202\end{matrix}\right]", 3)
    assert [c.ok for c in ok] == [True]
    assert ok[0].computed == ((Decimal("0.1917"), Decimal("-1.2018")),)
    wrong = check(r"W = \left[\begin{matrix}0.2 & -1.2\end{matrix}\right] - 0.1 \left[\begin{matrix}0.083 & 0.018\end{matrix}\right]"
                  r" = \left[\begin{matrix}0.192 & -1.201\end{matrix}\right]", 3)
    assert [c.ok for c in wrong] == [False]
    shape = check(r"\left[\begin{matrix}1 & 2\end{matrix}\right]^{T} = \left[\begin{matrix}1 & 2\end{matrix}\right]", 3)
    assert [c.ok for c in shape] == [False]
    kind = check(r"\left[\begin{matrix}1\end{matrix}\right] = 1", 3)
    assert [c.ok for c in kind] == [False]


def test_an_underbrace_is_checked_against_its_label_and_its_label_is_carried():
    display = (r"z = \underbrace{0.2 \cdot 0.9 + \left(-1.2\right) \cdot 0.2 + 0.9 \cdot 0.5}_{0.39}"
               r" + \left(-0.1\right) = 0.29")
    braced, whole = check(display, 3)
    assert braced == Check(r"0.2 \cdot 0.9 + \left(-1.2\right) \cdot 0.2 + 0.9 \cdot 0.5", Decimal("0.39"), Decimal("0.39"), True)
    assert whole.ok and whole.computed == Decimal("0.29")


def test_an_underbrace_with_a_wrong_label_is_caught():
    display = r"z = \underbrace{0.2 \cdot 0.9 + 0.9 \cdot 0.5}_{0.62} + \left(-0.1\right) = 0.52"
    braced, whole = check(display, 3)
    assert not braced.ok and braced.computed == Decimal("0.63") and braced.shown == Decimal("0.62")
    assert whole.ok  # the line goes on with the label as shown
    with pytest.raises(Unparsed, match="label must be a number"):
        check(r"z = \underbrace{1 + 1}_{1 + 1} = 2", 3)


def test_aligned_displays_are_checked_form_by_form():
    display = ("\\begin{aligned}E &= \\frac{1}{6} \\Bigl(E_{1} + E_{2} + E_{3} + E_{4} + E_{5} + E_{6}\\Bigr) \\\\\n"
               "&= \\frac{1}{6} \\Bigl(0.633 + 0.736 + \\left(-0.205\\right) + \\left(-0.163\\right) + 0.696 \\\\\n"
               "&\\qquad + \\left(-0.199\\right)\\Bigr) \\\\\n"
               "&= 0.25\\end{aligned}")
    [line] = check(display, 3)
    assert line.ok and str(line.computed).startswith("0.24966666")


def test_symbolic_forms_are_skipped():
    assert check(r"w^{(1)*}_{00} = w^{(1)}_{00} - \eta \cdot \frac{\partial E}{\partial w^{(1)}_{00}}", 3) == []
    assert check(r"\frac{\partial E}{\partial \hat{y}} = \hat{y} - y = 0.526 - 0 = 0.526", 3) == [
        Check("0.526 - 0", Decimal("0.526"), Decimal("0.526"), True)]
    assert check(r"\operatorname{ReLU}{\left(z \right)} = \max\left(0, z\right)", 3) == []


def test_results_that_are_not_plain_numbers_are_not_compared():
    assert check(r"a = 0.0001 \cdot 1.23 = 1.23 \times 10^{-4}", 3) == []
    assert check(r"a = 0.5 \cdot 2 = \frac{2}{2}", 3) == []
    assert check(r"a = 0.5 \cdot 2 = b", 3) == []


@pytest.mark.parametrize("display,offending", [
    (r"\cbrt{8} = 2", "cbrt"),
    (r"2 3 = 6", "3"),
    (r"0.5 \cdot = 1", r"\cdot"),
    (r"\frac12 = 0.5", "12"),
    (r"10^23 = 1", "23"),
    (r"\operatorname{Foo}{\left(1 \right)} = 1", "Foo"),
    (r"\begin{vmatrix} 1 \end{vmatrix} = 1", "vmatrix"),
    (r"\begin{cases} 1 & \text{unless } 0 \leq 1 \end{cases} = 1", "unless"),
    (r"\begin{cases} 1 & \text{if } 0 \end{cases} = 1", "relation"),
    (r"\left[\begin{matrix}1 & 2\\3\end{matrix}\right] = 1", "rows of different lengths"),
    (r"1 + 1 = 2 + ", "end"),
    (r"\pi = 3.142", "pi"),
])
def test_numeric_looking_forms_that_are_not_understood_raise(display, offending):
    with pytest.raises(Unparsed) as error:
        check(display, 3)
    assert offending in str(error.value)


# -- derive's documents ------------------------------------------------------------------


def functions_for(spec) -> dict:
    """The function table with the spec's leaky-ReLU slope (BRANCHES uses 0.1)."""
    slopes = [layer["alpha"] for layer in spec["layers"] if "alpha" in layer] if isinstance(spec, dict) else []
    return function_table(leaky_slope=str(slopes[0])) if slopes else FUNCTIONS


DOCUMENTS = [
    pytest.param("esuli", None, 3, id="esuli"),
    pytest.param("elbasheer", None, 3, id="elbasheer"),
    pytest.param("students", None, 3, id="students"),
    pytest.param("esuli", "matrix", 3, id="esuli-matrix"),
    pytest.param(BRANCHES, None, 3, id="BRANCHES"),
    # With these digits the matrix notation of derive cb10d6c carried the δ vector unrounded
    # (0.7 · 0.1311 shown as 0.0917) and rounded Wᵀδ without showing it (-0.0151 shown as -0.01).
    pytest.param("esuli", "matrix", 4, id="esuli-matrix-4-digits"),
    pytest.param(BRANCHES, "matrix", 2, id="BRANCHES-matrix-2-digits"),
]


def plain(value) -> str:
    """A shown or computed value as text: 0.131, or [0.29; -0.34] for a matrix."""
    if isinstance(value, tuple):
        return "[" + "; ".join(", ".join(map(str, row)) for row in value) + "]"
    return str(value)


@pytest.mark.parametrize("spec,notation,digits", DOCUMENTS)
def test_every_line_of_a_carried_document_checks_out_on_a_calculator(spec, notation, digits):
    solution = derive.solve(spec, rounding="carry", digits=digits)
    markdown = derive.render(solution, "md", **({"notation": notation} if notation else {}))
    checks = [c for display in displays(markdown) for c in check(display, digits, functions_for(spec))]
    assert len(checks) >= 10
    wrong = [f"{c.form} = {plain(c.shown)}, but a calculator gives {plain(c.computed)}" for c in checks if not c.ok]
    assert not wrong, "\n".join(wrong)
