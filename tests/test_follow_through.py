"""Follow-through credit: an answer wrong only because the student's own earlier answer is
wrong, and right from it, earns its point (or the credit asked for); one that the earlier
value makes trivial does not. The values a simulated student writes are computed here as
that student would: from the spec by hand for the small case, and by the engine for the
others, with the slip given."""

from __future__ import annotations

import csv
import json
import math

import pytest

from derive.cli import main
from derive.exercises.variants import _run_values
from derive.model.numeric import CompiledNetwork
from derive.solution.derivation import runs


def _exam(tmp_path, template, *options):
    out = tmp_path / "exam"
    assert main(["exercise", template, "--count", "3", "--seed", "9", "--format", "json", "--output", str(out), *options]) == 0
    answers = list(csv.DictReader((out / "answers.csv").open()))
    variants = json.loads((out / "variants.json").read_text())
    return out, answers, variants


def _grade(tmp_path, out, rows, *options):
    responses = tmp_path / "responses.csv"
    with responses.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", "variant", "question", "value"])
        writer.writerows(rows)
    assert main(["grade", str(out / "answers.csv"), str(responses), "--output", str(tmp_path / "grades.csv"), *options]) == 0
    grades = {g["student"]: g for g in csv.DictReader((tmp_path / "grades.csv").open())}
    details = {(d["student"], d["question"]): d for d in csv.DictReader((tmp_path / "grades-details.csv").open())}
    return grades, details


@pytest.mark.parametrize("template", ["esuli", "students", "adam"])
def test_an_early_slip_then_correct_work_earns_follow_through(tmp_path, template):
    out, answers, variants = _exam(tmp_path, template)
    rows, expected = [], {}
    for variant, setting in variants.items():
        asked = [a for a in answers if a["variant"] == variant]
        slipped = asked[0]  # the network's output (or the first asked value): a slip of 0.05
        slip = round(float(slipped["value"]) + 0.05, 3)
        numbers = runs(setting["spec"], digits=setting["digits"])
        student = _run_values(numbers.network, CompiledNetwork(numbers.network, numbers.compiled.keep, given={slipped["question"]: slip}).run())
        for answer in asked:
            value = slip if answer is slipped else student[answer["question"]]
            rows.append([variant, variant, answer["question"], value])
            changed = abs(value - float(answer["value"])) > float(answer["tolerance"])
            expected[(variant, answer["question"])] = "wrong" if answer is slipped else ("follow-through" if changed else None)
    grades, details = _grade(tmp_path, out, rows)
    for (student, question), outcome in expected.items():
        if outcome is None:
            assert (student, question) not in details
        elif outcome == "wrong":
            assert details[(student, question)]["problem"] == "wrong"
        else:
            detail = details[(student, question)]
            assert detail["problem"] == "follow-through", detail
            assert f"right from your own {rows[[r[0] for r in rows].index(student)][2]}" in detail["feedback"]
    for variant in variants:
        followed = sum(1 for (s, _), o in expected.items() if s == variant and o == "follow-through")
        assert followed >= 1
        assert grades[variant]["score"] == str(len([a for a in answers if a["variant"] == variant]) - 1)
    # half credit, and none
    grades, _ = _grade(tmp_path, out, rows, "--follow-through", "0.5")
    for variant in variants:
        total = len([a for a in answers if a["variant"] == variant])
        followed = sum(1 for (s, _), o in expected.items() if s == variant and o == "follow-through")
        assert float(grades[variant]["score"]) == total - 1 - followed + 0.5 * followed
    grades, details = _grade(tmp_path, out, rows, "--follow-through", "0")
    assert not any(d["problem"] == "follow-through" for d in details.values())


def test_follow_through_by_hand_on_one_sigmoid_neuron(tmp_path):
    """ŷ written 0.7 instead of σ(z): the loss and gradient recomputed from 0.7 by hand."""
    spec = tmp_path / "neuron.yaml"
    spec.write_text(
        "inputs: 1\nlayers:\n  - {units: 1, activation: sigmoid, weights: [[0.5]], bias: [0.2]}\n"
        "loss: half_sse\nlearning_rate: 0.5\ndata: [{x: [1.5], y: [1]}]\n"
    )
    out, answers, _ = _exam(tmp_path, str(spec), "--ask", "a1[0],loss,grad:W1[0,0]")
    variant = answers[0]["variant"]
    spec_of = json.loads((out / "variants.json").read_text())[variant]["spec"]
    x, y = spec_of["data"][0]["x"][0], spec_of["data"][0]["y"][0]
    a = 0.7
    loss = round(0.5 * (y - a) ** 2, 3)
    slope = round(a * (1 - a), 3)
    gradient = round(round(a - y, 3) * slope * x, 3)
    rows = [["ann", variant, "a1[0]", a], ["ann", variant, "loss", loss], ["ann", variant, "grad:W1[0,0]", gradient]]
    right = {r["question"]: float(r["value"]) for r in answers if r["variant"] == variant}
    assert not math.isclose(right["a1[0]"], a)
    grades, details = _grade(tmp_path, out, [r for r in rows])
    assert details[("ann", "a1[0]")]["problem"] == "wrong"
    for question in ("loss", "grad:W1[0,0]"):
        if abs(right[question] - float(dict((r[2], r[3]) for r in rows)[question])) > 0.002:
            assert details[("ann", question)]["problem"] == "follow-through"
    assert float(grades["ann"]["score"]) >= 2


def test_follow_through_is_refused_where_the_slip_kills_the_unit(tmp_path):
    """In esuli, a1[0] feeds the output through w2_00: a student who writes z1[0] < 0 makes
    a1[0] = 0 and ∂E/∂w2_00 = 0, skipping the work: no follow-through."""
    out, answers, variants = _exam(tmp_path, "esuli", "--ask", "z1[0],grad:W2[0,0]")
    rows, refused = [], []
    for variant, setting in variants.items():
        asked = {a["question"]: a for a in answers if a["variant"] == variant}
        if float(asked["z1[0]"]["value"]) <= 0 or float(asked["grad:W2[0,0]"]["value"]) == 0:
            continue
        rows += [[variant, variant, "z1[0]", -0.5], [variant, variant, "grad:W2[0,0]", 0]]
        refused.append(variant)
    assert refused
    _, details = _grade(tmp_path, out, rows)
    for variant in refused:
        detail = details[(variant, "grad:W2[0,0]")]
        assert detail["problem"] == "wrong" and "skips the work" in detail["feedback"]


def test_without_variants_json_there_is_no_follow_through(tmp_path):
    out, answers, variants = _exam(tmp_path, "esuli")
    (out / "variants.json").unlink()
    variant = next(iter(variants))
    asked = [a for a in answers if a["variant"] == variant]
    numbers = runs(variants[variant]["spec"])
    slip = float(asked[0]["value"]) + 0.05
    student = _run_values(numbers.network, CompiledNetwork(numbers.network, numbers.compiled.keep, given={asked[0]["question"]: slip}).run())
    rows = [["ann", variant, a["question"], slip if a is asked[0] else student[a["question"]]] for a in asked]
    _, details = _grade(tmp_path, out, rows)
    assert not any(d["problem"] == "follow-through" for d in details.values())


def test_a_bad_follow_through_credit_is_a_usage_error(tmp_path, capsys):
    out, _, _ = _exam(tmp_path, "esuli")
    (tmp_path / "r.csv").write_text("student,variant,question,value\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["grade", str(out / "answers.csv"), str(tmp_path / "r.csv"), "--follow-through", "2"])
    assert exit_info.value.code == 2 and "--follow-through" in capsys.readouterr().err


def test_follow_through_on_a_computational_graph_by_hand(tmp_path):
    """f = exp(x·y)·z: a student who slips in q1 = x·y and works on correctly from it gets
    q2, f and ∂f/∂x from their q1, computed here by hand (carrying 3 decimals)."""
    spec = tmp_path / "graph.yaml"
    spec.write_text("kind: graph\nexpression: exp(x * y) * z\nvalues: {x: 0.5, y: -1.5, z: 0.3}\n")
    out = tmp_path / "exam"
    ask = "q1,q2,f,grad:x"
    assert main(["exercise", str(spec), "--count", "2", "--seed", "3", "--ask", ask, "--format", "json", "--output", str(out)]) == 0
    variants = json.loads((out / "variants.json").read_text())
    rows = []
    for variant, setting in variants.items():
        x, y, z = (setting["spec"]["values"][n] for n in "xyz")
        q1 = round(x * y + 0.1, 3)  # the slip
        q2 = round(math.exp(q1), 3)
        f = round(q2 * z, 3)
        grad_q1 = round(z * q2, 3)
        grad_x = round(grad_q1 * y, 3)
        rows += [[variant, variant, "q1", q1], [variant, variant, "q2", q2], [variant, variant, "f", f], [variant, variant, "grad:x", grad_x]]
    grades, details = _grade(tmp_path, out, rows)
    for variant in variants:
        assert details[(variant, "q1")]["problem"] == "wrong"
        for question in ("q2", "f", "grad:x"):
            assert details[(variant, question)]["problem"] == "follow-through", details[(variant, question)]
        assert grades[variant]["score"] == "3"
