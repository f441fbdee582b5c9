"""Activations and losses: the derivatives come from sympy.diff; the display forms in
terms of the outputs are checked against them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sympy as sp

from derive.model.functions import ACTIVATION_NAMES, LOSSES, PRE_ACTIVATION, activation


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_derivative_in_outputs_matches_diff(name):
    act = activation(name)
    a = sp.Symbol("a_out")
    shown = act.derivative_shown_with_outputs([a], 0, 0).subs(a, act.definition)
    assert sp.simplify(shown - sp.diff(act.definition, PRE_ACTIVATION)) == 0


def test_softmax_jacobian_in_outputs_matches_diff():
    act = activation("softmax")
    zs = tuple(sp.symbols("z0:3"))
    outputs = [act.unit_output(zs, k) for k in range(3)]
    for k in range(3):
        for i in range(3):
            shown = act.derivative_shown_with_outputs(outputs, k, i)
            assert sp.simplify(shown - act.local_derivative(zs, k, i)) == 0


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_relu_derivative_at_zero_is_zero_side(name):
    act = activation(name)
    derivative = act.general_derivative
    assert derivative.subs(PRE_ACTIVATION, 0) == (0 if name == "relu" else sp.Float(0.01))
    assert derivative.subs(PRE_ACTIVATION, 2) == 1


def test_every_activation_is_known():
    """The names the README's spec reference lists, each an activation of that name whose
    values are those of its definition."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    listed = re.search(r"activation: relu +# ([a-z_ |]+?) \(output layer only\)", readme).group(1).split(" | ")
    assert tuple(listed) == ACTIVATION_NAMES
    z = PRE_ACTIVATION
    expected_at_minus_two = {"linear": -2, "relu": 0, "leaky_relu": -0.02, "sigmoid": 1 / (1 + sp.E**2), "tanh": sp.tanh(-2)}
    for name in ACTIVATION_NAMES:
        act = activation(name)
        assert act.name == name
        if name in expected_at_minus_two:
            assert sp.N(act.definition.subs(z, -2) - expected_at_minus_two[name], 30) == pytest.approx(0, abs=1e-25), name


def test_loss_derivatives_from_diff():
    p = sp.symbols("p0:2")
    t = sp.symbols("t0:2")
    half = LOSSES["half_sse"]
    assert sp.expand(half.derivative(p, t, 0) - (p[0] - t[0])) == 0
    bce = LOSSES["bce"]
    assert sp.simplify(bce.derivative(p, t, 1) - (-(t[1] / p[1]) + (1 - t[1]) / (1 - p[1])) / 2) == 0
    mse = LOSSES["mse"]
    assert sp.expand(mse.per_sample(p, t) - ((t[0] - p[0]) ** 2 + (t[1] - p[1]) ** 2) / 2) == 0
