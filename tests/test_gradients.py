"""Every number of the JSON answer key against independent oracles: 50-digit finite
differences (mpmath) over whole training runs, and sympy.diff of the fully composed
loss for the first update.

The generated networks are written with decimals, as specs are, so a ReLU unit is either
exactly at its kink (z = 0, often: zero weights and biases are what Hypothesis tries first,
and a drawn network may put a unit there on purpose) or clearly away from it; both
oracles take the documented derivative from the left at the kink (tests/oracle.py).
Explicit examples make sure every run meets the cases a bug would hide in: σ′ and tanh′
in the output layer, hidden layers, and units at their kink."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal

import mpmath
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import derive
from tests import oracle

HIDDEN = ["linear", "relu", "leaky_relu", "sigmoid", "tanh"]


def hundredths(low: float, high: float):
    """Numbers as a spec writes them: two decimals."""
    return st.integers(round(low * 100), round(high * 100)).map(lambda n: n / 100)


def close(ours: float, exact, rel: float = 1e-9, absolute: float = 1e-11) -> bool:
    return abs(mpmath.mpf(ours) - exact) <= absolute + rel * abs(exact)


def _on_the_kink(layer: dict, x: list) -> None:
    """Sets unit 0's bias so that its weighted sum for the inputs x is exactly 0 in decimals."""
    total = sum(Decimal(repr(w)) * Decimal(repr(v)) for w, v in zip(layer["weights"][0], x))
    layer["bias"] = [float(-total)] + [0.25] * (layer["units"] - 1)
    layer["train_bias"] = True


@st.composite
def specs(draw, loss=None, output=None, max_depth=3):
    number = hundredths(-1.5, 1.5)
    loss = loss or draw(st.sampled_from(["half_sse", "sse", "mse", "bce", "cross_entropy"]))
    inputs = draw(st.integers(1, 3))
    depth = draw(st.integers(1, max_depth))
    if output is None:
        output = {"bce": "sigmoid", "cross_entropy": "softmax"}.get(loss) or draw(st.sampled_from(HIDDEN + ["softmax"]))
    layers, fan_in = [], inputs
    for index in range(depth):
        last = index == depth - 1
        activation = output if last else draw(st.sampled_from(HIDDEN))
        units = draw(st.integers(2 if activation == "softmax" else 1, 3))
        layer = {"units": units, "activation": activation, "weights": [[draw(number) for _ in range(fan_in)] for _ in range(units)]}
        if activation == "leaky_relu" and draw(st.booleans()):
            layer["alpha"] = draw(hundredths(0.01, 0.5))
        bias_kind = draw(st.sampled_from(["list", "shared", "none"]))
        if bias_kind == "list":
            layer["bias"] = [draw(number) for _ in range(units)]
        elif bias_kind == "shared":
            layer["bias"] = draw(number)
        layer["train_bias"] = draw(st.booleans())
        layers.append(layer)
        fan_in = units
    outputs = layers[-1]["units"]
    samples = []
    for _ in range(draw(st.integers(1, 3))):
        x = [draw(hundredths(-2, 2)) for _ in range(inputs)]
        if loss == "bce":
            y = [draw(hundredths(0, 1)) for _ in range(outputs)]
        elif loss == "cross_entropy":
            hot = draw(st.integers(0, outputs - 1))
            y = [1.0 if k == hot else 0.0 for k in range(outputs)]
        else:
            y = [draw(hundredths(-1, 1)) for _ in range(outputs)]
        samples.append({"x": x, "y": y})
    if layers[0]["activation"] in ("relu", "leaky_relu") and draw(st.booleans()):
        _on_the_kink(layers[0], samples[0]["x"])
    return {
        "inputs": inputs,
        "layers": layers,
        "loss": loss,
        "batch": draw(st.sampled_from(["mean", "sum"])),
        "update": draw(st.sampled_from(["batch", "sample"])),
        "steps": draw(st.integers(1, 2)),
        "learning_rate": draw(hundredths(0.01, 0.5)),
        "data": samples,
    }


def check_against_finite_differences(spec: dict, generated: bool = True) -> None:
    expected, final_values = oracle.train(spec)
    if generated:
        # A run that diverges (a trained shared bias with sse and a large rate can) has
        # values no double holds; derive stops it with a NumericalError (tests/test_spec.py).
        assume(all(abs(u["loss"]) < 1e6 for u in expected))
    key = derive.solve(spec, rounding="exact").to_dict()  # the full-precision numbers alone
    assert len(key["steps"]) == len(expected)
    for ours, exact in zip(key["steps"], expected):
        assert close(ours["loss"], exact["loss"])
        assert set(ours["gradients"]) == set(exact["gradients"]) == set(oracle.trainable(spec))
        for name, value in exact["gradients"].items():
            assert close(ours["gradients"][name], value, rel=1e-8, absolute=1e-10), name
        for name, value in ours["updated"].items():
            assert close(value, exact["updated"][name], rel=1e-8, absolute=1e-10), name
        for record, exact_record in zip(ours["forward"], exact["forward"]):
            for name, value in exact_record.items():
                assert close(record[name], value), name
    final_samples = spec["data"]
    assert close(key["final"]["loss"], oracle.batch_loss(spec, final_values, final_samples), rel=1e-8)


# Run by every test run, whatever Hypothesis draws: a sigmoid and a tanh output layer
# without a shortcut (where a missing σ′ or tanh′ shows), behind hidden layers; a ReLU unit
# and a leaky ReLU unit exactly at their kink (0.3 · 3 − 0.2 · 4 − 0.1 = 0), with a mean
# over two samples.
EXAMPLES = [
    {"inputs": 2, "layers": [
        {"units": 2, "activation": "tanh", "weights": [[0.5, -0.4], [0.3, 0.8]], "bias": [0.1, -0.2]},
        {"units": 1, "activation": "sigmoid", "weights": [[0.7, -1.1]], "bias": [0.05]}],
     "loss": "half_sse", "batch": "mean", "update": "batch", "steps": 2, "learning_rate": 0.5,
     "data": [{"x": [0.9, -0.3], "y": [0.2]}, {"x": [0.4, 0.6], "y": [0.9]}]},
    {"inputs": 2, "layers": [
        {"units": 2, "activation": "relu", "weights": [[0.3, -0.2], [0.5, 0.4]], "bias": [-0.1, 0.1]},
        {"units": 2, "activation": "tanh", "weights": [[0.6, -0.7], [-0.4, 0.9]], "bias": [0.2, -0.1]}],
     "loss": "mse", "batch": "mean", "update": "batch", "steps": 1, "learning_rate": 0.3,
     "data": [{"x": [3, 4], "y": [0.5, -0.5]}, {"x": [1, -1], "y": [0.1, 0.3]}]},
    {"inputs": 2, "layers": [
        {"units": 2, "activation": "leaky_relu", "alpha": 0.2, "weights": [[0.3, -0.2], [0.5, 0.4]], "bias": [-0.1, 0.1]},
        {"units": 1, "activation": "sigmoid", "weights": [[0.8, -0.6]], "bias": [0.2]}],
     "loss": "sse", "batch": "mean", "update": "sample", "steps": 1, "learning_rate": 0.2,
     "data": [{"x": [3, 4], "y": [1]}, {"x": [0.5, -0.5], "y": [0]}]},
]


@settings(max_examples=100, deadline=None)
@example(EXAMPLES[0])
@example(EXAMPLES[1])
@example(EXAMPLES[2])
@given(specs())
def test_training_matches_finite_differences(spec):
    check_against_finite_differences(spec)


@settings(max_examples=25, deadline=None)
@example(EXAMPLES[0])
@example(EXAMPLES[1])
@example(EXAMPLES[2])
@given(specs(max_depth=2))
def test_first_update_matches_sympy_diff_of_composed_loss(spec):
    spec = {**spec, "steps": 1, "update": "batch", "data": spec["data"][:2]}
    values = dict(oracle.parameters(spec))
    gradients = derive.solve(spec, rounding="exact").to_dict()["steps"][0]["gradients"]
    for name, exact in oracle.sympy_gradient(spec, values, spec["data"]).items():
        assert close(gradients[name], mpmath.mpf(str(exact)), rel=1e-8, absolute=1e-10), name


VALID_PAIRS = [
    (activation, loss)
    for activation, loss in itertools.product(HIDDEN + ["softmax"], ["half_sse", "sse", "mse", "bce", "cross_entropy"])
    if (loss != "bce" or activation == "sigmoid") and (loss != "cross_entropy" or activation == "softmax")
]


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output,loss", VALID_PAIRS)
def test_every_activation_and_loss(hidden, output, loss):
    """Each activation (hidden and output) with each loss it may meet, both oracles."""
    rng = random.Random(f"{hidden}-{output}-{loss}")
    units = 3 if output == "softmax" else 2

    def draw():
        return round(rng.uniform(-1, 1), 3)

    spec = {
        "inputs": 2,
        "layers": [
            {"units": 2, "activation": hidden, "weights": [[0.6, -0.4], [0.3, 0.8]], "bias": [0.1, 0.2]},
            {"units": units, "activation": output, "weights": [[draw(), draw()] for _ in range(units)], "bias": 0.05},
        ],
        "loss": loss,
        "learning_rate": 0.3,
        "steps": 2,
        "data": [
            {"x": [0.5, 0.9], "y": [1.0, 0.0, 0.0][:units] if loss == "cross_entropy" else [0.3, 0.6, 0.9][:units]},
            {"x": [0.2, 0.7], "y": [0.0, 1.0, 0.0][:units] if loss == "cross_entropy" else [0.8, 0.1, 0.4][:units]},
        ],
    }
    check_against_finite_differences(spec, generated=False)
    # The composed symbolic loss grows fast with samples: one sample is enough for sympy.diff.
    single = {**spec, "data": spec["data"][:1], "steps": 1}
    values = dict(oracle.parameters(single))
    gradients = derive.solve(single, rounding="exact").to_dict()["steps"][0]["gradients"]
    for name, exact in oracle.sympy_gradient(single, values, single["data"]).items():
        assert close(gradients[name], mpmath.mpf(str(exact)), rel=1e-8, absolute=1e-10), name
