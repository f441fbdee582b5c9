"""Activations and losses, each defined once as a SymPy expression.

Every derivative the tool shows or evaluates comes from `sympy.diff` of these
definitions. The only other expression kept per activation is the derivative
written with the unit's output (σ(z)(1-σ(z)) = a(1-a)), which is a display form;
tests check it against `sympy.diff`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Sequence

import sympy as sp

from ..spec.vocabulary import ACTIVATION_NAMES, LOSS_NAMES  # noqa: F401 (the names; this module defines them)

# Generic symbols of the definitions, printed through the notation module.
PRE_ACTIVATION = sp.Symbol("z")
OUTPUT = sp.Symbol("a")
UNIT = sp.Symbol("i", integer=True, nonnegative=True)
TERM = sp.Symbol("k", integer=True, nonnegative=True)
COUNT = sp.Symbol("K", integer=True, positive=True)
PRE_ACTIVATIONS = sp.IndexedBase(sp.Symbol("z"))
OUTPUTS = sp.IndexedBase(sp.Symbol("a"))
PREDICTIONS = sp.IndexedBase(sp.Symbol("ŷ"))
TARGETS = sp.IndexedBase(sp.Symbol("y"))


# The activations and losses are module-level constants, so caching their methods'
# results (lru_cache) keeps nothing alive that would not live anyway.


@dataclass(frozen=True)
class Activation:
    """An activation function: elementwise in `PRE_ACTIVATION`, or over a layer (softmax)."""

    name: str
    label: str
    definition: sp.Expr
    # f(z) as a named function, shown before the definition; None when the definition is the name.
    applied: sp.Expr | None = None
    # dfₖ/dzᵢ in terms of the outputs aₖ, aᵢ (OUTPUTS[TERM], OUTPUTS[UNIT]); a display form.
    derivative_in_outputs: sp.Expr | None = None
    # f(z + c) = f(z) for every shift c of all the layer's pre-activations (softmax): the
    # numbers are computed from z − max z, which cannot overflow.
    shift_invariant: bool = False

    @property
    def elementwise(self) -> bool:
        return not self.definition.has(COUNT)

    @cached_property
    def general_derivative(self) -> sp.Expr:
        """df/dz of an elementwise activation, straight from sympy.diff."""
        assert self.elementwise
        return _diff(self.definition, PRE_ACTIVATION)

    @lru_cache(maxsize=None)  # noqa: B019
    def unit_output(self, pre_activations: tuple[sp.Symbol, ...], unit: int) -> sp.Expr:
        """The output of `unit` written in the layer's pre-activation symbols."""
        if self.elementwise:
            return self.definition.xreplace({PRE_ACTIVATION: pre_activations[unit]})
        concrete = _expand_sums(self.definition.xreplace({UNIT: sp.Integer(unit)}), len(pre_activations))
        return concrete.xreplace({PRE_ACTIVATIONS[j]: z for j, z in enumerate(pre_activations)})

    @lru_cache(maxsize=None)  # noqa: B019
    def local_derivative(self, pre_activations: tuple[sp.Symbol, ...], output: int, unit: int) -> sp.Expr:
        """∂a_output/∂z_unit, from sympy.diff of the definition."""
        if self.elementwise:
            return self.general_derivative.xreplace({PRE_ACTIVATION: pre_activations[unit]}) if output == unit else sp.S.Zero
        return _diff(self.unit_output(pre_activations, output), pre_activations[unit])

    def derivative_shown_with_outputs(self, outputs: Sequence[sp.Symbol], output: int, unit: int) -> sp.Expr | None:
        if self.derivative_in_outputs is None:
            return None
        return self.derivative_in_outputs.subs({TERM: output, UNIT: unit}).xreplace(
            {OUTPUTS[output]: outputs[output], OUTPUTS[unit]: outputs[unit]}
        )

    @property
    def prime(self) -> sp.FunctionClass | None:
        """f′ as a named function (ReLU′, σ′, tanh′), for the derivative at a value."""
        if self.applied is not None:
            return sp.Function(type(self.applied).__name__ + "'")
        if self.definition.func is sp.tanh:
            return sp.Function("tanh'")
        return None

    @property
    def named(self) -> sp.Expr:
        """f(z) as the reader knows it: ReLU(z), σ(z), tanh(z), or z itself."""
        return self.applied if self.applied is not None else self.definition

    def jacobian_support(self, units: int, unit: int) -> range:
        """The outputs k whose ∂a_k/∂z_unit is not identically zero."""
        return range(unit, unit + 1) if self.elementwise else range(units)


def _expand_sums(expr: sp.Expr, count: int) -> sp.Expr:
    """Writes out every Σ_{k=0}^{K-1} of `expr` for K = count (cheaper than Sum.doit)."""
    written = {
        total: sp.Add(*[total.function.xreplace({TERM: sp.Integer(k)}) for k in range(count)])
        for total in expr.atoms(sp.Sum)
    }
    return expr.xreplace(written).xreplace({COUNT: sp.Integer(count)})


def _diff(expr: sp.Expr, symbol: sp.Symbol) -> sp.Expr:
    # Max/Min differentiate to Heaviside (½ at 0); as a Piecewise the derivative at the
    # kink is the left one, so ReLU'(0) = 0.
    return sp.diff(expr.rewrite(sp.Piecewise), symbol)


_z = PRE_ACTIVATION
_a = OUTPUTS

LINEAR = Activation("linear", "linear (identity)", _z, derivative_in_outputs=None)
RELU = Activation("relu", "ReLU", sp.Max(0, _z), applied=sp.Function("ReLU")(_z))
SIGMOID = Activation(
    "sigmoid",
    "sigmoid",
    1 / (1 + sp.exp(-_z)),
    applied=sp.Function("sigma")(_z),
    derivative_in_outputs=_a[UNIT] * (1 - _a[UNIT]),
)
TANH = Activation("tanh", "tanh", sp.tanh(_z), derivative_in_outputs=1 - _a[UNIT] ** 2)
SOFTMAX = Activation(
    "softmax",
    "softmax",
    sp.exp(PRE_ACTIVATIONS[UNIT]) / sp.Sum(sp.exp(PRE_ACTIVATIONS[TERM]), (TERM, 0, COUNT - 1)),
    # a_k(δ_ki − a_i), written as cases (KroneckerDelta would pull in sympy.tensor).
    derivative_in_outputs=sp.Piecewise((_a[UNIT] * (1 - _a[UNIT]), sp.Eq(TERM, UNIT)), (-_a[TERM] * _a[UNIT], True)),
    shift_invariant=True,
)

DEFAULT_LEAKY_ALPHA = 0.01


@lru_cache(maxsize=None)
def leaky_relu(alpha: float = DEFAULT_LEAKY_ALPHA) -> Activation:
    return Activation(
        "leaky_relu",
        f"leaky ReLU (slope {alpha:g} below 0)",
        sp.Piecewise((sp.Float(alpha) * _z, _z <= 0), (_z, True)),
        applied=sp.Function("LeakyReLU")(_z),
    )


_FIXED_ACTIVATIONS = {a.name: a for a in (LINEAR, RELU, SIGMOID, TANH, SOFTMAX)}


def activation(name: str, alpha: float | None = None) -> Activation:
    if name == "leaky_relu":
        return leaky_relu(DEFAULT_LEAKY_ALPHA if alpha is None else alpha)
    return _FIXED_ACTIVATIONS[name]


@dataclass(frozen=True)
class Loss:
    """A per-sample loss over K outputs, in PREDICTIONS[TERM] and TARGETS[TERM]."""

    name: str
    label: str
    definition: sp.Expr

    @lru_cache(maxsize=None)  # noqa: B019
    def per_sample(self, predictions: tuple[sp.Symbol, ...], targets: tuple[sp.Symbol, ...]) -> sp.Expr:
        concrete = _expand_sums(self.definition, len(predictions))
        replacements = {PREDICTIONS[k]: p for k, p in enumerate(predictions)}
        replacements.update({TARGETS[k]: t for k, t in enumerate(targets)})
        return concrete.xreplace(replacements)

    @lru_cache(maxsize=None)  # noqa: B019
    def derivative(self, predictions: tuple[sp.Symbol, ...], targets: tuple[sp.Symbol, ...], output: int) -> sp.Expr:
        return sp.diff(self.per_sample(predictions, targets), predictions[output])

    @lru_cache(maxsize=None)  # noqa: B019
    def derivative_step(self, predictions: tuple[sp.Symbol, ...], targets: tuple[sp.Symbol, ...], output: int) -> sp.Expr:
        """The derivative with its rules applied once and nothing simplified: for ½(y − ŷ)²,
        ½ · 2 (y − ŷ) · (−1). Tests check it against `derivative`."""
        return visible_step(self.per_sample(predictions, targets), predictions[output])


def visible_step(expr: sp.Expr, variable: sp.Symbol) -> sp.Expr:
    """d expr / d variable as a reader writes its first step: the sum, constant-factor,
    power and logarithm rules applied, the inner derivative as a factor, unsimplified."""
    if not expr.has(variable):
        return sp.S.Zero
    if expr == variable:
        return sp.S.One
    if expr.is_Add:
        terms = [visible_step(term, variable) for term in expr.args if term.has(variable)]
        return terms[0] if len(terms) == 1 else sp.Add(*terms, evaluate=False)
    if expr.is_Mul:
        varying = [f for f in expr.args if f.has(variable)]
        if len(varying) == 1:
            constants = [f for f in expr.args if not f.has(variable)]
            return _product(*constants, visible_step(varying[0], variable))
    if expr.is_Pow and expr.exp.is_Number and expr.exp != -1:
        base, exponent = expr.args
        power = base if exponent - 1 == 1 else sp.Pow(base, exponent - 1, evaluate=False)
        return _product(exponent, power, _inner(base, variable))
    if isinstance(expr, sp.log):
        (argument,) = expr.args
        return _product(sp.Pow(argument, -1, evaluate=False), _inner(argument, variable))
    return sp.diff(expr, variable)


def _inner(expr: sp.Expr, variable: sp.Symbol) -> sp.Expr:
    """The derivative of an inner function: a number when it is linear (−1 for y − ŷ)."""
    derivative = sp.diff(expr, variable)
    return derivative if derivative.is_Number else visible_step(expr, variable)


def _product(*factors: sp.Expr) -> sp.Expr:
    """Factors multiplied as written, nested products flattened, factors of 1 left out."""
    flat: list[sp.Expr] = []
    for factor in factors:
        flat += list(factor.args) if factor.is_Mul and not factor.is_Number else [factor]
    kept = [f for f in flat if f != 1] or [sp.S.One]
    return kept[0] if len(kept) == 1 else sp.Mul(*kept, evaluate=False)


def _sum(term: sp.Expr) -> sp.Expr:
    return sp.Sum(term, (TERM, 0, COUNT - 1))


_y, _p = TARGETS[TERM], PREDICTIONS[TERM]

LOSSES = {
    loss.name: loss
    for loss in (
        Loss("half_sse", "half the sum of squared errors", sp.Rational(1, 2) * _sum((_y - _p) ** 2)),
        Loss("sse", "sum of squared errors", _sum((_y - _p) ** 2)),
        Loss("mse", "mean squared error", _sum((_y - _p) ** 2) / COUNT),
        Loss(
            "bce",
            "binary cross-entropy",
            # Built unevaluated so the definition reads y ln ŷ + (1 - y) ln(1 - ŷ).
            -_sum(sp.Add(_y * sp.log(_p), (1 - _y) * sp.log(1 - _p), evaluate=False)) / COUNT,
        ),
        Loss("cross_entropy", "cross-entropy", -_sum(_y * sp.log(_p))),
    )
}
assert tuple(LOSSES) == LOSS_NAMES, "the spec's loss names and the loss table differ"


# For these output activations and losses the chain-rule factors of ∂E/∂z collapse:
# σ with binary cross-entropy gives (ŷ_k − y_k)/K, softmax with cross-entropy ŷ_i − y_i
# (its targets sum to 1). Tests check each against sympy.diff of the composition.
SHORTCUTS = {
    ("sigmoid", "bce"): lambda prediction, target, count: (prediction - target) / count,
    ("softmax", "cross_entropy"): lambda prediction, target, count: prediction - target,
}


def shortcut(activation_name: str, loss_name: str, predictions: Sequence[sp.Symbol], targets: Sequence[sp.Symbol], unit: int) -> sp.Expr | None:
    """∂E/∂z_unit written directly in the predictions and targets, where it simplifies."""
    rule = SHORTCUTS.get((activation_name, loss_name))
    return None if rule is None else rule(predictions[unit], targets[unit], len(predictions))
