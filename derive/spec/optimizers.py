"""The update rules a spec may choose (`optimizer:`): each a small record of its
hyperparameters, the state it keeps for every parameter and its update, written as SymPy
expressions once. The numbers (model), the worked solution and the matrix view all read
this table; adding a rule is one entry here and its section in templates/update.j2.

The rules are those of torch.optim with zero dampening and every state starting at zero:
momentum v ← μ v + g, θ ← θ − η v (Nesterov: θ ← θ − η (g + μ v)); RMSprop
s ← α s + (1 − α) g², θ ← θ − η g / (√s + ε); Adam m ← β₁ m + (1 − β₁) g,
v ← β₂ v + (1 − β₂) g², m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ), θ ← θ − η m̂ / (√v̂ + ε),
with t counting updates from 1.

Expressions are built unevaluated, in the order a reader writes them. Their symbols are
placeholders: THETA the parameter, GRADIENT its gradient, RATE the learning rate, COUNT
the update's number t, `hyper(name)` a hyperparameter, `state(name)` a state or
intermediate value after this update and `previous(name)` a state before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import sympy as sp

THETA = sp.Symbol("theta")
GRADIENT = sp.Symbol("g")
RATE = sp.Symbol("eta")
COUNT = sp.Symbol("t")
DECAY = sp.Symbol("lambda")


def hyper(name: str) -> sp.Symbol:
    return sp.Symbol(f"hyper:{name}")


def state(name: str) -> sp.Symbol:
    return sp.Symbol(f"state:{name}")


def previous(name: str) -> sp.Symbol:
    return sp.Symbol(f"previous:{name}")


def _add(*terms):
    return sp.Add(*terms, evaluate=False)


def _mul(*factors):
    return sp.Mul(*factors, evaluate=False)


def _minus(term):
    return _mul(-1, term) if not term.is_Mul else _mul(-1, *term.args)


def _div(numerator, denominator):
    return _mul(numerator, sp.Pow(denominator, -1, evaluate=False))


def _complement(symbol):
    """1 − symbol."""
    return _add(1, _mul(-1, symbol))


@dataclass(frozen=True)
class Hyperparameter:
    """A setting of a rule: its field name, default, and the range it must lie in."""

    name: str
    default: float | bool
    low: float | None = None  # the smallest value allowed (None: no bound, or a switch)
    high: float | None = None  # the value it must stay below
    above_low: bool = False  # the value must be > low, not ≥ low
    letter: str = ""  # how the solution writes it (LaTeX)
    alternative: str = ""  # the letter where a notation uses `letter` for something else

    @property
    def switch(self) -> bool:
        return isinstance(self.default, bool)

    @property
    def expected(self) -> str:
        if self.switch:
            return "true or false"
        low = "" if self.low is None else f"{'>' if self.above_low else '≥'} {self.low:g}"
        high = "" if self.high is None else f"< {self.high:g}"
        return "a number " + " and ".join(part for part in (low, high) if part)

    def allows(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.above_low else value < self.low):
            return False
        return self.high is None or value < self.high


@dataclass(frozen=True)
class Assignment:
    """One value computed for each parameter at each update: a state kept for the next
    update (`kept`), or an intermediate such as Adam's bias-corrected m̂."""

    name: str
    expression: sp.Expr
    kept: bool = True
    letter: str = ""  # how the solution writes it (LaTeX), with the parameter as subscript


@dataclass(frozen=True)
class UpdateRule:
    name: str
    label: str  # its name in headings: "Momentum update"
    hyperparameters: tuple[Hyperparameter, ...]
    assignments: tuple[Assignment, ...]  # in order; later ones may use earlier ones
    update: sp.Expr  # θ* = THETA − …, using the assignments' values of this update
    switched: Mapping[str, sp.Expr] | None = None  # a switch hyperparameter that, set, replaces `update`
    bias_correction: bool = False  # uses the update count t

    @property
    def state(self) -> tuple[str, ...]:
        """The state kept from one update to the next, in the answer key's names."""
        return tuple(a.name for a in self.assignments if a.kept)

    def settings(self, given: Mapping[str, float | bool]) -> dict[str, float | bool]:
        """Every hyperparameter's value: the given ones, the defaults for the rest."""
        return {h.name: given.get(h.name, h.default) for h in self.hyperparameters}

    def update_for(self, settings: Mapping[str, float | bool]) -> sp.Expr:
        for switch, expression in (self.switched or {}).items():
            if settings.get(switch):
                return expression
        return self.update


_MOMENTUM, _ALPHA, _EPS = hyper("momentum"), hyper("alpha"), hyper("eps")
_BETA1, _BETA2 = hyper("beta1"), hyper("beta2")
_UNIT = dict(low=0.0, high=1.0)  # a decay factor in [0, 1)
_EPSILON = Hyperparameter("eps", 1e-8, low=0.0, above_low=True, letter=r"\varepsilon")

RULES: dict[str, UpdateRule] = {
    rule.name: rule
    for rule in (
        UpdateRule("sgd", "Gradient-descent", (), (), _add(THETA, _mul(-1, RATE, GRADIENT))),
        UpdateRule(
            "momentum",
            "Momentum",
            (Hyperparameter("momentum", 0.9, **_UNIT, letter=r"\mu", alternative=r"\gamma"), Hyperparameter("nesterov", False)),
            (Assignment("v", _add(_mul(_MOMENTUM, previous("v")), GRADIENT), letter="v"),),
            _add(THETA, _mul(-1, RATE, state("v"))),
            switched={"nesterov": _add(THETA, _mul(-1, RATE, _add(GRADIENT, _mul(_MOMENTUM, state("v")))))},
        ),
        UpdateRule(
            "rmsprop",
            "RMSprop",
            (Hyperparameter("alpha", 0.99, **_UNIT, letter=r"\alpha", alternative=r"\rho"), _EPSILON),
            (Assignment("s", _add(_mul(_ALPHA, previous("s")), _mul(_complement(_ALPHA), sp.Pow(GRADIENT, 2, evaluate=False))), letter="s"),),
            _add(THETA, _mul(-1, RATE, _div(GRADIENT, _add(sp.sqrt(state("s"), evaluate=False), _EPS)))),
        ),
        UpdateRule(
            "adagrad",
            "Adagrad",
            (Hyperparameter("eps", 1e-10, low=0.0, above_low=True, letter=r"\varepsilon"),),
            (Assignment("G", _add(previous("G"), sp.Pow(GRADIENT, 2, evaluate=False)), letter="G"),),
            _add(THETA, _mul(-1, RATE, _div(GRADIENT, _add(sp.sqrt(state("G"), evaluate=False), _EPS)))),
        ),
        UpdateRule(
            "adam",
            "Adam",
            (
                Hyperparameter("beta1", 0.9, **_UNIT, letter=r"\beta_{1}"),
                Hyperparameter("beta2", 0.999, **_UNIT, letter=r"\beta_{2}"),
                _EPSILON,
            ),
            (
                Assignment("m", _add(_mul(_BETA1, previous("m")), _mul(_complement(_BETA1), GRADIENT)), letter="m"),
                Assignment("v", _add(_mul(_BETA2, previous("v")), _mul(_complement(_BETA2), sp.Pow(GRADIENT, 2, evaluate=False))), letter="v"),
                Assignment("m_hat", _div(state("m"), _complement(sp.Pow(_BETA1, COUNT, evaluate=False))), kept=False, letter=r"\hat{m}"),
                Assignment("v_hat", _div(state("v"), _complement(sp.Pow(_BETA2, COUNT, evaluate=False))), kept=False, letter=r"\hat{v}"),
            ),
            _add(THETA, _mul(-1, RATE, _div(state("m_hat"), _add(sp.sqrt(state("v_hat"), evaluate=False), _EPS)))),
            bias_correction=True,
        ),
    )
}
OPTIMIZER_NAMES = tuple(RULES)
# The weight decay λ is written like a hyperparameter of every rule.
WEIGHT_DECAY = Hyperparameter("weight_decay", 0.0, low=0.0, letter=r"\lambda")


def letters() -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """How the solution writes each hyperparameter (letter, alternative) and each state
    or intermediate value, by name, over every rule."""
    settings = {WEIGHT_DECAY.name: (WEIGHT_DECAY.letter, WEIGHT_DECAY.letter)}
    values = {}
    for rule in RULES.values():
        for h in rule.hyperparameters:
            settings[h.name] = (h.letter, h.alternative or h.letter)
        for a in rule.assignments:
            values[a.name] = a.letter or a.name
    return settings, values


def decoupled(update: sp.Expr) -> sp.Expr:
    """The update with weight decay applied on its own (AdamW): θ − η λ θ − …"""
    assert update.is_Add and update.args[0] == THETA, update
    return _add(THETA, _mul(-1, RATE, DECAY, THETA), *update.args[1:])
