"""The one printing layer: every piece of LaTeX for symbols, expressions, numbers and
equations comes from here (templates reach it through the `tex` and `num` filters).

`TexPrinter` is SymPy's LaTeX printer with the notation's symbol names, and, for a
"numbers substituted" form, a map from symbols to values: the same expression tree is
printed with numbers in place of symbols, so the structure shown with numbers is
exactly the structure shown with symbols.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
import unicodedata
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any, Mapping

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from ..model.numeric import DEFAULT_DIGITS, carried, carried_significant
from ..model.quantities import Kind, Quantity, quantity_of
from ..solution.record import Braced



# A number shown exactly has at most this many decimals (more are rounded to the digits).
EXACT_DECIMALS = 12
# Beyond this a number is shown with a power of ten.
LARGEST_PLAIN = 1e9


def _short_decimal(value: float) -> str | None:
    """The number's shortest decimal form when it is short (0.125), else None (0.1 + 0.2)."""
    text = repr(value)
    if "e" in text or "inf" in text or "nan" in text:
        return None
    whole, _, decimals = text.partition(".")
    decimals = decimals.rstrip("0")
    if len(decimals) > EXACT_DECIMALS:
        return None
    return whole + ("." + decimals if decimals else "")


_WIDE = Context(prec=400)  # holds any double to any number of shown decimals


def half_up(value: float, digits: int) -> Decimal:
    """`value` to `digits` decimals, half away from zero, as the documents round: a tie
    is judged on the number's shortest decimal form (0.0625 → 0.063)."""
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP, context=_WIDE)


def _rounded(value: float, digits: int, exact: bool = False) -> tuple[str, int | None]:
    """`digits` decimals with trailing zeros dropped, or, for a non-zero value that would
    round to 0 (or a huge one), a mantissa and a power of ten. With `exact`, a number with
    a short decimal form (a number given in a spec, 0.1234567) is written in full."""
    if value == 0:
        return "0", None
    short = _short_decimal(value) if exact else None
    if short is not None and abs(value) < LARGEST_PLAIN:
        return ("0" if short in ("-0", "") else short), None
    if exact and abs(value) < 1 and half_up(value, digits) != 0:
        # a short number Python writes with an exponent (8.464e-05, a state carried to its
        # significant figures) is written out when rounding it to the digits would change it
        written = format(Decimal(repr(value)), "f")
        if len(written.partition(".")[2]) <= EXACT_DECIMALS:
            return written, None
    if abs(value) >= LARGEST_PLAIN or half_up(value, digits) == 0:
        mantissa, exponent = f"{value:.{max(digits - 1, 0)}e}".split("e")
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        return mantissa, int(exponent)
    text = f"{half_up(value, digits):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return ("0" if text in ("-0", "") else text), None


def format_number(value: float, digits: int = DEFAULT_DIGITS, exact: bool = False) -> str:
    """A number as LaTeX, rounded for display (never 0.000 for a non-zero value), or in
    full when `exact` and it has a short decimal form."""
    if not math.isfinite(value):
        return r"\infty" if value > 0 else r"-\infty"
    mantissa, exponent = _rounded(value, digits, exact)
    return mantissa if exponent is None else rf"{mantissa} \times 10^{{{exponent}}}"


def is_given(sym) -> bool:
    """Whether a symbol stands for a number the spec gives: an input, a target, the
    learning rate, a parameter before any update. Those are printed as given."""
    quantity = quantity_of(sym)
    if not isinstance(quantity, Quantity):
        return False
    if quantity.kind in (Kind.INPUT, Kind.TARGET, Kind.LEARNING_RATE):
        return True
    return quantity.kind in (Kind.WEIGHT, Kind.BIAS) and not quantity.updated and not quantity.final


def shown_number(sym, value: float, digits: int, short_numbers: bool) -> str:
    """The value of a symbol as a line shows it: a given number as given; an update rule's
    state (m, v, s) to at least `digits` significant figures, as it is carried; any other
    to `digits` decimals (in full when values are carried, see TexPrinter)."""
    quantity = quantity_of(sym) if isinstance(sym, sp.Symbol) else None
    if isinstance(quantity, Quantity) and quantity.state is not None and not short_numbers:
        value = carried_significant(carried(digits))(value)
        return format_number(value, digits, exact=True)
    return format_number(value, digits, short_numbers or (isinstance(sym, sp.Symbol) and is_given(sym)))


def derivative_latex(of: str, wrt: str) -> str:
    """∂of/∂wrt as a fraction: the one place partial derivatives are written."""
    return rf"\frac{{\partial {of}}}{{\partial {wrt}}}"


def number_text(value: float, digits: int = DEFAULT_DIGITS, exact: bool = False) -> str:
    """The same number as plain text, for pictures: −0.34, 1.23×10⁻⁴."""
    mantissa, exponent = _rounded(value, digits, exact)
    text = mantissa if exponent is None else f"{mantissa}×10" + str(exponent).translate(_SUPERSCRIPT_DIGITS)
    return text.replace("-", "−")


_SUPERSCRIPT_DIGITS = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


class TexPrinter(LatexPrinter):
    """SymPy's LaTeX printer with derive's notation, numbers and parentheses."""

    printmethod = "_derive_latex"
    _default_settings: dict[str, Any] = {
        **LatexPrinter._default_settings,
        "notation": None,
        "values": None,
        "digits": DEFAULT_DIGITS,
        # Carrying rounded values, every short number is shown in full: computed ones have
        # no more decimals than the digits, and a given number keeps its own.
        "short_numbers": False,
    }

    def __init__(self, settings: Mapping[str, Any] | None = None):
        # order="none": products and sums print in the order the derivation built them.
        base = {"mul_symbol": "dot", "ln_notation": True, "order": "none"}
        super().__init__({**base, **(settings or {})})
        self._values: Mapping[sp.Symbol, float] = self._settings["values"] or {}
        self._stack: list[sp.Basic] = []

    def _print(self, expr, **kwargs) -> str:
        self._stack.append(expr)
        try:
            return super()._print(expr, **kwargs)
        finally:
            self._stack.pop()

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        if expr in self._values:
            text = shown_number(expr, self._values[expr], self._settings["digits"], self._settings["short_numbers"])
            if text.startswith("-") and self._needs_sign_brackets(expr):
                return rf"\left({text}\right)"
            if text.startswith("-") and self._parent() is not None and self._parent().is_Relational:
                return f"{{{text}}}"  # a sign, not a binary minus after "if"
            return text
        notation = self._settings["notation"]
        if notation is not None:
            quantity = quantity_of(expr)
            if quantity is not None:
                return notation.latex(quantity)
            if expr in notation.generic:
                return notation.generic[expr]
        return super()._print_Symbol(expr, style)

    def _as_ordered_terms(self, expr, order=None):
        """Terms as built, but a sum does not open with a minus when it has a plus term:
        y - ŷ rather than -ŷ + y."""
        terms = list(super()._as_ordered_terms(expr, order=order))
        if terms and terms[0].could_extract_minus_sign():
            positive = next((t for t in terms if not t.could_extract_minus_sign()), None)
            if positive is not None:
                terms.remove(positive)
                terms.insert(0, positive)
        return terms

    def _parent(self) -> sp.Basic | None:
        """The expression whose argument is being printed (the stack's top is the argument)."""
        return self._stack[-2] if len(self._stack) > 1 else None

    def _needs_sign_brackets(self, expr: sp.Symbol) -> bool:
        """A negative number needs brackets inside a product or a power, but not on its own,
        as a term of a sum, or as an argument."""
        parent = self._parent()
        if parent is None:
            return False
        # In a sum a negative term reads as a subtraction (0.39 − 0.1), which _print_Add writes.
        return parent.is_Mul or parent.is_Pow

    def _print_Add(self, expr: sp.Add, order=None) -> str:
        # A term built unevaluated may print with its own leading minus: a − b, not a + − b.
        text = re.sub(r" \+ - ?", " - ", super()._print_Add(expr, order))
        # A term subtracted whose value is negative: y − (−0.5), not y − −0.5.
        return re.sub(r"(^|\s)- -(\d+(?:\.\d+)?(?: \\times 10\^\{-?\d+\})?)", r"\1- \\left(-\2\\right)", text)

    def _print_Mul(self, expr: sp.Mul) -> str:
        # A mean as built by the derivation, Mul(1/N, sum), reads (1/N)(…), not a fraction of the sum.
        coefficient, *rest = expr.args
        if coefficient.is_Rational and coefficient.p == 1 and coefficient.q != 1 and len(rest) == 1 and (rest[0].is_Add or isinstance(rest[0], sp.Sum)):
            # \Big( … \Big) rather than \left( … \right): a long sum inside may break over lines
            # (and Pandoc's math converter knows \Big, not \Bigl).
            return rf"\frac{{1}}{{{coefficient.q}}} \Big({self._print(rest[0])}\Big)"
        return super()._print_Mul(expr)

    def _print_MatMul(self, expr) -> str:
        # The mean of matrices, MatMul(1/N, sum), reads (1/N)(…) and may break over lines.
        coefficient, *rest = expr.args
        if getattr(coefficient, "is_Rational", False) and coefficient.p == 1 and coefficient.q != 1 and len(rest) == 1 and isinstance(rest[0], sp.MatAdd):
            return rf"\frac{{1}}{{{coefficient.q}}} \Big({self._print(rest[0])}\Big)"
        return super()._print_MatMul(expr)

    def _print_MatrixSymbol(self, expr: sp.MatrixSymbol) -> str:
        # Vectors and matrices are named by a quantity's symbol (see matrixview).
        return self._print(sp.Symbol(expr.name))

    def _print_HadamardProduct(self, expr) -> str:
        return r" \odot ".join(self.parenthesize(arg, PRECEDENCE["Mul"], strict=True) for arg in expr.args)

    def _print_Derivative(self, expr: sp.Derivative) -> str:
        if len(expr.variables) != 1:
            return super()._print_Derivative(expr)
        variable = self._print(expr.variables[0])
        if expr.expr.is_Symbol:
            return derivative_latex(self._print(expr.expr), variable)
        # d for a function of one variable; \Big( … \Big) so that a long weighted sum may break over lines.
        d = "d" if expr.expr.free_symbols == {expr.variables[0]} else r"\partial"
        return rf"\frac{{{d}}}{{{d} {variable}}} \Big({self._print(expr.expr)}\Big)"

    def _print_Braced(self, expr: Braced) -> str:
        part = self._print(expr.part)
        if expr.label not in self._values:
            return part
        # A brace cannot break over lines: a sum too long for one goes into rows under it.
        chunks = _wrap(part, DISPLAY_WIDTH - BRACE_ROOM)
        if len(chunks) > 1:
            part = r"\begin{aligned}&" + r" \\ &\quad ".join(chunks) + r"\end{aligned}"
        # In braces: an ordinary atom, so that the + or − after it is spaced as a binary operator.
        return rf"{{\underbrace{{{part}}}_{{{format_number(self._values[expr.label], self._settings['digits'], self._settings['short_numbers'])}}}}}"

    def _print_Function(self, expr, exp=None) -> str:
        # f' (a derivative written with a prime, e.g. ReLU'): the name, a prime, the argument.
        name = type(expr).__name__
        if not name.endswith("'"):
            return super()._print_Function(expr, exp)
        base = name[:-1]
        written = rf"\{base}" if base in _GREEK or base in ("tanh", "exp", "ln") else rf"\operatorname{{{base}}}"
        arguments = ", ".join(self._print(arg) for arg in expr.args)
        text = rf"{written}'\left({arguments}\right)"
        return text if exp is None else rf"\left({text}\right)^{{{exp}}}"

    def _print_Pow(self, expr: sp.Pow, exp=None) -> str:
        """A symbol printed as a fraction (∂J/∂θ) is bracketed before its power."""
        if expr.base.is_Symbol and expr.base not in self._values and expr.exp.is_Integer and expr.exp > 0:
            base = self._print(expr.base)
            if base.startswith(r"\frac"):
                return rf"\left({base}\right)^{{{self._print(expr.exp)}}}"
        return super()._print_Pow(expr)

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        rows = [rf"{self._print(e)} & \text{{if }} {self._print(c)}" for e, c in expr.args[:-1]]
        last = expr.args[-1]
        if last.cond == sp.true:
            rows.append(rf"{self._print(last.expr)} & \text{{otherwise}}")
        else:
            rows.append(rf"{self._print(last.expr)} & \text{{if }} {self._print(last.cond)}")
        return r"\begin{cases} " + r" \\ ".join(rows) + r" \end{cases}"


class Printer:
    """Prints the record of a solution: one notation and one number format."""

    def __init__(self, notation, digits: int = DEFAULT_DIGITS, short_numbers: bool = False):
        self.notation = notation
        self.digits = digits
        self.short_numbers = short_numbers  # carried values: every short number in full (see TexPrinter)
        self._settings = {"notation": notation, "digits": digits, "short_numbers": short_numbers}
        self._symbolic = TexPrinter(self._settings)
        self._printed: dict[int, tuple[object, list[str]]] = {}

    def expression(self, expr: sp.Basic, values: Mapping[sp.Symbol, float] | None = None) -> str:
        if values is None:
            return self._symbolic.doprint(expr)
        return TexPrinter({**self._settings, "values": values}).doprint(expr)

    def number(self, value: float, given: bool = False) -> str:
        """A computed number (`given`: one the spec gives, printed as given)."""
        return format_number(value, self.digits, given or self.short_numbers)

    def equation(self, equation) -> str:
        """lhs = form = form = … = value, on one line."""
        return " = ".join(self._parts(equation))

    def display(self, equations, columns: int = 1) -> str:
        """One equation, or several, for a display: one line when a single equation fits;
        otherwise rows aligned on the first equals sign of each equation (see `rows`)."""
        equations = equations if isinstance(equations, (list, tuple)) else [equations]
        rows = self.rows(equations, columns)
        if len(rows) == 1 and len(equations) == 1:
            return " = ".join(self._parts(equations[0]))
        return "\\begin{aligned}" + " \\\\\n".join(row for row, _ in rows) + "\\end{aligned}"

    def rows(self, equations, columns: int = 1) -> list[tuple[str, bool]]:
        """Equations as rows aligned on their first equals signs, each (row, ends an
        equation). An equation too wide for one row continues on rows that start with its
        next equals sign, as many forms to a row as fit; a single form too wide for a row
        (a long sum) is broken before a + or −. With columns=2, short equations go two to
        a row, in aligned column pairs (when every one of them is short enough)."""
        if columns > 1:
            lines = [" &= ".join([parts[0], " = ".join(parts[1:])]) for parts in map(self._parts, equations)]
            # Columns are as wide as their widest equation, with a gap between them.
            widths = [max(map(_width, lines[c::columns]), default=0) for c in range(columns)]
            if sum(widths) + 4 * (columns - 1) <= DISPLAY_WIDTH:
                return [(" & ".join(lines[i : i + columns]), True) for i in range(0, len(lines), columns)]
        rows: list[tuple[str, bool]] = []
        for equation in equations:
            lhs, *forms = self._parts(equation)
            current, current_width = None, 0.0
            for form in forms:
                if current is not None and current_width + _width(form) + 1 <= DISPLAY_WIDTH:
                    current += f" = {form}"
                    current_width += _width(form) + _width(" = ")
                    continue
                head, *rest = _wrap(form, DISPLAY_WIDTH)  # the form whole when it fits
                if current is None:
                    current = f"{lhs} &= {head}"
                else:
                    rows.append((current, False))
                    current = f"&= {head}"
                for chunk in rest:
                    rows.append((current, False))
                    current = rf"&\qquad {chunk}"
                current_width = _width(current)
            rows.append((current, True))
        return rows

    def listing(self, equations) -> list[str]:
        """Short equations side by side (w_1 = 0.2, w_2 = -1.2, …), as lines about a display wide."""
        lines: list[str] = []
        joinable = False  # whether the last line may take another equation
        for equation in equations:
            text = self.equation(equation)
            if _width(text) > DISPLAY_WIDTH:
                lines.append(self.display(equation))  # too wide alone: on rows of its own
                joinable = False
            elif joinable and _width(lines[-1]) + _width(text) + 2 <= DISPLAY_WIDTH:
                lines[-1] += r", \quad " + text
            else:
                lines.append(text)
                joinable = True
        return lines

    def _parts(self, equation) -> list[str]:
        # Each format of a solution prints the same equations: print each once.
        known = self._printed.get(id(equation))
        if known is not None and known[0] is equation:
            return known[1]
        parts = [self.expression(equation.lhs)]
        parts += [self.expression(form.expr, form.values) for form in equation.forms]
        if equation.value is not None:
            parts.append(shown_number(equation.lhs, equation.value, self.digits, self.short_numbers))
        self._printed[id(equation)] = (equation, parts)
        return parts


# About the glyphs that fit a display line of the LaTeX article at 10pt (17 cm of text).
DISPLAY_WIDTH = 76
# What a row needs beside a braced sum: its left-hand side, the bias and the result.
BRACE_ROOM = 22
_UNPRINTED = {"left", "right", "operatorname", "text", "mathrm", "!", " "}
# Spacing commands, in glyphs.
_SPACES = {"quad": 2.0, "qquad": 4.0, ",": 0.3, ":": 0.4, ";": 0.5}
# Commands wider than a glyph: binary operators and relations with their space, ∂.
_COMMAND_WIDTHS = {"cdot": 1.5, "times": 1.5, "odot": 1.5, "leq": 2.0, "geq": 2.0, "partial": 1.3}
# A relation or binary operator brings space on both sides; a comma or point is narrow.
_CHARACTER_WIDTHS = {"=": 2.0, "<": 2.0, ">": 2.0, "+": 1.5, "-": 1.5, ",": 0.6, ".": 0.4}


def _wrap(tex: str, width: float) -> list[str]:
    """Splits `tex` before its outermost + and − signs into lines about `width` wide;
    what sits inside braces, \\left…\\right or an environment stays whole."""
    pieces, depth, start = [], 0, 0
    for match in re.finditer(r"\\(?:left|right|begin|end)\b|[{}]| [+-] ", tex):
        token = match.group()
        if token in ("{", "\\left", "\\begin"):
            depth += 1
        elif token in ("}", "\\right", "\\end"):
            depth -= 1
        elif depth == 0:
            pieces.append(tex[start : match.start()])
            start = match.start() + 1
    pieces.append(tex[start:])
    lines = [pieces[0]]
    line_width = _width(pieces[0])  # kept as the line grows: measuring it again each time is quadratic
    for piece in pieces[1:]:
        piece_width = _width(piece)
        if line_width + piece_width > width:
            lines.append(piece)
            line_width = piece_width
        else:
            lines[-1] += " " + piece
            line_width += piece_width + _width(" ")
    return lines


@lru_cache(maxsize=1 << 16)
def _width(tex: str) -> float:
    """Roughly how many glyphs `tex` prints: a fraction is as wide as its wider part,
    a matrix or cases as its widest row (with room between its columns and for its
    brackets), scripts count 0.7, a command one glyph, a relation or binary operator with
    the space around it more, a quad two, braces none."""

    def widest_row(block: re.Match) -> str:
        rows = block.group(2).split(r"\\")
        widest = max(_measure(row.replace("&", " "), 0, 1.0)[0] + 1.5 * row.count("&") for row in rows)
        return "M" * round(widest + 1)

    flat = re.sub(r"\\begin\{(matrix|cases|aligned)\}(.*?)\\end\{\1\}", widest_row, tex)
    return _measure(flat, 0, 1.0)[0]


def _measure(tex: str, i: int, scale: float, single: bool = False) -> tuple[float, int]:
    """Measures from tex[i] to the end of the group (or one token when `single`)."""
    width = 0.0
    while i < len(tex):
        c = tex[i]
        if c == "}":
            return width, i + 1
        if c == "{":
            inner, i = _measure(tex, i + 1, scale)
            width += inner
        elif c == "\\":
            match = re.match(r"\\([a-zA-Z]+|.)", tex[i:])
            name = match.group(1)
            i += len(match.group(0))
            if name == "frac":
                numerator, i = _measure(tex, i + 1, scale)
                denominator, i = _measure(tex, i + 1, scale)
                width += max(numerator, denominator) + 0.8 * scale  # the bar reaches past its parts
            elif name in ("begin", "end"):
                i = _measure(tex, i + 1, scale)[1]
            elif name in _SPACES:
                width += _SPACES[name] * scale
            elif name not in _UNPRINTED:
                width += scale * _COMMAND_WIDTHS.get(name, 1)
        elif c in "^_":
            script, i = _measure(tex, i + 1, scale * 0.7, single=True)
            width += script
        else:
            width += 0 if c in " &" else scale * _CHARACTER_WIDTHS.get(c, 1)
            i += 1
        if single:
            break
    return width, i


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\textasciicircum{}",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "%": r"\%",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
# Characters that may start Markdown syntax anywhere in a line: emphasis, code, links,
# HTML and entities, math, tables, strikethrough, a heading's closing #s, Pandoc's
# attributes and superscripts. Others (- + . ! ( )) only matter at the start of a line,
# which free text never is (it follows "# " or other words).
_MARKDOWN_SPECIALS = set("\\`*_[]<>$|~&#{}^")


# Beyond ASCII, pdflatex (T1, utf8) prints Latin letters and common punctuation itself.
_GREEK = set(
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau upsilon phi chi psi omega"
    " Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega".split()
)
_LATEX_SYMBOLS = {"→": r"\rightarrow", "←": r"\leftarrow", "≤": r"\leq", "≥": r"\geq", "≠": r"\neq", "±": r"\pm", "∞": r"\infty", "′": r"{}'", "∂": r"\partial", "Σ": r"\Sigma"}


def _latex_char(c: str) -> str:
    if c in _LATEX_SPECIALS:
        return _LATEX_SPECIALS[c]
    if c.isascii():
        return c
    if c in _LATEX_SYMBOLS:
        return rf"\ensuremath{{{_LATEX_SYMBOLS[c]}}}"
    name = unicodedata.name(c, "")
    greek = re.fullmatch(r"GREEK (SMALL|CAPITAL) LETTER ([A-Z]+)", name)
    if greek:
        letter = greek[2].lower() if greek[1] == "SMALL" else greek[2].capitalize()
        letter = letter.replace("amda", "ambda")  # Unicode spells it LAMDA
        if letter in _GREEK:
            return rf"\ensuremath{{\{letter}}}"
    if "LATIN" in name or 0x2010 <= ord(c) <= 0x2026 or c in "€·×÷°§¶©®«»¡¿":
        return c
    return "?"  # a character pdflatex cannot print: shown, not fatal


LONG_WORD = 20  # characters: a longer word of free text may break every so many, to fit the line


def latex_text(text: str) -> str:
    """Free text as LaTeX that prints it literally; a word too long for a line may break."""
    words = []
    for word in text.split():
        pieces = [word[i : i + LONG_WORD] for i in range(0, len(word), LONG_WORD)] if len(word) > LONG_WORD else [word]
        words.append(r"\allowbreak{}".join("".join(_latex_char(c) for c in piece) for piece in pieces))
    return " ".join(words)


def markdown_text(text: str) -> str:
    """Free text as Markdown that prints it literally (no emphasis, links, HTML or math)."""
    return "".join("\\" + c if c in _MARKDOWN_SPECIALS else c for c in " ".join(text.split()))
