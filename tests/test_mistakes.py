"""The mistake catalogue: each mistake's values against closed forms written here from the
right answers (never against derive's own earlier output), the variants that keep mistakes
apart, and simulated students who make each mistake, graded by `derive grade`."""

from __future__ import annotations

import csv
import math

import pytest

import derive
from derive.cli import main
from derive.exercises.variants import graph_mistaken_values, mistaken_values
from derive.model.mistakes import CATALOGUE, MISTAKES, applicable
from derive.solution.derivation import runs

ONE_NEURON = {
    "inputs": 2,
    "layers": [{"units": 1, "activation": "sigmoid", "weights": [[0.4, -0.3]], "bias": [0.1]}],
    "loss": "half_sse",
    "learning_rate": 0.5,
    "data": [{"x": [1.5, 0.5], "y": [1]}],
}
TWO_SAMPLES = {**ONE_NEURON, "data": [{"x": [1.5, 0.5], "y": [1]}, {"x": [-0.5, 1.0], "y": [0]}]}


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def mistaken(spec, name: str) -> dict[str, float]:
    """The mistake's values at full precision, by question id."""
    return mistaken_values(runs(spec, rounding="exact"), MISTAKES[name], 3)[1]


def right(spec) -> dict[str, float]:
    key = derive.solve(spec, rounding="exact").to_dict()["steps"][0]
    values = {f"grad:{k}": v for k, v in key["gradients"].items()}
    values.update({f"new:{k}": v for k, v in key["updated"].items()})
    return values


def test_every_mistake_has_a_name_a_title_and_feedback():
    assert len({m.name for m in CATALOGUE}) == len(CATALOGUE) >= 15
    assert all(m.title and len(m.feedback) > 40 and m.feedback.endswith(".") for m in CATALOGUE)


# -- each mistake's numbers, from closed forms ----------------------------------------------------


def test_the_learning_rate_mistakes():
    good, rate = right(ONE_NEURON), ONE_NEURON["learning_rate"]
    w = {"W1[0,0]": 0.4, "W1[0,1]": -0.3, "b1[0]": 0.1}
    for name, update in (
        ("update_sign", lambda w, g: w + rate * g),
        ("rate_not_applied", lambda w, g: w - g),
        ("rate_twice", lambda w, g: w - rate * rate * g),
    ):
        values = mistaken(ONE_NEURON, name)
        for key, before in w.items():
            assert values[f"new:{key}"] == pytest.approx(update(before, good[f"grad:{key}"]), abs=1e-12), (name, key)


def test_the_error_and_loss_mistakes_scale_every_gradient():
    good = right(ONE_NEURON)
    for name, factor in (("error_sign", -1.0), ("half_forgotten", 2.0)):
        values = mistaken(ONE_NEURON, name)
        for key in ("W1[0,0]", "W1[0,1]", "b1[0]"):
            assert values[f"grad:{key}"] == pytest.approx(factor * good[f"grad:{key}"], rel=1e-12), (name, key)


def test_the_batch_mistakes():
    good = right(TWO_SAMPLES)
    summed = mistaken(TWO_SAMPLES, "batch_sum")
    assert summed["grad:W1[0,0]"] == pytest.approx(2 * good["grad:W1[0,0]"], rel=1e-12)
    averaged = mistaken({**TWO_SAMPLES, "batch": "sum"}, "batch_mean")
    assert averaged["grad:W1[0,1]"] == pytest.approx(right({**TWO_SAMPLES, "batch": "sum"})["grad:W1[0,1]"] / 2, rel=1e-12)


def test_the_activation_derivative_mistakes():
    (x0, x1), y = ONE_NEURON["data"][0]["x"], 1
    z = 0.4 * x0 - 0.3 * x1 + 0.1
    a = sigmoid(z)
    slope = a * (1 - a)
    expected = {
        "no_activation_derivative": (a - y) * x0,
        "activation_derivative_twice": (a - y) * slope**2 * x0,
        "derivative_at_activation": (a - y) * sigmoid(a) * (1 - sigmoid(a)) * x0,
    }
    assert right(ONE_NEURON)["grad:W1[0,0]"] == pytest.approx((a - y) * slope * x0, rel=1e-12)
    for name, value in expected.items():
        assert mistaken(ONE_NEURON, name)["grad:W1[0,0]"] == pytest.approx(value, rel=1e-12), name


def test_backpropagating_through_the_updated_weights():
    """A 1-1-1 network: the hidden weight's gradient taken with the output weight after the update."""
    spec = {
        "inputs": 1,
        "layers": [
            {"units": 1, "activation": "tanh", "weights": [[0.8]], "bias": [0.0]},
            {"units": 1, "activation": "sigmoid", "weights": [[-0.6]], "bias": [0.2]},
        ],
        "loss": "half_sse", "learning_rate": 0.5, "data": [{"x": [1.0], "y": [1]}],
    }
    h = math.tanh(0.8)
    o = sigmoid(-0.6 * h + 0.2)
    delta = (o - 1) * o * (1 - o)
    v_after = -0.6 - 0.5 * delta * h
    assert mistaken(spec, "updated_weights")["grad:W1[0,0]"] == pytest.approx(delta * v_after * (1 - h * h) * 1.0, rel=1e-12)
    assert right(spec)["grad:W1[0,0]"] == pytest.approx(delta * -0.6 * (1 - h * h), rel=1e-12)


def test_transposed_indices_swap_the_error_and_the_input():
    spec = {
        "inputs": 2,
        "layers": [{"units": 2, "activation": "sigmoid", "weights": [[0.3, -0.2], [0.5, 0.1]], "bias": [0.0, 0.1]}],
        "loss": "half_sse", "learning_rate": 0.1, "data": [{"x": [1.0, -2.0], "y": [1, 0]}],
    }
    good, values = right(spec), mistaken(spec, "transposed_indices")
    x = spec["data"][0]["x"]
    delta = [good["grad:b1[0]"], good["grad:b1[1]"]]  # ∂E/∂b_i is the unit's error δ_i
    for i in range(2):
        for j in range(2):
            assert values[f"grad:W1[{i},{j}]"] == pytest.approx(delta[j] * x[i], rel=1e-12)


def test_softmax_with_only_the_jacobians_diagonal():
    spec = {
        "inputs": 1,
        "layers": [{"units": 2, "activation": "softmax", "weights": [[0.5], [-0.5]], "bias": [0.0, 0.0]}],
        "loss": "half_sse", "learning_rate": 0.1, "data": [{"x": [1.0], "y": [1, 0]}],
    }
    e0, e1 = math.exp(0.5), math.exp(-0.5)
    a = [e0 / (e0 + e1), e1 / (e0 + e1)]
    y = [1, 0]
    diagonal = [(a[i] - y[i]) * a[i] * (1 - a[i]) for i in range(2)]
    values = mistaken(spec, "softmax_diagonal")
    assert [values["grad:b1[0]"], values["grad:b1[1]"]] == pytest.approx(diagonal, rel=1e-12)
    full = [sum((a[k] - y[k]) * a[k] * ((k == i) - a[i]) for k in range(2)) for i in range(2)]
    assert [right(spec)["grad:b1[0]"], right(spec)["grad:b1[1]"]] == pytest.approx(full, rel=1e-12)


def test_relu_prime_at_zero_taken_as_one():
    spec = {
        "inputs": 1,
        "layers": [
            {"units": 1, "activation": "relu", "weights": [[0.5]], "bias": [-0.5]},  # z = 0 exactly
            {"units": 1, "activation": "linear", "weights": [[2.0]], "bias": [0.1]},
        ],
        "loss": "half_sse", "learning_rate": 0.1, "data": [{"x": [1.0], "y": [1]}],
    }
    assert right(spec)["grad:W1[0,0]"] == 0
    # ∂E/∂w = (ŷ − y) · v · 1 · x with ŷ = 0.1
    assert mistaken(spec, "relu_kink_one")["grad:W1[0,0]"] == pytest.approx((0.1 - 1) * 2.0 * 1.0, rel=1e-12)


def test_rounding_mistakes_write_fewer_or_cut_digits():
    numbers = runs("esuli")
    early, _ = mistaken_values(numbers, MISTAKES["rounded_early"], 3)
    assert all(abs(v * 10 - round(v * 10)) < 1e-9 for k, v in early.items() if not k.startswith("new:"))
    cut, _ = mistaken_values(numbers, MISTAKES["truncated"], 3)
    shown = derive.solve("esuli").to_dict()["steps"][0]["shown"]["forward"][0]
    # a2[0] = σ(0.103) = 0.52573: cut to 0.525, not rounded to 0.526
    assert shown["a2[0]"] == 0.526 and cut["a2[0]"] == 0.525
    assert all(abs(v * 1000 - round(v * 1000)) < 1e-6 for v in cut.values())


def test_mistakes_that_cannot_show_are_skipped():
    names = {m.name for m in applicable(derive.load_spec(ONE_NEURON))}
    assert "updated_weights" not in names and "softmax_diagonal" not in names and "batch_sum" not in names
    assert "relu_kink_one" not in names and "transposed_indices" not in names
    assert {"batch_sum", "error_sign"} <= {m.name for m in applicable(derive.load_spec(TWO_SAMPLES))}


# -- variants and simulated students ----------------------------------------------------------------


@pytest.mark.parametrize("template", ["esuli", "students", "adam"])
def test_variants_keep_the_mistakes_apart(template):
    for exercise in derive.exercise(template, 11, count=4):
        for question in exercise.questions:
            answer = exercise.answers[question.id]
            values = exercise.mistakes.get(question.id, {})
            for name, value in values.items():
                assert abs(value - answer.value) > answer.tolerance, (exercise.id, question.id, name)
            made_here = [v for n, v in values.items() if question.kind.value in MISTAKES[n].shows_in]
            for i, a in enumerate(made_here):
                for b in made_here[i + 1 :]:
                    assert abs(a - b) > answer.tolerance or a == b


def _write(path, header, rows):
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)


RANDOM_SHAPES = [  # drawn networks of other shapes, activations and losses
    ["--shape", "2,3,2", "--activations", "tanh,softmax", "--loss", "cross_entropy"],
    ["--shape", "3,2,2,1", "--activations", "leaky_relu,sigmoid,sigmoid", "--loss", "bce"],
    ["--shape", "2,2,2", "--activations", "relu,linear", "--loss", "mse"],
    ["--shape", "2,2,1", "--activations", "sigmoid,sigmoid", "--loss", "half_sse"],
]


@pytest.mark.parametrize(
    "template",
    [["esuli"], ["students"], ["adam"], ["circuit", "--ask", "q1,q4,q6,f,grad:w0,grad:x0,grad:x1,grad:w2"], *RANDOM_SHAPES],
    ids=lambda args: " ".join(args)[:40],
)
def test_simulated_students_are_told_their_mistake(tmp_path, template):
    """For each variant and each mistake it lists, a student who makes that mistake (and is
    right wherever the mistake changes nothing): every answer the mistake changes is either
    named, by that mistake or one that gives the same value, or earns follow-through because
    it follows from an earlier answer the mistake changed; none is unexplained."""
    out = tmp_path / "exam"
    assert main(["exercise", *template, "--count", "3", "--seed", "5", "--format", "json", "--output", str(out)]) == 0
    answers = list(csv.DictReader((out / "answers.csv").open()))
    mistakes = list(csv.DictReader((out / "mistakes.csv").open()))
    assert mistakes, "the variants list their mistakes"
    rows, expected = [], {}
    for variant in sorted({a["variant"] for a in answers}):
        made = {(m["mistake"]) for m in mistakes if m["variant"] == variant}
        for name in made:
            student = f"{variant}:{name}"
            for answer in (a for a in answers if a["variant"] == variant):
                value = next((m["value"] for m in mistakes if m["variant"] == variant and m["question"] == answer["question"]
                              and m["mistake"] == name), None)
                rows.append([student, variant, answer["question"], value if value is not None else answer["value"]])
                if value is not None:
                    expected[(student, answer["question"])] = (name, float(value))
    responses = tmp_path / "responses.csv"
    _write(responses, ["student", "variant", "question", "value"], rows)
    assert main(["grade", str(out / "answers.csv"), str(responses), "--output", str(tmp_path / "grades.csv")]) == 0
    details = {(d["student"], d["question"]): d for d in csv.DictReader((tmp_path / "grades-details.csv").open())}
    assert set(details) == set(expected)
    same_value = named = 0
    for (student, question), (name, value) in expected.items():
        detail = details[(student, question)]
        if detail["problem"] == "follow-through":
            assert detail["feedback"].startswith("right from your own ")
            continue
        named += 1
        assert detail["problem"] == "wrong" and detail["feedback"].endswith(MISTAKES[detail["mistake"]].feedback)
        if detail["mistake"] != name:  # another mistake that gives this very value
            variant = student.split(":")[0]
            other = next(m for m in mistakes if m["variant"] == variant and m["question"] == question and m["mistake"] == detail["mistake"])
            assert abs(float(other["value"]) - value) <= float(detail["tolerance"])
            same_value += 1
    assert named and same_value < named / 2
    summary = list(csv.DictReader((tmp_path / "grades-summary.csv").open()))
    assert sum(int(row["unexplained"]) for row in summary) == 0
    assert sum(int(row["wrong"]) + int(row["follow_through"]) for row in summary) == len(expected)


def test_an_answer_no_mistake_explains_is_said_so(tmp_path):
    out = tmp_path / "exam"
    assert main(["exercise", "esuli", "--count", "1", "--format", "json", "--output", str(out)]) == 0
    answer = next(csv.DictReader((out / "answers.csv").open()))
    responses = tmp_path / "responses.csv"
    _write(responses, ["student", "variant", "question", "value"], [["ann", answer["variant"], answer["question"], "123.456"]])
    assert main(["grade", str(out / "answers.csv"), str(responses), "--output", str(tmp_path / "grades.csv")]) == 0
    detail = next(d for d in csv.DictReader((tmp_path / "grades-details.csv").open()) if d["question"] == answer["question"])
    assert detail["mistake"] == "" and detail["feedback"] == "matches no catalogued mistake"


def test_moodle_cloze_lists_the_mistakes_with_their_feedback(tmp_path):
    import html
    import xml.etree.ElementTree as ET

    from tests.test_lms import ALTERNATIVE, ANSWER

    out = tmp_path / "exam"
    assert main(["exercise", "esuli", "--count", "2", "--format", "json,moodle", "--output", str(out)]) == 0
    mistakes = list(csv.DictReader((out / "mistakes.csv").open()))
    texts = [q.find("questiontext/text").text for q in ET.parse(out / "moodle.xml").getroot().iter("question")
             if q.get("type") == "cloze"]
    found = []
    import re

    for text in texts:
        for match in ANSWER.finditer(text):
            for alternative in re.finditer("(?:^|~)" + ALTERNATIVE, match.group(16)):
                if alternative.group(1) == "%0%":
                    found.append((float(alternative.group(3).split(":")[0]), html.unescape(alternative.group(5))))
    assert len(found) == len(mistakes)
    assert {feedback for _, feedback in found} <= {m.feedback for m in CATALOGUE}


# -- computational graphs -----------------------------------------------------------------------


def _graph_mistake(expression: str, values: dict[str, float], name: str) -> dict[str, float]:
    """A graph mistake's values at full precision, by answer id (f, q1, grad:x)."""
    solution = derive.solve({"kind": "graph", "expression": expression, "values": values}, rounding="exact")
    return graph_mistaken_values(solution, MISTAKES[name], 3)[1]


def test_graph_mistakes_against_closed_forms():
    x, y = 0.5, -1.5
    # a value used twice (x in x*y and in + x): its gradient is y + 1; one use kept gives y
    assert _graph_mistake("x * y + x", {"x": x, "y": y}, "fork_not_summed")["grad:x"] == pytest.approx(y)
    # σ′ taken at the gate's output q = σ(x): σ(q)(1 − σ(q)) for σ(x)(1 − σ(x))
    q = sigmoid(x)
    assert _graph_mistake("sigmoid(x) * y", {"x": x, "y": y}, "gate_derivative_at_output")["grad:x"] == pytest.approx(
        y * sigmoid(q) * (1 - sigmoid(q))
    )
    # the multiply gate's swap missed: ∂(x·y)/∂x taken as x
    assert _graph_mistake("x * y", {"x": x, "y": y}, "multiply_not_swapped")["grad:x"] == pytest.approx(x)
    assert _graph_mistake("x * y", {"x": x, "y": y}, "multiply_not_swapped")["grad:y"] == pytest.approx(y)
    # ∂(x − y)/∂y taken as +1
    assert _graph_mistake("(x - y) * 2", {"x": x, "y": y}, "subtract_sign")["grad:y"] == pytest.approx(2.0)
    # the chain rule left out: each gradient the sum of the local gradients, not of their products
    found = _graph_mistake("exp(x * y)", {"x": x, "y": y}, "chain_left_out")
    assert found["grad:x"] == pytest.approx(y) and found["grad:q1"] == pytest.approx(math.exp(x * y))
    # the right values for comparison: no mistake in a graph that lacks its gate changes anything
    assert _graph_mistake("x + y", {"x": x, "y": y}, "multiply_not_swapped")["grad:x"] == pytest.approx(1.0)


def test_graph_exercises_name_their_mistakes(tmp_path):
    out = tmp_path / "exam"
    assert main(["exercise", "circuit", "--count", "3", "--seed", "4", "--format", "json,moodle", "--output", str(out)]) == 0
    rows = list(csv.DictReader((out / "mistakes.csv").open()))
    assert {"multiply_not_swapped", "chain_left_out", "rounded_early"} <= {r["mistake"] for r in rows}
    # a student making the multiply gate's mistake is told so
    answers = list(csv.DictReader((out / "answers.csv").open()))
    made = {(r["variant"], r["question"]): r["value"] for r in rows if r["mistake"] == "multiply_not_swapped"}
    responses = tmp_path / "responses.csv"
    with responses.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", "variant", "question", "value"])
        for a in answers:
            writer.writerow([a["variant"], a["variant"], a["question"], made.get((a["variant"], a["question"]), a["value"])])
    assert main(["grade", str(out / "answers.csv"), str(responses), "--output", str(tmp_path / "grades.csv")]) == 0
    details = list(csv.DictReader((tmp_path / "grades-details.csv").open()))
    assert details and all(d["mistake"] == "multiply_not_swapped" for d in details)
    assert len(details) == len(made)
    assert "~%0%" in (out / "moodle.xml").read_text()
