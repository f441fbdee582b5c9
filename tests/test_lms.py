"""The Canvas and Moodle exports read as those systems read them, and the CSVs derive writes.

QTI zips are opened as Canvas's importer opens them: the manifest names the assessment
file; a question group is a <section> with a selection_number; a numerical answer
(<varequal> exact, <vargte>/<varlte> bounds) becomes an exact answer whose margin is
varlte − varequal, in decimal arithmetic, and a response is right when |response −
exact| ≤ margin (canvas-lms: qti_exporter numeric_interaction.rb). Moodle XML is read as
Moodle's importer reads it: the category path split at single slashes with // a literal
slash (qformat_default::split_category_path, create_category_path), the Cloze answers
found by the multianswer regular expressions, and a numerical answer with a nominal
tolerance accepting answer ± (tolerance + ε·max(|tolerance|, |answer|, ε)), ε = 1e-14
(qtype_numerical_answer::get_tolerance_interval).

The tolerances are checked against an independent bound: the exact values come from
tests/oracle.py (50-digit arithmetic, finite differences) on the variant's spec from its
key.json, and the tolerance from the rule the sheet states, restated here from the
digits: half a unit in the last shown decimal for the student's rounding, half for the
key's, plus the gap between the key's value and the exact one, rounded up to one more
decimal. A simulated student just inside (value ± 0.99·tolerance) must be accepted, just
outside (± 1.01·tolerance) and well outside (± 2·tolerance) rejected, by each export.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from decimal import Decimal
from pathlib import Path

import mpmath
import pytest

import derive
from derive.cli import main
from derive.exercises.variants import exercise, exercise_from_shape
from derive.exercises.exports import category_path, csv_text
from derive.model.functions import LOSSES
from derive.exercises.sheets import exercise_files
from tests import oracle

QTI = {"q": "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"}
MANIFEST = {"m": "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1"}
FACTORS = {Decimal("0.99"): True, Decimal("1.01"): False, Decimal("2"): False}
AWKWARD_TITLE = "Backprop 3-2-1: ReLU/sigmoid *net* [v2] (a_b) #1 — with a title longer than sixty characters / and slashes//"


def write(files: dict, folder: Path) -> Path:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return folder


def template(title: str = AWKWARD_TITLE) -> dict:
    """A 2-2-2 tanh/sigmoid network with binary cross-entropy: its loss prints on several lines."""
    return {
        "title": title, "inputs": 2,
        "layers": [{"units": 2, "activation": "tanh", "weights": [[0.1, 0.2], [0.3, 0.4]], "bias": [0.1, 0.1]},
                   {"units": 2, "activation": "sigmoid", "weights": [[0.1, 0.2], [0.3, 0.4]], "bias": [0.1, 0.1]}],
        "loss": "bce", "learning_rate": 0.5, "data": [{"x": [0.5, -0.5], "y": [1, 0]}, {"x": [0.2, 0.1], "y": [0, 1]}],
    }


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    """Exercise sets written as the CLI writes them: the built-in examples (half SSE,
    binary cross-entropy over six samples), a softmax/cross-entropy network, the 2-2-2
    binary cross-entropy template with an awkward title, and one at 4 decimals."""
    root = tmp_path_factory.mktemp("lms")
    made = {}
    assert main(["exercise", "esuli", "--count", "4", "--seed", "0x3f9a", "--format", "json,moodle,qti",
                 "--output", str(root / "esuli")]) == 0
    made["esuli"] = root / "esuli"
    assert main(["exercise", "students", "--count", "3", "--seed", "7", "--format", "json,moodle,qti",
                 "--output", str(root / "students")]) == 0
    made["students"] = root / "students"
    softmax = exercise_from_shape([2, 2, 3], ["relu", "softmax"], "cross_entropy", 9, count=3)
    made["softmax"] = write(exercise_files(softmax, ["json", "moodle", "qti"]), root / "softmax")
    made["awkward"] = write(exercise_files(exercise(template(), 5, count=3), ["json", "moodle", "qti"]), root / "awkward")
    four = exercise("esuli", 11, count=3, digits=4)
    made["four"] = write(exercise_files(four, ["json", "moodle", "qti"], digits=4), root / "four")
    return made


# -- Canvas, as its QTI importer reads a zip ---------------------------------------------------------


def assessment(archive: zipfile.ZipFile) -> ET.Element:
    """The assessment the manifest names (its resource of type imsqti_xmlv1p2)."""
    manifest = ET.fromstring(archive.read("imsmanifest.xml"))
    (resource,) = [r for r in manifest.iterfind(".//m:resource", MANIFEST) if r.get("type") == "imsqti_xmlv1p2"]
    href = resource.find("m:file", MANIFEST).get("href")
    assert resource.get("identifier") == manifest.get("identifier").replace("_manifest_", "_assessment_")
    return ET.fromstring(archive.read(href)).find("q:assessment", QTI)


def groups(root: ET.Element) -> list[ET.Element]:
    return root.findall("q:section/q:section", QTI)


def numerical_items(element: ET.Element) -> list[ET.Element]:
    return [item for item in element.iterfind(".//q:item", QTI) if metadata(item, "question_type") == "numerical_question"]


def metadata(item: ET.Element, label: str) -> str:
    for field in item.iterfind("q:itemmetadata/q:qtimetadata/q:qtimetadatafield", QTI):
        if field.find("q:fieldlabel", QTI).text == label:
            return field.find("q:fieldentry", QTI).text
    raise KeyError(label)


def canvas_answer(item: ET.Element) -> tuple[Decimal, Decimal]:
    """(exact, margin) as Canvas imports a numerical answer: the margin from the upper bound."""
    condition = item.find("q:resprocessing/q:respcondition/q:conditionvar/q:or", QTI)
    exact = Decimal(condition.find("q:varequal", QTI).text)
    lower = Decimal(condition.find("q:and/q:vargte", QTI).text)
    upper = Decimal(condition.find("q:and/q:varlte", QTI).text)
    assert exact - lower == upper - exact, "the range is symmetric"
    return exact, upper - exact


def canvas_accepts(item: ET.Element, response: Decimal) -> bool:
    exact, margin = canvas_answer(item)
    return abs(response - exact) <= margin


def identifiers(archive: zipfile.ZipFile) -> set[str]:
    root = assessment(archive)
    found = {root.get("ident")}
    found |= {s.get("ident") for s in groups(root)}
    for item in root.iterfind(".//q:item", QTI):
        found |= {item.get("ident"), metadata(item, "assessment_question_identifierref")}
    return found


# -- Moodle, as its XML importer reads a file ---------------------------------------------------------


def split_category_path(path: str) -> list[str]:
    """qformat_default::split_category_path: split at single slashes, // is a slash."""
    return [name.replace("//", "/").strip() for name in re.split(r"(?<!/)/(?!/)", path)]


def moodle_category(path: str) -> list[str]:
    """The categories create_category_path makes below the context's top category."""
    names = split_category_path(path)
    assert re.fullmatch(r"\$[a-z]+\$", names[0])
    names = names[1:]
    if names and (names[0] != "top" or len(names) < 3):
        names.insert(0, "top")
    return [n for i, n in enumerate(names) if i > 0 and n != "top"]


NUMBER = r"-?(([0-9]+[.,]?[0-9]*|[.,][0-9]+)([eE][-+]?[0-9]+)?)"
ALTERNATIVE = r"(=|%(-?[0-9]+(?:[.,][0-9]*)?)%)?(.+?(?<!\\)(?<!&)(?<!&amp;)(?=[~#}]|$))(#(.*?(?<!\\)(?=[~}]|$)))?"
TYPES = (r"(NUMERICAL|NM)|(MULTICHOICE|MC)|(MULTICHOICE_V|MCV)|(MULTICHOICE_H|MCH)|(SHORTANSWER|SA|MW)|(SHORTANSWER_C|SAC|MWC)|"
         r"(MULTICHOICE_S|MCS)|(MULTICHOICE_VS|MCVS)|(MULTICHOICE_HS|MCHS)|"
         r"(MULTIRESPONSE|MR)|(MULTIRESPONSE_H|MRH)|(MULTIRESPONSE_S|MRS)|(MULTIRESPONSE_HS|MRHS)")
ANSWER = re.compile(r"\{([0-9]*):(" + TYPES + r"):(" + ALTERNATIVE + r"(~" + ALTERNATIVE + r")*)\}", re.S)
EPSILON = 1e-14  # PHP's default precision, 14 digits


def cloze_answers(text: str) -> list[tuple[float, float]]:
    """(answer, tolerance) of each NUMERICAL subquestion with a fully right answer, in order,
    as qtype_multianswer_extract_question reads them."""
    found = []
    while match := ANSWER.search(text):
        assert match.group(3), "a NUMERICAL subquestion"
        alternatives = re.match(r"~?" + ALTERNATIVE, match.group(16), re.S)
        assert alternatives.group(1) == "="
        number = re.fullmatch(r"(" + NUMBER + r")(:" + NUMBER + r")?", alternatives.group(3), re.S)
        found.append((float(number.group(1)), float(number.group(6) or 0)))
        text = text.replace(match.group(0), "", 1)
    return found


def moodle_accepts(answer: float, tolerance: float, response: float) -> bool:
    margin = tolerance + EPSILON * max(abs(tolerance), abs(answer), EPSILON)
    return answer - margin <= response <= answer + margin


# -- the independent bound ---------------------------------------------------------------------------


def exact_values(spec: dict) -> dict[str, mpmath.mpf]:
    """Every askable value of the first update, in 50 digits, by question id."""
    values = {key: mpmath.mpf(v) for key, v in oracle.parameters(spec)}
    data = spec["data"]
    batch = data if spec.get("update", "batch") == "batch" else data[:1]
    exact = dict(oracle.forward(spec, values, data[0]["x"])[0])
    exact["loss"] = oracle.batch_loss(spec, values, batch)
    rate = mpmath.mpf(spec["learning_rate"])
    for key, gradient in oracle.finite_difference_gradient(spec, values, batch).items():
        exact[f"grad:{key}"] = gradient
        exact[f"new:{key}"] = values[key] - rate * gradient
    return exact


def expected_tolerance(exact: mpmath.mpf, value: Decimal, digits: int) -> Decimal:
    """Half a unit of the last shown decimal twice, plus the gap to the exact value, rounded
    up to digits + 1 decimals (a 1e-9 of that unit of slack for float noise, as documented)."""
    units = (abs(exact - mpmath.mpf(str(value))) + mpmath.mpf(10) ** -digits) * mpmath.mpf(10) ** (digits + 1)
    return Decimal(int(mpmath.ceil(units - mpmath.mpf("1e-9")))).scaleb(-(digits + 1))


def independent_key(folder: Path) -> dict[str, list[tuple[str, Decimal, Decimal]]]:
    """variant → [(question, value, tolerance)] with the value as the worked solution shows
    it and the tolerance from the rule, both checked against the oracle's exact values."""
    key = {}
    for path in sorted(folder.glob("V*/key.json")):
        record = json.loads(path.read_text())
        digits = record["rounding"]["digits"]
        exact = exact_values(record["spec"])
        shown = record["steps"][0]["shown"]
        rows = []
        for question in record["questions"]:
            kind, _, name = question["id"].rpartition(":")
            table = {"grad": shown["gradients"], "new": shown["updated"]}.get(kind) or (
                {"loss": shown["loss"]} if name == "loss" else shown["forward"][0])
            value = Decimal(repr(table[name]))
            assert value == value.quantize(Decimal(1).scaleb(-digits))
            tolerance = expected_tolerance(exact[question["id"]], value, digits)
            assert abs(exact[question["id"]] - mpmath.mpf(str(value))) <= mpmath.mpf(str(tolerance))
            rows.append((question["id"], value, tolerance))
        key[record["variant"]] = rows
    return key


def responses(value: Decimal, tolerance: Decimal):
    """A simulated student on either side, at each factor of the tolerance, and whether
    they should be accepted."""
    for factor, accepted in FACTORS.items():
        for sign in (1, -1):
            yield value + sign * factor * tolerance, accepted


# -- tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["esuli", "students", "softmax", "awkward", "four"])
def test_every_export_accepts_just_inside_the_tolerance_and_rejects_just_outside(sets, name):
    folder = sets[name]
    key = independent_key(folder)
    assert key and all(key.values())
    # answers.csv and key.json, which derive grade reads
    rows = list(csv.DictReader((folder / "answers.csv").open()))
    assert [(r["variant"], r["question"], Decimal(r["value"]), Decimal(r["tolerance"])) for r in rows] == [
        (variant, *row) for variant, questions in key.items() for row in questions
    ]
    # Canvas: item k of each group is variant k's question
    with zipfile.ZipFile(folder / "qti.zip") as archive:
        sections = groups(assessment(archive))
    for position, section in enumerate(sections):
        for item, (variant, questions) in zip(numerical_items(section), key.items(), strict=True):
            assert f"({variant}), question {position + 1}" in item.get("title")
            _, value, tolerance = questions[position]
            for response, accepted in responses(value, tolerance):
                assert canvas_accepts(item, response) is accepted, (variant, position, response)
    # Moodle
    root = ET.parse(folder / "moodle.xml").getroot()
    for question, (variant, questions) in zip(root.findall("question[@type='cloze']"), key.items(), strict=True):
        assert question.find("idnumber").text == variant
        embedded = cloze_answers(question.find("questiontext/text").text)
        for (answer, tolerance), (_, value, expected) in zip(embedded, questions, strict=True):
            for response, accepted in responses(value, expected):
                assert moodle_accepts(answer, tolerance, float(response)) is accepted, (variant, response)


def test_one_quiz_with_a_group_per_question_drawing_one_variant(sets):
    for name in ("esuli", "students", "awkward"):
        with zipfile.ZipFile(sets[name] / "qti.zip") as archive:
            assert sorted(archive.namelist())[0] == "imsmanifest.xml"
            root = assessment(archive)
        variants = sorted(p.name for p in sets[name].glob("V*"))
        questions = len(json.loads((sets[name] / variants[0] / "key.json").read_text())["questions"])
        sections = groups(root)
        assert len(sections) == questions
        for position, section in enumerate(sections, start=1):
            assert section.find("q:selection_ordering/q:selection/q:selection_number", QTI).text == "1"
            assert section.get("title") == f"Question {position}"
            items = numerical_items(section)
            assert [re.search(r"\((V\d\d-[0-9a-f]{4})\)", i.get("title")).group(1) for i in items] == variants
            for item, variant in zip(items, variants):
                text = item.find("q:presentation/q:material/q:mattext", QTI).text
                # each item shows its own variant's network, the math as Canvas equation images
                assert f"Exercise {variant}." in text and 'class="equation_image"' in text and "$" not in text
                assert f"Question {position}." in text


def test_the_loss_written_on_several_lines_is_one_equation_image(sets):
    with zipfile.ZipFile(sets["awkward"] / "qti.zip") as archive:
        item = numerical_items(assessment(archive))[0]
    text = item.find("q:presentation/q:material/q:mattext", QTI).text
    (loss,) = [m for m in re.findall(r'data-equation-content="([^"]*)"', text) if "\\ln" in m and "E &amp;=" in m]
    assert loss.startswith("\\begin{aligned}") and loss.endswith("\\end{aligned}") and "\n" not in loss


def test_identifiers_distinct_across_variants_and_sets_and_stable_for_a_seed(sets, tmp_path):
    seen: dict[str, str] = {}
    for name, folder in sets.items():
        with zipfile.ZipFile(folder / "qti.zip") as archive:
            found = identifiers(archive)
            items = [i.get("ident") for i in assessment(archive).iterfind(".//q:item", QTI)]
        assert len(items) == len(set(items))
        for identifier in found:
            assert seen.setdefault(identifier, name) == name, f"{identifier} in {seen[identifier]} and {name}"
    # per-variant quizzes: every quiz, text and question its own
    variants = exercise("esuli", 0x3F9A, count=4)
    files = exercise_files(variants, ["qti"], qti_layout="variants")
    assert sorted(n for n in files if n.startswith("qti")) == [f"qti/V0{i}-3f9a.zip" for i in range(1, 5)]
    for name, content in files.items():
        if name.startswith("qti/"):
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                for identifier in identifiers(archive):
                    assert seen.setdefault(identifier, name) == name, f"{identifier} in {seen[identifier]} and {name}"
    # the same seed again: the same bytes
    assert main(["exercise", "esuli", "--count", "4", "--seed", "0x3f9a", "--format", "json,moodle,qti",
                 "--output", str(tmp_path)]) == 0
    for name in ("qti.zip", "moodle.xml", "answers.csv"):
        assert (tmp_path / name).read_bytes() == (sets["esuli"] / name).read_bytes()
    assert exercise_files(variants, ["qti"], qti_layout="variants") == files


def test_per_variant_quizzes_on_request(sets):
    variants = exercise("students", 7, count=2)
    files = exercise_files(variants, ["qti"], qti_layout="variants")
    key = independent_key(sets["students"])
    for variant in variants:
        with zipfile.ZipFile(io.BytesIO(files[f"qti/{variant.id}.zip"])) as archive:
            root = assessment(archive)
        assert root.get("title") == f"Will a student pass? A 2-2-1 network trained with binary cross-entropy ({variant.id})"
        assert not groups(root)
        first, *items = root.iterfind(".//q:item", QTI)
        assert metadata(first, "question_type") == "text_only_question"
        assert f"Exercise {variant.id}." in first.find(".//q:mattext", QTI).text
        assert len(items) == len(key[variant.id])
        for item, (_, value, tolerance) in zip(items, key[variant.id]):
            for response, accepted in responses(value, tolerance):
                assert canvas_accepts(item, response) is accepted
    with pytest.raises(derive.DeriveError, match="unknown QTI layout 'mixed'; choose from group, variants"):
        exercise_files(variants, ["qti"], qti_layout="mixed")


@pytest.mark.parametrize("example", sorted(derive.examples()))
def test_qti_for_every_built_in_example(example):
    files = exercise_files(exercise(example, 3, count=2), ["qti"])
    with zipfile.ZipFile(io.BytesIO(files["qti.zip"])) as archive:
        assert len(numerical_items(assessment(archive))) == 2 * len(groups(assessment(archive)))


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_qti_for_every_loss(loss):
    output = {"bce": "sigmoid", "cross_entropy": "softmax"}.get(loss, "linear")
    for shape in ([2, 2, 2], [3, 2, 3]):
        files = exercise_from_shape(shape, ["tanh", output], loss, 4, count=2)
        zipped = exercise_files(files, ["qti"])["qti.zip"]
        with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
            assert len(groups(assessment(archive))) == len(files[0].questions)


def test_titles_are_plain_text(sets):
    with zipfile.ZipFile(sets["awkward"] / "qti.zip") as archive:
        root = assessment(archive)
        meta = ET.fromstring(archive.read(next(n for n in archive.namelist() if n.endswith("assessment_meta.xml"))))
    assert root.get("title") == f"{AWKWARD_TITLE} (V01-0005 to V03-0005)"
    assert meta.find("{http://canvas.instructure.com/xsd/cccv1p0}title").text == root.get("title")
    for item in root.iterfind(".//q:item", QTI):
        assert item.get("title").startswith(AWKWARD_TITLE + " (V0") and "\\" not in item.get("title")
    shape = exercise_files(exercise_from_shape([3, 2, 1], ["relu", "sigmoid"], "half_sse", 5), ["qti", "moodle"])
    with zipfile.ZipFile(io.BytesIO(shape["qti.zip"])) as archive:
        assert assessment(archive).get("title") == "Forward and backward pass in a 3-2-1 network (V01-0005)"
    assert "<text>Forward and backward pass in a 3-2-1 network V01-0005</text>" in shape["moodle.xml"]


def test_moodle_category_and_names_whole(sets):
    root = ET.parse(sets["awkward"] / "moodle.xml").getroot()
    category = root.find("question[@type='category']/category/text").text
    assert moodle_category(category) == [AWKWARD_TITLE]
    names = [q.find("name/text").text for q in root.findall("question[@type='cloze']")]
    assert names == [f"{AWKWARD_TITLE} V0{i}-0005" for i in range(1, 4)]
    root = ET.parse(sets["esuli"] / "moodle.xml").getroot()
    assert root.find("question[@type='category']/category/text").text == "$course$/top/Forward and backward pass in a neural network"


def test_category_path_as_moodle_writes_it():
    """The names of Moodle's own test of assemble_category_path give its expected path back."""
    names = ["$course$", "Tim's questions", "Tricky things like / // and so on", "Category name ending in /",
             "/ and one that starts with one"]
    path = category_path(names)
    assert path == ("$course$/Tim's questions/Tricky things like // //// and so on/Category name ending in // / "
                    "// and one that starts with one")
    assert split_category_path(path) == names


def test_csv_cells_that_a_spreadsheet_would_run_are_text():
    rows = [{"name": "=cmd|' /C calc'!A0", "value": -0.5}, {"name": "+1+2", "value": "-0.5"}, {"name": "-2+3", "value": "@SUM(A1)"},
            {"name": "\tx", "value": "\rx"}, {"name": "ann", "value": "1e-5"}]
    read = list(csv.DictReader(io.StringIO(csv_text(rows, ["name", "value"]))))
    assert read == [
        {"name": "'=cmd|' /C calc'!A0", "value": "-0.5"}, {"name": "'+1+2", "value": "-0.5"}, {"name": "'-2+3", "value": "'@SUM(A1)"},
        {"name": "'\tx", "value": "'\rx"}, {"name": "ann", "value": "1e-5"},
    ]


def test_grades_of_a_student_named_like_a_formula(sets, tmp_path):
    answers = sets["esuli"] / "answers.csv"
    first = next(csv.DictReader(answers.open()))
    responses_csv = tmp_path / "responses.csv"
    with responses_csv.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", "variant", "question", "value"])
        writer.writerow(["=cmd|' /C calc'!A0", first["variant"], first["question"], "-1+2"])
    output = tmp_path / "grades.csv"
    assert main(["grade", str(answers), str(responses_csv), "--output", str(output)]) == 0
    (grade,) = csv.DictReader(output.open())
    assert grade["student"] == "'=cmd|' /C calc'!A0"
    details = list(csv.DictReader((tmp_path / "grades-details.csv").open()))
    assert details and all(d["student"] == "'=cmd|' /C calc'!A0" for d in details)
    assert [d["given"] for d in details if d["given"]] == ["'-1+2"]
    assert all(not d[f].startswith(("=", "+", "@")) for d in details for f in d)
