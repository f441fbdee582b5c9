"""The answer key of exercise variants, checked in every view a student or a teacher reads,
against a student computed here: one who carries every shown value rounded to the
decimals the sheet asks for (as the README's rules say, in exact decimal arithmetic, like
a calculator), and the full-precision values of tests/oracle.py (50 digits).

- each answer is the carried student's value, shown with the decimals the sheet asks for
  in the sheet's own words ("each to 3 decimals") in the answer tables (Markdown, LaTeX),
  answers.csv, key.json, the Moodle Cloze answers and the Canvas (QTI) ranges;
- each tolerance is the README's: the gap between the shown value and the full-precision
  one, plus one unit in the last shown digit, rounded up at the next digit; the same in
  every export;
- grading (derive.grading.grade) gives the point to answers on and inside the tolerance and
  not to answers one step beyond it, through the answers.csv `derive exercise` writes.
"""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from decimal import ROUND_HALF_UP, Decimal

import mpmath
import pytest

from derive.cli import main
from derive.exercises.grading import grade
from tests import oracle

SEED = "0x2b"
COUNT = 4


# -- the two students -------------------------------------------------------------------------------


def carried_student(spec: dict, digits: int) -> dict[str, Decimal]:
    """Every askable value of a ReLU hidden layer, sigmoid output, half-SSE network on its
    first sample, as a student with a calculator writes it: each value rounded half away
    from zero to `digits` decimals as soon as it is written, and used as written. The
    weighted sum is written before its bias (W x, then + b); the product of factors that
    makes ∂E/∂z is not written on its own, so it is not rounded (README, Rounding)."""
    unit = Decimal(1).scaleb(-digits)

    def written(value) -> Decimal:
        return Decimal(value).quantize(unit, rounding=ROUND_HALF_UP)

    def number(value) -> Decimal:
        return Decimal(repr(value))

    hidden, output = spec["layers"]
    assert (hidden["activation"], output["activation"], spec["loss"]) == ("relu", "sigmoid", "half_sse")
    x = [number(v) for v in spec["data"][0]["x"]]
    (y,) = [number(v) for v in spec["data"][0]["y"]]
    W1 = [[number(w) for w in row] for row in hidden["weights"]]
    b1 = [number(b) for b in hidden["bias"]]
    (W2,) = [[number(w) for w in row] for row in output["weights"]]
    (b2,) = [number(b) for b in output["bias"]]
    rate = number(spec["learning_rate"])

    values: dict[str, Decimal] = {}
    h = []
    for i, (row, bias) in enumerate(zip(W1, b1)):
        z = written(written(sum(w * v for w, v in zip(row, x))) + bias)
        values[f"z1[{i}]"] = z
        values[f"a1[{i}]"] = written(max(Decimal(0), z))
        h.append(values[f"a1[{i}]"])
    z2 = written(written(sum(w * v for w, v in zip(W2, h))) + b2)
    y_hat = written(mpmath.nstr(1 / (1 + mpmath.exp(-mpmath.mpf(str(z2)))), 30))
    values.update({"z2[0]": z2, "a2[0]": y_hat, "loss": written((y - y_hat) ** 2 / 2)})
    output_factor = written(y_hat - y) * written(y_hat * (1 - y_hat))  # ∂E/∂ŷ · σ′(z), each written
    gradients = {f"W2[0,{j}]": written(output_factor * h[j]) for j in range(len(h))}
    gradients["b2[0]"] = written(output_factor)
    for i, row in enumerate(W1):
        upstream = written(output_factor * W2[i])  # ∂E/∂a1_i, through the weight before the update
        relu_prime = Decimal(1) if values[f"z1[{i}]"] > 0 else Decimal(0)  # ReLU′(0) = 0
        for j in range(len(x)):
            gradients[f"W1[{i},{j}]"] = written(upstream * relu_prime * x[j])
        gradients[f"b1[{i}]"] = written(upstream * relu_prime)
    initial = {f"W1[{i},{j}]": W1[i][j] for i in range(len(W1)) for j in range(len(x))}
    initial.update({f"b1[{i}]": b for i, b in enumerate(b1)})
    initial.update({f"W2[0,{j}]": w for j, w in enumerate(W2)})
    initial["b2[0]"] = b2
    for name, gradient in gradients.items():
        values[f"grad:{name}"] = gradient
        values[f"new:{name}"] = written(initial[name] - rate * gradient) if gradient else initial[name]
    return values


def full_precision(spec: dict) -> dict[str, mpmath.mpf]:
    """The same values at 50 digits, from tests/oracle.py (finite-difference gradients)."""
    values = {key: oracle.decimal(v) for key, v in oracle.parameters(spec)}
    sample = spec["data"][0]
    record, _ = oracle.forward(spec, values, sample["x"])
    exact = dict(record)
    exact["loss"] = oracle.batch_loss(spec, values, [sample])
    rate = oracle.decimal(spec["learning_rate"])
    for name, gradient in oracle.finite_difference_gradient(spec, values, [sample]).items():
        exact[f"grad:{name}"] = gradient
        exact[f"new:{name}"] = values[name] - rate * gradient
    return exact


def tolerance_bounds(shown: Decimal, exact: mpmath.mpf, digits: int) -> tuple[Decimal, Decimal]:
    """The README's tolerance: |shown − exact| plus one unit in the last shown digit, rounded
    up at the next digit (the lower bound is the value before rounding up)."""
    gap = abs(mpmath.mpf(str(shown)) - exact) + mpmath.mpf(10) ** -digits
    low = Decimal(mpmath.nstr(gap, 40, min_fixed=-50, max_fixed=50))
    return low, low.quantize(Decimal(1).scaleb(-digits - 1), rounding="ROUND_CEILING")


def decimals_of(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


# -- the made exercise --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[3, 4], ids=["3 decimals", "4 decimals"])
def made(request, tmp_path_factory):
    """Variants of the esuli template in every text format and both exports, and what the
    two students make of each: {variant: {question: (key value, key tolerance, student, exact)}}."""
    digits = request.param
    out = tmp_path_factory.mktemp(f"key{digits}")
    assert main(["exercise", "esuli", "--count", str(COUNT), "--seed", SEED, "--digits", str(digits),
                 "--format", "md,tex,json,moodle,qti", "--output", str(out)]) == 0
    expected = {}
    for key_file in sorted(out.glob("V*/key.json")):
        key = json.loads(key_file.read_text())
        student, exact = carried_student(key["spec"], digits), full_precision(key["spec"])
        expected[key["variant"]] = {q["id"]: (student[q["id"]], exact[q["id"]]) for q in key["questions"]}
    assert len(expected) == COUNT
    return out, digits, expected


def asked_decimals(text: str) -> int:
    (asked,) = set(re.findall(r"each to (\d+) decimals", text))
    return int(asked)


MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$]+)\$|\\begin\{(?:align|equation|gather)\*?\}(.+?)\\end\{", re.DOTALL)


def test_the_sheets_and_solutions_ask_for_the_digits_given_and_show_no_more(made):
    """The sheet's "each to N decimals", the solution's "rounded to N decimals", and no
    number in a worked solution's math with more decimals (the drawn numbers have 1; a
    tolerance is shown with N + 1 after its ±, outside the Markdown's math)."""
    out, digits, _ = made
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        assert asked_decimals((folder / "sheet.md").read_text()) == digits
        assert asked_decimals((folder / "sheet.tex").read_text()) == digits
        for solution in ("solution.md", "solution.tex"):
            text = (folder / solution).read_text()
            assert f"Every value is rounded to {digits} decimals as soon as it is shown" in text
            math = " ".join("".join(parts) for parts in MATH.findall(text))
            numbers = re.findall(r"(?<![\w.])\d+\.\d+", re.sub(r"\\pm \d+\.\d+", "", math))
            assert len(numbers) > 50 and max(map(decimals_of, numbers)) == digits, (folder.name, solution)


MARKDOWN_ROW = re.compile(r"^\| (\d+) \| .* \| \$([^$]*)\$ \| ±([0-9.]+) \|$", re.MULTILINE)
LATEX_ROW = re.compile(r"^(\d+) & .* & \$([^$]*)\$ & \$\\pm ([0-9.]+)\$ \\\\$", re.MULTILINE)


@pytest.mark.parametrize("view,row", [("solution.md", MARKDOWN_ROW), ("solution.tex", LATEX_ROW)], ids=["md", "tex"])
def test_answer_tables_show_the_carried_students_values(made, view, row):
    out, digits, expected = made
    for variant, answers in expected.items():
        rows = row.findall((out / variant / view).read_text())
        assert [int(n) for n, _, _ in rows] == list(range(1, len(answers) + 1)), (variant, view)
        for (question, (student, exact)), (_, shown, tolerance) in zip(answers.items(), rows):
            assert decimals_of(shown) <= digits and Decimal(shown) == student, (variant, view, question, shown, student)
            low, high = tolerance_bounds(student, exact, digits)
            assert low <= Decimal(tolerance) <= high, (variant, view, question, tolerance, low)


def test_answers_csv_and_key_json(made):
    out, digits, expected = made
    rows = list(csv.DictReader((out / "answers.csv").open()))
    assert [(r["variant"], r["question"]) for r in rows] == [(v, q) for v, answers in expected.items() for q in answers]
    for row in rows:
        student, exact = expected[row["variant"]][row["question"]]
        assert decimals_of(row["value"]) <= digits and Decimal(row["value"]) == student, row
        low, high = tolerance_bounds(student, exact, digits)
        assert low <= Decimal(row["tolerance"]) <= high, (row, low)
    for variant, answers in expected.items():
        key = json.loads((out / variant / "key.json").read_text())
        assert [q["id"] for q in key["questions"]] == list(answers)
        for question in key["questions"]:
            student, exact = answers[question["id"]]
            assert Decimal(repr(question["value"])) == student
            low, high = tolerance_bounds(student, exact, digits)
            assert low <= Decimal(repr(question["tolerance"])) <= high, (variant, question, low)


def test_moodle_cloze_answers(made):
    out, digits, expected = made
    root = ET.parse(out / "moodle.xml").getroot()
    questions = root.findall("question[@type='cloze']")
    assert [q.find("idnumber").text for q in questions] == list(expected)
    for question in questions:
        variant = question.find("idnumber").text
        text = question.find("questiontext/text").text
        assert asked_decimals(text) == digits
        embedded = re.findall(r"\{1:NUMERICAL:=([-0-9.e]+):([-0-9.e]+)[~}]", text)
        assert len(embedded) == len(expected[variant])
        for (value, tolerance), (student, exact) in zip(embedded, expected[variant].values()):
            assert Decimal(value) == student, (variant, value, student)
            low, high = tolerance_bounds(student, exact, digits)
            assert low <= Decimal(tolerance) <= high, (variant, tolerance, low)


QTI = "{http://www.imsglobal.org/xsd/ims_qtiasiv1p2}"


def test_canvas_ranges(made):
    """Each numerical question of the QTI export accepts exactly value ± tolerance."""
    out, digits, expected = made
    ranges: dict[str, list[tuple[Decimal, Decimal]]] = {}
    for archive in sorted(out.rglob("*.zip")):
        with zipfile.ZipFile(archive) as opened:
            for name in opened.namelist():
                if not name.endswith(".xml") or name.endswith(("imsmanifest.xml", "assessment_meta.xml")):
                    continue
                for item in ET.fromstring(opened.read(name)).iter(f"{QTI}item"):
                    text = "".join(item.itertext())
                    (variant,) = set(re.findall(r"Exercise (V\d+-[0-9a-f]{4})\.", text))
                    assert asked_decimals(text.replace("give the value asked for to", "each to")) == digits
                    low = Decimal(item.find(f".//{QTI}vargte").text)
                    high = Decimal(item.find(f".//{QTI}varlte").text)
                    ranges.setdefault(variant, []).append((low, high))
    assert sorted(ranges) == sorted(expected)
    for variant, answers in expected.items():
        assert len(ranges[variant]) == len(answers)
        for (low, high), (student, exact) in zip(ranges[variant], answers.values()):
            assert (low + high) / 2 == student, (variant, low, high, student)
            least, most = tolerance_bounds(student, exact, digits)
            assert least <= (high - low) / 2 <= most, (variant, low, high, least)


def test_grading_on_inside_and_beyond_every_tolerance(made, tmp_path):
    """Per variant: the carried student, the full-precision student (rounded as asked), two
    students exactly on the boundary of every tolerance (the key's), and two one step of
    the next digit beyond the tolerance the README's rule gives."""
    out, digits, expected = made
    step = Decimal(1).scaleb(-digits - 1)
    key = {(r["variant"], r["question"]): Decimal(r["tolerance"]) for r in csv.DictReader((out / "answers.csv").open())}

    def answer(kind: str, variant: str, question: str, student: Decimal, exact: mpmath.mpf) -> Decimal:
        if kind == "carried":
            return student
        if kind == "exact":
            written = Decimal(mpmath.nstr(exact, 30, min_fixed=-50, max_fixed=50))
            return written.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
        sign = 1 if kind.endswith("above") else -1
        if kind.startswith("on"):
            return student + sign * key[variant, question]
        return student + sign * (tolerance_bounds(student, exact, digits)[1] + step)

    graded_right = ("carried", "exact", "on-above", "on-below")
    rows, right, wrong = [], [], []
    for variant, answers in expected.items():
        for kind in graded_right + ("beyond-above", "beyond-below"):
            name = f"{variant}-{kind}"
            (right if kind in graded_right else wrong).append(name)
            rows += [(name, variant, q, str(answer(kind, variant, q, s, e))) for q, (s, e) in answers.items()]
    responses = tmp_path / "responses.csv"
    with responses.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", "variant", "question", "value"])
        writer.writerows(rows)
    # strict grading: this is about the tolerances, not follow-through
    grades = {g["student"]: g for g in grade(out / "answers.csv", responses, follow_through=0).grades}
    questions = len(next(iter(expected.values())))
    assert {name: (grades[name]["score"], grades[name]["max"]) for name in right} == {name: (questions, questions) for name in right}
    assert {name: grades[name]["score"] for name in wrong} == {name: 0 for name in wrong}
