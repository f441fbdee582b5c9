"""The self-check page (`derive exercise --format html`), in a real headless Chromium.

Its verdicts are checked against `derive grade` on the same answers, for simulated students
who answer right, slip early and then work correctly from the slip (values computed by the
engine, not by the page's program), make each catalogued mistake, or type nonsense. The
program the page recomputes follow-through with is checked against the engine too, in
Python (solution/program.py) and as the page's JavaScript."""

from __future__ import annotations

import csv
import json
import math
import random

import mpmath
import re
import shutil
from pathlib import Path

import pytest

import derive
from derive.cli import main
from derive.exercises.variants import _graph_values, graph_values_given, update_values, values_given
from derive.model.mistakes import MISTAKES
from derive.model.numeric import CompiledNetwork, carried, exact
from derive.solution.derivation import runs
from derive.solution.program import graph_program, program
from derive.spec.schema import load_spec
from tests.test_circuit import VARIABLES, as_text, random_tree, tree_variables
from tests.test_handout import _random_spec

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


# -- the program, against the engine ------------------------------------------------------------


def _random_setting(seed: int) -> tuple[dict, dict]:
    rng = random.Random(seed)
    spec = _random_spec(rng)
    spec["update"] = rng.choice(["batch", "sample"])
    spec["optimizer"] = rng.choice([
        {"name": "sgd"}, {"name": "momentum", "momentum": 0.9}, {"name": "adam"}, {"name": "rmsprop"},
        {"name": "adagrad"}, {"name": "momentum", "momentum": 0.5, "nesterov": True},
    ])
    if rng.random() < 0.3:
        spec["weight_decay"] = 0.1
        spec["weight_decay_mode"] = rng.choice(["coupled", "decoupled"])
    options = {"rounding": "exact"} if rng.random() < 0.3 else {}
    return spec, options


@pytest.mark.parametrize("seed", range(30))
def test_the_program_recomputes_as_the_engine_does(seed):
    """With no value given, the program gives every value the solution shows; with a
    student's values given, the values the engine computes from them (the follow-through
    of `derive grade`)."""
    for draw in range(seed * 100, seed * 100 + 100):  # the first draw that trains at 3 decimals
        spec, options = _random_setting(draw)
        try:
            solution = derive.solve(spec, **options)
            break
        except derive.DeriveError:
            continue
    numbers = runs(spec, **options)
    right = update_values(numbers.network, numbers.shown.updates[0])
    compiled = program(solution, right)
    assert compiled.run() == (right if compiled.digits is not None else pytest.approx(right, rel=1e-12, abs=1e-15))
    for step in compiled.steps:
        assert step.name in compiled.constants or not math.isnan(step.value)
    rng = random.Random(seed)
    for _ in range(8):
        given = {k: round(right[k] + rng.choice([-1, 1]) * rng.uniform(0.01, 0.3), 3) for k in rng.sample(sorted(right), 2)}
        engine = values_given(numbers, given)
        mine = compiled.run(given)
        assert (mine is None) == (engine is None), given  # both refuse a line that cannot be computed
        if engine is None:
            continue
        for question in right:
            if question not in given:
                assert mine[question] == pytest.approx(engine[question], abs=1e-9), (question, given)


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("rounding", ["carry", "exact"])
def test_the_graph_program_recomputes_as_the_circuit_engine_does(seed, rounding):
    """A computational graph's program against the circuit engine run with the values
    given (`derive grade`'s follow-through for graphs), on random expressions."""
    rng = random.Random(seed)
    solution = None
    while solution is None:  # carried at 3 decimals, a drawn tree may reach a domain edge: draw again
        numbers = {name: round(rng.uniform(-2, 2), 2) for name in VARIABLES}
        with mpmath.workdps(30):
            point = {name: mpmath.mpf(value) for name, value in numbers.items()}
            used: list[str] = []
            while not used:
                tree = random_tree(rng, rng.randint(2, 10), point)
                used = sorted(tree_variables(tree))
        spec = {"kind": "graph", "expression": as_text(tree, rng), "values": {name: numbers[name] for name in used}}
        try:
            solution = derive.solve(spec, rounding=rounding)
        except derive.DeriveError:
            continue
    compiled = graph_program(solution)
    keep = carried(3) if rounding == "carry" else exact
    right = _graph_values(solution.shown)
    assert compiled.run() == pytest.approx({q: right[q] for q in compiled.questions}, rel=1e-12, abs=1e-15)
    for _ in range(6):
        given = {k: round(right[k] + rng.uniform(-0.3, 0.3), 3) for k in rng.sample(sorted(compiled.questions), 2)}
        engine = graph_values_given(load_spec(spec), given, keep)
        mine = compiled.run(given)
        assert (mine is None) == (engine is None), given
        if engine is None:
            continue
        for question in compiled.questions:
            if question not in given:
                assert mine[question] == pytest.approx(engine[question], rel=1e-9, abs=1e-12), (spec["expression"], given, question)


# -- the page in the browser -------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "the browser tests need Debian's chromium (.ci/run installs it)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


def _exam(tmp_path: Path, template: str, count: int = 2) -> Path:
    out = tmp_path / template
    ask = ["--ask", "q1,q4,q6,f,grad:w0,grad:x0,grad:x1,grad:w2"] if template == "circuit" else []  # slips that show later
    assert main(["exercise", template, "--count", str(count), "--seed", "5", "--format", "html,json", "--output", str(out), *ask]) == 0
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(newline="", encoding="utf-8")))


def _students(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    """(student, variant) → question → the value typed."""
    answers = _rows(out / "answers.csv")
    mistakes = _rows(out / "mistakes.csv")
    variants = json.loads((out / "variants.json").read_text())
    students: dict[tuple[str, str], dict[str, str]] = {}
    for variant, setting in variants.items():
        asked = [a for a in answers if a["variant"] == variant]
        students[("right", variant)] = {a["question"]: a["value"] for a in asked}
        # an early slip, then correct work from it (computed by the engine with the slip given)
        slipped = asked[0]
        slip = round(float(slipped["value"]) + 0.05, 3)
        if setting["spec"].get("kind", "network") == "network":
            numbers = runs(setting["spec"], digits=setting["digits"])
            compiled = CompiledNetwork(numbers.network, numbers.compiled.keep, given={slipped["question"]: slip})
            own = update_values(numbers.network, compiled.first_update())
        else:
            own = graph_values_given(load_spec(setting["spec"]), {slipped["question"]: slip}, carried(setting["digits"]))
        students[("slip", variant)] = {a["question"]: str(slip if a is slipped else round(own[a["question"]], 3)) for a in asked}
        # each catalogued mistake, on every question it changes
        made: dict[str, dict[str, str]] = {}
        for row in mistakes:
            if row["variant"] == variant:
                made.setdefault(row["mistake"], {a["question"]: a["value"] for a in asked})[row["question"]] = row["value"]
        for name, values in made.items():
            students[(name, variant)] = values
        # nonsense, a blank, a number no mistake explains
        odd = {a["question"]: a["value"] for a in asked}
        first, second, third = (a["question"] for a in asked[:3])
        odd.update({first: "abc", second: "", third: str(float(answers[0]["value"]) + 7.5)})
        students[("odd", variant)] = odd
        # what Python's strip() and JavaScript's trim() disagree on: a byte-order mark, \x85, \x1f
        spaced = {a["question"]: a["value"] for a in asked}
        spaced.update({first: "\ufeff" + spaced[first], second: spaced[second] + "\x85", third: "\x1f"})
        students[("spaces", variant)] = spaced
    return students


class _Page:
    """One self-check page open in the browser, answered again and again."""

    def __init__(self, browser, path: Path):
        self.page = browser.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(path.as_uri())

    def verdicts(self, values: dict[str, str], typed: bool = False) -> dict[str, tuple[str, str, str]]:
        """question → (status, mistake, the feedback's text) after entering `values` and
        pressing Check: `typed` by the keyboard, else set in one script call (many students)."""
        if typed:
            inputs = self.page.locator("input.derive-answer")
            for k in range(inputs.count()):
                inputs.nth(k).fill(values.get(inputs.nth(k).get_attribute("data-question"), ""))
            self.page.click("#derive-check")
        else:
            self.page.evaluate(
                """(values) => {
                    for (const input of document.querySelectorAll("input.derive-answer")) input.value = values[input.dataset.question] ?? "";
                    document.getElementById("derive-check").click();
                }""",
                values,
            )
        found = self.page.evaluate(
            """() => [...document.querySelectorAll("input.derive-answer")].map((input) => {
                const place = document.getElementById("verdict-" + input.dataset.number);
                return [input.dataset.question, place.dataset.status, place.dataset.mistake, place.textContent];
            })"""
        )
        assert not self.errors, self.errors
        return {question: (status, mistake, text) for question, status, mistake, text in found}

    def close(self) -> None:
        self.page.close()


def _page_verdicts(browser, page_path: Path, values: dict[str, str]) -> dict[str, tuple[str, str, str]]:
    page = _Page(browser, page_path)
    try:
        return page.verdicts(values, typed=True)
    finally:
        page.close()


@pytest.mark.parametrize("template", ["esuli", "students", "adam", "circuit"])
def test_the_page_grades_as_derive_grade_does(tmp_path, browser, template):
    out = _exam(tmp_path, template)
    students = _students(out)
    responses = tmp_path / "responses.csv"
    with responses.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", "variant", "question", "value"])
        for (name, variant), values in students.items():
            writer.writerows([f"{name}/{variant}", variant, q, v] for q, v in values.items())
    assert main(["grade", str(out / "answers.csv"), str(responses), "--output", str(tmp_path / "grades.csv")]) == 0
    details = {(d["student"], d["question"]): d for d in _rows(tmp_path / "grades-details.csv")}
    seen = {"follow-through": 0, "mistake": 0}
    pages = {variant: _Page(browser, out / variant / "selfcheck.html") for variant in dict.fromkeys(v for _, v in students)}
    for (name, variant), values in students.items():
        verdicts = pages[variant].verdicts(values)
        for question, (status, mistake, text) in verdicts.items():
            detail = details.get((f"{name}/{variant}", question))
            expected = ("right", "") if detail is None else (detail["problem"], detail["mistake"])
            assert (status, mistake) == expected, (name, variant, question, text, detail)
            if status == "follow-through":
                seen["follow-through"] += 1
                assert "right from your own answer to question" in text
            if mistake:
                seen["mistake"] += 1
                assert text.endswith(MISTAKES[mistake].feedback)
        if name == "odd":
            assert [v[0] for v in verdicts.values()][:3] == ["not a number", "missing", "wrong"]
        if name == "spaces":
            assert [v[0] for v in verdicts.values()][:3] == ["not a number", "right", "missing"]
    for page in pages.values():
        page.close()
    assert seen["follow-through"] >= 2 and seen["mistake"] >= 3, seen


def _lenient(compiled, given: dict[str, float]) -> dict[str, float]:
    """The program's values with `given`, each line computed even where an earlier one
    cannot be (nan, inf): what a student who carries on past a log(0) would write."""
    values = dict(compiled.constants)
    overrides = {compiled.questions[q]: v for q, v in given.items()}
    for step in compiled.steps:
        if step.name in overrides:
            values[step.name] = overrides[step.name]
            continue
        try:
            value = float(step.function(*(values[n] for n in step.inputs)))
        except (ArithmeticError, ValueError):
            value = math.nan
        values[step.name] = round(value, 3) if math.isfinite(value) else value
    return {q: values[name] for q, name in compiled.questions.items()}


def test_no_follow_through_from_a_value_the_derivation_cannot_use(tmp_path, browser):
    """ŷ = 0 where the target is 1 makes the loss log(0): derive grade's recomputation fails,
    so nothing follows from it; the page must not grant follow-through either, even to
    gradients a student computes on from ŷ = 0."""
    out = _exam(tmp_path, "students", count=2)
    variants = json.loads((out / "variants.json").read_text())
    answers = _rows(out / "answers.csv")
    rows, pages = [], []
    for variant, setting in variants.items():
        solution = derive.solve(setting["spec"], digits=setting["digits"])
        target = setting["spec"]["data"][0]["y"][0]
        asked = [a["question"] for a in answers if a["variant"] == variant]
        compiled = program(solution, dict.fromkeys(asked, 0.0))
        given = {"a2[0]": 1.0 - target}
        own = _lenient(compiled, given)
        values = {q: (str(given[q]) if q in given else "5" if not math.isfinite(own[q]) else f"{own[q]:g}") for q in asked}
        rows += [[variant, variant, q, v] for q, v in values.items()]
        pages.append((variant, values))
    responses = tmp_path / "responses.csv"
    with responses.open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerows([["student", "variant", "question", "value"], *rows])
    assert main(["grade", str(out / "answers.csv"), str(responses), "--output", str(tmp_path / "grades.csv")]) == 0
    details = {(d["student"], d["question"]): d for d in _rows(tmp_path / "grades-details.csv")}
    assert not any(d["problem"] == "follow-through" for d in details.values())
    for variant, values in pages:
        verdicts = _page_verdicts(browser, out / variant / "selfcheck.html", values)
        for question, (status, mistake, text) in verdicts.items():
            detail = details.get((variant, question))
            assert (status, mistake) == (("right", "") if detail is None else (detail["problem"], detail["mistake"])), (question, text)
            assert "your own answer to ." not in text


def test_a_right_answer_a_follow_through_and_a_mistake_read_in_the_page(tmp_path, browser):
    """The issue's walk-through: type a right answer, a follow-through answer and a
    catalogued mistake, and read the feedback the student reads."""
    out = _exam(tmp_path, "esuli", count=1)
    variant = json.loads((out / "variants.json").read_text())
    (name, setting), = variant.items()
    answers = {a["question"]: a["value"] for a in _rows(out / "answers.csv")}
    numbers = runs(setting["spec"], digits=setting["digits"])
    # a slip in the output, then the loss computed from it by the engine
    slip = round(float(answers["a2[0]"]) + 0.05, 3)
    own = update_values(numbers.network, CompiledNetwork(numbers.network, numbers.compiled.keep, given={"a2[0]": slip}).first_update())
    wrong_sign = next(r for r in _rows(out / "mistakes.csv") if r["mistake"] == "update_sign")
    values = {"a2[0]": str(slip), "loss": str(round(own["loss"], 3)), wrong_sign["question"]: wrong_sign["value"]}
    values.update({q: v for q, v in answers.items() if q not in values and q != wrong_sign["question"]})
    verdicts = _page_verdicts(browser, out / name / "selfcheck.html", values)
    assert verdicts["a2[0]"][0] == "wrong"
    assert verdicts["loss"][0] == "follow-through"
    assert verdicts["loss"][2] == "Follow-through: It is right from your own answer to question 1."
    status, mistake, text = verdicts[wrong_sign["question"]]
    assert (status, mistake) == ("wrong", "update_sign")
    assert text == f"Wrong. {wrong_sign['feedback']}"
    assert all(v[0] == "right" for q, v in verdicts.items() if q not in ("a2[0]", "loss", wrong_sign["question"]))


def test_the_page_is_self_contained_and_opens_its_steps_after_trying(tmp_path, browser):
    out = _exam(tmp_path, "students", count=1)
    path = next(out.glob("*/selfcheck.html"))
    text = path.read_text(encoding="utf-8")
    assert "http://" not in text.replace("http://www.w3.org/1998/Math/MathML", "").replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text
    assert "\u0302" not in text  # a combining hat, which Chromium may leave out: ŷ − y would read y − y
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    assert requests == [path.as_uri()]  # nothing else: no script, font or picture from anywhere
    assert page.locator("math").count() > 20  # the math is MathML
    steps = page.locator("details.derive-step")
    assert steps.count() >= 4
    assert [steps.nth(k).locator("summary").text_content() for k in range(3)] == ["Network", "Data", "Forward pass"]
    steps.nth(2).locator("summary").click()
    assert steps.nth(2).get_attribute("open") is None  # locked before trying
    inner = page.evaluate("document.querySelector('#worked details section[id]').id")  # a heading inside a step
    page.goto(path.as_uri() + "#" + inner)
    assert page.locator("details.derive-step[open]").count() == 0  # a link into a step does not open it either
    steps = page.locator("details.derive-step")
    page.click("#derive-check")
    assert page.locator("#verdict-1").get_attribute("data-status") == "missing"
    steps.nth(2).locator("summary").click()
    assert steps.nth(2).get_attribute("open") is not None
    assert re.fullmatch(r"0 of \d+ points\.", page.locator("#derive-score").text_content())
    page.close()


@pytest.mark.parametrize("template", ["students", "adam"])
def test_the_pages_script_computes_the_programs_values(tmp_path, browser, template):
    """The JavaScript printed from the program gives the program's values, with and without
    a student's values given, carried and exact."""
    out = _exam(tmp_path, template, count=1)
    path = next(out.glob("*/selfcheck.html"))
    setting = next(iter(json.loads((out / "variants.json").read_text()).values()))
    solution = derive.solve(setting["spec"], digits=setting["digits"])
    right = {a["question"]: float(a["value"]) for a in _rows(out / "answers.csv")}
    compiled = program(solution, right)
    page = browser.new_page()
    page.goto(path.as_uri())
    rng = random.Random(3)
    for trial in range(6):
        given = {k: round(right[k] + rng.uniform(-0.2, 0.2), 3) for k in rng.sample(sorted(right), trial % 3)}
        script = page.evaluate(
            "([given]) => run(JSON.parse(document.getElementById('derive-data').textContent).program, STEPS, given, false)", [given]
        )
        assert script == pytest.approx(compiled.run(given), abs=1e-12)
    page.close()


def test_html_needs_pandoc(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["exercise", "esuli", "--count", "1", "--format", "html", "--output", str(tmp_path / "x")]) == 2
    assert "HTML output needs pandoc" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
