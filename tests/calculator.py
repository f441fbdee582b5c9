"""A student with a calculator: checks that every numeric line of a derive document
computes to the result it shows.

derive promises that each value is rounded to `digits` decimals (half away from zero)
as soon as it is shown and used as shown from then on, so typing the numbers of any
displayed line into a calculator gives the displayed result. This module checks that
promise from the LaTeX alone and on purpose shares no code with derive: it tokenizes
the display equations, parses each numeric form with a recursive-descent parser,
evaluates it (exactly, with fractions.Fraction, for + − × ÷ and integer powers; with
floats only for exp, ln, tanh and the like) and compares the value, rounded, with the
number shown at the end of the equation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import NoReturn, Union


Scalar = Union[Fraction, float]  # exact where a calculator is exact, a float after exp, ln, …
Functions = Mapping[str, Callable[..., Scalar]]


class Unparsed(Exception):
    """A numeric-looking form that the parser does not understand."""


@dataclass(frozen=True)
class Check:
    """One verified form: its value as computed and the result the document shows
    (tuples of rows of Decimals for a matrix); ok when the value rounds to it."""

    form: str
    computed: Decimal | tuple
    shown: Decimal | tuple
    ok: bool


def displays(markdown: str) -> list[str]:
    """The contents of every display block: a line `$$`, the math, a line `$$`."""
    return re.findall(r"^\$\$\n(.*?)\n\$\$$", markdown, flags=re.MULTILINE | re.DOTALL)


# ---------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """kind: "number", "letter", "command" (text: its name without the backslash),
    "operatorname" (text: the name), "text" (text: the \\text content), "begin"/"end"
    (text: the environment), "rowsep" (\\\\), "space", "size" (\\left, \\Bigl, …),
    "\\{", "\\}", or a single character, which is then both kind and text."""

    kind: str
    text: str
    start: int
    end: int


_SPACING = {",", ";", ":", "!", " ", "quad", "qquad", "displaystyle", "textstyle"}
# Delimiter sizes carry no meaning for a calculator: the delimiters that follow them do.
_SIZES = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "Bigl", "biggl", "Biggl",
          "bigr", "Bigr", "biggr", "Biggr"}
_TOKEN = re.compile(
    r"""(?P<number>\d+(?:\.\d+)?|\.\d+)
      | (?P<named>\\(?P<named_kind>operatorname|begin|end)\s*\{(?P<name>[A-Za-z*]+)\})
      | (?P<text>\\(?:text|textrm|mbox)\s*\{)
      | (?P<rowsep>\\\\)
      | (?P<brace>\\[{}])
      | (?P<command>\\(?P<command_name>[A-Za-z]+|.))
      | (?P<letter>[^\W\d_])
      | (?P<char>\S)""",
    re.VERBOSE,
)


def tokenize(tex: str) -> list[Token]:
    """The tokens of a piece of LaTeX, whitespace left out; \\text{…} is one token."""
    tokens, position = [], 0
    while position < len(tex):
        if tex[position].isspace():
            position += 1
            continue
        match = _TOKEN.match(tex, position)
        kind, end = match.lastgroup, match.end()
        if kind == "number" or kind == "letter":
            token = Token(kind, match.group(), position, end)
        elif kind == "named":
            token = Token(match.group("named_kind"), match.group("name"), position, end)
        elif kind == "text":
            end = _closing_brace(tex, end - 1) + 1
            token = Token("text", tex[match.end() : end - 1], position, end)
        elif kind == "rowsep":
            token = Token("rowsep", match.group(), position, end)
        elif kind == "brace" or kind == "char":
            token = Token(match.group(), match.group(), position, end)
        else:
            name = match.group("command_name")
            token = Token("space" if name in _SPACING else "size" if name in _SIZES else "command", name, position, end)
        tokens.append(token)
        position = end
    return tokens


def _closing_brace(tex: str, opening: int) -> int:
    depth = 0
    for index in range(opening, len(tex)):
        if tex[index] in "{}" and tex[index - 1] != "\\":
            depth += 1 if tex[index] == "{" else -1
            if depth == 0:
                return index
    raise Unparsed(f"unclosed brace in {tex[opening:]!r}")


# ---------------------------------------------------------------------------------
# Equations: rows of an aligned display, top-level '=' signs
# ---------------------------------------------------------------------------------

_OPENING = {"{", "(", "[", "\\{", "begin"}
_CLOSING = {"}", ")", "]", "\\}", "end"}


def equations(display: str) -> list[list[str]]:
    """Each equation of a display as its top-level '='-separated parts: a single
    equation, or the rows of an aligned environment, where `lhs &= …` starts an
    equation, `&= …` adds a form to it and `&\\qquad …` continues the form before."""
    rows: list[str] = []
    for row in _rows(display.strip()):
        tokens = [t for t in tokenize(row) if t.kind != "space"]
        if not tokens:
            continue
        if tokens[0].kind == "&" and (len(tokens) == 1 or tokens[1].kind != "="):
            if not rows:
                raise Unparsed(f"a continued row with nothing to continue: {row!r}")
            rows[-1] = rows[-1].rstrip() + " " + (row[tokens[1].start :].strip() if len(tokens) > 1 else "")
        else:
            rows.append(row)
    result: list[list[str]] = []
    for row in (column for row in rows for column in _columns(row)):
        parts = _split_at_equals(row)
        if parts[0] == "" and result:  # `&= form`: one more form of the equation above
            result[-1] += parts[1:]
        else:
            result.append(parts)
    return result


def _columns(row: str) -> list[str]:
    """A row holding several equations side by side (`a &= 1 & b &= 2`, column pairs of an
    aligned environment), as one row per equation: an `&` not followed by `=` and not at
    the start of the row separates them."""
    tokens = [t for t in tokenize(row) if t.kind != "space"]
    columns, start, depth = [], 0, 0
    for index, token in enumerate(tokens):
        if token.kind in _OPENING:
            depth += 1
        elif token.kind in _CLOSING:
            depth -= 1
        elif token.kind == "&" and depth == 0 and index > 0 and (index + 1 == len(tokens) or tokens[index + 1].kind != "="):
            columns.append(row[start : token.start])
            start = token.end
    columns.append(row[start:])
    return [column for column in columns if column.strip()]


def _rows(display: str) -> list[str]:
    tokens = tokenize(display)
    aligned = (bool(tokens) and tokens[0].kind == "begin" and tokens[-1].kind == "end"
               and tokens[0].text in ("aligned", "align*", "split") and tokens[-1].text == tokens[0].text)
    if not aligned:
        return [display]
    inner = tokens[1:-1]
    rows, start, depth = [], tokens[0].end, 0
    for token in inner:
        # Only braces and environments nest rows: a \Bigl( may close on a later row.
        if token.kind in ("{", "begin"):
            depth += 1
        elif token.kind in ("}", "end"):
            depth -= 1
        elif token.kind == "rowsep" and depth == 0:
            rows.append(display[start : token.start])
            start = token.end
    rows.append(display[start : tokens[-1].start])
    return rows


def _split_at_equals(row: str) -> list[str]:
    parts, pieces, cursor, depth = [], [], 0, 0
    for token in tokenize(row):
        if token.kind in _OPENING:
            depth += 1
        elif token.kind in _CLOSING:
            depth -= 1
        elif depth == 0 and token.kind in ("=", "&"):
            pieces.append(row[cursor : token.start])
            cursor = token.end
            if token.kind == "=":
                parts.append("".join(pieces).strip())
                pieces = []
    pieces.append(row[cursor:])
    parts.append("".join(pieces).strip())
    return parts


# ---------------------------------------------------------------------------------
# Syntax tree
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    text: str


@dataclass(frozen=True)
class Negate:
    operand: Node


@dataclass(frozen=True)
class Binary:
    operator: str  # "+", "-", "cdot", "times", "juxtaposed", "odot", "frac"
    left: Node
    right: Node


@dataclass(frozen=True)
class Power:
    base: Node
    exponent: Node


@dataclass(frozen=True)
class Transpose:
    operand: Node


@dataclass(frozen=True)
class Call:
    name: str  # a key of the function table: "ReLU", "ReLU'", "sigma", "ln", "max", …
    arguments: tuple[Node, ...]


@dataclass(frozen=True)
class Condition:
    relation: str  # "leq", "lt", "geq", "gt", "eq", "neq"
    left: Node
    right: Node


@dataclass(frozen=True)
class Cases:
    branches: tuple[tuple[Node, Condition | None], ...]  # None: "otherwise"


@dataclass(frozen=True)
class Matrix:
    rows: tuple[tuple[Node, ...], ...]


@dataclass(frozen=True)
class Underbrace:
    body: Node
    label: Node
    text: str


Node = Union[Number, Negate, Binary, Power, Transpose, Call, Cases, Matrix, Underbrace]

_RELATIONS = {"leq": "leq", "le": "leq", "<": "lt", "lt": "lt", "geq": "geq", "ge": "geq", ">": "gt",
              "gt": "gt", "=": "eq", "neq": "neq", "ne": "neq"}
_PRODUCTS = {"cdot", "times", "odot"}
_MATRICES = {"matrix", "bmatrix", "pmatrix"}
_FRACTIONS = {"frac", "dfrac", "tfrac"}
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta",
          "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "varrho", "tau", "upsilon", "phi", "varphi",
          "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi",
          "Psi", "Omega"}
# \sigma is the logistic function when it takes an argument; \partial and \nabla only
# ever come with symbols.
_SYMBOL_COMMANDS = _GREEK | {"partial", "nabla", "ell"}


def is_symbolic(form: str) -> bool:
    """Whether a form names a quantity instead of giving numbers: a letter (other than
    the e of e^{…} and the T of ^{T}) or a Greek letter, outside \\text{…}."""
    tokens = [t for t in tokenize(form) if t.kind not in ("space", "size")]
    for index, token in enumerate(tokens):
        following = tokens[index + 1].kind if index + 1 < len(tokens) else None
        if token.kind == "command" and token.text in _SYMBOL_COMMANDS:
            return True
        if token.kind == "command" and token.text == "sigma" and following not in ("{", "(", "[", "'", "^"):
            return True
        if token.kind == "letter":
            if token.text == "e" and following == "^":
                continue
            if token.text == "T" and _is_transpose_mark(tokens, index):
                continue
            return True
    return False


def _is_transpose_mark(tokens: list[Token], index: int) -> bool:
    kinds = [t.kind for t in tokens]
    if index >= 1 and kinds[index - 1] == "^":
        return True
    return index >= 2 and kinds[index - 2 : index] == ["^", "{"] and kinds[index + 1 : index + 2] == ["}"]


class _Parser:
    """Recursive descent over the tokens of one form:

    expression := term (("+" | "-") term)*
    term       := ("-" | "+") term | product
    product    := power ((\\cdot | \\times | \\odot) factor | power)*   (no operator: juxtaposition)
    factor     := ("-" | "+") factor | power
    power      := atom ["^" exponent]                                 (^{T}: transpose)
    atom       := number | group | \\frac{…}{…} | e^{…} | function | matrix | cases | \\underbrace{…}_{…}
    """

    def __init__(self, text: str, functions: Functions):
        self.text = text
        self.functions = functions
        self.tokens = [t for t in tokenize(text) if t.kind not in ("space", "size")]
        self.position = 0

    def parse(self) -> Node:
        node = self.expression()
        if self.peek() is not None:
            self.fail("unexpected")
        return node

    # -- helpers ------------------------------------------------------------------

    def peek(self, offset: int = 0) -> Token | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.peek()
        return token is not None and token.kind == kind and (text is None or token.text == text)

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            self.fail("unexpected end")
        self.position += 1
        return token

    def expect(self, kind: str, text: str | None = None) -> Token:
        if not self.at(kind, text):
            self.fail(f"expected {text or kind}")
        return self.take()

    def fail(self, reason: str) -> NoReturn:
        token = self.peek()
        where = self.text[token.start : token.start + 40] if token else "the end"
        raise Unparsed(f"{reason} at {where!r} in {self.text!r}")

    # -- grammar ------------------------------------------------------------------

    def expression(self) -> Node:
        node = self.term()
        while self.at("+") or self.at("-"):
            operator = self.take().kind
            node = Binary(operator, node, self.term())
        return node

    def term(self) -> Node:
        if self.at("-"):
            self.take()
            return Negate(self.term())
        if self.at("+"):
            self.take()
            return self.term()
        return self.product()

    def product(self) -> Node:
        node = self.power()
        while True:
            token = self.peek()
            if token is not None and token.kind == "command" and token.text in _PRODUCTS:
                self.take()
                node = Binary(token.text, node, self.factor())
            elif self.starts_atom(token):
                node = Binary("juxtaposed", node, self.power())
            else:
                return node

    def factor(self) -> Node:
        if self.at("-"):
            self.take()
            return Negate(self.factor())
        if self.at("+"):
            self.take()
            return self.factor()
        return self.power()

    def starts_atom(self, token: Token | None) -> bool:
        """What may follow a factor to multiply it by juxtaposition: a bracket, a
        command (\\frac, a function, …), a matrix, e^{…}; never a bare number, since
        `2 3` is not a product anyone writes."""
        if token is None:
            return False
        if token.kind == "command":
            return token.text not in _PRODUCTS and token.text not in _RELATIONS
        if token.kind == "letter":
            return token.text == "e"
        return token.kind in ("(", "[", "\\{", "operatorname", "begin")

    def power(self) -> Node:
        node = self.atom()
        if self.at("^"):
            self.take()
            node = self.exponent(node)
        return node

    def exponent(self, base: Node) -> Node:
        for mark in (["T"], ["{", "T", "}"]):
            if self.ahead(mark):
                self.position += len(mark)
                return Transpose(base)
        return Power(base, self.script())

    def ahead(self, texts: list[str]) -> bool:
        tokens = [self.peek(offset) for offset in range(len(texts))]
        return all(t is not None and t.kind in ("letter", "{", "}") and t.text == text for t, text in zip(tokens, texts))

    def script(self) -> Node:
        """A super- or subscript: a braced expression or a single digit."""
        if self.at("{"):
            return self.braced()
        if self.at("number") and len(self.peek().text) == 1:
            return Number(self.take().text)
        self.fail("expected a braced script")

    def braced(self) -> Node:
        self.expect("{")
        node = self.expression()
        self.expect("}")
        return node

    def atom(self) -> Node:
        token = self.peek()
        if token is None:
            self.fail("expected a value")
        if token.kind == "number":
            return Number(self.take().text)
        if token.kind in ("{", "(", "[", "\\{"):
            closing = {"{": "}", "(": ")", "[": "]", "\\{": "\\}"}[token.kind]
            self.take()
            node = self.expression()
            self.expect(closing)
            return node
        if token.kind == "|":  # |x|, an absolute value
            self.take()
            node = self.expression()
            self.expect("|")
            return Call("abs", (node,))
        if token.kind == "letter" and token.text == "e" and self.peek(1) and self.peek(1).kind == "^":
            self.position += 2
            return Call("exp", (self.script(),))
        if token.kind == "begin":
            return self.environment()
        if token.kind == "operatorname":
            self.take()
            return self.function(token.text)
        if token.kind == "command":
            if token.text in _FRACTIONS:
                self.take()
                numerator = self.braced()
                return Binary("frac", numerator, self.braced())
            if token.text == "underbrace":
                return self.underbrace()
            if token.text == "sqrt":  # \sqrt{x}
                self.take()
                return Call("sqrt", (self.braced(),))
            self.take()
            return self.function(token.text)
        self.fail("expected a value")

    def function(self, name: str) -> Node:
        """name['][^{n}] followed by its arguments, in ( ) or [ ], possibly wrapped
        in braces as SymPy prints them: \\ln{\\left(x \\right)}."""
        if self.at("'"):
            self.take()
            name += "'"
        if name not in self.functions:
            self.fail(f"unknown function {name!r}")
        exponent = None
        if self.at("^"):
            self.take()
            exponent = self.script()
        if self.at("{"):
            self.take()
            arguments = self.arguments() if self.at("(") or self.at("[") else (self.expression(),)
            self.expect("}")
        elif self.at("(") or self.at("["):
            arguments = self.arguments()
        else:
            self.fail(f"expected the argument of {name}")
        call = Call(name, arguments)
        return call if exponent is None else Power(call, exponent)

    def arguments(self) -> tuple[Node, ...]:
        closing = ")" if self.take().kind == "(" else "]"
        arguments = [self.expression()]
        while self.at(","):
            self.take()
            arguments.append(self.expression())
        self.expect(closing)
        return tuple(arguments)

    def environment(self) -> Node:
        name = self.take().text
        node: Node
        if name in _MATRICES:
            rows = self.rows(self.cells)
            if len({len(row) for row in rows}) != 1:
                self.fail("rows of different lengths")
            node = Matrix(tuple(rows))
        elif name == "cases":
            node = Cases(tuple(self.rows(self.branch)))
        else:
            self.fail(f"unknown environment {name}")
        self.expect("end", name)
        return node

    def rows(self, row: Callable[[], object]) -> list:
        rows = [row()]
        while self.at("rowsep"):
            self.take()
            if self.at("end"):  # a trailing \\ before \end
                break
            rows.append(row())
        return rows

    def cells(self) -> tuple[Node, ...]:
        cells = [self.expression()]
        while self.at("&"):
            self.take()
            cells.append(self.expression())
        return tuple(cells)

    def branch(self) -> tuple[Node, Condition | None]:
        value = self.expression()
        self.expect("&")
        words = self.expect("text").text.strip()
        if words == "otherwise":
            return value, None
        if words not in ("if", "for", "when"):
            self.fail(f"unknown condition {words!r}")
        left = self.expression()
        token = self.peek()
        relation = _RELATIONS.get(token.text) if token and token.kind in ("command", "<", ">", "=") else None
        if relation is None:
            self.fail("expected a relation")
        self.take()
        return value, Condition(relation, left, self.expression())

    def underbrace(self) -> Node:
        self.take()
        opening = self.expect("{")
        body = self.expression()
        closing = self.expect("}")
        self.expect("_")
        label = self.script()
        if _shown(label) is None:
            self.fail("an underbrace label must be a number")
        return Underbrace(body, label, self.text[opening.end : closing.start].strip())


def parse(form: str, functions: Functions | None = None) -> Node:
    """The syntax tree of one numeric form; Unparsed when it is not understood."""
    return _Parser(_joined_rows(form), FUNCTIONS if functions is None else functions).parse()


def _joined_rows(form: str) -> str:
    """A sum broken over the rows of an aligned environment inside a form (under a brace,
    too long for one line) read as the one group it is."""
    def joined(match: re.Match) -> str:
        return "{" + match.group(1).replace("\\\\", " ").replace("&", " ") + "}"

    return re.sub(r"\\begin\{aligned\}(.*?)\\end\{aligned\}", joined, form, flags=re.DOTALL)


# ---------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class MatrixValue:
    rows: tuple[tuple[Scalar, ...], ...]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.rows[0])

    def map(self, function: Callable[[Scalar], Scalar]) -> MatrixValue:
        return MatrixValue(tuple(tuple(function(x) for x in row) for row in self.rows))

    def zip(self, other: MatrixValue, function: Callable[[Scalar, Scalar], Scalar]) -> MatrixValue:
        if self.shape != other.shape:
            raise ValueError(f"element-wise operation on shapes {self.shape} and {other.shape}")
        return MatrixValue(tuple(tuple(map(function, a, b)) for a, b in zip(self.rows, other.rows)))

    def transpose(self) -> MatrixValue:
        return MatrixValue(tuple(zip(*self.rows)))

    def times(self, other: MatrixValue) -> MatrixValue:
        if self.shape[1] != other.shape[0]:
            raise ValueError(f"matrix product of shapes {self.shape} and {other.shape}")
        columns = other.transpose().rows
        return MatrixValue(tuple(tuple(sum(map(_multiply, row, column)) for column in columns) for row in self.rows))


Value = Union[Fraction, float, MatrixValue]


def _multiply(a: Scalar, b: Scalar) -> Scalar:
    return a * b


def _logistic(x: Scalar) -> float:
    return 1 / (1 + math.exp(-float(x)))


def function_table(leaky_slope: Fraction | str = "0.01") -> dict[str, Callable[..., Scalar]]:
    """The functions a form may call, by printed name (a prime for the derivative):
    ReLU′(0) = 0 as the documents define it; the leaky ReLU with `leaky_slope` below 0."""
    slope = Fraction(leaky_slope)
    return {
        "exp": lambda x: math.exp(float(x)),
        "ln": lambda x: math.log(float(x)),
        "log": lambda x: math.log(float(x)),  # SymPy prints the natural logarithm as \log
        "max": max,
        "abs": abs,
        "sqrt": lambda x: math.sqrt(float(x)),
        "min": min,
        "tanh": lambda x: math.tanh(float(x)),
        "tanh'": lambda x: 1 - math.tanh(float(x)) ** 2,
        "sigma": _logistic,
        "sigma'": lambda x: _logistic(x) * (1 - _logistic(x)),
        "ReLU": lambda x: x if x > 0 else Fraction(0),
        "ReLU'": lambda x: Fraction(1) if x > 0 else Fraction(0),
        "LeakyReLU": lambda x: x if x > 0 else slope * x,
        "LeakyReLU'": lambda x: Fraction(1) if x > 0 else slope,
    }


FUNCTIONS = function_table()


class _Evaluator:
    """Evaluates a tree. An \\underbrace{…}_{v} stands for v, as a reader carries the
    shown value on; its body, text and v are kept in `underbraces` to be checked."""

    def __init__(self, functions: Functions):
        self.functions = functions
        self.underbraces: list[tuple[str, Value, Decimal | tuple]] = []

    def value(self, node: Node) -> Value:
        match node:
            case Number(text):
                return Fraction(text)
            case Negate(operand):
                return _negate(self.value(operand))
            case Binary(operator, left, right):
                return _binary(operator, self.value(left), self.value(right))
            case Power(base, exponent):
                return _power(self.value(base), self.value(exponent))
            case Transpose(operand):
                value = self.value(operand)
                return value.transpose() if isinstance(value, MatrixValue) else value
            case Call(name, arguments):
                return self.call(name, [self.value(a) for a in arguments])
            case Cases(branches):
                return self.cases(branches)
            case Matrix(rows):
                return MatrixValue(tuple(tuple(_scalar(self.value(cell)) for cell in row) for row in rows))
            case Underbrace(body, label, text):
                self.underbraces.append((text, self.value(body), _shown(label)))
                return self.value(label)
        raise TypeError(node)

    def call(self, name: str, arguments: list[Value]) -> Value:
        function = self.functions[name]
        if len(arguments) == 1 and isinstance(arguments[0], MatrixValue):
            return arguments[0].map(function)
        return function(*map(_scalar, arguments))

    def cases(self, branches: tuple[tuple[Node, Condition | None], ...]) -> Value:
        for value, condition in branches:
            if condition is None or self.holds(condition):
                return self.value(value)
        raise ValueError("no case applies")

    def holds(self, condition: Condition) -> bool:
        left, right = _scalar(self.value(condition.left)), _scalar(self.value(condition.right))
        return {"leq": left <= right, "lt": left < right, "geq": left >= right, "gt": left > right,
                "eq": left == right, "neq": left != right}[condition.relation]


def _scalar(value: Value) -> Scalar:
    if isinstance(value, MatrixValue):
        raise ValueError("a matrix where a number is needed")
    return value


def _negate(value: Value) -> Value:
    return value.map(lambda x: -x) if isinstance(value, MatrixValue) else -value


def _binary(operator: str, left: Value, right: Value) -> Value:
    left_matrix, right_matrix = isinstance(left, MatrixValue), isinstance(right, MatrixValue)
    if operator in ("+", "-"):
        if left_matrix != right_matrix:
            raise ValueError(f"{operator} between a matrix and a number")
        combine = (lambda a, b: a + b) if operator == "+" else (lambda a, b: a - b)
        return left.zip(right, combine) if left_matrix else combine(left, right)
    if operator == "frac":
        if right_matrix:
            raise ValueError("division by a matrix")
        return left.map(lambda x: x / right) if left_matrix else left / right
    if operator == "odot" and left_matrix and right_matrix:
        return left.zip(right, _multiply)
    if left_matrix and right_matrix:
        return left.times(right)
    if left_matrix:
        return left.map(lambda x: x * right)
    if right_matrix:
        return right.map(lambda x: left * x)
    return left * right


def _power(base: Value, exponent: Value) -> Value:
    base, exponent = _scalar(base), _scalar(exponent)
    if isinstance(base, Fraction) and isinstance(exponent, Fraction) and exponent.denominator == 1:
        return base ** int(exponent)  # exact: a calculator's x² is exact on a short decimal
    return float(base) ** float(exponent)


# ---------------------------------------------------------------------------------
# Rounding and comparison
# ---------------------------------------------------------------------------------


def _shown(node: Node) -> Decimal | tuple | None:
    """The number a node shows, when it is a plain (signed) number or a matrix of them."""
    match node:
        case Number(text):
            return Decimal(text)
        case Negate(Number(text)):
            return -Decimal(text)
        case Matrix(rows):
            cells = tuple(tuple(_shown(cell) for cell in row) for row in rows)
            return None if any(c is None or isinstance(c, tuple) for row in cells for c in row) else cells
    return None


def _rounded(value: Scalar, digits: int) -> Decimal:
    """Rounded to `digits` decimals, half away from zero; exactly, for a Fraction."""
    if isinstance(value, Fraction):
        scaled = abs(value) * 10**digits
        whole = math.floor(scaled + Fraction(1, 2))
        return Decimal(whole if value >= 0 else -whole).scaleb(-digits)
    with localcontext() as context:
        context.prec = 200
        return Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def _decimal(value: Scalar) -> Decimal:
    """The unrounded value, for reports: exact when it terminates, else to 20 digits."""
    if isinstance(value, float):
        return Decimal(repr(value))
    with localcontext() as context:
        context.prec = 20
        return Decimal(value.numerator) / Decimal(value.denominator)


def _compare(form: str, computed: Value, shown: Decimal | tuple, digits: int) -> Check:
    if isinstance(computed, MatrixValue):
        reported: Decimal | tuple = tuple(tuple(map(_decimal, row)) for row in computed.rows)
        rounded = tuple(tuple(_rounded(x, digits) for x in row) for row in computed.rows)
        ok = rounded == shown
    else:
        reported = _decimal(computed)
        # a value shown with more decimals than `digits` (an update rule's state, carried to
        # its significant figures) is checked to the decimals it shows
        places = digits if isinstance(shown, tuple) else max(digits, -shown.as_tuple().exponent)
        ok = not isinstance(shown, tuple) and _rounded(computed, places) == shown
    return Check(form, reported, shown, ok)


def evaluate(form: str, functions: Functions | None = None) -> Value:
    """The value of one numeric form (an underbrace stands for its label)."""
    functions = FUNCTIONS if functions is None else functions
    return _Evaluator(functions).value(parse(form, functions))


def check(display: str, digits: int, functions: Functions | None = None) -> list[Check]:
    """One Check per numeric form of each equation whose last part is a plain number or
    a matrix of them, and one per underbrace in those forms. Symbolic forms are skipped,
    and so are equations with any other result (1.23 \\times 10^{-4} is not shown to the
    last decimal); every numeric form is parsed, so an unknown construct raises Unparsed."""
    functions = FUNCTIONS if functions is None else functions
    checks: list[Check] = []
    for parts in equations(display):
        numeric = {index: parse(part, functions) for index, part in enumerate(parts) if not is_symbolic(part)}
        last = len(parts) - 1
        shown = _shown(numeric[last]) if last in numeric else None
        if shown is None:
            continue
        for index, node in numeric.items():
            if index == last:
                continue
            evaluator = _Evaluator(functions)
            computed = evaluator.value(node)
            checks += [_compare(text, value, label, digits) for text, value, label in evaluator.underbraces]
            checks.append(_compare(parts[index], computed, shown, digits))
    return checks
