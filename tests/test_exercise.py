"""Exercises: seeded variants, regeneration from an id, sheets without answers, the
rules of a good variant, tolerances, grading and the Moodle export."""

from __future__ import annotations

import csv
import filecmp
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import derive
from derive.cli import main
from derive.exercises.variants import (
    Answer,
    Rejection,
    exercise,
    exercise_from_shape,
    parse_variant,
    rejections,
    resolve_ask,
    stress,
    variant_id,
)


def tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Six variants of the esuli template in every format (PDFs included)."""
    out = tmp_path_factory.mktemp("exercises")
    assert main(["exercise", "esuli", "--count", "6", "--seed", "0x3f9a", "--format", "md,tex,json,moodle,pdf",
                 "--output", str(out)]) == 0
    return out


def test_layout(made):
    names = {p.name for p in made.iterdir()}
    assert {"sheets.pdf", "solutions.pdf", "answers.csv", "answers.json", "moodle.xml"} <= names
    assert sorted(n for n in names if n.startswith("V")) == [f"V0{i}-3f9a" for i in range(1, 7)]
    assert sorted(p.name for p in (made / "V03-3f9a").iterdir()) == [
        "key.json", "sheet.md", "sheet.network.svg", "sheet.tex", "solution.md", "solution.network.svg", "solution.tex"
    ]
    key = json.loads((made / "V03-3f9a" / "key.json").read_text())
    assert key["format"] == "derive-solution/1" and key["variant"] == "V03-3f9a"
    assert derive.load_spec(key["spec"]).layers[0].activation == "relu"
    # The output, the loss, a gradient in each layer (the weight that matters most in this
    # variant), and that output-layer weight after the update.
    ids = [q["id"] for q in key["questions"]]
    assert ids[:2] == ["a2[0]", "loss"] and ids[2].startswith("grad:W1[") and ids[3].startswith("grad:W2[0,")
    assert ids[4] == "new:" + ids[3].split(":")[1] and len(ids) == 5


def test_same_seed_gives_identical_files(made, tmp_path):
    assert main(["exercise", "esuli", "--count", "6", "--seed", "0x3f9a", "--format", "md,tex,json,moodle,pdf",
                 "--output", str(tmp_path)]) == 0
    assert tree(tmp_path) == tree(made)


def test_another_seed_gives_other_numbers(made, tmp_path):
    assert main(["exercise", "esuli", "--count", "6", "--seed", "7", "--format", "json", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "answers.csv").read_text() != (made / "answers.csv").read_text()


def test_a_variant_regenerates_from_its_id(made, tmp_path):
    assert main(["exercise", "esuli", "--variant", "V04-3f9a", "--format", "md,tex,json", "--output", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["V04-3f9a", "answers.csv", "answers.json", "mistakes.csv", "variants.json"]
    comparison = filecmp.dircmp(tmp_path / "V04-3f9a", made / "V04-3f9a")
    assert not comparison.diff_files and not comparison.left_only
    rows = (tmp_path / "answers.csv").read_text().splitlines()
    assert rows[1:] == [r for r in (made / "answers.csv").read_text().splitlines() if r.startswith("V04-3f9a")]


def test_variant_ids():
    assert variant_id(7, 0x3F9A) == "V07-3f9a"
    assert parse_variant("V07-3f9a") == (7, 0x3F9A)
    with pytest.raises(derive.DeriveError, match="expected an id such as V07-3f9a"):
        parse_variant("V7")


def _without_coordinates(text: str) -> str:
    """A sheet's text without its picture's coordinates and sizes (a label's text stays)."""
    text = re.sub(r"\\derivelabel(?:\{-?[\d.]+\}){6}", "", text)
    text = re.sub(r"\(-?[\d.]+, -?[\d.]+\)|\\pgfpointxy\{-?[\d.]+\}\{-?[\d.]+\}", "", text)
    return re.sub(r"(minimum width|minimum size|text height|text depth)=[\d.]+cm", "", text)


def test_sheets_show_no_answer(made):
    answers = list(csv.DictReader((made / "answers.csv").open()))
    for folder in (p for p in made.iterdir() if p.is_dir()):
        for sheet in ("sheet.md", "sheet.tex"):
            text = _without_coordinates((folder / sheet).read_text())
            assert folder.name in text
            assert "Backpropagation" not in text and "Answers" not in text
            for row in answers:
                if row["variant"] == folder.name and len(row["value"].split(".")[-1]) == 3:
                    assert row["value"] not in text, (sheet, row)
        assert "Answers" in (folder / "solution.md").read_text()


def test_pdfs_hold_every_variant_in_order(made):
    from tests.test_render import pdf_text

    sheets = pdf_text(made / "sheets.pdf")
    solutions = pdf_text(made / "solutions.pdf")
    ids = [f"V0{i}-3f9a" for i in range(1, 7)]
    assert [m for m in re.findall(r"Exercise (V\d\d-3f9a)", sheets) if m in ids][:1] == ["V01-3f9a"]
    positions = [sheets.index(f"Exercise {i}") for i in ids]
    assert positions == sorted(positions)
    for i in ids:
        assert f"Worked solution of exercise {i}" in solutions


def test_answers_csv_and_json_agree(made):
    rows = list(csv.DictReader((made / "answers.csv").open()))
    assert list(rows[0]) == ["variant", "question", "value", "tolerance", "points"]
    assert len(rows) == 6 * 5
    assert json.loads((made / "answers.json").read_text()) == [
        {"variant": r["variant"], "question": r["question"], "value": float(r["value"]), "tolerance": float(r["tolerance"]),
         "points": int(r["points"])}
        for r in rows
    ]
    assert {r["points"] for r in rows} == {"1"}


def test_moodle_xml_matches_the_answers(made):
    root = ET.parse(made / "moodle.xml").getroot()
    assert root.tag == "quiz"
    assert root[0].get("type") == "category" and root[0].find("category/text").text.startswith("$course$/")
    assert root[0].find("category/text").text == "$course$/top/Forward and backward pass in a neural network"
    questions = root.findall("question[@type='cloze']")
    assert [q.find("idnumber").text for q in questions] == [f"V0{i}-3f9a" for i in range(1, 7)]
    assert [q.find("name/text").text for q in questions] == [f"Forward and backward pass in a neural network V0{i}-3f9a" for i in range(1, 7)]
    expected = {}
    for row in csv.DictReader((made / "answers.csv").open()):
        expected.setdefault(row["variant"], []).append((float(row["value"]), float(row["tolerance"])))
    for question in questions:
        text = question.find("questiontext/text").text
        assert question.find("questiontext").get("format") == "html"
        embedded = [(float(v), float(t)) for v, t in re.findall(r"\{1:NUMERICAL:=([-0-9.e]+):([0-9.e-]+)[~}]", text)]
        assert embedded == expected[question.find("idnumber").text]
        assert "\\(" in text and "\\[" in text and "<script" not in text


def test_stress_reports_each_rule():
    report = stress("esuli", 3, 150)
    assert report.draws == 150 and 0 < report.accepted < 150
    assert report.rejected[Rejection.DEAD_LAYER] > 0 and report.rejected[Rejection.FEW_DIGITS] > 0
    assert {"a2[0]", "loss"} <= {s.question for s in report.spreads}
    assert any(s.question.startswith("grad:W1[") for s in report.spreads)
    for spread in report.spreads:  # drawn anew: every asked value varies over the variants
        assert spread.low < spread.high, spread
    # Few numbers to draw from: duplicates are found and counted.
    tiny = stress("elbasheer", 1, 80, low=0, high=1, decimals=0, ask="a1[0]")
    assert tiny.rejected[Rejection.DUPLICATE] > 0


def test_stress_command(capsys):
    assert main(["exercise", "esuli", "--stress", "40", "--seed", "9"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("40 draws, ") and "every ReLU of a layer is dead" in out and "min / median / max" in out


def test_accepted_variants_obey_every_rule():
    for variant in exercise("esuli", 11, count=12) + exercise("esuli", 12, count=3, ask="a2[0],loss,grad:W2[0,0]"):
        solution = variant.derivation
        answers = [variant.answers[q.id] for q in variant.questions]
        assert rejections(solution, variant.questions, variant.answers, variant.digits) == []
        # At least two significant digits at the displayed precision, and pairwise distinct
        # beyond the tolerances: an answer in the wrong box is graded wrong.
        assert all(abs(a.value) >= 0.01 for a in answers)
        assert all(abs(a.value - b.value) > a.tolerance + b.tolerance for i, a in enumerate(answers) for b in answers[i + 1 :])
        assert solution.detail.repeated.value < solution.detail.forward.value


def test_variants_differ_in_structure():
    """Which hidden unit is dead and the sign of the error vary over the variants."""
    variants = exercise("esuli", 2026, count=8)
    dead = {tuple(z <= 0 for z in v.derivation.updates[0].forwards[0].pre[0]) for v in variants}
    signs = {v.derivation.updates[0].forwards[0].out[-1][0] > v.spec.data[0].y[0] for v in variants}
    assert len(dead) >= 3 and signs == {True, False}


def test_question_wording_names_the_edge_and_comes_after_the_introduction():
    variant = exercise("esuli", 5)[0]
    sheet = variant.sheet("md")
    weight = next(q for q in variant.questions if q.id.startswith("grad:W1"))
    i, j = (int(n) for n in weight.id[len("grad:W1["):-1].split(","))
    assert f"The gradient of the loss with respect to the weight on the edge from $x_{{{j}}}$ to $a^{{(1)}}_{{{i}}}$" in sheet
    assert sheet.index("Work through one forward pass") < sheet.index("## Questions")
    solution = variant.solution("md")
    assert solution.index("Every value is rounded") < solution.index("## Answers") < solution.index("## Network")
    assert solution.count("Every value is rounded") == 1
    assert variant._repr_markdown_() == solution and variant.solution("tex").startswith("\\documentclass")
    assert variant.sheet("pdf").startswith(b"%PDF")


def test_a_worked_solution_of_a_variant_fits_four_pages(tmp_path):
    from tests.test_pdf import pages

    for variant in exercise("esuli", 2026, count=3):
        pdf = tmp_path / f"{variant.id}.pdf"
        pdf.write_bytes(variant.solution("pdf"))
        assert pages(pdf) <= 4, variant.id


def test_rules_reject_poor_numbers():
    def answers(values):
        return {key: Answer(value, 0.0011, value) for key, value in values.items()}

    saturated = derive.solve({"inputs": 1, "layers": [{"units": 1, "activation": "sigmoid", "weights": [[9.0]]}],
                              "loss": "half_sse", "learning_rate": 0.1, "data": [{"x": 1, "y": 0}]})
    questions = resolve_ask(saturated.network, "a1[0],grad:W1[0,0]")
    values = answers({"a1[0]": 0.9999, "grad:W1[0,0]": 0.0001})
    assert Rejection.SATURATED in rejections(saturated, questions, values, 3)
    dead = derive.solve({"inputs": 1, "layers": [{"units": 2, "activation": "relu", "weights": [[-1.0], [-2.0]]},
                                                 {"units": 1, "activation": "linear", "weights": [[1.0, 1.0]], "bias": 0.5}],
                         "loss": "sse", "learning_rate": 0.1, "data": [{"x": 1, "y": 0}]})
    questions = resolve_ask(dead.network, "grad:W1[0,0],loss")
    values = answers({"grad:W1[0,0]": 0.0, "loss": 0.25})
    reasons = rejections(dead, questions, values, 3)
    assert Rejection.DEAD_LAYER in reasons and Rejection.ZERO_GRADIENT in reasons
    overshoot = derive.solve({"inputs": 1, "layers": [{"units": 1, "activation": "linear", "weights": [[1.0]]}],
                              "loss": "sse", "learning_rate": 2.0, "data": [{"x": 1, "y": 0}]})
    questions = resolve_ask(overshoot.network, "loss")
    assert Rejection.LOSS_NOT_FALLING in rejections(overshoot, questions, answers({"loss": 1.0}), 3)
    assert Rejection.FEW_DIGITS in rejections(overshoot, questions, answers({"loss": 0.003}), 3)
    assert Rejection.FEW_DIGITS not in rejections(overshoot, questions, answers({"loss": 0.012}), 3)
    both = resolve_ask(overshoot.network, "loss,grad:W1[0,0]")
    assert Rejection.NOT_DISTINCT in rejections(overshoot, both, answers({"loss": 0.25, "grad:W1[0,0]": 0.252}), 3)
    assert Rejection.NOT_DISTINCT not in rejections(overshoot, both, answers({"loss": 0.25, "grad:W1[0,0]": 0.255}), 3)


def _student(spec: derive.Spec, digits: int = 3) -> dict[str, float]:
    """A student with a calculator on the 3-2-1 ReLU/sigmoid half-SSE network: every
    value they write down is rounded to `digits` decimals and used as written."""

    def r(v):
        return math.floor(abs(v) * 10**digits + 0.5) / 10**digits * (1 if v >= 0 else -1)

    (w1, b1), (w2, b2) = [(layer.weights, layer.bias) for layer in spec.layers]
    x, (y,) = spec.data[0].x, spec.data[0].y
    z1 = [r(sum(w * xi for w, xi in zip(row, x)) + b) for row, b in zip(w1, b1)]
    h = [r(max(0.0, z)) for z in z1]
    z2 = r(sum(w * hi for w, hi in zip(w2[0], h)) + b2[0])
    out = r(1 / (1 + math.exp(-z2)))
    loss = r((y - out) ** 2 / 2)
    d_out = r(out - y)
    d_pre = r(out * (1 - out))
    answers = {"a2[0]": out, "loss": loss}
    for j, h_j in enumerate(h):
        answers[f"grad:W2[0,{j}]"] = gradient = r(d_out * d_pre * h_j)
        answers[f"new:W2[0,{j}]"] = r(w2[0][j] - spec.learning_rate * gradient)
    for i, row in enumerate(w1):
        d_h = r(d_out * d_pre * w2[0][i])
        for j, x_j in enumerate(x):
            answers[f"grad:W1[{i},{j}]"] = r(d_h * (1.0 if z1[i] > 0 else 0.0) * x_j)
    return answers


def test_tolerance_accepts_a_student_carrying_rounded_values():
    for variant in exercise("esuli", 21, count=25):
        student = _student(variant.spec)
        for question in variant.questions:
            answer = variant.answers[question.id]
            assert abs(student[question.id] - answer.value) <= answer.tolerance, (variant.id, question.id)


def test_ask_groups_and_ids():
    variant = exercise("esuli", 2, ask="loss,updates")[0]
    assert [q.id for q in variant.questions][:2] == ["loss", "new:W1[0,0]"]
    with pytest.raises(derive.DeriveError, match="unknown question 'grad:W9'"):
        exercise("esuli", 2, ask="grad:W9")


def test_from_a_shape():
    variants = exercise_from_shape([3, 2, 1], ["relu", "sigmoid"], "half_sse", 5, count=3)
    assert [v.id for v in variants] == ["V01-0005", "V02-0005", "V03-0005"]
    assert variants[0].spec.layers[0].units == 2 and variants[0].spec.loss == "half_sse"
    with pytest.raises(derive.DeriveError, match="--activations: expected 2"):
        exercise_from_shape([3, 2, 1], ["relu"], "half_sse", 5)


def test_shape_command(tmp_path, capsys):
    code = main(["exercise", "--shape", "2,2,1", "--activations", "tanh,sigmoid", "--loss", "bce", "--count", "2",
                 "--format", "json", "--output", str(tmp_path)])
    assert code == 0
    key = json.loads((tmp_path / "V01-0001" / "key.json").read_text())
    assert key["spec"]["loss"] == "bce" and key["spec"]["data"][0]["y"][0] in (0.0, 1.0)
    assert main(["exercise", "--shape", "2,2,1", "--activations", "tanh", "--loss", "bce"]) == 2
    assert "--activations: expected 2" in capsys.readouterr().err


def test_bad_exercise_arguments(capsys):
    assert main(["exercise"]) == 2
    assert "give a SPEC or --shape" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["exercise", "esuli", "--seed", "70000"])
    assert exit_info.value.code == 2 and "--seed" in capsys.readouterr().err


# -- grading ------------------------------------------------------------------------------------------


def write_responses(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", "variant", "question", "value"])
        writer.writerows(rows)
    return path


def test_grading(made, tmp_path, capsys):
    key = list(csv.DictReader((made / "answers.csv").open()))
    v1 = [r for r in key if r["variant"] == "V01-3f9a"]
    v2 = [r for r in key if r["variant"] == "V02-3f9a"]
    rows = [("ann", r["variant"], r["question"], r["value"]) for r in v1]  # all right
    first = float(v2[0]["value"]) + float(v2[0]["tolerance"]) * 0.9
    rows += [("bob", "V02-3f9a", v2[0]["question"], f"{first}".replace(".", ","))]  # right, decimal comma
    rows += [("bob", "V02-3f9a", v2[1]["question"], str(float(v2[1]["value"]) + 1))]  # wrong
    rows += [("bob", "V02-3f9a", v2[2]["question"], "about two")]  # not a number
    rows += [("cat", "V99-3f9a", "loss", "1")]  # unknown variant
    rows += [("dan", "V01-3f9a", "grad:W7[0,0]", "1")]  # unknown question
    rows += [("ann", "V02-3f9a", "loss", "1")]  # another variant for ann
    responses = write_responses(tmp_path / "responses.csv", rows)
    output = tmp_path / "grades.csv"
    assert main(["grade", str(made / "answers.csv"), str(responses), "--output", str(output)]) == 0
    err = capsys.readouterr().err
    assert "line 9: 'about two' is not a number" in err
    assert "line 10: unknown variant 'V99-3f9a'" in err
    assert "line 11: variant 'V01-3f9a' has no question 'grad:W7[0,0]'" in err
    assert "line 12: 'ann' answers variant 'V02-3f9a' but earlier 'V01-3f9a'" in err
    # Every student gets a row, even one none of whose rows can be used.
    grades = {r["student"]: r for r in csv.DictReader(output.open())}
    assert list(grades) == ["ann", "bob", "cat", "dan"]
    assert [(g["variant"], g["score"], g["max"], g["problem"]) for g in grades.values()] == [
        ("V01-3f9a", "5", "5", ""),
        ("V02-3f9a", "1", "5", ""),
        ("V99-3f9a", "0", "5", "unknown variant"),
        ("V01-3f9a", "0", "5", ""),
    ]
    details = list(csv.DictReader((tmp_path / "grades-details.csv").open()))
    assert [(d["student"], d["problem"], d["line"]) for d in details] == [
        ("ann", "another variant", "12"),
        ("bob", "wrong", "8"), ("bob", "not a number", "9"), ("bob", "missing", ""), ("bob", "missing", ""),
        ("cat", "unknown variant", "10"),
        *[("dan", "missing", "")] * 5, ("dan", "unknown question", "11"),
    ]
    assert details[1]["expected"] == v2[1]["value"]


def test_grading_bad_files(tmp_path, capsys):
    bad = tmp_path / "answers.csv"
    bad.write_text("variant,question\nV01-0001,loss\n")
    responses = write_responses(tmp_path / "r.csv", [])
    assert main(["grade", str(bad), str(responses)]) == 2
    assert "answers.csv: line 1: expected the columns variant,question,value,tolerance; missing value, tolerance" in capsys.readouterr().err
    assert main(["grade", str(tmp_path / "none.csv"), str(responses)]) == 2
    assert "none.csv: no such file" in capsys.readouterr().err


def test_qti_for_canvas(tmp_path):
    """One quiz: a group per question, holding that question of each variant, pick 1."""
    import zipfile

    assert main(["exercise", "esuli", "--count", "2", "--seed", "4", "--format", "qti", "--output", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.csv", "answers.json", "mistakes.csv", "qti.zip", "variants.json"]
    rows = list(csv.DictReader((tmp_path / "answers.csv").open()))
    archive = zipfile.ZipFile(tmp_path / "qti.zip")
    assert "imsmanifest.xml" in archive.namelist()
    (quiz,) = [n for n in archive.namelist() if n.endswith(".xml") and "meta" not in n and "manifest" not in n]
    root = ET.fromstring(archive.read(quiz))
    ns = {"q": "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"}
    groups = root.findall("q:assessment/q:section/q:section", ns)
    assert len(groups) == 5 and all(g.find(".//q:selection_number", ns).text == "1" for g in groups)
    for position, group in enumerate(groups):
        items = group.findall("q:item", ns)
        assert len(items) == 2
        for item, variant in zip(items, ("V01-0004", "V02-0004")):
            row = [r for r in rows if r["variant"] == variant][position]
            value, tolerance = float(row["value"]), float(row["tolerance"])
            assert item.get("title") == f"Forward and backward pass in a neural network ({variant}), question {position + 1}"
            low = float(item.find(".//q:vargte", ns).text)
            high = float(item.find(".//q:varlte", ns).text)
            assert low == pytest.approx(value - tolerance, abs=1e-12) and high == pytest.approx(value + tolerance, abs=1e-12)


def test_qti_without_text2qti(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "text2qti", None)
    monkeypatch.setitem(sys.modules, "text2qti.config", None)
    assert main(["exercise", "esuli", "--format", "qti", "--output", str(tmp_path)]) == 2
    assert "--format qti needs the text2qti package: pip install 'derive[qti]'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
