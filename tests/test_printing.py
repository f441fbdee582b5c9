"""The printing layer: exact strings, one small test per construct."""

from __future__ import annotations

import pytest
import sympy as sp

from derive.views.notation import Notation
from derive.views.printing import Printer, format_number, latex_text, markdown_text
from derive.model.quantities import Kind, Partial, Quantity, symbol
from derive.solution.record import Equation, Form, equation

NOTATION = Notation(output_layer=2, outputs=1, samples=1, units=(2, 1), inputs=3)
W = symbol(Quantity(Kind.WEIGHT, 1, 0, 1))
X = symbol(Quantity(Kind.INPUT, unit=1))
B = symbol(Quantity(Kind.BIAS, 1, 0))
Y = symbol(Quantity(Kind.TARGET, unit=0))
YHAT = symbol(Quantity(Kind.ACTIVATION, 2, 0))
E = symbol(Quantity(Kind.LOSS))
ETA = symbol(Quantity(Kind.LEARNING_RATE))


@pytest.mark.parametrize(
    "value,digits,text",
    [
        (0.0, 3, "0"),
        (0.29000000000000004, 3, "0.29"),
        (-0.34, 3, "-0.34"),
        (0.52572725, 3, "0.526"),
        (21.0, 3, "21"),
        (-1.6000000000000005, 3, "-1.6"),
        (0.000123456, 3, r"1.23 \times 10^{-4}"),
        (0.30000000000000004, 3, "0.3"),
        (-0.0004, 3, r"-4 \times 10^{-4}"),
        (0.0004, 4, "0.0004"),
        (2.5e7, 3, "25000000"),
        (3.5e9, 3, r"3.5 \times 10^{9}"),
        (0.1234, 0, r"1 \times 10^{-1}"),
        (0.5, 0, "1"),  # half away from zero
        (0.0625, 3, "0.063"),
        (-0.0625, 3, "-0.063"),
        (2.5, 0, "3"),
        (1.5, 0, "2"),
    ],
)
def test_numbers(value, digits, text):
    assert format_number(value, digits) == text


@pytest.mark.parametrize(
    "value,digits,text",
    [(0.1234567, 3, "0.1234567"), (0.125, 1, "0.125"), (1.5, 0, "1.5"), (0.52572725456789012, 3, "0.526"), (1e-4, 3, "0.0001")],
)
def test_given_numbers_are_printed_as_given(value, digits, text):
    """A number the spec gives keeps its decimals; one too long for that is rounded."""
    assert format_number(value, digits, exact=True) == text


def test_tiny_values_are_never_zero():
    assert format_number(1e-9) != "0" and format_number(-3e-7).startswith("-3")


def test_notation_names():
    printer = Printer(NOTATION)
    assert printer.expression(W) == "w^{(1)}_{01}"
    assert printer.expression(YHAT) == r"\hat{y}"
    assert printer.expression(symbol(Partial(Quantity(Kind.LOSS), Quantity(Kind.WEIGHT, 1, 0, 1)))) == r"\frac{\partial E}{\partial w^{(1)}_{01}}"
    assert printer.expression(symbol(Quantity(Kind.WEIGHT, 1, 0, 1, updated=True))) == "w^{(1)*}_{01}"
    assert printer.expression(symbol(Quantity(Kind.BIAS, 3, shared=True))) == "b^{(3)}"
    assert printer.expression(symbol(Quantity(Kind.WEIGHT, 2, 10, 3))) == "w^{(2)}_{10,3}"
    assert printer.expression(ETA) == r"\eta"


def test_products_keep_their_order_and_use_cdot():
    printer = Printer(NOTATION)
    product = sp.Mul(X, W, evaluate=False)
    assert printer.expression(product) == r"x_{1} \cdot w^{(1)}_{01}"


def test_negative_numbers_are_bracketed_where_needed():
    printer = Printer(NOTATION)
    total = sp.Add(sp.Mul(W, X, evaluate=False), B, evaluate=False)
    assert printer.expression(total, {W: -1.2, X: 0.2, B: -0.1}) == r"\left(-1.2\right) \cdot 0.2 - 0.1"
    update = sp.Add(W, sp.Mul(-1, ETA, X, evaluate=False), evaluate=False)
    assert printer.expression(update, {W: -1.1, ETA: 0.1, X: -0.5}) == r"-1.1 - 0.1 \cdot \left(-0.5\right)"
    assert printer.expression(W, {W: -1.1}) == "-1.1"
    assert printer.expression(sp.Max(0, W), {W: -0.34}) == r"\max\left(0, -0.34\right)"
    assert printer.expression(sp.exp(-W), {W: -0.5}) == r"e^{- \left(-0.5\right)}"


def test_a_sum_does_not_open_with_a_minus():
    printer = Printer(NOTATION)
    assert printer.expression((Y - YHAT) ** 2 / 2) == r"\frac{\left(y - \hat{y}\right)^{2}}{2}"


def test_a_mean_reads_one_over_n_times_the_sum():
    printer = Printer(NOTATION)
    mean = sp.Mul(sp.Rational(1, 3), sp.Add(W, X, B, evaluate=False), evaluate=False)
    assert printer.expression(mean) == r"\frac{1}{3} \Big(w^{(1)}_{01} + x_{1} + b^{(1)}_{0}\Big)"


def test_cases_read_if_and_otherwise():
    printer = Printer(NOTATION)
    relu_prime = sp.Piecewise((0, W <= 0), (1, True))
    assert printer.expression(relu_prime, {W: 0.29}) == r"\begin{cases} 0 & \text{if } 0.29 \leq 0 \\ 1 & \text{otherwise} \end{cases}"


def test_equation_chain_drops_repeats():
    eq = equation(E, [Form(W), Form(W, {W: 0.5})], 0.5)
    assert Printer(NOTATION).equation(eq) == "E = w^{(1)}_{01} = 0.5"
    constant = equation(W, [Form(sp.Derivative(B, B)), Form(sp.S.One), Form(sp.S.One, {})], 1.0)
    assert Printer(NOTATION).equation(constant).endswith("= 1")
    assert Printer(NOTATION).equation(constant).count("= 1") == 1


def test_long_equations_break_at_the_equals_signs():
    long_sum = sp.Add(*[sp.Mul(symbol(Quantity(Kind.WEIGHT, 1, 0, j)), symbol(Quantity(Kind.INPUT, unit=j)), evaluate=False) for j in range(9)], evaluate=False)
    values = {s: 0.123 for s in long_sum.free_symbols}
    display = Printer(NOTATION).display(Equation(E, (Form(long_sum), Form(long_sum, values)), 0.5))
    # The numbers start a row of their own, each form as wide as a row allows, a long sum
    # broken before a + into rows that start with \qquad.
    assert display.startswith(r"\begin{aligned}E &= ") and display.count("&=") == 2
    assert display.count(r"&\qquad +") == 2 and display.endswith("= 0.5\\end{aligned}")
    short = Printer(NOTATION).display(Equation(E, (Form(W), Form(W, {W: 1.0})), 1.0))
    assert "aligned" not in short


def test_a_braced_part_shows_its_value_under_the_brace():
    from derive.solution.record import Braced

    s = symbol(Quantity(Kind.WEIGHTED_SUM, 1, 0))
    total = sp.Add(Braced(sp.Mul(W, X, evaluate=False), s), B, evaluate=False)
    printer = Printer(NOTATION)
    assert printer.expression(total) == r"w^{(1)}_{01} \cdot x_{1} + b^{(1)}_{0}"
    # In braces, so that the − after it is spaced as a binary operator.
    assert printer.expression(total, {W: 0.5, X: 0.2, B: -0.1, s: 0.1}) == r"{\underbrace{0.5 \cdot 0.2}_{0.1}} - 0.1"


def test_a_derivative_written_with_a_prime():
    z = symbol(Quantity(Kind.PRE_ACTIVATION, 1, 0))
    printer = Printer(NOTATION)
    assert printer.expression(sp.Function("ReLU'")(z), {z: 0.29}) == r"\operatorname{ReLU}'\left(0.29\right)"
    assert printer.expression(sp.Function("sigma'")(z)) == r"\sigma'\left(z^{(1)}_{0}\right)"


def test_several_equations_align_on_their_equals_signs():
    printer = Printer(NOTATION)
    rows = printer.rows([Equation(E, (Form(W, {W: 0.5}),), None), Equation(B, (Form(W),), None)])
    assert rows == [("E &= 0.5", True), (r"b^{(1)}_{0} &= w^{(1)}_{01}", True)]
    assert printer.listing([Equation(W, (Form(W, {W: 0.5}),)), Equation(B, (Form(B, {B: 1.0}),))]) == [
        r"w^{(1)}_{01} = 0.5, \quad b^{(1)}_{0} = 1"
    ]


def test_free_text_is_escaped():
    hostile = r"\input{/etc/passwd} \write18{touch pwned} $x$ # _ % & ~ ^ { }"
    assert latex_text(hostile) == (
        r"\textbackslash{}input\{/etc/passwd\} \textbackslash{}write18\{touch pwned\} \$x\$ \# \_ \% \& "
        r"\textasciitilde{} \textasciicircum{} \{ \}"
    )
    assert markdown_text("*a* _b_ $x$ <b>") == r"\*a\* \_b\_ \$x\$ \<b\>"
    # Only what is Markdown syntax inside a line is escaped: a title reads as written.
    assert markdown_text("A 2-2-1 network (ReLU + sigmoid). Step 1!") == "A 2-2-1 network (ReLU + sigmoid). Step 1!"
