"""How quantities are written: the LaTeX name of every symbol, in one of several
notations, with symbols a spec may override.

The derivation never looks here; a notation only maps quantities to LaTeX (and to plain
Unicode for pictures), so notations can be added without touching the derivation.

- layered (default): w^{(l)}_{ij}, b^{(l)}_i, z^{(l)}_i, a^{(l)}_i, ŷ, E, η, updated w^{(l)*}_{ij}
- esuli (Esuli's handout): w_{lij} with layers from 0, W_0 … W_out, b_hid, b_out, h_pre, h, o_pre, o, E, µ, starred updates
- flat (the students explainer): w_1, w_2, … layer by layer, unit by unit; b_k, z_k, h_k numbered by unit; x_1, ŷ, L, η
- single (one neuron): w, b, z, y_pred, y_true, L, α
- matrix: the layered symbols, with the backpropagation written in vectors and matrices
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import sympy as sp

from ..model import functions
from ..spec.optimizers import letters as rule_letters
from .printing import derivative_latex
from ..spec.vocabulary import NOTATION_NAMES, OVERRIDABLE, notation_problem, outside_braces, symbol_problem  # noqa: F401 (re-exported)
from ..model.quantities import ANY_SAMPLE, ANY_SOURCE, ANY_UNIT, Kind, Partial, Quantity

_GREEK = set(
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau upsilon phi chi psi omega".split()
)


def node_name(name: str) -> str:
    """A graph's input or gate name in LaTeX: x, q_{1} (q1, q_1), \\alpha, \\mathit{sum}."""
    match = re.fullmatch(r"([A-Za-z]+)_?(\d+)", name)
    letters, digits = (match.group(1), match.group(2)) if match else (name, "")
    if letters in _GREEK:
        base = "\\" + letters
    elif len(letters) == 1:
        base = letters
    else:
        base = r"\mathit{" + letters.replace("_", r"\_") + "}"
    return _script(base, digits)


_HYPERPARAMETER_LETTERS, _STATE_LETTERS = rule_letters()  # from the update rules' table

_ANY = {ANY_UNIT: "i", ANY_SOURCE: "j", ANY_SAMPLE: "n"}


def _index(*indices: int) -> str:
    # w_{12} is unambiguous only while every index is one digit.
    written = [_ANY.get(i, str(i)) for i in indices]
    if any(i > 9 for i in indices):
        return ",".join(written)
    return "".join(written)


def _script(base: str, sub: str = "", sup: str = "") -> str:
    text = base
    if sup:
        text += f"^{{{sup}}}"
    if sub:
        text += f"_{{{sub}}}"
    return text


@dataclass(frozen=True)
class Notation:
    """The layered notation; the presets below change what they write differently."""

    output_layer: int
    outputs: int
    samples: int  # samples in the worked update: per-sample losses are E_n when several
    units: tuple[int, ...] = ()  # units per layer
    inputs: int = 1
    overrides: Mapping[str, str] = field(default_factory=dict)

    name = "layered"
    star = "*"  # how a value after the update is marked: a superscript
    final_mark = r"\,\text{final}"  # how a value after the last of several updates is marked
    generic_indices = True  # can write w_ij for any weight of a layer (general forms)
    matrices = True  # writes a layer's weights as a matrix W (else parameter by parameter)
    default = {"loss": "E", "learning_rate": r"\eta", "input": "x", "target": "y", "prediction": r"\hat{y}"}

    def symbol(self, role: str) -> str:
        if role not in self.overrides:
            return self.default[role]
        override = self.overrides[role]
        # E_n from a spec would meet a script of ours (E_n_1): a group takes it, {E_n}_1.
        return f"{{{override}}}" if re.search(r"[\^_']", outside_braces(override)) else override

    @property
    def loss(self) -> str:
        return self.symbol("loss")

    @property
    def generic(self) -> dict[sp.Symbol, str]:
        """Names of the symbols in the activation and loss definitions."""
        return {
            functions.PRE_ACTIVATION: "z",
            functions.OUTPUT: "a",
            functions.PREDICTIONS.label: self.symbol("prediction"),
            functions.TARGETS.label: self.symbol("target"),
            functions.UNIT: "i",
            functions.TERM: "k",
            functions.COUNT: "K",
        }

    def latex(self, quantity: Quantity | Partial) -> str:
        if isinstance(quantity, Partial):
            return derivative_latex(self.latex(quantity.of), self.latex(quantity.wrt))
        mark = self.star if quantity.updated else self.final_mark if quantity.final else ""
        if quantity.state is not None:
            # m of w: the parameter's symbol as the subscript, the update's mark above
            of = replace(quantity, state=None, updated=False, final=False)
            return _script(_STATE_LETTERS[quantity.state], "{" + self.latex(of) + "}", mark)
        if quantity.kind is Kind.HYPERPARAMETER:
            return self.hyperparameter(quantity.name)
        if quantity.kind is Kind.UPDATE_COUNT:
            return "t"
        if quantity.kind is Kind.NODE:
            return node_name(quantity.name)
        if quantity.kind is Kind.OBJECTIVE:
            return _script("J", sup=mark)
        if quantity.kind is Kind.SQUARED_WEIGHTS:
            return r"\sum w^{2}" if not mark else rf"\sum \left(w^{{{mark}}}\right)^{{2}}"
        return self._name(quantity, mark)

    def hyperparameter(self, name: str) -> str:
        """The rule's letter (β₁, μ, ε, λ), or its second choice where the notation already
        uses the first (the esuli notation's learning rate is μ, the single one's α)."""
        first, second = _HYPERPARAMETER_LETTERS[name]
        taken = {self.symbol("learning_rate"), self.symbol("loss")}
        return second if first in taken else first

    def _bold(self, letter: str) -> str:
        """Vectors and matrices are bold."""
        return rf"\mathbf{{{letter}}}"

    def _name(self, q: Quantity, star: str) -> str:
        kind, layer, unit = q.kind, q.layer, q.unit
        if unit is None and kind in (Kind.INPUT, Kind.TARGET):
            return self._bold(self.symbol("input" if kind is Kind.INPUT else "target"))  # the vector
        if unit is None and kind is Kind.ACTIVATION and layer == self.output_layer:
            return _script(r"\hat{" + self._bold("y") + "}", sup=star)
        if kind is Kind.INPUT:
            return _script(self.symbol("input"), _index(unit))
        if kind is Kind.TARGET:
            return _script(self.symbol("target"), "" if self.outputs == 1 else _index(unit))
        if kind is Kind.LEARNING_RATE:
            return self.symbol("learning_rate")
        if kind is Kind.PARAMETER:
            return _script(r"\theta", sup=star)
        if kind is Kind.LOSS:
            sample = _index(q.sample) if q.sample is not None and (self.samples > 1 or q.sample == ANY_SAMPLE) else ""
            return _script(self.loss, sample, star)
        if kind is Kind.ACTIVATION and layer == self.output_layer:
            return _script(self.symbol("prediction"), "" if self.outputs == 1 else _index(unit), star)
        if kind is Kind.WEIGHT and unit is None:
            return _script(self._bold("W"), sup=f"({layer}){star}")
        letter = {Kind.WEIGHT: "w", Kind.BIAS: "b", Kind.PRE_ACTIVATION: "z", Kind.ACTIVATION: "a"}[kind]
        if unit is None and not (kind is Kind.BIAS and q.shared):
            return _script(self._bold(letter), sup=f"({layer}){star}")
        if unit is None:
            return _script(letter, sup=f"({layer}){star}")
        indices = _index(unit, q.source) if kind is Kind.WEIGHT else _index(unit)
        return _script(letter, indices, f"({layer}){star}")

    def text(self, quantity: Quantity) -> str:
        """The symbol as plain Unicode text, for pictures that cannot typeset LaTeX."""
        return plain(self.latex(quantity))


class EsuliNotation(Notation):
    name = "esuli"
    final_mark = r"\text{final}"
    default = {**Notation.default, "learning_rate": r"\mu", "prediction": "o"}

    def _bold(self, letter: str) -> str:
        return letter  # the handout writes its vectors and matrices in plain letters

    def _hidden(self, layer: int) -> str:
        """Layers are counted from 0 in the handout; with one hidden layer it needs no number."""
        return "" if self.output_layer == 2 else str(layer - 1)

    def _name(self, q: Quantity, star: str) -> str:
        kind, layer, unit = q.kind, q.layer, q.unit
        output = layer == self.output_layer
        if kind is Kind.WEIGHT:
            if unit is None:
                return _script("W", "out" if output else str(layer - 1), star)
            return _script("w", _index(layer - 1, unit, q.source), star)
        if kind is Kind.BIAS:
            if unit is None and not q.shared:
                hidden = self._hidden(layer)
                return _script("b", "out" if output else "hid" + (f",{hidden}" if hidden else ""), star)
            return _script("b", _index(layer - 1) if q.shared else _index(layer - 1, unit), star)
        if kind in (Kind.PRE_ACTIVATION, Kind.ACTIVATION) and output:
            base = self.symbol("prediction")
            index = "" if self.outputs == 1 or unit is None else f",{_index(unit)}"
            return _script(base, ("pre" + index) if kind is Kind.PRE_ACTIVATION else index.lstrip(","), star)
        if kind in (Kind.PRE_ACTIVATION, Kind.ACTIVATION):
            hidden = self._hidden(layer)
            sup = (f"({hidden})" if hidden else "") + star
            if unit is None:
                return _script("h", "pre" if kind is Kind.PRE_ACTIVATION else "", sup)
            return _script("h", f"pre,{_index(unit)}" if kind is Kind.PRE_ACTIVATION else _index(unit), sup)
        return super()._name(q, star)


class FlatNotation(Notation):
    """Everything numbered from 1 through the whole network."""

    name = "flat"
    star = r"\text{new}"
    final_mark = r"\text{final}"
    generic_indices = False
    matrices = False
    default = {**Notation.default, "loss": "L"}

    def _unit_number(self, layer: int, unit: int) -> int:
        return sum(self.units[: layer - 1]) + unit + 1

    def _name(self, q: Quantity, star: str) -> str:
        kind, layer, unit = q.kind, q.layer, q.unit
        if kind is Kind.INPUT:
            return _script(self.symbol("input"), str(unit + 1))
        if kind is Kind.TARGET:
            return _script(self.symbol("target"), "" if self.outputs == 1 else str(unit + 1))
        if kind is Kind.WEIGHT and unit is not None:
            fan_in = [self._fan_in(l) for l in range(1, len(self.units) + 1)]
            before = sum(u * f for u, f in zip(self.units[: layer - 1], fan_in[: layer - 1]))
            return _script("w", str(before + unit * fan_in[layer - 1] + q.source + 1), star)
        if kind is Kind.BIAS and unit is not None:
            return _script("b", str(self._unit_number(layer, unit)), star)
        if kind is Kind.ACTIVATION and layer == self.output_layer:
            return _script(self.symbol("prediction"), "" if self.outputs == 1 else str(unit + 1), star)
        if kind in (Kind.PRE_ACTIVATION, Kind.ACTIVATION) and unit is not None:
            return _script("z" if kind is Kind.PRE_ACTIVATION else "h", str(self._unit_number(layer, unit)), star)
        return super()._name(q, star)

    def _fan_in(self, layer: int) -> int:
        return self.inputs if layer == 1 else self.units[layer - 2]


class SingleNotation(Notation):
    """One neuron: w, b, z, y_pred, y_true, α."""

    name = "single"
    star = r"\text{new}"
    final_mark = r"\text{final}"
    generic_indices = False
    default = {"loss": "L", "learning_rate": r"\alpha", "input": "x", "target": r"y_{\text{true}}", "prediction": r"y_{\text{pred}}"}

    def _name(self, q: Quantity, star: str) -> str:
        kind, unit = q.kind, q.unit
        many = self.inputs > 1
        if kind is Kind.INPUT:
            return _script(self.symbol("input"), str(unit + 1) if many else "")
        if kind is Kind.TARGET:
            return self.symbol("target")
        if kind is Kind.WEIGHT:
            if unit is None:
                return r"\mathbf{w}" if many else "w"
            return _script("w", str(q.source + 1) if many else "", star)
        if kind is Kind.BIAS:
            return _script("b", "", star)
        if kind is Kind.PRE_ACTIVATION:
            return _script("z", "", star)
        if kind is Kind.ACTIVATION:
            return _script(self.symbol("prediction"), "", star) if not star else rf"{self.symbol('prediction')}^{{{star}}}"
        return super()._name(q, star)


class MatrixNotation(Notation):
    name = "matrix"


_PRESETS = {cls.name: cls for cls in (Notation, EsuliNotation, FlatNotation, SingleNotation, MatrixNotation)}


def make(
    name: str, *, units: Sequence[int], inputs: int, samples: int, overrides: Mapping[str, str] | None = None
) -> Notation:
    """The notation `name` for a network of `units` per layer, `inputs` inputs."""
    return _PRESETS[name](
        output_layer=len(units), outputs=units[-1], samples=samples, units=tuple(units), inputs=inputs,
        overrides=dict(overrides or {}),
    )


# The same number as \\text{…}-free Unicode, for SVG labels.
_SUBSCRIPT = str.maketrans("0123456789,+-()", "₀₁₂₃₄₅₆₇₈₉,₊₋₍₎")
_SUPERSCRIPT = str.maketrans("0123456789()*+-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾*⁺⁻")
_LETTERS = {r"\hat{y}": "ŷ", r"\mu": "μ", r"\eta": "η", r"\alpha": "α", r"\mathbf{w}": "w"}


def plain(latex: str) -> str:
    """A symbol's LaTeX as plain text: scripts of digits become Unicode sub/superscripts,
    other scripts are written after an underscore or caret."""
    text = latex
    for command, letter in _LETTERS.items():
        text = text.replace(command, letter)
    text = re.sub(r"\\text\{([^}]*)\}", r"\1", text)

    def script(match: re.Match, table, mark: str) -> str:
        content = match.group(1)
        return mark + content if re.search(r"[A-Za-z]", content) else content.translate(table)

    text = re.sub(r"\^\{([^{}]*)\}", lambda m: script(m, _SUPERSCRIPT, "^"), text)
    text = re.sub(r"_\{([^{}]*)\}", lambda m: script(m, _SUBSCRIPT, "_"), text)
    return text.replace("{", "").replace("}", "").replace("\\", "")
