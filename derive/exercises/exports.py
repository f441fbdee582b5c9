"""What leaves derive for other systems: the answer tables (CSV, JSON) that `derive
grade` and spreadsheets read, Moodle's XML question format and Canvas's QTI quizzes."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from decimal import Decimal
from typing import TYPE_CHECKING, Callable, Sequence

from ..errors import DeriveError, UsageError
from ..model.mistakes import MISTAKES

if TYPE_CHECKING:
    from .variants import Exercise

ANSWER_FIELDS = ("variant", "question", "value", "tolerance", "points")
MISTAKE_FIELDS = ("variant", "question", "mistake", "value", "feedback")

# A text cell starting with one of these is a formula to a spreadsheet (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# Every file of a QTI zip carries this date (and its manifest this day), as the PDFs carry a
# fixed one (pdf.py): the same quiz gives the same bytes.
ARCHIVE_DATE = datetime.datetime(2026, 1, 1)


def answer_rows(exercises: Sequence[Exercise]) -> list[dict[str, object]]:
    return [
        {"variant": e.id, "question": q.id, "value": e.answers[q.id].value, "tolerance": e.answers[q.id].tolerance,
         "points": e.answers[q.id].points}
        for e in exercises
        for q in e.questions
    ]


def spreadsheet_cell(value: object) -> object:
    """A cell as a spreadsheet should read it: numbers as they are; text that a spreadsheet
    would run as a formula (=…, +…, -…, @…, a tab or carriage return first) behind a ', which
    makes it text. Text that is a plain number (-0.5) is no formula and stays as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_text(rows: Sequence[dict[str, object]], fields: Sequence[str]) -> str:
    """Every CSV derive writes: a header, then the rows (a missing field empty), each cell a
    `spreadsheet_cell`, each line ending in \\n; a cell holding a line break is quoted."""
    lines = [_csv_line(fields)]
    for row in rows:
        assert set(row) <= set(fields), f"fields {sorted(set(row) - set(fields))} not in {fields}"
        lines.append(_csv_line([spreadsheet_cell(row.get(name, "")) for name in fields]))
    return "".join(lines)


def _csv_line(cells: Sequence[object]) -> str:
    # The csv module quotes a cell only for the characters of its line terminator: written
    # with \r\n, a cell holding either line break is quoted; the line then ends in \n.
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()[:-2] + "\n"


def answers_csv(exercises: Sequence[Exercise]) -> str:
    return csv_text(answer_rows(exercises), ANSWER_FIELDS)


def mistake_rows(exercises: Sequence[Exercise]) -> list[dict[str, object]]:
    """For each variant and asked question, the value each catalogued mistake gives (where
    it differs from the answer beyond the tolerance), and the mistake's feedback."""
    return [
        {"variant": e.id, "question": q.id, "mistake": name, "value": value, "feedback": MISTAKES[name].feedback}
        for e in exercises
        for q in e.questions
        for name, value in e.mistakes.get(q.id, {}).items()
    ]


def mistakes_csv(exercises: Sequence[Exercise]) -> str:
    return csv_text(mistake_rows(exercises), MISTAKE_FIELDS)


def variants_json(exercises: Sequence[Exercise]) -> str:
    """Each variant's full spec and how its numbers are carried: what grading needs to
    recompute an answer from a student's own earlier answers (follow-through)."""
    return json.dumps(
        {e.id: {"spec": e.spec.to_dict(), "digits": e.digits, "rounding": e.rounding.value} for e in exercises},
        indent=2, ensure_ascii=False,
    ) + "\n"


def answers_json(exercises: Sequence[Exercise]) -> str:
    return json.dumps(answer_rows(exercises), indent=2) + "\n"


def plain_title(exercises: Sequence[Exercise]) -> str:
    """The title of a set of variants as plain text on one line: Moodle and Canvas print
    names and titles literally (no Markdown, so nothing escaped)."""
    return " ".join(str(exercises[0].spec.title).split()) or "derive"


# -- Moodle -------------------------------------------------------------------------------------


def cloze_answers(exercise: Exercise) -> dict[str, str]:
    """Each question's embedded Cloze answer, {points:NUMERICAL:=value:tolerance}, followed by
    each catalogued mistake's value as a wrong answer with its feedback
    (~%0%value:tolerance#feedback): Moodle tells the student which slip it looks like. The
    right answer comes first, so it wins where intervals meet."""
    answers = {}
    for q in exercise.questions:
        key = exercise.answers[q.id]
        wrong = "".join(
            f"~%0%{value!r}:{key.tolerance!r}#{_cloze_text(MISTAKES[name].feedback)}"
            for name, value in exercise.mistakes.get(q.id, {}).items()
        )
        answers[q.id] = f"{{{key.points}:NUMERICAL:={key.value!r}:{key.tolerance!r}{wrong}}}"
    return answers


def _cloze_text(text: str) -> str:
    """Feedback inside a Cloze answer: without the characters that end it there (~ } #) or
    escape them (\\)."""
    return re.sub(r"[~}#\\{]", "", text)


def category_path(names: Sequence[str]) -> str:
    """A Moodle category path: the names joined by /, a / inside a name doubled, and a
    name that would then start or end with / padded with a space (which Moodle trims), as
    Moodle's own export writes it (qformat_default::assemble_category_path)."""
    escaped = []
    for name in names:
        name = name.replace("/", "//")
        escaped.append((" " if name.startswith("/") else "") + name + (" " if name.endswith("/") else ""))
    return "/".join(escaped)


def moodle_xml(exercises: Sequence[Exercise], question_html: Callable[[Exercise], str]) -> str:
    """Moodle XML: a category named by the set's title, then one Cloze question per variant
    named by the title and the variant's id (both whole; Moodle keeps up to 255 characters)."""
    title = plain_title(exercises)
    quiz = ET.Element("quiz")
    heading = ET.SubElement(quiz, "question", type="category")
    ET.SubElement(ET.SubElement(heading, "category"), "text").text = category_path(["$course$", "top", title])
    for exercise in exercises:
        question = ET.SubElement(quiz, "question", type="cloze")
        ET.SubElement(ET.SubElement(question, "name"), "text").text = f"{title} {exercise.id}"
        ET.SubElement(ET.SubElement(question, "questiontext", format="html"), "text").text = question_html(exercise)
        ET.SubElement(ET.SubElement(question, "generalfeedback", format="html"), "text").text = ""
        ET.SubElement(question, "penalty").text = "0.3333333"
        ET.SubElement(question, "hidden").text = "0"
        ET.SubElement(question, "idnumber").text = exercise.id
    ET.indent(quiz)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(quiz, encoding="unicode") + "\n"


# -- Canvas -------------------------------------------------------------------------------------


def qti_zip(quiz_text: str, name: str) -> bytes:
    """A Canvas QTI zip of one quiz, made by text2qti (the optional extra derive[qti]) from
    its quiz text, with three changes that make it safe to import many of them:

    - identifiers: text2qti derives them from the questions' text alone, so variants whose
      questions read alike (and the quizzes holding them) would share them and one import
      would overwrite another; here the quiz, each group, text and question is named by a
      hash of the whole quiz text (its title, every variant id, number and answer) and its
      position, which is distinct across variants and sets and the same for the same seed;
    - answer ranges: text2qti writes them to 4 decimals; here they are written exactly
      (value ± tolerance in decimal arithmetic), as Canvas reads them back;
    - the zip: its entries carry a fixed date, so the same quiz gives the same bytes."""
    try:
        from text2qti.config import Config
        from text2qti.err import Text2qtiError
        from text2qti.qti import QTI
        from text2qti.quiz import GroupStart, Question, Quiz, TextRegion
        from text2qti.xml_imsmanifest import imsmanifest
    except ImportError:
        raise UsageError("--format qti needs the text2qti package: pip install 'derive[qti]'") from None
    try:
        quiz = Quiz(quiz_text, config=Config(), source_name=name)
    except Text2qtiError as error:
        raise DeriveError(f"{name}: text2qti could not make the quiz: {error}") from None
    source = hashlib.blake2b(quiz_text.encode("utf-8")).hexdigest()

    def identifier(kind: str, position: int) -> str:
        return hashlib.blake2b(f"{source} {kind} {position}".encode("ascii")).hexdigest()[:64]

    quiz.id = identifier("quiz", 0)
    groups = 0
    for position, part in enumerate(quiz.questions_and_delims):
        if isinstance(part, GroupStart):
            groups += 1
            part.group.id = identifier("group", position)
            part.group.title_xml = f"Question {groups}"  # text2qti calls every group "Group"
        elif isinstance(part, TextRegion):
            part.id = identifier("text", position)
        elif isinstance(part, Question):
            part.id = identifier("question", position)
            if part.type == "numerical_question":
                _exact_range(part)
    qti = QTI(quiz)
    manifest = imsmanifest(
        manifest_identifier=qti.manifest_identifier, assessment_identifier=qti.assessment_identifier,
        dependency_identifier=qti.dependency_identifier, images=quiz.images, date=ARCHIVE_DATE.date().isoformat(),
    )
    folder = qti.assessment_identifier
    entries: list[tuple[str, str | bytes]] = [
        ("imsmanifest.xml", manifest),
        ("non_cc_assessments/", b""),
        (f"{folder}/assessment_meta.xml", qti.assessment_meta),
        (f"{folder}/{folder}.xml", qti.assessment),
    ]
    entries += [(image.qti_zip_path, image.data) for image in quiz.images.values()]
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        for path, data in entries:
            entry = zipfile.ZipInfo(path, date_time=ARCHIVE_DATE.timetuple()[:6])
            entry.external_attr = (0o40755 << 16) | 0x10 if path.endswith("/") else 0o100644 << 16
            entry.compress_type = zipfile.ZIP_STORED if path.endswith("/") else zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return stream.getvalue()


def _exact_range(question) -> None:
    """The range of a numerical text2qti question ("value +- tolerance") in exact decimals."""
    value, tolerance = (Decimal(part.strip()) for part in question.numerical_raw.split("+-"))
    question.numerical_exact_html_xml = f"{value:f}"
    question.numerical_min_html_xml = f"{value - tolerance:f}"
    question.numerical_max_html_xml = f"{value + tolerance:f}"
