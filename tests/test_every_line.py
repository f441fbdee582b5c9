"""Every displayed line checks out on a calculator: the built-in examples in every notation
and detail, exercise solutions of several templates and seeds, and random networks. Each
line's numeric forms are recomputed from the numbers it shows (tests/calculator.py, which
shares no code with derive) and must round to the result it shows."""

from __future__ import annotations

import random

import pytest

import derive
from tests.calculator import check, displays, function_table
from tests.test_handout import _random_spec
from tests.test_render import BRANCHES


def _functions(spec) -> dict:
    loaded = derive.load_spec(spec)
    if loaded.kind == "graph":
        return function_table()
    layers = loaded.layers
    slopes = {layer.alpha for layer in layers if layer.activation == "leaky_relu" and layer.alpha is not None}
    return function_table(str(slopes.pop()) if slopes else "0.01")


def _check_document(markdown: str, digits: int, functions, tally) -> int:
    checks = [c for display in displays(markdown) for c in check(display, digits, functions)]
    wrong = [f"{c.form} = {c.shown}, but a calculator gives {c.computed}" for c in checks if not c.ok]
    assert not wrong, "\n".join(wrong)
    tally["documents"] += 1
    tally["lines"] += len(checks)
    return len(checks)


VIEWS = [
    (example, notation, detail)
    for example in ("esuli", "students", "elbasheer")
    for notation in (None, "esuli", "flat", "matrix")
    for detail in ("handout", "full", "compact")
] + [("elbasheer", "single", "handout"), ("elbasheer", "single", "full")] + [
    (example, notation, detail)
    for example in ("momentum", "adam")
    for notation in (None, "esuli", "matrix")
    for detail in ("handout", "full")
] + [("circuit", None, "handout"), ("circuit", None, "compact")]


@pytest.mark.parametrize("example,notation,detail", VIEWS)
def test_built_in_examples(example, notation, detail, calculator_tally):
    markdown = derive.render(derive.solve(example), "md", notation=notation, detail=detail)
    assert _check_document(markdown, 3, _functions(example), calculator_tally) >= 10


@pytest.mark.parametrize("digits", [1, 2, 4])
def test_other_digits(digits, calculator_tally):
    for spec in ("esuli", "students", BRANCHES):
        markdown = derive.render(derive.solve(spec, digits=digits), "md")
        assert _check_document(markdown, digits, _functions(spec), calculator_tally) >= 10


TEMPLATES = {
    "esuli": dict(spec="esuli"),
    "adam": dict(spec="adam"),
    "circuit": dict(spec="circuit"),
    "2-2-1 tanh/sigmoid bce": dict(shape=[2, 2, 1], activations=["tanh", "sigmoid"], loss="bce"),
    "3-3-2 relu/softmax": dict(shape=[3, 3, 2], activations=["relu", "softmax"], loss="cross_entropy"),
    "2-2-2 leaky/linear mse": dict(shape=[2, 2, 2], activations=["leaky_relu", "linear"], loss="mse"),
    "single neuron": dict(shape=[1, 1], activations=["relu"], loss="half_sse"),
}


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("seed", [1, 77, 2026])
def test_exercise_solutions(template, seed, calculator_tally):
    options = TEMPLATES[template]
    if "spec" in options:
        variants = derive.exercise(options["spec"], seed, count=2)
    else:
        variants = derive.exercise_from_shape(options["shape"], options["activations"], options["loss"], seed, count=2)
    for variant in variants:
        _check_document(variant.solution("md"), variant.digits, _functions(variant.spec), calculator_tally)


RULES = [None, {"name": "momentum", "momentum": 0.9}, {"name": "momentum", "momentum": 0.5, "nesterov": True},
         {"name": "rmsprop", "alpha": 0.9}, {"name": "adagrad"}, {"name": "adam"}]


@pytest.mark.parametrize("seed", range(30))
def test_random_networks(seed, calculator_tally):
    """Random networks, with each update rule and weight decay in turn."""
    spec = _random_spec(random.Random(1000 + seed))
    spec["steps"] = 1 + seed % 3
    if RULES[seed % len(RULES)]:
        spec["optimizer"] = RULES[seed % len(RULES)]
    if seed % 4 == 1:
        spec["weight_decay"] = 0.05
    elif seed % 4 == 3:
        spec.update(weight_decay=0.05, weight_decay_mode="decoupled")
    markdown = derive.render(derive.solve(spec), "md", detail="full" if seed % 2 else "handout")
    assert _check_document(markdown, 3, _functions(spec), calculator_tally) >= 5


def test_a_wide_network(calculator_tally):
    """Sums too long for a line, broken over rows under their braces."""
    from pathlib import Path

    spec = str(Path(__file__).parent / "specs" / "wide-8-4-3.yaml")
    markdown = derive.render(derive.solve(spec), "md")
    assert r"\underbrace{\begin{aligned}" in markdown
    assert _check_document(markdown, 3, _functions(spec), calculator_tally) >= 50
