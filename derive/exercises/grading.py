"""Grading students' answers against an answers.csv: one score per student, one detail
row per answer that did not earn its point, and a report of every row that could not be used.

The key (answers.csv, columns variant,question,value,tolerance) must be clean: a value or
tolerance that is not a number, a negative tolerance, an empty variant or question, or a
second row for one variant and question stops grading with an error naming the line(s).

The responses (columns student,variant,question,value) are graded as far as they can be:

- Every student named in the responses gets one row in the grades (in the order they first
  appear), even when none of their rows can be used.
- A student's variant is the variant of their first row that names a variant of the key.
  Their score is the number of that variant's questions answered within the tolerance
  (|given − value| ≤ tolerance, the boundary included), plus the follow-through credit of
  answers right from their own earlier wrong answers (see `grade`); max is its number of
  questions. A wrong answer that a catalogued mistake explains is named in the details.
- A student none of whose rows names a variant of the key scores 0, with the problem
  "unknown variant" in the grades; max is the number of questions every variant of the
  key has, or empty when the variants differ in it.
- A row that cannot be used is reported (with its line) and is in the details with its
  problem: "unknown variant", "unknown question", "another variant" (the student answered
  an earlier variant), "answered again" (a second answer to one question: the first answer
  counts, the details name its line), "no student" (such a row has no grades row).
- Each question of the student's variant that did not earn its point is in the details:
  "wrong", "not a number" (also reported), or "missing". A blank value is no answer; a row
  whose cells are all blank (a spreadsheet's trailing rows) is skipped.

Numbers are read as students type them and nothing else: an optional sign (- or −), digits
with at most one decimal point or decimal comma (0,5 is 0.5; a comma never separates
thousands, so 1,234.5 is not a number), an optional exponent (5e-3), surrounding spaces.
Underscores, nan, inf, and numbers too large for a float are not numbers.

Input is bounded: at most MAX_ROWS (1,000,000) rows per file, blank ones included; no
line longer than MAX_LINE (65,536) characters; no field (which may span lines when
quoted) longer than the csv module's limit (131,072 characters unless changed). Beyond
any of them, grading stops with an error naming the line.

Every message is one line naming the file and line; text quoted from the files (names,
cells) goes through errors.quoted: escape sequences and control characters removed, at
most 40 characters. The CSV files written keep the text as given.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Iterator, Sequence, TextIO

from ..errors import DeriveError, OutputError, SpecError, UsageError, plain, quoted
from ..model.mistakes import CATALOGUE

RESPONSE_FIELDS = ("student", "variant", "question", "value")
KEY_FIELDS = ("variant", "question", "value", "tolerance")
GRADE_FIELDS = ("student", "variant", "score", "max", "problem")
DETAIL_FIELDS = ("student", "variant", "question", "given", "expected", "tolerance", "problem", "line", "mistake", "feedback")
MISTAKE_FIELDS = ("variant", "question", "mistake", "value", "feedback")
SUMMARY_FIELDS = ("question", "answers", "right", "follow_through", "wrong", "missing", "unexplained") + tuple(m.name for m in CATALOGUE)
# A wrong answer that no catalogued mistake explains says so in the details.
UNEXPLAINED = "matches no catalogued mistake"
MAX_ROWS = 1_000_000
MAX_LINE = 65_536
# Floats carry rounding noise (0.673 − 0.668 is 0.0050000000000000044): an answer on the
# boundary counts, so the comparison allows this much slack beyond the tolerance (times
# |value| above 1, where the noise grows with the value).
BOUNDARY_SLACK = 1e-12
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?")


class Problem(Enum):
    """Why an answer did not earn its point, or why a row could not be used."""

    WRONG = "wrong"
    FOLLOW_THROUGH = "follow-through"  # wrong, but right from the student's own earlier answers
    NOT_A_NUMBER = "not a number"
    MISSING = "missing"
    UNKNOWN_VARIANT = "unknown variant"
    UNKNOWN_QUESTION = "unknown question"
    ANOTHER_VARIANT = "another variant"
    ANSWERED_AGAIN = "answered again"
    NO_STUDENT = "no student"


@dataclass
class Grading:
    grades: list[dict[str, object]] = field(default_factory=list)
    details: list[dict[str, object]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # rows that could not be used, with their line
    summary: list[dict[str, object]] = field(default_factory=list)  # per question over the class
    named: bool = False  # the key came with its mistakes: wrong answers are named or said unexplained


@dataclass(frozen=True)
class KeyAnswer:
    value: float
    tolerance: float
    line: int
    points: float = 1.0  # the key's optional points column

def parse_number(text: str | None) -> float | None:
    """A number as students type it (see the module's docstring), or None."""
    if text is None:
        return None
    cleaned = text.strip().replace("−", "-")
    if not _NUMBER.fullmatch(cleaned):
        return None
    value = float(cleaned.replace(",", "."))
    return value if math.isfinite(value) else None


def within(number: float, value: float, tolerance: float) -> bool:
    return abs(number - value) <= tolerance + BOUNDARY_SLACK * max(1.0, abs(value))


def _lines(stream: TextIO, source: str) -> Iterator[str]:
    """The file's lines, each read at most MAX_LINE characters at a time, so that a file
    without line breaks is not read whole."""
    number = 0
    while line := stream.readline(MAX_LINE + 2):  # room for \r\n
        number += 1
        if len(line.rstrip("\r\n")) > MAX_LINE:
            raise SpecError(source, f"line {number}", f"longer than {MAX_LINE:,} characters")
        yield line


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of a CSV file with a header naming at least `required`, at most MAX_ROWS
    rows; a row's line is where it starts (a quoted cell may hold line breaks)."""
    source = str(path)
    if path.exists() and not path.is_file():
        what = "a folder" if path.is_dir() else "not a regular file (a device or a pipe?)"
        raise SpecError(source, None, f"is {what}, expected a CSV file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.reader(_lines(stream, source))
            start, count = 1, 0  # start: the line the next row starts on
            try:
                header = next(reader, [])
                missing = [f for f in required if f not in header]
                if missing:
                    raise SpecError(source, "line 1", f"expected the columns {','.join(required)}; missing {', '.join(missing)}")
                start = reader.line_num + 1
                for cells in reader:
                    line, start = start, reader.line_num + 1
                    count += 1
                    if count > MAX_ROWS:
                        raise SpecError(source, f"line {line}", f"more than {MAX_ROWS:,} rows; split the file")
                    if cells:
                        yield line, dict(zip(header, cells))
            except csv.Error as error:
                if "field limit" in str(error):
                    message = f"a field longer than {csv.field_size_limit():,} characters"
                else:
                    message = f"cannot read it as CSV: {plain(error)}"
                raise SpecError(source, f"line {start}", message) from None
    except FileNotFoundError:
        raise SpecError(source, None, "no such file") from None
    except UnicodeDecodeError:
        raise SpecError(source, None, "not UTF-8 text; save it as CSV in UTF-8") from None
    except OSError as error:
        raise SpecError(source, None, f"cannot read it: {error.strerror or error}") from None


def _cell(row: dict[str, str], name: str) -> str:
    return row.get(name, "").strip()


def load_key(path: Path) -> dict[str, dict[str, KeyAnswer]]:
    """variant → question → its answer, from an answers.csv."""
    key: dict[str, dict[str, KeyAnswer]] = {}
    source = str(path)
    for line, row in _rows(path, KEY_FIELDS):
        variant, question = _cell(row, "variant"), _cell(row, "question")
        for name, text in (("variant", variant), ("question", question)):
            if not text:
                raise SpecError(source, f"line {line}: {name}", "empty; every answer names its variant and question")
        value_text, tolerance_text = row.get("value", ""), row.get("tolerance", "")
        value, tolerance = parse_number(value_text), parse_number(tolerance_text)
        if value is None:
            raise SpecError(source, f"line {line}: value", f"expected a number; got {quoted(value_text)}")
        if tolerance is None or tolerance < 0:
            raise SpecError(source, f"line {line}: tolerance", f"expected a number ≥ 0; got {quoted(tolerance_text)}")
        points_text = row.get("points")
        points = 1.0 if points_text is None or not points_text.strip() else parse_number(points_text)
        if points is None or points <= 0:
            raise SpecError(source, f"line {line}: points", f"expected a number > 0; got {quoted(points_text)}")
        questions = key.setdefault(variant, {})
        if question in questions:
            raise SpecError(
                source, f"line {line}",
                f"variant {quoted(variant)} question {quoted(question)} is also on line {questions[question].line}",
            )
        questions[question] = KeyAnswer(value, tolerance, line, points)
    if not key:
        raise SpecError(source, None, "no answers in it")
    return key


def load_mistakes(path: Path) -> dict[str, dict[str, list[tuple[str, float, str]]]]:
    """variant → question → [(mistake, value, feedback)], from a mistakes.csv (in the order
    of the catalogue, the order grading tries them)."""
    found: dict[str, dict[str, list[tuple[str, float, str]]]] = {}
    source = str(path)
    for line, row in _rows(path, MISTAKE_FIELDS):
        name, text = _cell(row, "mistake"), row.get("value", "")
        value = parse_number(text)
        if value is None:
            raise SpecError(source, f"line {line}: value", f"expected a number; got {quoted(text)}")
        found.setdefault(_cell(row, "variant"), {}).setdefault(_cell(row, "question"), []).append(
            (name, value, row.get("feedback", ""))
        )
    return found


@dataclass
class _Student:
    """What one student's rows say: the variant graded, their answers, and rows not used."""

    name: str
    variant: str | None = None  # a variant of the key, once a row names one
    given_variant: str = ""  # the variant of their first row, shown when none is in the key
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)  # question → (line, value as given)
    unused: list[dict[str, object]] = field(default_factory=list)


def grade(answers: Path, responses: Path, mistakes: Path | None = None, follow_through: float = 1.0) -> Grading:
    """Grades `responses` against `answers`.

    A wrong answer that equals (within the tolerance) the value recomputed from the
    student's own other answers earns `follow_through` of a point (0 turns it off), unless
    those answers make the step trivial (the recomputed value is 0, or a copy of another
    answer); it needs the variants.json beside the answers. A wrong answer that equals the
    value a catalogued mistake gives is named with its feedback; the mistakes are read from
    `mistakes`, else from the mistakes.csv beside the answers if there is one."""
    if isinstance(follow_through, bool) or not isinstance(follow_through, (int, float)) or not 0 <= follow_through <= 1:
        raise UsageError(f"follow-through: expected a credit from 0 to 1, got {follow_through!r}")
    key = load_key(answers)
    if mistakes is None and answers.with_name("mistakes.csv").is_file():
        mistakes = answers.with_name("mistakes.csv")
    catalogued = load_mistakes(mistakes) if mistakes is not None else None
    variants = _load_variants(answers.with_name("variants.json")) if follow_through and answers.with_name("variants.json").is_file() else {}
    result = Grading(named=catalogued is not None)
    students: dict[str, _Student] = {}
    unattributed: list[dict[str, object]] = []
    problems: list[tuple[int, str]] = []  # (line, message), reported in line order
    where = str(responses)

    def skipped(line: int, row: dict[str, str], problem: Problem, message: str) -> dict[str, object]:
        problems.append((line, f"{where}: line {line}: {message}"))
        return {"student": _cell(row, "student"), "variant": _cell(row, "variant"), "question": _cell(row, "question"),
                "given": row.get("value", ""), "expected": "", "tolerance": "", "problem": problem.value, "line": line}

    for line, row in _rows(responses, RESPONSE_FIELDS):
        name, variant, question = _cell(row, "student"), _cell(row, "variant"), _cell(row, "question")
        text = _cell(row, "value")
        if not (name or variant or question or text):
            continue
        if not name:
            unattributed.append(skipped(line, row, Problem.NO_STUDENT, "no student; row skipped"))
            continue
        student = students.setdefault(name, _Student(name, given_variant=variant))
        if variant not in key:
            student.unused.append(skipped(line, row, Problem.UNKNOWN_VARIANT, f"unknown variant {quoted(variant)}; row skipped"))
            continue
        if student.variant is None:
            student.variant = variant
        if student.variant != variant:
            student.unused.append(skipped(
                line, row, Problem.ANOTHER_VARIANT,
                f"{quoted(name)} answers variant {quoted(variant)} but earlier {quoted(student.variant)}; row skipped",
            ))
            continue
        if question not in key[variant]:
            student.unused.append(skipped(
                line, row, Problem.UNKNOWN_QUESTION, f"variant {quoted(variant)} has no question {quoted(question)}; row skipped"
            ))
            continue
        if not text:
            continue  # a blank cell is no answer; a later row may still answer
        if question in student.answers:
            first = student.answers[question][0]
            student.unused.append(skipped(
                line, row, Problem.ANSWERED_AGAIN,
                f"{quoted(name)} answers {quoted(question)} again; the answer on line {first} counts",
            ))
            continue
        student.answers[question] = (line, row.get("value", ""))

    counts = {_points(sum(a.points for a in questions.values())) for questions in key.values()}
    common_max: int | str = counts.pop() if len(counts) == 1 else ""
    for student in students.values():
        if student.variant is None:
            result.grades.append({"student": student.name, "variant": student.given_variant, "score": 0,
                                  "max": common_max, "problem": Problem.UNKNOWN_VARIANT.value})
            result.details.extend(student.unused)
            continue
        score: float = 0
        seen: list[str] = []  # mistakes already named for this student: one slip explains later answers too
        own = _own_values(student, key[student.variant])
        carried_on = _follow_through(variants.get(student.variant), own, key[student.variant]) if own else {}
        for question, answer in key[student.variant].items():
            line, text = student.answers.get(question, (None, None))
            number = parse_number(text)
            if text is None:
                problem = Problem.MISSING
            elif number is None:
                problem = Problem.NOT_A_NUMBER
                problems.append((line, f"{where}: line {line}: {quoted(text)} is not a number; graded as wrong"))
            elif within(number, answer.value, answer.tolerance):
                score += answer.points
                continue
            else:
                problem = Problem.WRONG
            mistake, feedback = "", ""
            outcome = carried_on.get(question)
            if problem is Problem.WRONG and outcome is not None:
                value, reason, sources = outcome
                if reason is None:
                    score += follow_through * answer.points
                    problem = Problem.FOLLOW_THROUGH
                    feedback = f"right from your own {', '.join(sources)}: {follow_through:g} of its points"
                else:
                    feedback = f"not follow-through: {reason}"
            if problem is Problem.WRONG and catalogued is not None:
                matching = [c for c in catalogued.get(student.variant, {}).get(question, []) if within(number, c[1], answer.tolerance)]
                # where two mistakes give this value (w + η g: a reversed update or a reversed error),
                # the one this student's earlier answers showed
                matching.sort(key=lambda c: c[0] not in seen)
                mistake, _, named_feedback = matching[0] if matching else ("", 0.0, UNEXPLAINED)
                feedback = f"{feedback}; {named_feedback}" if feedback else named_feedback
                if mistake:
                    seen.append(mistake)
            result.details.append(
                {"student": student.name, "variant": student.variant, "question": question,
                 "given": "" if text is None else text, "expected": answer.value, "tolerance": answer.tolerance,
                 "problem": problem.value, "line": "" if line is None else line, "mistake": mistake, "feedback": feedback}
            )
        result.details.extend(student.unused)
        result.grades.append({"student": student.name, "variant": student.variant, "score": _points(score),
                              "max": _points(sum(a.points for a in key[student.variant].values())), "problem": ""})
    result.details.extend(unattributed)
    result.problems = [message for _, message in sorted(problems, key=lambda problem: problem[0])]
    result.summary = _summary(key, students.values(), result.details)
    return result


def _points(score: float) -> int | float:
    """A score as written: 4, or 4.5 with partial follow-through credit."""
    return int(score) if float(score).is_integer() else round(score, 6)


def _load_variants(path: Path) -> dict[str, dict]:
    """variant → {"spec", "digits", "rounding"}, from the variants.json `derive exercise` writes."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SpecError(str(path), None, f"cannot be read as JSON: {plain(error)[:80]}") from None
    if not isinstance(data, dict):
        raise SpecError(str(path), None, "expected a mapping of variant ids to their specs")
    return data


def _own_values(student: "_Student", questions: dict[str, KeyAnswer]) -> dict[str, float]:
    """The student's answers that are numbers but wrong: the values follow-through carries on."""
    own = {}
    for question, answer in questions.items():
        number = parse_number(student.answers.get(question, (None, None))[1])
        if number is not None and not within(number, answer.value, answer.tolerance):
            own[question] = number
    return own


def _follow_through(variant: dict | None, own: dict[str, float], questions: dict[str, KeyAnswer]):
    """question → (the value recomputed from the student's other wrong answers, why
    follow-through is refused or None, the answers it follows from), for each wrong answer
    that the others change.

    The derivation is run again with the student's values in place of the right ones (a
    network's first sample's forward values, the gradients, the updated parameters; a
    graph's gate values and gradients): which answer depends on which is the derivation's,
    not a table's."""
    if variant is None:
        return {}
    from ..model.numeric import carried, exact
    from ..solution.derivation import runs
    from ..spec.schema import Rounding, load_spec
    from .variants import _graph_values, graph_values_given, sources_of, update_values, values_given
    from ..solution.graph import circuit_of

    try:
        spec = load_spec(variant["spec"])
        digits = variant.get("digits", 3)
        if spec.kind == "graph":
            keep = carried(digits) if variant.get("rounding", "carry") == Rounding.CARRY.value else exact
            right = _graph_values(circuit_of(spec, keep))
            right_exact = _graph_values(circuit_of(spec))

            def recompute(given, keep=keep):
                return graph_values_given(spec, given, keep)
        else:
            numbers = runs(spec, rounding=variant.get("rounding"), digits=digits)
            right = update_values(numbers.network, numbers.shown.updates[0])
            right_exact = update_values(numbers.network, numbers.exact.updates[0])

            def recompute(given, keep=None):
                return values_given(numbers, given, keep)
    except (DeriveError, KeyError, TypeError):
        return {}
    outcome = {}
    for question, given in own.items():
        others = {q: v for q, v in own.items() if q != question}
        recomputed = recompute(others) if others else None
        if recomputed is None:
            continue
        value = recomputed[question]
        tolerance = questions[question].tolerance
        if abs(value - right[question]) <= 1e-12 * max(1.0, abs(value)) or not within(given, value, tolerance):
            continue  # the student's other answers do not change this one, or the answer is not theirs either
        sources = sources_of(lambda one: recompute(one, exact), right_exact, others, question)
        if not sources:
            continue  # no earlier answer alone changes it: not wrong because of one
        reason = None
        if abs(value) <= tolerance < abs(right[question]):
            reason = "your earlier answers make this 0, which skips the work"
        elif any(within(value, others[s], tolerance) and not within(right[question], right[s], tolerance) for s in sources):
            reason = "your earlier answers make this a copy of one of them"
        outcome[question] = (value, reason, sources)
    return outcome


def _summary(key, students, details) -> list[dict[str, object]]:
    """Per question (in the key's order), over the students graded: how many answered, got it
    right, wrong (and by which catalogued mistake, or unexplained), or left it out."""
    rows: dict[str, dict[str, object]] = {}
    for questions in key.values():
        for question in questions:
            rows.setdefault(question, {"question": question, **dict.fromkeys(SUMMARY_FIELDS[1:], 0)})
    for student in students:
        if student.variant is None:
            continue
        for question in key[student.variant]:
            rows[question]["answers"] += 1
    for detail in details:
        row = rows.get(detail["question"])
        if row is None or detail["problem"] not in (
            Problem.WRONG.value, Problem.NOT_A_NUMBER.value, Problem.MISSING.value, Problem.FOLLOW_THROUGH.value
        ):
            continue
        if detail["problem"] == Problem.FOLLOW_THROUGH.value:
            row["follow_through"] += 1
            continue
        if detail["problem"] == Problem.MISSING.value:
            row["missing"] += 1
            continue
        row["wrong"] += 1
        name = detail.get("mistake") or ""
        if name in row and name not in SUMMARY_FIELDS[:6]:
            row[name] += 1
        else:
            row["unexplained"] += 1
    for row in rows.values():
        row["right"] = row["answers"] - row["wrong"] - row["missing"] - row["follow_through"]
    return list(rows.values())


def summary_lines(result: Grading) -> list[str]:
    """The class summary in words, a line per question: 12 right, 3 wrong (2 error_sign, 1 unexplained)."""
    lines = []
    for row in result.summary:
        named = [f"{row[m.name]} {m.name}" for m in CATALOGUE if row[m.name]]
        carried = f", {row['follow_through']} follow-through" if row["follow_through"] else ""
        if row["unexplained"] and result.named:
            named.append(f"{row['unexplained']} unexplained")
        why = f" ({', '.join(named)})" if named and row["wrong"] else ""
        missing = f", {row['missing']} missing" if row["missing"] else ""
        lines.append(f"{row['question']}: {row['right']} right{carried}, {row['wrong']} wrong{why}{missing}")
    return lines


def details_path(output: Path, kind: str = "details") -> Path:
    """Where the details (or the summary) go beside `output`: grades.csv → grades-details.csv."""
    return output.with_name(output.stem + "-" + kind + (output.suffix or ".csv"))


def _check_target(target: Path, inputs: Sequence[Path], force: bool) -> bool:
    """Raises unless `target` may be written; True if it is a link or special file that
    `force` allows replacing."""
    for source in inputs:
        # samefile: one file however it is named (./a.csv, a link to it, a hard link, A.CSV
        # where case does not matter); resolve: also when it has gone meanwhile.
        try:
            same = os.path.samefile(target, source)
        except OSError:
            try:
                same = target.resolve() == source.resolve()
            except (OSError, RuntimeError):  # a loop of symbolic links: not an input, refused below
                same = False
        if same:
            raise UsageError(f"{target}: is the input {source}; give another --output")
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return False
    except OSError as error:
        raise OutputError(f"{target}: cannot check it: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        raise OutputError(f"{target}: is a folder; give a file name")
    if stat.S_ISREG(mode):
        return False
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise OutputError(f"{target}: is a device; give a file name")
    if not force:
        if stat.S_ISLNK(mode):
            raise OutputError(f"{target}: is a symbolic link; --force replaces it with the grades")
        raise OutputError(f"{target}: is not a regular file (a FIFO or socket); --force replaces it")
    return True


def write_grades(result: Grading, output: Path, inputs: Sequence[Path], force: bool = False) -> tuple[Path, Path, Path]:
    """Writes the grades to `output`, the details and the class summary beside it (see
    details_path); returns the three paths. Refuses, whatever `force`: an input file at either path (UsageError), a
    folder there, a folder that does not exist (OutputError). Refuses, unless `force`, a
    symbolic link, a FIFO or a socket there (OutputError), and a device even then; with
    `force` it is removed and a regular file written in its place: a link is replaced,
    not written through."""
    from .exports import csv_text
    from ..files import write_all

    if output.is_dir():
        raise OutputError(f"{output}: is a folder; give a file name")
    folder = output.parent
    if not folder.is_dir():
        raise OutputError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    details, summary = details_path(output), details_path(output, "summary")
    replaced = [target for target in (output, details, summary) if _check_target(target, inputs, force)]
    files = [
        (output, csv_text(result.grades, GRADE_FIELDS)),
        (details, csv_text(result.details, DETAIL_FIELDS)),
        (summary, csv_text(result.summary, SUMMARY_FIELDS)),
    ]
    for target in replaced:
        try:
            target.unlink()
        except OSError as error:
            raise OutputError(f"{target}: cannot replace it: {error.strerror}") from None
    write_all(files)
    return output, details, summary
