"""Grading: a strict key, strict numbers, every student graded, unusable rows reported and
detailed, one-line clean messages, bounded input, and output that never overwrites an input."""

from __future__ import annotations

import csv
import os
import socket
import stat
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from derive.exercises import grading as grading
from derive.cli import main
from derive.errors import OutputError, SpecError, UsageError, quoted
from derive.exercises.grading import (
    DETAIL_FIELDS,
    GRADE_FIELDS,
    details_path,
    grade,
    parse_number,
    write_grades,
)

KEY = [
    ("V1", "a2[0]", "0.889", "0.0011"),
    ("V1", "loss", "0.12", "0.0015"),
    ("V1", "grad:W1[0,1]", "-0.035", "0.0013"),
    ("V2", "a2[0]", "0.582", "0.0013"),
    ("V2", "loss", "0.04", "0.0014"),
    ("V2", "grad:W1[1,1]", "-0.034", "0.0013"),
]


def write_csv(path: Path, header: tuple[str, ...], rows) -> Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def key_file(tmp_path: Path, rows=KEY, name: str = "answers.csv") -> Path:
    return write_csv(tmp_path / name, ("variant", "question", "value", "tolerance"), rows)


def responses_file(tmp_path: Path, rows, name: str = "responses.csv") -> Path:
    return write_csv(tmp_path / name, ("student", "variant", "question", "value"), rows)


def right(variant: str) -> list[tuple[str, str, str]]:
    """Every question of `variant` answered with the key's value."""
    return [(variant, question, value) for v, question, value, _ in KEY if v == variant]


def read(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(newline="", encoding="utf-8")))


def spec_error(call) -> str:
    with pytest.raises(SpecError) as caught:
        call()
    return str(caught.value)


# -- the key -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("tolerance", ["-0.001", "−0.5", "-1e-9", "nan", "inf", "-inf", "abc", "", "0.6_73"])
def test_key_tolerance_must_be_a_number_at_least_0(tmp_path, tolerance):
    rows = [KEY[0], ("V1", "loss", "0.12", tolerance)]
    answers = key_file(tmp_path, rows)
    responses = responses_file(tmp_path, [])
    message = spec_error(lambda: grade(answers, responses))
    assert message == f"{answers}: line 3: tolerance: expected a number ≥ 0; got '{tolerance}'"


def test_key_tolerance_0_accepts_only_the_value(tmp_path):
    answers = key_file(tmp_path, [("V1", "loss", "0.12", "0"), ("V1", "a2[0]", "0.5", "-0")])
    responses = responses_file(tmp_path, [
        ("ann", "V1", "loss", "0.12"), ("ann", "V1", "a2[0]", "0,5"),
        ("bob", "V1", "loss", "0.1200001"), ("bob", "V1", "a2[0]", "0.4999999"),
    ])
    grades = grade(answers, responses).grades
    assert [(g["student"], g["score"]) for g in grades] == [("ann", 2), ("bob", 0)]


@pytest.mark.parametrize("value", ["nan", "inf", "", "1_0", "1,234.5", "0x1"])
def test_key_value_must_be_a_number(tmp_path, value):
    answers = key_file(tmp_path, [("V1", "loss", value, "0.1")])
    message = spec_error(lambda: grade(answers, responses_file(tmp_path, [])))
    assert message == f"{answers}: line 2: value: expected a number; got '{value}'"


def test_key_duplicate_row_names_both_lines(tmp_path):
    answers = key_file(tmp_path, [KEY[0], KEY[1], KEY[2], ("V1", "loss", "0.5", "0.1")])
    message = spec_error(lambda: grade(answers, responses_file(tmp_path, [])))
    assert message == f"{answers}: line 5: variant 'V1' question 'loss' is also on line 3"


def test_key_same_question_in_two_variants_is_fine(tmp_path):
    answers = key_file(tmp_path)
    assert set(grading.load_key(answers)) == {"V1", "V2"}


@pytest.mark.parametrize("row, column", [(("", "loss", "1", "0.1"), "variant"), (("V1", "  ", "1", "0.1"), "question")])
def test_key_empty_variant_or_question(tmp_path, row, column):
    answers = key_file(tmp_path, [KEY[0], row])
    message = spec_error(lambda: grade(answers, responses_file(tmp_path, [])))
    assert message == f"{answers}: line 3: {column}: empty; every answer names its variant and question"


def test_key_without_answers(tmp_path):
    answers = key_file(tmp_path, [])
    assert spec_error(lambda: grade(answers, responses_file(tmp_path, []))) == f"{answers}: no answers in it"


def test_key_errors_through_the_cli(tmp_path, capsys):
    answers = key_file(tmp_path, [KEY[0], ("V1", "loss", "0.12", "-0.1")])
    responses = responses_file(tmp_path, [("ann", *right("V1")[0])])
    output = tmp_path / "grades.csv"
    assert main(["grade", str(answers), str(responses), "--output", str(output)]) == 2
    assert capsys.readouterr().err == f"{answers}: line 3: tolerance: expected a number ≥ 0; got '-0.1'\n"
    assert not output.exists() and not details_path(output).exists()


# -- numbers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, number", [
    ("0.5", 0.5), (" 0.5 ", 0.5), ("\t0.5\u00a0", 0.5), ("0,5", 0.5), ("−0.5", -0.5), ("-0,5", -0.5), ("+0.5", 0.5),
    ("5e-3", 0.005), ("5E+3", 5000.0), ("−1,5e2", -150.0), (".5", 0.5), (",5", 0.5), ("5.", 5.0), ("7", 7.0),
    ("1,234", 1.234),  # a comma is always a decimal comma
    ("0", 0.0), ("-0", 0.0), ("1e-400", 0.0),
])
def test_numbers_as_students_type_them(text, number):
    assert parse_number(text) == number


@pytest.mark.parametrize("text", [
    "0.6_73", "1_000", "_1", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1,234.5", "1.234,5", "1.2.3", "1,2,3",
    "0x10", "1e", "e5", "1e5.5", "", "   ", "1e999", "-1e400", "½", "٣", "１", "1 000", "--1", "−-1", "0.5%", "5 e3",
    "1e_5", "0.5\n0.6",
])
def test_not_numbers(text):
    assert parse_number(text) is None


def test_not_a_number_is_graded_wrong_and_reported(tmp_path):
    answers = key_file(tmp_path)
    responses = responses_file(tmp_path, [("ann", "V1", "a2[0]", "0.88_9"), ("ann", "V1", "loss", "0,12")])
    result = grade(answers, responses)
    assert result.grades == [{"student": "ann", "variant": "V1", "score": 1, "max": 3, "problem": ""}]
    assert [(d["question"], d["given"], d["problem"], d["line"]) for d in result.details] == [
        ("a2[0]", "0.88_9", "not a number", 2), ("grad:W1[0,1]", "", "missing", ""),
    ]
    assert result.problems == [f"{responses}: line 2: '0.88_9' is not a number; graded as wrong"]


# -- the tolerance -----------------------------------------------------------------------------------

SWEEP_KEY = [
    ("V1", "a", "0.889", "0.0011"),
    ("V1", "b", "-0.035", "0.0013"),
    ("V1", "c", "0", "0.001"),
    ("V1", "d", "12.5", "0.05"),
    ("V1", "e", "1234.5", "0.5"),
    ("V1", "f", "-7.25e-4", "2e-5"),
    ("V1", "g", "98765.4321", "0.0001"),
]
FACTORS = ("0.99", "-0.99", "1", "-1", "1.01", "-1.01", "2", "-2")


def sweep(tmp_path: Path, key_rows) -> tuple[dict[str, int], dict[str, int]]:
    """Grades one simulated student per variant and factor f, answering value + f·tolerance
    to each question of the variant; returns the scores given and the scores by exact
    rational arithmetic."""
    answers = key_file(tmp_path, key_rows)
    rows, expected = [], {}
    for factor in FACTORS:
        for variant, question, value, tolerance in key_rows:
            student = f"{variant} at {factor} tolerance"
            given = str(Decimal(value) + Decimal(factor) * Decimal(tolerance))
            rows.append((student, variant, question, given))
            expected[student] = expected.get(student, 0) + (abs(Fraction(given) - Fraction(value)) <= Fraction(tolerance))
    result = grade(answers, responses_file(tmp_path, rows))
    assert result.problems == []
    return {g["student"]: g["score"] for g in result.grades}, expected


def test_tolerance_just_inside_on_and_just_outside(tmp_path):
    scores, expected = sweep(tmp_path, SWEEP_KEY)
    assert scores == expected
    # What the oracle says, spelled out: within 0.99 and on the boundary right, beyond wrong.
    assert expected == {f"V1 at {f} tolerance": len(SWEEP_KEY) if abs(float(f)) <= 1 else 0 for f in FACTORS}


def test_tolerance_of_a_made_exercise(tmp_path):
    made = tmp_path / "made"
    assert main(["exercise", "esuli", "--count", "3", "--seed", "0x3f9a", "--format", "md", "--output", str(made)]) == 0
    key_rows = [(r["variant"], r["question"], r["value"], r["tolerance"]) for r in read(made / "answers.csv")]
    assert len({r[3] for r in key_rows}) > 1  # several tolerances
    scores, expected = sweep(tmp_path, key_rows)
    assert scores == expected
    assert {student: score for student, score in expected.items() if "at 1.01" in student or "at -2" in student} == {
        f"{variant} at {f} tolerance": 0 for variant in ("V01-3f9a", "V02-3f9a", "V03-3f9a") for f in ("1.01", "-2")
    }


def test_wrong_answers_carry_the_expected_value_and_tolerance(tmp_path):
    answers = key_file(tmp_path)
    responses = responses_file(tmp_path, [("ann", "V2", "loss", "0.0415")])
    details = grade(answers, responses).details
    assert details[1] == {"student": "ann", "variant": "V2", "question": "loss", "given": "0.0415", "expected": 0.04,
                          "tolerance": 0.0014, "problem": "wrong", "line": 2, "mistake": "", "feedback": ""}


# -- rows that cannot be used ------------------------------------------------------------------------


def test_every_student_gets_a_row(tmp_path):
    answers = key_file(tmp_path)
    responses = responses_file(tmp_path, [
        ("ann", *right("V1")[0]),
        ("cat", "V99", "loss", "1"),  # unknown variant only
        ("dan", "V1", "grad:W7[0,0]", "1"),  # unknown question only
        ("eve", "V2", "loss", "about two"),  # not a number only
        ("fay", "V2", "loss", ""),  # a blank answer only
        ("gus", "", "loss", "1"),  # no variant
    ])
    result = grade(answers, responses)
    assert result.grades == [
        {"student": "ann", "variant": "V1", "score": 1, "max": 3, "problem": ""},
        {"student": "cat", "variant": "V99", "score": 0, "max": 3, "problem": "unknown variant"},
        {"student": "dan", "variant": "V1", "score": 0, "max": 3, "problem": ""},
        {"student": "eve", "variant": "V2", "score": 0, "max": 3, "problem": ""},
        {"student": "fay", "variant": "V2", "score": 0, "max": 3, "problem": ""},
        {"student": "gus", "variant": "", "score": 0, "max": 3, "problem": "unknown variant"},
    ]
    assert [(d["student"], d["question"], d["problem"], d["line"]) for d in result.details] == [
        ("ann", "loss", "missing", ""), ("ann", "grad:W1[0,1]", "missing", ""),
        ("cat", "loss", "unknown variant", 3),
        ("dan", "a2[0]", "missing", ""), ("dan", "loss", "missing", ""), ("dan", "grad:W1[0,1]", "missing", ""),
        ("dan", "grad:W7[0,0]", "unknown question", 4),
        ("eve", "a2[0]", "missing", ""), ("eve", "loss", "not a number", 5), ("eve", "grad:W1[1,1]", "missing", ""),
        ("fay", "a2[0]", "missing", ""), ("fay", "loss", "missing", ""), ("fay", "grad:W1[1,1]", "missing", ""),
        ("gus", "loss", "unknown variant", 7),
    ]
    assert result.problems == [  # in line order
        f"{responses}: line 3: unknown variant 'V99'; row skipped",
        f"{responses}: line 4: variant 'V1' has no question 'grad:W7[0,0]'; row skipped",
        f"{responses}: line 5: 'about two' is not a number; graded as wrong",
        f"{responses}: line 7: unknown variant ''; row skipped",
    ]


def test_unknown_variant_max_is_empty_when_variants_differ(tmp_path):
    answers = key_file(tmp_path, KEY + [("V2", "new:W2[0,1]", "-0.505", "0.0011")])
    result = grade(answers, responses_file(tmp_path, [("cat", "V99", "loss", "1")]))
    assert result.grades == [{"student": "cat", "variant": "V99", "score": 0, "max": "", "problem": "unknown variant"}]


def test_a_known_variant_after_an_unknown_one_is_the_students(tmp_path):
    answers = key_file(tmp_path)
    responses = responses_file(tmp_path, [("ann", "V9", "loss", "1"), *[("ann", *r) for r in right("V2")]])
    result = grade(answers, responses)
    assert result.grades == [{"student": "ann", "variant": "V2", "score": 3, "max": 3, "problem": ""}]
    assert [(d["variant"], d["problem"], d["line"]) for d in result.details] == [("V9", "unknown variant", 2)]


def test_another_variant_is_skipped_and_detailed(tmp_path):
    answers = key_file(tmp_path)
    responses = responses_file(tmp_path, [*[("ann", *r) for r in right("V1")], ("ann", "V2", "loss", "0.04")])
    result = grade(answers, responses)
    assert result.grades == [{"student": "ann", "variant": "V1", "score": 3, "max": 3, "problem": ""}]
    assert result.details == [{"student": "ann", "variant": "V2", "question": "loss", "given": "0.04", "expected": "",
                               "tolerance": "", "problem": "another variant", "line": 5}]
    assert result.problems == [f"{responses}: line 5: 'ann' answers variant 'V2' but earlier 'V1'; row skipped"]


@pytest.mark.parametrize("answers_given, score", [(("0.12", "0.5"), 1), (("0.5", "0.12"), 0), (("", "0.12"), 1)])
def test_answered_again_the_first_answer_counts(tmp_path, answers_given, score):
    answers = key_file(tmp_path, [("V1", "loss", "0.12", "0.0015")])
    responses = responses_file(tmp_path, [("ann", "V1", "loss", text) for text in answers_given])
    result = grade(answers, responses)
    assert result.grades == [{"student": "ann", "variant": "V1", "score": score, "max": 1, "problem": ""}]
    if answers_given[0]:
        assert [(d["given"], d["problem"], d["line"]) for d in result.details][-1] == (answers_given[1], "answered again", 3)
        assert result.problems[0] == f"{responses}: line 3: 'ann' answers 'loss' again; the answer on line 2 counts"
    else:  # a blank cell is no answer: the later row answers
        assert result.details == [] and result.problems == []


def test_row_without_student(tmp_path):
    answers = key_file(tmp_path)
    responses = responses_file(tmp_path, [("", "V1", "loss", "0.12"), ("  ", "V1", "loss", "0.5")])
    result = grade(answers, responses)
    assert result.grades == []
    assert [(d["student"], d["given"], d["problem"], d["line"]) for d in result.details] == [
        ("", "0.12", "no student", 2), ("", "0.5", "no student", 3),
    ]
    assert result.problems == [f"{responses}: line 2: no student; row skipped", f"{responses}: line 3: no student; row skipped"]


def test_blank_rows_are_skipped(tmp_path):
    answers = key_file(tmp_path)
    responses = tmp_path / "responses.csv"
    responses.write_text("student,variant,question,value\nann,V1,loss,0.12\n,,,\n , , , \n\n", encoding="utf-8")
    result = grade(answers, responses)
    assert [g["student"] for g in result.grades] == ["ann"] and result.problems == []


def test_extra_columns_and_short_rows(tmp_path):
    answers = key_file(tmp_path)
    responses = tmp_path / "responses.csv"
    responses.write_text("comment,student,variant,question,value\nhi,ann,V1,loss,0.12,extra\nhi,bob,V1\n", encoding="utf-8")
    result = grade(answers, responses)
    assert [(g["student"], g["score"]) for g in result.grades] == [("ann", 1), ("bob", 0)]
    assert result.problems == [f"{responses}: line 3: variant 'V1' has no question ''; row skipped"]


def test_grading_through_the_cli(tmp_path, capsys):
    answers = key_file(tmp_path)
    responses = responses_file(tmp_path, [*[("ann", *r) for r in right("V1")], ("cat", "V99", "loss", "1")])
    output = tmp_path / "grades.csv"
    assert main(["grade", str(answers), str(responses), "--output", str(output)]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"{responses}: line 5: unknown variant 'V99'; row skipped\n"
    assert list(read(output)[0]) == list(GRADE_FIELDS)
    assert [(g["student"], g["score"], g["max"], g["problem"]) for g in read(output)] == [
        ("ann", "3", "3", ""), ("cat", "0", "3", "unknown variant"),
    ]
    details = read(tmp_path / "grades-details.csv")
    assert list(details[0]) == list(DETAIL_FIELDS)
    assert [(d["student"], d["problem"], d["line"]) for d in details] == [("cat", "unknown variant", "5")]


# -- messages ----------------------------------------------------------------------------------------


def test_messages_are_one_line_and_clean(tmp_path):
    answers = key_file(tmp_path)
    nasty = "\x1b[2J\x1b[31mMallory\x1b[0m\nDROP\r" + "z" * 100
    responses = responses_file(tmp_path, [
        (nasty, "V1", "loss", "0.12"),
        (nasty, nasty, "loss", "1"),
        (nasty, "V1", nasty, "1"),
        (nasty, "V1", "loss", "0.12"),
        (nasty, "V1", "a2[0]", nasty),
        (nasty, "V2", "loss", "1"),
    ])
    problems = grade(answers, responses).problems
    assert len(problems) == 5
    for problem in problems:
        assert problem.isprintable() and "\x1b" not in problem and "[31m" not in problem
        assert "z" * 40 not in problem and "Mallory DROP" in problem
    # Each row spans three lines (a line feed and a carriage return inside a quoted cell);
    # a row's line is where it starts.
    assert problems[0] == f"{responses}: line 5: unknown variant {quoted(nasty)}; row skipped"
    assert quoted(nasty) == "'Mallory DROP " + "z" * 26 + "…'"  # 40 characters
    # The details keep what was given, for the instructor to read.
    assert grade(answers, responses).details[-1]["student"] == nasty


def test_key_messages_are_clean(tmp_path):
    answers = key_file(tmp_path, [("V1", "loss", "0.12", "\x1b[31m-1\x1b[0m" + "9" * 80)])
    message = spec_error(lambda: grade(answers, responses_file(tmp_path, [])))
    assert message == f"{answers}: line 2: tolerance: expected a number ≥ 0; got '-1{'9' * 37}…'"


# -- input files -------------------------------------------------------------------------------------


def test_too_many_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(grading, "MAX_ROWS", 3)
    answers = key_file(tmp_path, KEY[:3])
    assert len(grade(answers, responses_file(tmp_path, [("ann", *r) for r in right("V1")])).grades) == 1
    responses = responses_file(tmp_path, [("ann", *r) for r in right("V1")] + [("bob", "V1", "loss", "1")])
    assert spec_error(lambda: grade(answers, responses)) == f"{responses}: line 5: more than 3 rows; split the file"
    big_key = key_file(tmp_path, KEY, name="big.csv")
    assert spec_error(lambda: grading.load_key(big_key)) == f"{big_key}: line 5: more than 3 rows; split the file"


def test_blank_rows_count_towards_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(grading, "MAX_ROWS", 3)
    answers = key_file(tmp_path, KEY[:3])
    responses = tmp_path / "responses.csv"
    responses.write_text("student,variant,question,value\nann,V1,loss,0.12\n\n,,,\n\n", encoding="utf-8")
    assert spec_error(lambda: grade(answers, responses)) == f"{responses}: line 5: more than 3 rows; split the file"


def test_the_caps():
    assert (grading.MAX_ROWS, grading.MAX_LINE) == (1_000_000, 65_536)


def test_long_line(tmp_path, monkeypatch):
    monkeypatch.setattr(grading, "MAX_LINE", 40)
    answers = key_file(tmp_path, KEY[:3])
    responses = tmp_path / "responses.csv"
    line = "ann,V1,loss," + "1" * 28  # 40 characters: the longest line there may be
    responses.write_text(f"student,variant,question,value\r\n{line}\r\n{line}1\n", encoding="utf-8")
    assert spec_error(lambda: grade(answers, responses)) == f"{responses}: line 3: longer than 40 characters"
    responses.write_text(f"student,variant,question,value\n{line}1", encoding="utf-8")  # no line break at the end
    assert spec_error(lambda: grade(answers, responses)) == f"{responses}: line 2: longer than 40 characters"
    responses.write_text(f"student,variant,question,value\n{line}\n", encoding="utf-8")
    assert grade(answers, responses).grades[0]["student"] == "ann"


def test_a_file_without_line_breaks_is_not_read_whole(tmp_path):
    answers = key_file(tmp_path, KEY[:3])
    responses = tmp_path / "responses.csv"
    responses.write_text("student,variant,question,value\n" + "x," * 5_000_000, encoding="utf-8")
    assert spec_error(lambda: grade(answers, responses)) == f"{responses}: line 2: longer than 65,536 characters"


def test_huge_field(tmp_path, capsys):
    answers = key_file(tmp_path)
    # A quoted field over many lines, each short enough.
    responses = responses_file(tmp_path, [("ann", "V1", "loss", "0.12"), ("bob", "V1", "loss", ("1" * 60_000 + "\n") * 3)])
    limit = csv.field_size_limit()
    message = f"{responses}: line 3: a field longer than {limit:,} characters"
    assert spec_error(lambda: grade(answers, responses)) == message
    output = tmp_path / "grades.csv"
    assert main(["grade", str(answers), str(responses), "--output", str(output)]) == 2
    assert capsys.readouterr().err == message + "\n"
    assert not output.exists()


def test_unreadable_inputs(tmp_path):
    answers = key_file(tmp_path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("student,variant,question,value\nZo\xeb,V1,loss,1\n".encode("latin-1"))
    assert spec_error(lambda: grade(answers, latin)) == f"{latin}: not UTF-8 text; save it as CSV in UTF-8"
    assert spec_error(lambda: grade(answers, tmp_path)) == f"{tmp_path}: is a folder, expected a CSV file"
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)  # nobody writes to it: reading would wait for ever
    assert spec_error(lambda: grade(fifo, answers)) == f"{fifo}: is not a regular file (a device or a pipe?), expected a CSV file"
    missing = tmp_path / "none.csv"
    assert spec_error(lambda: grade(answers, missing)) == f"{missing}: no such file"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert spec_error(lambda: grade(answers, empty)) == (
        f"{empty}: line 1: expected the columns student,variant,question,value; missing student, variant, question, value"
    )


def test_utf8_with_bom_and_decimal_commas_from_a_spreadsheet(tmp_path):
    answers = key_file(tmp_path)
    responses = tmp_path / "responses.csv"
    responses.write_bytes("\ufeffstudent,variant,question,value\nZoë,V1,loss,\"0,12\"\n".encode("utf-8"))
    assert grade(answers, responses).grades == [{"student": "Zoë", "variant": "V1", "score": 1, "max": 3, "problem": ""}]


# -- writing the grades ------------------------------------------------------------------------------


@pytest.fixture
def graded(tmp_path):
    answers = key_file(tmp_path)
    responses = responses_file(tmp_path, [*[("ann", *r) for r in right("V1")], ("bob", "V2", "loss", "1")])
    return answers, responses, grade(answers, responses)


def test_write_grades(graded, tmp_path):
    answers, responses, result = graded
    output = tmp_path / "grades.csv"
    output.write_text("old grades\n")  # an earlier run's output is replaced
    assert write_grades(result, output, [answers, responses], force=False) == (
        output, tmp_path / "grades-details.csv", tmp_path / "grades-summary.csv"
    )
    assert [(g["student"], g["score"]) for g in read(output)] == [("ann", "3"), ("bob", "0")]
    assert [(d["student"], d["problem"]) for d in read(tmp_path / "grades-details.csv")] == [
        ("bob", "missing"), ("bob", "wrong"), ("bob", "missing"),
    ]


def test_write_grades_without_suffix(graded, tmp_path):
    answers, responses, result = graded
    assert write_grades(result, tmp_path / "grades", [answers, responses], False) == (
        tmp_path / "grades", tmp_path / "grades-details.csv", tmp_path / "grades-summary.csv"
    )


def refused(result, output: Path, inputs, force: bool, error: type) -> str:
    folder = output.parent if output.parent.is_dir() else None
    before = sorted(os.listdir(folder)) if folder else None
    with pytest.raises(error) as caught:
        write_grades(result, output, inputs, force)
    if folder:
        assert sorted(os.listdir(folder)) == before  # nothing written, nothing left behind
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("force", [False, True])
def test_refuses_to_overwrite_an_input(graded, tmp_path, monkeypatch, force):
    answers, responses, result = graded
    answers_text, responses_text = answers.read_bytes(), responses.read_bytes()
    inputs = [answers, responses]
    (tmp_path / "sub").mkdir()
    for output, source in ((answers, answers), (responses, responses), (tmp_path / "." / "answers.csv", answers),
                           (tmp_path / "sub" / ".." / "responses.csv", responses)):
        assert refused(result, output, inputs, force, UsageError) == f"{output}: is the input {source}; give another --output"
    monkeypatch.chdir(tmp_path)
    assert refused(result, Path("answers.csv"), inputs, force, UsageError) == f"answers.csv: is the input {answers}; give another --output"
    link = tmp_path / "link.csv"
    link.symlink_to(responses)
    assert refused(result, link, inputs, force, UsageError) == f"{link}: is the input {responses}; give another --output"
    hard = tmp_path / "hard.csv"
    os.link(answers, hard)
    assert refused(result, hard, inputs, force, UsageError) == f"{hard}: is the input {answers}; give another --output"
    assert (answers.read_bytes(), responses.read_bytes()) == (answers_text, responses_text)


@pytest.mark.parametrize("force", [False, True])
def test_refuses_details_that_would_overwrite_an_input(tmp_path, force):
    answers = key_file(tmp_path)
    responses = responses_file(tmp_path, [("ann", *right("V1")[0])], name="grades-details.csv")
    result = grade(answers, responses)
    message = refused(result, tmp_path / "grades.csv", [answers, responses], force, UsageError)
    assert message == f"{responses}: is the input {responses}; give another --output"
    assert not (tmp_path / "grades.csv").exists()
    assert read(responses)[0]["student"] == "ann"


def test_refuses_a_symbolic_link_unless_forced(graded, tmp_path):
    answers, responses, result = graded
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text("keep me\n")
    output = tmp_path / "grades.csv"
    output.symlink_to(elsewhere)
    message = refused(result, output, [answers, responses], False, OutputError)
    assert message == f"{output}: is a symbolic link; --force replaces it with the grades"
    write_grades(result, output, [answers, responses], True)
    assert not output.is_symlink() and read(output)[0]["student"] == "ann"
    assert elsewhere.read_text() == "keep me\n"  # replaced, not written through


def test_refuses_a_symbolic_link_at_the_details_path(graded, tmp_path):
    answers, responses, result = graded
    details = tmp_path / "grades-details.csv"
    details.symlink_to(tmp_path / "dangling")
    message = refused(result, tmp_path / "grades.csv", [answers, responses], False, OutputError)
    assert message == f"{details}: is a symbolic link; --force replaces it with the grades"
    write_grades(result, tmp_path / "grades.csv", [answers, responses], True)
    assert not details.is_symlink() and details.is_file() and not (tmp_path / "dangling").exists()


def special_files(folder: Path):
    fifo = folder / "fifo.csv"
    os.mkfifo(fifo)
    yield fifo
    sock = folder / "s.csv"
    if len(str(sock)) < 100:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(sock))
        server.close()
        yield sock
    device = folder / "device.csv"
    try:
        os.mknod(device, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        return
    yield device


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_refuses_a_special_file_unless_forced(graded, tmp_path):
    answers, responses, result = graded
    folder = tmp_path / "out"
    folder.mkdir()
    for special in special_files(folder):
        if stat.S_ISCHR(special.lstat().st_mode):  # a device is never replaced, --force or not
            for force in (False, True):
                assert refused(result, special, [answers, responses], force, OutputError) == f"{special}: is a device; give a file name"
            assert stat.S_ISCHR(special.lstat().st_mode)
            continue
        message = refused(result, special, [answers, responses], False, OutputError)
        assert message == f"{special}: is not a regular file (a FIFO or socket); --force replaces it"
        assert not stat.S_ISREG(special.lstat().st_mode)
        write_grades(result, special, [answers, responses], True)
        assert stat.S_ISREG(special.lstat().st_mode) and read(special)[0]["student"] == "ann"


@pytest.mark.parametrize("force", [False, True])
def test_refuses_a_missing_folder(graded, tmp_path, force):
    answers, responses, result = graded
    output = tmp_path / "no" / "such" / "grades.csv"
    assert refused(result, output, [answers, responses], force, OutputError) == f"{tmp_path / 'no' / 'such'}: no such folder"
    assert not (tmp_path / "no").exists()
    answers_as_folder = answers / "grades.csv"
    assert refused(result, answers_as_folder, [answers, responses], force, OutputError) == f"{answers}: not a folder"


@pytest.mark.parametrize("force", [False, True])
def test_refuses_a_folder_as_output(graded, tmp_path, monkeypatch, force):
    answers, responses, result = graded
    assert refused(result, tmp_path, [answers, responses], force, OutputError) == f"{tmp_path}: is a folder; give a file name"
    monkeypatch.chdir(tmp_path)
    assert refused(result, Path("."), [answers, responses], force, OutputError) == ".: is a folder; give a file name"
    assert refused(result, Path("/"), [answers, responses], force, OutputError) == "/: is a folder; give a file name"
    (tmp_path / "grades-details.csv").mkdir()
    message = refused(result, tmp_path / "grades.csv", [answers, responses], force, OutputError)
    assert message == f"{tmp_path / 'grades-details.csv'}: is a folder; give a file name"
    assert not (tmp_path / "grades.csv").exists()


def test_error_exit_codes():
    assert (UsageError.exit_code, OutputError.exit_code, SpecError.exit_code) == (2, 1, 2)


def test_points_per_question_from_the_exercise_to_the_grades(tmp_path):
    """--points in the key (answers.csv, key.json, Moodle weights) and in the grades."""
    import json
    import xml.etree.ElementTree as ET

    from derive.cli import main

    out = tmp_path / "exam"
    assert main(["exercise", "esuli", "--count", "2", "--points", "gradients=2,loss=3", "--format", "json,moodle",
                 "--output", str(out)]) == 0
    rows = list(csv.DictReader((out / "answers.csv").open()))
    worth = {r["question"]: int(r["points"]) for r in rows}
    assert worth["loss"] == 3 and worth["a2[0]"] == 1
    assert all(p == 2 for q, p in worth.items() if q.startswith("grad:")) and any(q.startswith("new:") and p == 1 for q, p in worth.items())
    key = json.loads((out / rows[0]["variant"] / "key.json").read_text())
    assert {q["id"]: q["points"] for q in key["questions"]} == {r["question"]: int(r["points"]) for r in rows if r["variant"] == rows[0]["variant"]}
    text = next(q.find("questiontext/text").text for q in ET.parse(out / "moodle.xml").getroot().iter("question") if q.get("type") == "cloze")
    assert "{3:NUMERICAL:=" in text and "{2:NUMERICAL:=" in text
    first = [r for r in rows if r["variant"] == rows[0]["variant"]]
    responses = tmp_path / "responses.csv"
    with responses.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", "variant", "question", "value"])
        for r in first:
            writer.writerow(["ann", r["variant"], r["question"], r["value"] if r["question"] != "loss" else "9"])
    (grade_row,) = grade(out / "answers.csv", responses, follow_through=0).grades
    total = sum(int(r["points"]) for r in first)
    assert grade_row["max"] == total and grade_row["score"] == total - 3


@pytest.mark.parametrize("points", ["0", "-1", "x"])
def test_bad_points_in_the_key_are_refused(tmp_path, points):
    answers = tmp_path / "answers.csv"
    answers.write_text(f"variant,question,value,tolerance,points\nV1,loss,0.5,0.001,{points}\n")
    responses = tmp_path / "responses.csv"
    responses.write_text("student,variant,question,value\nann,V1,loss,0.5\n")
    with pytest.raises(SpecError, match="line 2: points"):
        grade(answers, responses)


@pytest.mark.parametrize("points", ["gradients=0", "loss", "2.5", "forward=101"])
def test_bad_points_on_the_command_line(tmp_path, capsys, points):
    from derive.cli import main

    assert main(["exercise", "esuli", "--count", "1", "--points", points, "--output", str(tmp_path / "exam")]) == 2
    assert "--points" in capsys.readouterr().err and not (tmp_path / "exam").exists()
