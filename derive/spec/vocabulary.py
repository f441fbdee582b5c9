"""The words a spec may use: the names of activations, losses, optimizers and notations,
and the check of a symbol a spec sets. The model and the views define what each name
means; the spec only needs the names, so it does not depend on them."""

from __future__ import annotations

import re
from enum import Enum
from typing import Sequence

# The words of the command line: formats, detail levels, layouts, rounding, digits.
SOLUTION_FORMATS = ("md", "tex", "json", "pdf")
EXERCISE_FORMATS = ("md", "tex", "json", "pdf", "html", "moodle", "qti")
QTI_LAYOUTS = ("group", "variants")
DETAILS = ("handout", "compact", "full", "answers")
ROUNDING_NAMES = ("exact", "carry")
DEFAULT_DIGITS = 3  # the decimals a document shows (and carries) unless asked otherwise
MAX_DIGITS = 12


class Batch(Enum):
    MEAN = "mean"
    SUM = "sum"

ACTIVATION_NAMES = ("linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax")
LOSS_NAMES = ("half_sse", "sse", "mse", "bce", "cross_entropy")

NOTATION_NAMES = ("layered", "esuli", "flat", "single", "matrix")
# The symbols a spec may rename (notation: {base: esuli, loss: L}).
OVERRIDABLE = ("loss", "learning_rate", "input", "target", "prediction")

_SAFE_COMMANDS = set(
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi rho sigma tau "
    "upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega "
    "hat tilde bar vec mathcal mathrm mathbf mathit mathsf boldsymbol ell text".split()
)


_ARGUMENT_COMMANDS = {"hat", "tilde", "bar", "vec", "mathcal", "mathrm", "mathbf", "mathit", "mathsf", "boldsymbol", "text"}
_SYMBOL_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\\$|[{}^_ ]|[A-Za-z0-9]|.", re.S)


def symbol_problem(text: str) -> str | None:
    """Why `text` cannot be a symbol a spec sets, or None. A symbol is LaTeX math that
    compiles on its own and takes a sub- or superscript: letters, digits, ( ) ' , .,
    balanced braces, scripts with an argument, and only harmless commands (Greek letters,
    accents and fonts with their argument) — nothing that reads, writes or redefines."""
    if not text.strip():
        return "it is empty"
    if len(text) > 40:
        return f"expected at most 40 characters, got {len(text)}"
    bad = re.search(r"[^A-Za-z0-9_^{}()',.\\ ]", text)
    if bad:
        return f"the character {bad.group()!r} is not allowed"
    tokens = [t for t in _SYMBOL_TOKEN.findall(text)]
    depth = 0
    for index, token in enumerate(tokens):
        following = next((t for t in tokens[index + 1:] if t != " "), None)
        if token.startswith("\\"):
            name = token[1:]
            if name not in _SAFE_COMMANDS:
                return f"the command {token} is not allowed"
            if name in _ARGUMENT_COMMANDS and (following is None or following in "}^_"):
                return f"{token} needs an argument, e.g. {token}{{y}}"
        elif token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth < 0:
                return "a } closes no {"
        elif token in "^_":
            if following is None or following in "}^_":
                return f"{token} needs an argument"
    if depth:
        return "a { is never closed"
    if re.search(r"\\text\s*\{[^}]*[\\^_]", text):
        return "\\text{…} takes plain letters"
    if re.search(r"\^[^{]*\^|_[^{]*_", outside_braces(text)):
        return "a double superscript or subscript"
    return None


def outside_braces(text: str) -> str:
    """`text` with every braced group taken out (what sits at the top level)."""
    previous = None
    while previous != text:
        previous, text = text, re.sub(r"\{[^{}]*\}", "", text)
    return text


def notation_problem(base: str, units: Sequence[int]) -> str | None:
    """Why a notation cannot write a network with these units per layer, or None."""
    if base == "single" and list(units) != [1]:
        return "the single notation is for one neuron (one layer of one unit)"
    return None
