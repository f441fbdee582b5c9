"""The conventions the README states, each tested on purpose against a hand computation
written here from the convention itself, never against derive's own earlier output:

- ReLU′(0) = 0 and LeakyReLU′(0) = alpha: the derivative from the left, at a unit that
  sits exactly at its kink;
- rounding half away from zero, in the carried values and in the numbers shown, on ties
  that are exact in binary (0.0625 at 3 decimals is a tie, 0.0625 + 1e-17 is not);
- the update θ* = θ − η ∂E/∂θ, the batch's mean (the default) or sum, hidden-layer
  gradients through the weights before the update, weights[i][j] from unit j to unit i;
- the forward pass after the update computed with the updated parameters.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from types import SimpleNamespace

import mpmath
import pytest

import derive
from derive.exercises.variants import answers_of

mpmath.mp.dps = 50


def sigmoid(z):
    return 1 / (1 + mpmath.exp(-mpmath.mpf(z)))


def close(ours: float, expected, rel: float = 1e-12, absolute: float = 1e-14) -> bool:
    if isinstance(expected, Fraction):
        expected = mpmath.mpf(expected.numerator) / expected.denominator
    return abs(mpmath.mpf(ours) - mpmath.mpf(expected)) <= absolute + rel * abs(mpmath.mpf(expected))


# -- the kink ---------------------------------------------------------------------------------------


def kinked(activation: str, **extra) -> dict:
    """2-2-1 with a sigmoid output: hidden unit 0 sits exactly at its kink for x = (3, 4),
    0.3 · 3 − 0.2 · 4 − 0.1 = 0 (in decimals; not in binary floats), unit 1 at z = 3.2."""
    hidden = {"units": 2, "activation": activation, "weights": [[0.3, -0.2], [0.5, 0.4]], "bias": [-0.1, 0.1], **extra}
    return {
        "inputs": 2,
        "layers": [hidden, {"units": 1, "activation": "sigmoid", "weights": [[0.8, -0.6]], "bias": [0.2]}],
        "loss": "half_sse", "learning_rate": 0.5, "data": [{"x": [3, 4], "y": [1]}],
    }


def kink_gradients(slope_at_zero) -> dict:
    """By hand, with the derivative at the kink taken as `slope_at_zero`: a1 = (0, 3.2),
    z2 = 0.8 · 0 − 0.6 · 3.2 + 0.2 = −1.72, δ2 = (ŷ − y) σ′(z2), ∂E/∂a1 = δ2 (0.8, −0.6)."""
    y_hat = sigmoid("-1.72")
    delta2 = (y_hat - 1) * y_hat * (1 - y_hat)
    delta1 = [delta2 * mpmath.mpf("0.8") * slope_at_zero, delta2 * mpmath.mpf("-0.6")]
    return {
        "W2[0,0]": 0, "W2[0,1]": delta2 * mpmath.mpf("3.2"), "b2[0]": delta2,
        "W1[0,0]": delta1[0] * 3, "W1[0,1]": delta1[0] * 4, "b1[0]": delta1[0],
        "W1[1,0]": delta1[1] * 3, "W1[1,1]": delta1[1] * 4, "b1[1]": delta1[1],
    }


@pytest.mark.parametrize("activation,extra,slope", [("relu", {}, 0), ("leaky_relu", {"alpha": 0.2}, mpmath.mpf("0.2"))])
def test_the_derivative_at_the_kink_is_the_left_one(activation, extra, slope):
    step = derive.solve(kinked(activation, **extra), rounding="exact").to_dict()["steps"][0]
    assert step["forward"][0]["z1[0]"] == 0 and step["forward"][0]["a1[0]"] == 0
    expected = kink_gradients(slope)
    assert set(step["gradients"]) == set(expected)
    for name, value in expected.items():
        assert close(step["gradients"][name], value), (name, step["gradients"][name], value)
    # θ* = θ − η ∂E/∂θ with η = 0.5, for the unit at the kink
    initial = {"W1[0,0]": "0.3", "W1[0,1]": "-0.2", "b1[0]": "-0.1"}
    for name, value in initial.items():
        assert close(step["updated"][name], mpmath.mpf(value) - mpmath.mpf("0.5") * expected[name]), name


def test_a_relu_at_its_kink_passes_no_gradient_and_the_solution_says_why():
    solution = derive.solve(kinked("relu"))
    shown = solution.to_dict()["steps"][0]["shown"]
    assert shown["gradients"]["W1[0,0]"] == shown["gradients"]["W1[0,1]"] == shown["gradients"]["b1[0]"] == 0
    assert shown["updated"]["W1[0,0]"] == 0.3 and shown["updated"]["W1[0,1]"] == -0.2 and shown["updated"]["b1[0]"] == -0.1
    markdown = derive.render(solution, "md")
    assert r"\operatorname{ReLU}'\left(z^{(1)}_{0}\right) = \operatorname{ReLU}'\left(0\right) = 0" in markdown
    assert "Here $z^{(1)}_{0} = 0$, where the ReLU has no derivative. The solution takes the derivative from the left, $0$" in markdown


def test_a_leaky_relu_at_its_kink_takes_its_slope_below_zero():
    solution = derive.solve(kinked("leaky_relu", alpha=0.2))
    markdown = derive.render(solution, "md")
    assert "where the leaky ReLU (slope 0.2 below 0) has no derivative. The solution takes the derivative from the left, $0.2$" in markdown
    # By hand, carried to 3 decimals: ŷ = σ(−1.72) = 0.152, ∂E/∂ŷ = 0.152 − 1 = −0.848,
    # σ′ = 0.152 · 0.848 = 0.129 (0.128896), ∂E/∂a1_0 = −0.848 · 0.129 · 0.8 = −0.088 (−0.0875136),
    # ∂E/∂w1_00 = −0.088 · 0.2 · 3 = −0.053 (−0.0528).
    shown = solution.to_dict()["steps"][0]["shown"]
    assert shown["forward"][0]["a2[0]"] == 0.152
    assert shown["gradients"]["W1[0,0]"] == -0.053 and shown["gradients"]["W1[0,1]"] == -0.07  # −0.088 · 0.2 · 4 = −0.0704
    assert shown["gradients"]["b1[0]"] == -0.018  # −0.0176


# -- rounding ties --------------------------------------------------------------------------------


def half_up(value: str, digits: int) -> str:
    """Half away from zero, on the decimal as written."""
    return str(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def product_line(weight: float, x: float, result: str) -> str:
    """The forward pass's line for z = w · x, as the Markdown writes it."""
    factor = rf"\left({weight}\right)" if weight < 0 else str(weight)
    return rf"z^{{(1)}}_{{0}} &= {factor} \cdot {x} = {result}"


def one_product(weight: float, x: float) -> dict:
    """z = w · x through a linear unit without a bias: the product is shown and carried."""
    return {"inputs": 1, "layers": [{"units": 1, "activation": "linear", "weights": [[weight]]}],
            "loss": "half_sse", "learning_rate": 0.1, "data": [{"x": x, "y": 0}]}


# Products that are exact ties in binary (0.65 · 1.25 is not exact, but its decimal is), with
# the rounding to even differing from half away from zero: 0.0625 → 0.063 (not 0.062).
TIES = [
    (0.25, 0.25, 3, "0.0625"), (-0.625, 0.5, 3, "-0.3125"), (0.75, 0.75, 3, "0.5625"), (-0.65, 1.25, 3, "-0.8125"),
    (0.375, 0.5, 3, "0.1875"), (0.5, 0.25, 2, "0.125"), (-0.25, 2.5, 2, "-0.625"), (0.5, 0.5, 1, "0.25"),
]


@pytest.mark.parametrize("weight,x,digits,product", TIES)
def test_carried_ties_round_half_away_from_zero(weight, x, digits, product):
    assert Fraction(repr(weight)) * Fraction(repr(x)) == Fraction(product)
    expected = half_up(product, digits)
    solution = derive.solve(one_product(weight, x), digits=digits)
    shown = solution.to_dict()["steps"][0]["shown"]["forward"][0]
    assert shown["z1[0]"] == float(expected)
    # and shown so, on the line that computes it
    assert product_line(weight, x, expected) in derive.render(solution, "md")


@pytest.mark.parametrize("weight,x,digits,product", TIES[:2])
def test_exact_values_are_shown_rounded_half_away_from_zero(weight, x, digits, product):
    markdown = derive.render(derive.solve(one_product(weight, x), rounding="exact", digits=digits), "md")
    assert product_line(weight, x, half_up(product, digits)) in markdown


@pytest.mark.parametrize("value", ["0.0625", "-0.0625", "0.3125", "-0.8125", "1.0005", "-2.0015"])
def test_the_keys_answers_round_half_away_from_zero(value):
    """With --rounding exact the key rounds the full-precision value itself."""
    question = SimpleNamespace(id="q")
    answer = answers_of([question], {"q": float(value)}, {"q": float(value)}, 3)["q"]
    assert answer.value == float(half_up(value, 3))


# -- the update, the batch, backpropagation -------------------------------------------------------------


# A 2-2-2 linear network (square layers, no symmetric weight matrix) on two samples: every
# number is rational, so the hand computation below is exact.
LINEAR = {
    "inputs": 2,
    "layers": [
        {"units": 2, "activation": "linear", "weights": [[0.1, 0.2], [0.3, -0.4]], "bias": [0.0, 0.1]},
        {"units": 2, "activation": "linear", "weights": [[0.5, -0.6], [0.7, 0.8]], "bias": [0.1, -0.2]},
    ],
    "loss": "half_sse", "learning_rate": 0.5,
    "data": [{"x": [1, 2], "y": [1, 0]}, {"x": [-0.5, 1.5], "y": [0, 1]}],
}


def by_hand(spec: dict) -> tuple[dict, dict, list]:
    """Gradients (mean or sum over the batch), updated parameters and the outputs of the
    forward pass with them, in exact fractions, following the README's rules."""
    def F(value) -> Fraction:
        return Fraction(repr(value))

    W1 = [[F(w) for w in row] for row in spec["layers"][0]["weights"]]
    b1 = [F(b) for b in spec["layers"][0]["bias"]]
    W2 = [[F(w) for w in row] for row in spec["layers"][1]["weights"]]
    b2 = [F(b) for b in spec["layers"][1]["bias"]]

    def forward(W1, b1, W2, b2, x):
        h = [sum(w * xj for w, xj in zip(row, x)) + b for row, b in zip(W1, b1)]
        return h, [sum(w * hj for w, hj in zip(row, h)) + b for row, b in zip(W2, b2)]

    totals: dict[str, Fraction] = {}
    for sample in spec["data"]:
        x, y = [F(v) for v in sample["x"]], [F(v) for v in sample["y"]]
        h, out = forward(W1, b1, W2, b2, x)
        delta2 = [o - t for o, t in zip(out, y)]  # ∂E/∂ŷ of ½ Σ (y − ŷ)², times linear′ = 1
        # ∂E/∂h_j = Σ_i δ2_i w2_ij: the weights before the update, from unit j to unit i
        delta1 = [sum(delta2[i] * W2[i][j] for i in range(2)) for j in range(2)]
        gradient = {}
        for i in range(2):
            for j in range(2):
                gradient[f"W2[{i},{j}]"] = delta2[i] * h[j]
                gradient[f"W1[{i},{j}]"] = delta1[i] * x[j]
            gradient[f"b2[{i}]"], gradient[f"b1[{i}]"] = delta2[i], delta1[i]
        for name, value in gradient.items():
            totals[name] = totals.get(name, 0) + value
    count = len(spec["data"]) if spec.get("batch", "mean") == "mean" else 1
    gradients = {name: value / count for name, value in totals.items()}
    rate = F(spec["learning_rate"])
    initial = {f"W{l}[{i},{j}]": W[i][j] for l, W in ((1, W1), (2, W2)) for i in range(2) for j in range(2)}
    initial.update({f"b{l}[{i}]": b[i] for l, b in ((1, b1), (2, b2)) for i in range(2)})
    updated = {name: value - rate * gradients[name] for name, value in initial.items()}
    W1n, W2n = ([[updated[f"W{l}[{i},{j}]"] for j in range(2)] for i in range(2)] for l in (1, 2))
    b1n, b2n = ([updated[f"b{l}[{i}]"] for i in range(2)] for l in (1, 2))
    repeated = [forward(W1n, b1n, W2n, b2n, [F(v) for v in sample["x"]])[1] for sample in spec["data"]]
    return gradients, updated, repeated


@pytest.mark.parametrize("batch", ["mean", "sum"])
def test_gradients_and_update_of_a_batch_by_hand(batch):
    spec = {**LINEAR, "batch": batch}
    gradients, updated, repeated = by_hand(spec)
    solution = derive.solve(spec, rounding="exact")
    step = solution.to_dict()["steps"][0]
    assert set(step["gradients"]) == set(gradients)
    for name, value in gradients.items():
        assert close(step["gradients"][name], value), (name, step["gradients"][name], float(value))
        assert close(step["updated"][name], updated[name]), (name, step["updated"][name], float(updated[name]))
    # The forward pass after the update, as the worked solution shows it, uses the new parameters.
    for forward, outputs in zip(solution.shown.repeated, repeated):
        assert all(close(ours, theirs) for ours, theirs in zip(forward.out[-1], outputs))


def test_the_update_and_the_pass_after_it_for_one_neuron():
    """z = 0.5 · 2 + 0.1 = 1.1, E = ½ (1 − 1.1)² = 0.005, ∂E/∂w = 0.1 · 2 = 0.2, ∂E/∂b = 0.1;
    w* = 0.5 − 0.1 · 0.2 = 0.48, b* = 0.1 − 0.1 · 0.1 = 0.09; z* = 0.48 · 2 + 0.09 = 1.05,
    E* = ½ (1 − 1.05)² = 0.00125."""
    spec = {"inputs": 1, "layers": [{"units": 1, "activation": "linear", "weights": [[0.5]], "bias": [0.1]}],
            "loss": "half_sse", "learning_rate": 0.1, "data": [{"x": 2, "y": 1}]}
    for rounding in ("exact", "carry"):
        solution = derive.solve(spec, rounding=rounding, digits=5)
        step = solution.to_dict()["steps"][0]
        assert step["gradients"] == pytest.approx({"W1[0,0]": 0.2, "b1[0]": 0.1}, rel=1e-12)
        assert step["updated"] == pytest.approx({"W1[0,0]": 0.48, "b1[0]": 0.09}, rel=1e-12)
        (again,) = solution.shown.repeated
        assert again.pre[0][0] == pytest.approx(1.05, rel=1e-12) and again.loss == pytest.approx(0.00125, rel=1e-12)
        assert solution.detail.repeated.value == pytest.approx(0.00125, rel=1e-12)
    text = derive.render(derive.solve(spec, digits=5), "md")
    assert r"z^{(1)*}_{0} &= {\underbrace{0.48 \cdot 2}_{0.96}} + 0.09 = 1.05" in text
    assert "The loss fell from $0.005$ to $0.00125$" in text


# -- the published example, carried by hand -------------------------------------------------------------


def test_the_handouts_output_layer_carried_by_hand():
    """esuli, as a student computes it with 3 decimals (README): ŷ = σ(0.103) = 0.526,
    σ′ = ŷ (1 − ŷ) = 0.526 · 0.474 = 0.249, ∂E/∂w2_00 = 0.526 · 0.249 · 0.29 = 0.038,
    ∂E/∂b2 = 0.526 · 0.249 = 0.131, ∂E/∂h0 = 0.526 · 0.249 · 0.7 = 0.092,
    ∂E/∂w1_00 = 0.092 · 1 · 0.9 = 0.083, w1_00* = 0.2 − 0.1 · 0.083 = 0.192."""
    def q(value: str) -> float:
        return float(Decimal(value).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))

    y_hat = q(str(sigmoid("0.103")))
    sigma_prime = q(str(Decimal(repr(y_hat)) * (1 - Decimal(repr(y_hat)))))
    factor = Decimal(repr(y_hat)) * Decimal(repr(sigma_prime))  # not shown: a factor of each gradient
    hidden = q(str(factor * Decimal("0.7")))
    expected = {"W2[0,0]": q(str(factor * Decimal("0.29"))), "b2[0]": q(str(factor)),
                "W1[0,0]": q(str(Decimal(repr(hidden)) * Decimal("0.9")))}
    assert (y_hat, sigma_prime, hidden) == (0.526, 0.249, 0.092)
    shown = derive.solve("esuli").to_dict()["steps"][0]["shown"]
    assert shown["forward"][0]["a2[0]"] == y_hat
    assert {name: shown["gradients"][name] for name in expected} == expected == {"W2[0,0]": 0.038, "b2[0]": 0.131, "W1[0,0]": 0.083}
    assert shown["updated"]["W1[0,0]"] == q(str(Decimal("0.2") - Decimal("0.1") * Decimal(repr(expected["W1[0,0]"])))) == 0.192
