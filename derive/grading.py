"""Grading students' answers against an answers.csv: one score per student, one detail
row per wrong or missing answer, and a report of every row that could not be used."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SpecError

RESPONSE_FIELDS = ("student", "variant", "question", "value")
GRADE_FIELDS = ("student", "variant", "score", "max")
DETAIL_FIELDS = ("student", "variant", "question", "given", "expected", "tolerance", "problem")


@dataclass
class Grading:
    grades: list[dict[str, object]] = field(default_factory=list)
    details: list[dict[str, object]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # rows that could not be used, with their line


def _rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream)
            missing = [f for f in required if f not in (reader.fieldnames or [])]
            if missing:
                raise SpecError(str(path), "line 1", f"expected the columns {','.join(required)}; missing {', '.join(missing)}")
            return [(reader.line_num, row) for row in reader]
    except FileNotFoundError:
        raise SpecError(str(path), None, "no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SpecError(str(path), None, f"cannot read it as CSV: {error}") from None


def _number(text: str | None) -> float | None:
    """A number as students type it: 0.5, -0.5, 0,5 (a decimal comma), 5e-3."""
    if text is None:
        return None
    cleaned = text.strip().replace("−", "-")
    if cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def load_key(path: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """variant → question → (value, tolerance), from an answers.csv."""
    key: dict[str, dict[str, tuple[float, float]]] = {}
    for line, row in _rows(path, ("variant", "question", "value", "tolerance")):
        value, tolerance = _number(row["value"]), _number(row["tolerance"])
        if value is None or tolerance is None:
            raise SpecError(str(path), f"line {line}", "expected numbers in value and tolerance")
        key.setdefault(row["variant"], {})[row["question"]] = (value, tolerance)
    if not key:
        raise SpecError(str(path), None, "no answers in it")
    return key


def grade(answers: Path, responses: Path) -> Grading:
    key = load_key(answers)
    result = Grading()
    given: dict[str, dict[str, tuple[int, str]]] = {}
    variant_of: dict[str, str] = {}
    where = str(responses)
    for line, row in _rows(responses, RESPONSE_FIELDS):
        student, variant, question = ((row.get(f) or "").strip() for f in ("student", "variant", "question"))
        if not student:
            result.problems.append(f"{where}: line {line}: no student; row skipped")
            continue
        if variant not in key:
            result.problems.append(f"{where}: line {line}: unknown variant {variant!r}; row skipped")
            continue
        if question not in key[variant]:
            result.problems.append(f"{where}: line {line}: variant {variant} has no question {question!r}; row skipped")
            continue
        if variant_of.setdefault(student, variant) != variant:
            result.problems.append(
                f"{where}: line {line}: {student} answers variant {variant} but earlier {variant_of[student]}; row skipped"
            )
            continue
        answered = given.setdefault(student, {})
        if question in answered:
            result.problems.append(f"{where}: line {line}: {student} answers {question} again; the answer on line {answered[question][0]} counts")
            continue
        answered[question] = (line, row.get("value") or "")
    for student, variant in variant_of.items():
        score = 0
        for question, (value, tolerance) in key[variant].items():
            line, text = given[student].get(question, (None, None))
            number = _number(text)
            if text is None:
                problem = "missing"
            elif number is None:
                problem = "not a number"
                result.problems.append(f"{where}: line {line}: {text!r} is not a number; graded as wrong")
            elif abs(number - value) <= tolerance + 1e-12:
                score += 1
                continue
            else:
                problem = "wrong"
            result.details.append(
                {"student": student, "variant": variant, "question": question, "given": "" if text is None else text,
                 "expected": value, "tolerance": tolerance, "problem": problem}
            )
        result.grades.append({"student": student, "variant": variant, "score": score, "max": len(key[variant])})
    return result
