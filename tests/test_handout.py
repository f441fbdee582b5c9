"""The worked solution as its reader reads it: every sentence about the numbers is true,
every symbol is defined before it is used, the Markdown renders as written, and the
code that makes it flows one way."""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import pytest

import derive
from tests.test_render import markdown_tokens

ROOT = Path(__file__).resolve().parent.parent


# -- sentences about the effect of the update -----------------------------------------------------------


def _random_spec(rng: random.Random) -> dict:
    """A small network trained for one batch update: every output kind that makes claims."""
    inputs = rng.randint(1, 3)
    output, loss = rng.choice(
        [("sigmoid", "bce"), ("sigmoid", "half_sse"), ("linear", "mse"), ("tanh", "sse"), ("softmax", "cross_entropy")]
    )
    hidden = [rng.randint(1, 3) for _ in range(rng.randint(0, 2))]
    outputs = rng.randint(2, 3) if output == "softmax" else rng.randint(1, 2)
    layers, fan_in = [], inputs
    for units, activation in [(u, rng.choice(["relu", "sigmoid", "tanh", "leaky_relu"])) for u in hidden] + [(outputs, output)]:
        layers.append({
            "units": units, "activation": activation,
            "weights": [[round(rng.uniform(-1, 1), 1) for _ in range(fan_in)] for _ in range(units)],
            "bias": [round(rng.uniform(-0.5, 0.5), 1) for _ in range(units)],
        })
        fan_in = units
    data = []
    for _ in range(rng.randint(1, 4)):
        if output == "softmax":
            y = [0.0] * outputs
            y[rng.randrange(outputs)] = 1.0
        elif loss == "bce":
            y = [float(rng.randrange(2)) for _ in range(outputs)]
        else:
            y = [round(rng.uniform(-0.9 if output != "sigmoid" else 0, 0.9), 1) for _ in range(outputs)]
        data.append({"x": [round(rng.uniform(-1, 1), 1) for _ in range(inputs)], "y": y})
    return {"inputs": inputs, "layers": layers, "loss": loss, "learning_rate": rng.choice([0.1, 0.5, 1.0]), "data": data}


def _closing(markdown: str) -> str:
    start = markdown.index("## Forward pass with the updated parameters")
    paragraphs = [p for p in markdown[start:].split("\n\n") if p.startswith("The loss")]
    return paragraphs[-1]


def _samples(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


@pytest.mark.parametrize("seed", range(40))
def test_claims_about_the_update_are_true_sample_by_sample(seed):
    """The closing sentences, recomputed from the key's values (as shown): the loss, the
    direction in which each prediction moved, each predicted class."""
    spec = _random_spec(random.Random(seed))
    solution = derive.solve(spec)
    key = solution.to_dict()
    before, after = key["steps"][0]["shown"], key["final"]["shown"]
    text = _closing(derive.render(solution, "md"))
    layers = len(spec["layers"])
    outputs = [f"a{layers}[{k}]" for k in range(len(spec["data"][0]["y"]))]

    change = "fell" if after["loss"] < before["loss"] else "rose" if after["loss"] > before["loss"] else "did not change"
    assert re.match(rf"The loss( over the batch)? {change}", text), text

    movement = {}
    for n, sample in enumerate(spec["data"], start=1):
        y = sample["y"]
        old = math.fsum((t - before["forward"][n - 1][o]) ** 2 for t, o in zip(y, outputs))
        new = math.fsum((t - after["forward"][n - 1][o]) ** 2 for t, o in zip(y, outputs))
        movement[n] = "towards" if new < old else "away" if new > old else "unchanged"
    if len(spec["data"]) == 1:
        expected = {"towards": "towards the target", "away": "away from the target", "unchanged": "did not move"}[movement[1]]
        assert expected in text, text
    else:
        for kind, phrase in (("towards", r"moved towards"), ("away", r"moved away")):
            wanted = sorted(n for n, m in movement.items() if m == kind)
            if len(wanted) == len(movement):
                assert f"of every sample {phrase[6:]}" in text or f"every sample {phrase}" in text, text
            elif wanted:
                match = re.search(rf"samples? ([\d, and]+?) {phrase}", text)
                assert match and _samples(match.group(1)) == wanted, (text, movement)

    classes = all(y in (0, 1) for sample in spec["data"] for y in sample["y"])
    if not classes or spec["layers"][-1]["activation"] not in ("sigmoid", "softmax"):
        assert "predicted class" not in text, text  # a sigmoid fitted to 0.3 predicts no class
    else:
        def classes(record):
            values = [record[o] for o in outputs]
            if spec["layers"][-1]["activation"] == "softmax":
                return [max(range(len(values)), key=lambda k: values[k])]
            return [int(v >= 0.5) for v in values]

        changed = [n for n in movement if classes(before["forward"][n - 1]) != classes(after["forward"][n - 1])]
        if not changed:
            assert "predicted class did not change" in text or "No predicted class changed" in text, text
        for n in changed:
            old, new = classes(before["forward"][n - 1]), classes(after["forward"][n - 1])
            expected = f"changed from {', '.join(map(str, old))} to {', '.join(map(str, new))}"
            assert expected in text, text


def test_the_predicted_class_is_stated_as_the_handout_does():
    text = derive.render(derive.solve("esuli"), "md")
    assert r"The output $\hat{y} = 0.526$ is above 0.5, so the predicted class is 1." in text


# -- symbols and names --------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", ["esuli", "students", "elbasheer"])
def test_every_symbol_is_defined(example):
    text = derive.render(derive.solve(example), "md")
    # The sigmoid's derivative is written with σ itself, not with an undefined a.
    assert r"a \cdot \left(1 - a\right)" not in text
    assert "$K$ is the number of outputs (here $K = 1$)" in text
    if example != "elbasheer":
        assert r"\sigma'\left(z\right) &= \frac{e^{- z}}{\left(1 + e^{- z}\right)^{2}} = \sigma{\left(z \right)} \cdot \left(1 - \sigma{\left(z \right)}\right)" in text
    # Values after the update are marked, and the mark is explained before the repeated pass.
    assert "is the new value of" in text and text.index("is the new value of") < text.index("## Forward pass with the updated")


def test_the_final_parameters_are_named_apart_from_the_initial_ones():
    text = derive.render(derive.solve("students"), "md")
    final = text[text.index("The final parameters"):]
    assert r"\mathbf{W}^{(1)\,\text{final}}" in final and r"\mathbf{W}^{(1)} =" not in final
    flat_text = derive.render(derive.solve("students"), "md", notation="flat")
    assert r"w^{\text{final}}_{1}" in flat_text


def test_the_flat_notation_writes_no_matrices():
    text = derive.render(derive.solve("esuli"), "md", notation="flat")
    assert "W^{(" not in text and r"\mathbf{W}" not in text
    assert r"w_{1} = 0.2, \quad w_{2} = -1.2" in text


def test_the_repeated_pass_quotes_the_new_pre_activation():
    """The elbasheer neuron dies in the update: its remark quotes z* = −11.8, not z = 21."""
    text = derive.render(derive.solve("elbasheer"), "md")
    dead = text[text.index("**Dead unit.**"):]
    assert r"z^{(1)*}_{0} = -11.8" in dead


def test_the_loss_table_and_curve_show_the_same_points():
    solution = derive.solve("students")
    training = solution.training
    assert [row.loss for row in training.rows] == [loss for _, loss in training.curve.points]
    assert len(training.rows) == len(solution.updates) + 1 and training.rows[-1].final


def test_the_learning_rate_remark_only_when_it_is_large():
    assert "This is a large learning rate" in derive.render(derive.solve("esuli"), "md")
    assert "This is a large learning rate" not in derive.render(derive.solve("elbasheer"), "md")


def test_the_loss_is_differentiated_in_one_visible_step():
    text = derive.render(derive.solve("esuli"), "md")
    assert (r"\frac{\partial}{\partial \hat{y}} \Big(\frac{\left(y - \hat{y}\right)^{2}}{2}\Big) = "
            r"\frac{1}{2} \cdot 2 \cdot \left(y - \hat{y}\right) \cdot \left(-1\right) = \hat{y} - y = 0.526 - 0") in text


def test_general_forms_are_stated_once_per_layer():
    text = derive.render(derive.solve("esuli"), "md")
    assert text.count(r"\frac{\partial z^{(1)}_{i}}{\partial w^{(1)}_{ij}} = x_{j}") == 1
    assert text.count(r"\frac{\partial z^{(2)}_{0}}{\partial w^{(2)}_{0j}} = a^{(1)}_{j}") == 1
    # The full detail writes the expansion for every parameter instead.
    full = derive.render(derive.solve("esuli"), "md", detail="full")
    assert full.count(r"\frac{\partial}{\partial w^{(1)}_{") == 6


# -- Markdown as GitHub, Jupyter and Pandoc render it ----------------------------------------------------


def test_a_title_reads_as_written():
    spec = derive.load_spec("esuli").to_dict()
    spec["title"] = "A 2-2-1 network (ReLU + sigmoid). Week 3!"
    text = derive.render(derive.solve(spec), "md")
    assert text.splitlines()[0] == "# A 2-2-1 network (ReLU + sigmoid). Week 3!"
    heading = next(t for t in markdown_tokens(text) if t.type == "inline")
    assert heading.content == "A 2-2-1 network (ReLU + sigmoid). Week 3!"


@pytest.mark.parametrize("example", ["esuli", "students", "elbasheer"])
@pytest.mark.parametrize("detail", ["handout", "full"])
def test_bold_lead_ins_start_their_own_paragraph(example, detail):
    text = derive.render(derive.solve(example), "md", detail=detail)
    tokens = markdown_tokens(text)
    for token in tokens:
        if token.type != "inline":
            continue
        children = [c for c in token.children or [] if not (c.type == "text" and not c.content)]
        for index, child in enumerate(children):
            if child.type == "strong_open":
                assert index == 0, f"a bold lead-in inside a paragraph: {token.content[:120]!r}"
    # Two sentences of different blocks never run into one paragraph.
    assert not re.search(r"[.:]\n\*\*", text)


# -- edges found by trying to break it ------------------------------------------------------------------


def _one_neuron(activation: str, weight: float, loss: str = "half_sse", **extra) -> dict:
    spec = {"inputs": 1, "layers": [{"units": 1, "activation": activation, "weights": [[weight]], "bias": [0]}],
            "loss": loss, "learning_rate": 0.1, "data": [{"x": 1, "y": 1 if loss != "bce" else 0}]}
    spec.update(extra)
    return spec


def test_a_value_just_below_a_tie_rounds_down():
    """σ(0.002) = 0.50049999983…: 0.500 on a calculator, and in the document."""
    from tests.calculator import check, displays

    markdown = derive.render(derive.solve(_one_neuron("sigmoid", 0.002)), "md")
    assert r"\frac{1}{1 + e^{- 0.002}} = 0.5" in markdown
    assert all(c.ok for d in displays(markdown) for c in check(d, 3))


def test_a_prediction_rounded_to_1_under_a_log_is_a_clear_error():
    with pytest.raises(derive.NumericalError, match=r"a prediction rounds to 0 or 1 at 3 decimals.*--digits.*--rounding exact"):
        derive.solve(_one_neuron("sigmoid", 8.0, "bce"))
    assert derive.solve(_one_neuron("sigmoid", 8.0, "bce"), rounding="exact").exact.final_loss > 7


def test_huge_values_are_carried_without_failing():
    spec = _one_neuron("linear", 1.0, "sse", learning_rate=5, steps=15)
    carried, exact = derive.solve(spec).to_dict(), derive.solve(spec, rounding="exact").to_dict()
    assert carried["final"]["shown"]["loss"] == pytest.approx(exact["final"]["loss"], rel=1e-9)


def test_numbers_given_with_many_decimals_are_printed_as_given():
    spec = _one_neuron("linear", 0.1234567)
    spec["layers"][0]["bias"] = [0.3333333]
    text = derive.render(derive.solve(spec), "md")
    assert "0.1234567" in text and "0.3333333" in text


def test_a_parameter_with_a_zero_gradient_keeps_its_value():
    spec = {"inputs": 1, "layers": [{"units": 1, "activation": "relu", "weights": [[-0.66988]], "bias": [-0.1]}],
            "loss": "half_sse", "learning_rate": 0.1, "data": [{"x": 1, "y": 1}]}
    updated = derive.solve(spec).to_dict()["steps"][0]["shown"]["updated"]
    assert updated == {"W1[0,0]": -0.66988, "b1[0]": -0.1}


def test_equally_far_predictions_did_not_move():
    """[0.3, 0.6] → [0.5, 0.4] around [0.4, 0.5]: the distance is 0.02 both times."""
    spec = {"inputs": 1, "layers": [{"units": 2, "activation": "linear", "weights": [[0.3], [0.6]]}],
            "loss": "half_sse", "learning_rate": 2, "data": [{"x": 1, "y": [0.4, 0.5]}]}
    assert "the prediction did not move" in _closing(derive.render(derive.solve(spec), "md"))


def test_a_softmax_tie_predicts_no_single_class():
    spec = {"inputs": 1, "layers": [{"units": 3, "activation": "softmax", "weights": [[0.5], [0.5], [0.1]], "bias": [0, 0, 0]}],
            "loss": "cross_entropy", "learning_rate": 0.1, "data": [{"x": 1, "y": [0, 1, 0]}]}
    text = derive.render(derive.solve(spec), "md")
    assert "no single class is predicted (a tie between classes 0 and 1)" in text
    assert "changed from 0 or 1 (a tie) to 1" in _closing(text)


def test_a_unit_active_during_training_is_not_called_never_active():
    spec = {"inputs": 1, "layers": [{"units": 1, "activation": "relu", "weights": [[-0.1]], "bias": [0.2]},
                                    {"units": 1, "activation": "linear", "weights": [[1.0]]}],
            "loss": "half_sse", "learning_rate": 3, "update": "sample", "steps": 3,
            "data": [{"x": 1, "y": 1}, {"x": -1, "y": -5}]}
    solution = derive.solve(spec)
    text = derive.render(solution, "md")
    # The case this is about, asserted rather than assumed: active at the start (by hand,
    # z = −0.1 · 1 + 0.2 = 0.1 > 0), at or below 0 for every sample after the last update.
    assert solution.updates[0].forwards[0].pre[0][0] == pytest.approx(0.1)
    assert all(f.pre[0][0] <= 0 for f in solution.shown.final)
    assert "is dead. It was active during training" in text and "never active" not in text


def test_a_negative_number_subtracted_is_bracketed():
    spec = _one_neuron("linear", -0.5)
    spec["data"] = [{"x": 1, "y": -0.2}]
    text = derive.render(derive.solve(spec), "md")
    assert r"-0.2 - \left(-0.5\right)" in text and "- -" not in text


@pytest.mark.parametrize("arguments,message", [
    (dict(digits=50), "digits: expected a whole number from 0 to 12, got 50"),
    (dict(digits=True), "digits: expected a whole number from 0 to 12, got True"),
    (dict(rounding="bogus"), "rounding: expected one of exact, carry, got 'bogus'"),
])
def test_bad_arguments_to_the_api(arguments, message):
    with pytest.raises(derive.DeriveError, match=re.escape(message)):
        derive.solve("esuli", **arguments)
    with pytest.raises(derive.DeriveError, match="digits: expected"):
        derive.render(derive.solve("esuli"), "md", digits=-1)


def test_a_large_learning_rate_that_raises_the_loss_is_called_too_large():
    spec = _one_neuron("linear", 1.0, "sse", learning_rate=10, data=[{"x": 1, "y": 0}])
    text = derive.render(derive.solve(spec), "md")
    assert "here too large: the forward pass with the updated parameters shows the loss rising" in text
    assert re.search(r"The loss rose from", _closing(text))
