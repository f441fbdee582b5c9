"""A safe parser for circuit expressions: `(x + y) * z`, `1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))`.

User text is never handed to `eval`, `exec`, `compile`, `ast.parse` or SymPy's parsers (they
run code). A tokenizer with an allow-list of characters and a recursive-descent parser with
an explicit depth counter turn the text into a small immutable tree of `Number`,
`Variable` and `Operation`.

Grammar (usual precedence, power right-associative and binding tighter than unary minus,
so `-x^2` is `-(x^2)` and `2^-1` is allowed):

    expression := term (("+" | "-") term)*
    term       := factor (("*" | "/") factor)*
    factor     := ("-" | "+") factor | power
    power      := primary (("^" | "**") factor)?
    primary    := number | name | function "(" expression ("," expression)* ")" | "(" expression ")"

Every limit is checked up front or as the parser goes, so hostile text fails in
milliseconds: the text's length, the gates, the nesting (parentheses, calls, unary signs,
exponents), the numbers' size and length, the names' length. Positions in messages are
1-based character positions within the text.

A minus sign applied directly to a number is folded into the number (`-1` is
`Number(-1)`), so the circuit sees it as a constant operand and not a negation gate.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NoReturn

import sympy as sp

from ..errors import SpecError, quoted

MAX_TEXT = 2_000  # characters of an expression (of each line in the named-node form)
MAX_GATES = 200  # operations in an expression (in all lines of the named-node form together)
MAX_DEPTH = 50  # nesting: parentheses, calls, unary signs and exponents inside each other
MAX_NUMBER = 1_000_000  # magnitude of a number in the text
MAX_NUMBER_CHARACTERS = 30
MAX_EXPONENT = 300  # |e| in 1e-5; bounds the work of reading a number exactly (10**e)
MAX_NAME = 30

# The allow-listed functions and how many arguments each takes.
FUNCTIONS: dict[str, int] = {
    "abs": 1,
    "exp": 1,
    "log": 1,
    "max": 2,
    "min": 2,
    "relu": 1,
    "sigmoid": 1,
    "tanh": 1,
}
OPERATIONS = (
    "add", "subtract", "multiply", "divide", "power", "negate",
    "exp", "log", "sigmoid", "tanh", "relu", "max", "min", "abs",
)
_BINARY = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "^": "power", "**": "power"}
_FUNCTION_LIST = ", ".join(sorted(FUNCTIONS))


@dataclass(frozen=True)
class Number:
    """A number written in the text, kept exactly (0.1 is 1/10)."""

    value: Fraction

    @property
    def exact(self) -> sp.Rational:
        return sp.Rational(self.value.numerator, self.value.denominator)

    def __float__(self) -> float:
        return float(self.value)


@dataclass(frozen=True)
class Variable:
    """A name that is not a function: an input (or, in the named-node form, an earlier node)."""

    name: str


@dataclass(frozen=True)
class Operation:
    """An operator or function applied to its operands; `op` is one of OPERATIONS."""

    op: str
    operands: tuple[Expression, ...]


Expression = Number | Variable | Operation


@dataclass(frozen=True)
class NamedNode:
    """One line `name = expression` of the named-node form."""

    name: str
    expression: Expression


def variables(expression: Expression) -> tuple[str, ...]:
    """The variable names of `expression` in order of first appearance (left to right)."""
    seen: dict[str, None] = {}
    # An explicit stack: the tree's depth is bounded, but a walk needs no recursion at all.
    stack = [expression]
    while stack:
        item = stack.pop()
        if isinstance(item, Variable):
            seen.setdefault(item.name, None)
        elif isinstance(item, Operation):
            stack.extend(reversed(item.operands))
    return tuple(seen)


def parse_expression(text: object, source: str = "spec", field: str = "expression") -> Expression:
    """The tree of one expression; raises SpecError naming `source`, `field` and the position."""
    if not isinstance(text, str):
        raise SpecError(source, field, f"expected an expression as text, found {type(text).__name__}")
    return _Parser(text, source, field, _Budget()).whole()


def parse_nodes(lines: object, source: str = "spec", field: str = "nodes") -> tuple[NamedNode, ...]:
    """The named-node form: lines `name = expression`, each name new (not an input used
    before, not a node defined before, not a function), later lines using earlier names. The
    last line is the output."""
    if isinstance(lines, (str, bytes)) or not isinstance(lines, Sequence):
        raise SpecError(source, field, "expected a list of lines 'name = expression'")
    if not lines:
        raise SpecError(source, field, "expected at least one line 'name = expression'")
    if len(lines) > MAX_GATES:
        raise SpecError(source, field, f"{len(lines):,} lines, each at least one gate: above the limit of {MAX_GATES} gates")
    budget = _Budget()
    parsed: list[NamedNode] = []
    for index, line in enumerate(lines):
        where = f"{field}[{index}]"
        if not isinstance(line, str):
            raise SpecError(source, where, f"expected a line 'name = expression', found {type(line).__name__}")
        _check_length(line, source, where)
        name, equals = _node_name(line, source, where)
        parsed.append(NamedNode(name, _Parser(line, source, where, budget, start=equals + 1).whole()))
    _check_node_names(parsed, source, field)
    return tuple(parsed)


def _node_name(line: str, source: str, field: str) -> tuple[str, int]:
    """The name left of '=' and the index of the '='."""
    equals = line.find("=")
    if equals < 0:
        raise SpecError(source, field, "expected 'name = expression', found no '='")
    tokens = _Tokenizer(line[:equals], source, field).tokens
    if len(tokens) != 2 or tokens[0].kind != "name":
        raise SpecError(source, field, "expected a name before '=' (letters, digits and _, not starting with a digit)")
    name = tokens[0].text
    if name in FUNCTIONS:
        raise SpecError(source, field, f"{quoted(name)} is a function and cannot name a node")
    return name, equals


def _check_node_names(nodes: list[NamedNode], source: str, field: str) -> None:
    """Each name defined once and never used before (or in) its own line: a name used as an
    input in an earlier line and defined later is reported as used before its definition."""
    defined_at: dict[str, int] = {}
    for index, node in enumerate(nodes):
        if node.name in defined_at:
            raise SpecError(source, f"{field}[{index}]", f"node {quoted(node.name)} is already defined in {field}[{defined_at[node.name]}]")
        defined_at[node.name] = index
    for index, node in enumerate(nodes):
        for name in variables(node.expression):
            if defined_at.get(name, -1) >= index:
                raise SpecError(
                    source, f"{field}[{index}]",
                    f"{quoted(name)} is used before node {quoted(name)} is defined in {field}[{defined_at[name]}]",
                )


def _check_length(text: str, source: str, field: str) -> None:
    if len(text) > MAX_TEXT:
        raise SpecError(source, field, f"{len(text):,} characters, above the limit of {MAX_TEXT:,}")


@dataclass(frozen=True)
class _Token:
    kind: str  # number, name, operator, (, ), comma, end
    text: str
    position: int  # 1-based within the whole line
    value: Fraction | None = None


_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WHITESPACE = " \t\r\n"
_PUNCTUATION = {"(": "(", ")": ")", ",": "comma"}


def _describe(character: str) -> str:
    """A character for a message: printable ASCII quoted, anything else as its code point
    (a NUL, an escape or a right-to-left mark never reaches the terminal)."""
    if " " < character < "\x7f":
        return f"'{character}'" if character != "'" else '"\'"'
    return f"U+{ord(character):04X}"


class _Tokenizer:
    """Splits text into tokens; refuses any character outside the allow-list."""

    def __init__(self, text: str, source: str, field: str, start: int = 0):
        self.source, self.field = source, field
        self.tokens: list[_Token] = []
        position, end = start, len(text)
        while position < end:
            character = text[position]
            # Spaces pasted from documents (no-break, thin) are spaces too; line and
            # paragraph separators and control characters are not.
            if character in _WHITESPACE or (character > "\x7f" and unicodedata.category(character) == "Zs"):
                position += 1
            elif character.isascii() and (character.isdigit() or character == "." and text[position + 1 : position + 2].isdigit()):
                position = self._number(text, position)
            elif character.isascii() and (character.isalpha() or character == "_"):
                match = _NAME.match(text, position)
                name = match.group()
                if len(name) > MAX_NAME:
                    self._refuse(f"name {quoted(name)} at {position + 1} is longer than {MAX_NAME} characters")
                self.tokens.append(_Token("name", name, position + 1))
                position = match.end()
            elif text.startswith("**", position):
                self.tokens.append(_Token("operator", "**", position + 1))
                position += 2
            elif character in "+-*/^":
                self.tokens.append(_Token("operator", character, position + 1))
                position += 1
            elif character in _PUNCTUATION:
                self.tokens.append(_Token(_PUNCTUATION[character], character, position + 1))
                position += 1
            else:
                self._refuse(
                    f"unexpected character {_describe(character)} at {position + 1}; expected a number, "
                    "a name, an operator (+ - * / ^ **), a parenthesis or a comma"
                )
        self.tokens.append(_Token("end", "", end + 1))

    def _refuse(self, message: str) -> NoReturn:
        raise SpecError(self.source, self.field, message)

    def _number(self, text: str, position: int) -> int:
        match = _NUMBER.match(text, position)
        written, after = match.group(), match.end()
        follower = text[after : after + 1]
        if follower and (follower.isascii() and (follower.isalnum() or follower in "._")):
            self._refuse(f"malformed number {quoted(text[position : after + 1])} at {position + 1}")
        if len(written) > MAX_NUMBER_CHARACTERS:
            self._refuse(f"number {quoted(written)} at {position + 1} is longer than {MAX_NUMBER_CHARACTERS} characters")
        mantissa, _, exponent = written.lower().partition("e")
        # Reading 1e-99999 exactly would build 10**99999: the exponent is bounded first.
        if exponent and abs(int(exponent)) > MAX_EXPONENT:
            self._refuse(f"number {quoted(written)} at {position + 1} is out of range; expected at most {MAX_NUMBER:,} in magnitude")
        value = Fraction(mantissa) * Fraction(10) ** int(exponent or 0)
        if abs(value) > MAX_NUMBER:
            self._refuse(f"number {quoted(written)} at {position + 1} is out of range; expected at most {MAX_NUMBER:,} in magnitude")
        self.tokens.append(_Token("number", written, position + 1, value))
        return after


class _Budget:
    """The gates left, shared by the lines of the named-node form."""

    def __init__(self) -> None:
        self.gates = 0


class _Parser:
    """Recursive descent with the nesting counted explicitly: every construct that recurses
    (a parenthesis, a call, a unary sign, an exponent) goes through `_enter`, which refuses
    past MAX_DEPTH before recursing, so Python's own recursion limit is never approached."""

    def __init__(self, text: str, source: str, field: str, budget: _Budget, start: int = 0):
        self.source, self.field, self.budget = source, field, budget
        _check_length(text, source, field)
        self.tokens = _Tokenizer(text, source, field, start).tokens
        self.index = 0
        self.depth = 0

    def whole(self) -> Expression:
        if self.tokens[0].kind == "end":
            self._refuse("expected an expression, found nothing")
        tree = self._expression()
        token = self._peek()
        if token.kind != "end":
            self._refuse(f"expected an operator or the end at {token.position}, found {self._found(token)}")
        return tree

    # Helpers

    def _refuse(self, message: str) -> NoReturn:
        raise SpecError(self.source, self.field, message)

    def _peek(self) -> _Token:
        return self.tokens[self.index]

    def _take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    @staticmethod
    def _found(token: _Token) -> str:
        return "the end" if token.kind == "end" else quoted(token.text)

    def _enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self._refuse(f"nesting deeper than {MAX_DEPTH} levels at {token.position}")

    def _leave(self) -> None:
        self.depth -= 1

    def _operation(self, op: str, operands: tuple[Expression, ...], token: _Token) -> Operation:
        self.budget.gates += 1
        if self.budget.gates > MAX_GATES:
            self._refuse(f"more than {MAX_GATES} gates (at {token.position})")
        return Operation(op, operands)

    # Grammar

    def _expression(self) -> Expression:
        tree = self._term()
        while self._peek().text in ("+", "-") and self._peek().kind == "operator":
            token = self._take()
            tree = self._operation(_BINARY[token.text], (tree, self._term()), token)
        return tree

    def _term(self) -> Expression:
        tree = self._factor()
        while self._peek().text in ("*", "/") and self._peek().kind == "operator":
            token = self._take()
            tree = self._operation(_BINARY[token.text], (tree, self._factor()), token)
        return tree

    def _factor(self) -> Expression:
        token = self._peek()
        if token.kind == "operator" and token.text in ("-", "+"):
            self._take()
            self._enter(token)
            operand = self._factor()
            self._leave()
            if token.text == "+":
                return operand
            if isinstance(operand, Number):  # -1 is a constant, not a negation gate
                return Number(-operand.value)
            return self._operation("negate", (operand,), token)
        return self._power()

    def _power(self) -> Expression:
        base = self._primary()
        token = self._peek()
        if token.kind == "operator" and token.text in ("^", "**"):
            self._take()
            self._enter(token)
            exponent = self._factor()  # right-associative: x^y^z is x^(y^z)
            self._leave()
            return self._operation("power", (base, exponent), token)
        return base

    def _primary(self) -> Expression:
        token = self._take()
        if token.kind == "number":
            return Number(token.value)
        if token.kind == "(":
            self._enter(token)
            tree = self._expression()
            self._leave()
            self._expect(")", "')'", token)
            return tree
        if token.kind == "name":
            if self._peek().kind == "(":
                return self._call(token)
            if token.text in FUNCTIONS:
                self._refuse(f"function {quoted(token.text)} at {token.position} needs its argument in parentheses")
            return Variable(token.text)
        self._refuse(f"expected a number, a name or '(' at {token.position}, found {self._found(token)}")

    def _call(self, name: _Token) -> Expression:
        if name.text not in FUNCTIONS:
            self._refuse(f"unknown function {quoted(name.text)} at {name.position}; expected one of {_FUNCTION_LIST}")
        opening = self._take()
        self._enter(opening)
        arguments = [self._expression()]
        while self._peek().kind == "comma":
            self._take()
            arguments.append(self._expression())
        self._leave()
        self._expect(")", "')' or ','", opening)
        wanted = FUNCTIONS[name.text]
        if len(arguments) != wanted:
            self._refuse(
                f"{name.text} at {name.position} takes {wanted} argument{'s' if wanted > 1 else ''}, found {len(arguments)}"
            )
        return self._operation(name.text, tuple(arguments), name)

    def _expect(self, kind: str, what: str, opening: _Token) -> None:
        token = self._take()
        if token.kind != kind:
            self._refuse(
                f"expected {what} at {token.position} (closing '(' at {opening.position}), found {self._found(token)}"
            )
