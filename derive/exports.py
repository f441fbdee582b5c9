"""What leaves derive for other systems: the answer tables (CSV, JSON) that `derive
grade` and spreadsheets read, and Moodle's XML question format."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from typing import Callable, Sequence

from .errors import DeriveError, UsageError
from .exercise import Exercise

ANSWER_FIELDS = ("variant", "question", "value", "tolerance")


def answer_rows(exercises: Sequence[Exercise]) -> list[dict[str, object]]:
    return [
        {"variant": e.id, "question": q.id, "value": e.answers[q.id].value, "tolerance": e.answers[q.id].tolerance}
        for e in exercises
        for q in e.questions
    ]


def csv_text(rows: Sequence[dict[str, object]], fields: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def answers_csv(exercises: Sequence[Exercise]) -> str:
    return csv_text(answer_rows(exercises), ANSWER_FIELDS)


def answers_json(exercises: Sequence[Exercise]) -> str:
    return json.dumps(answer_rows(exercises), indent=2) + "\n"


def cloze_answers(exercise: Exercise) -> dict[str, str]:
    """Each question's embedded Cloze answer: {1:NUMERICAL:=value:tolerance}."""
    return {q.id: f"{{1:NUMERICAL:={exercise.answers[q.id].value!r}:{exercise.answers[q.id].tolerance!r}}}" for q in exercise.questions}


def moodle_xml(exercises: Sequence[Exercise], question_html: Callable[[Exercise], str], category: str) -> str:
    """Moodle XML: a category, then one Cloze question per variant."""
    quiz = ET.Element("quiz")
    heading = ET.SubElement(quiz, "question", type="category")
    ET.SubElement(ET.SubElement(heading, "category"), "text").text = f"$course$/top/{category}"
    for exercise in exercises:
        question = ET.SubElement(quiz, "question", type="cloze")
        ET.SubElement(ET.SubElement(question, "name"), "text").text = f"{category} {exercise.id}"
        ET.SubElement(ET.SubElement(question, "questiontext", format="html"), "text").text = question_html(exercise)
        ET.SubElement(ET.SubElement(question, "generalfeedback", format="html"), "text").text = ""
        ET.SubElement(question, "penalty").text = "0.3333333"
        ET.SubElement(question, "hidden").text = "0"
        ET.SubElement(question, "idnumber").text = exercise.id
    ET.indent(quiz)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(quiz, encoding="unicode") + "\n"


def qti_zip(quiz_text: str, name: str) -> bytes:
    """A Canvas QTI zip made by text2qti from its quiz text (the optional extra derive[qti])."""
    try:
        from text2qti.config import Config
        from text2qti.err import Text2qtiError
        from text2qti.qti import QTI
        from text2qti.quiz import Quiz
    except ImportError:
        raise UsageError("--format qti needs the text2qti package: pip install 'derive[qti]'") from None
    try:
        return QTI(Quiz(quiz_text, config=Config(), source_name=name)).zip_bytes()
    except Text2qtiError as error:
        raise DeriveError(f"{name}: text2qti could not make the quiz: {error}") from None
