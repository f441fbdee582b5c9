"""An exercise set as files: per variant the student's sheet, the worked solution with its
answers and the JSON key; for the whole set the printable collections (sheets.pdf,
solutions.pdf), the answer tables and the exports for Moodle and Canvas.

It sits after the solution views (render) and uses their templates; nothing before it
knows about it.
"""

from __future__ import annotations

import json
import re
from typing import Sequence

from .errors import UsageError
from .exercise import Exercise
from .exports import answers_csv, answers_json, cloze_answers, moodle_xml, qti_zip
from .printing import DEFAULT_DIGITS, latex_text, markdown_text
from .render import Content, LatexSource, Options, environment, latex_view, markdown_view, printer_for, render_template

EXERCISE_FORMATS = ("md", "tex", "json", "pdf", "moodle", "qti")


def exercise_files(
    exercises: Sequence[Exercise], formats: Sequence[str], digits: int = DEFAULT_DIGITS, notation: str | None = None
) -> dict[str, Content]:
    """Every file of a set of exercise variants, by path relative to the output directory:
    per variant V…/sheet, V…/solution (md, tex), V…/key.json; then sheets.pdf and
    solutions.pdf, moodle.xml, qti/V….zip (Canvas), and always answers.csv and answers.json."""
    unknown = [f for f in formats if f not in EXERCISE_FORMATS]
    if unknown:
        raise UsageError(f"unknown format {unknown[0]!r}; choose from {', '.join(EXERCISE_FORMATS)}")
    files: dict[str, Content] = {}
    for exercise in exercises:
        folder = exercise.id
        for stem, content in views(exercise, [f for f in formats if f in ("md", "tex")], digits, notation).items():
            files[f"{folder}/{stem}"] = content
        if "json" in formats:
            files[f"{folder}/key.json"] = json.dumps(exercise.key(), indent=2, ensure_ascii=False) + "\n"
    if "pdf" in formats:
        for name, part in (("sheets", "sheet.part.tex.j2"), ("solutions", "exercise-solution.part.tex.j2")):
            options = Options(digits=digits, notation=notation)
            parts = [render_template(e.derivation, part, latex_text, options, exercise=e) for e in exercises]
            curves = name == "solutions" and any(e.derivation.training is not None for e in exercises)
            text = environment(latex_text).get_template("collection.tex.j2").render(parts=parts, curves=curves)
            files[f"{name}.pdf"] = LatexSource(re.sub(r"\n{3,}", "\n\n", text), name)
    if "moodle" in formats:
        def question_html(exercise: Exercise) -> str:
            return environment(None).get_template("moodle.html.j2").render(
                exercise=exercise, solution=exercise.derivation, printer=printer_for(exercise.derivation, digits, notation),
                cloze=cloze_answers(exercise),
            )

        files["moodle.xml"] = moodle_xml(exercises, question_html, exercises[0].spec.title.split(":")[0][:60] or "derive")
    if "qti" in formats:
        for exercise in exercises:
            text = render_template(exercise.derivation, "qti.txt.j2", markdown_text, Options(digits=digits, notation=notation), exercise=exercise)
            files[f"qti/{exercise.id}.zip"] = qti_zip(text, exercise.id)
    files["answers.csv"] = answers_csv(exercises)
    files["answers.json"] = answers_json(exercises)
    return files


VIEWS = (("sheet", "sheet", False), ("solution", "exercise-solution", True))


def views(
    exercise: Exercise, formats: Sequence[str], digits: int = DEFAULT_DIGITS, notation: str | None = None,
    inline_images: bool = False, only: str | None = None,
) -> dict[str, Content]:
    """The sheet and the worked solution of one variant in Markdown (with its pictures),
    LaTeX and PDF (a LaTeX source still to compile), by file name; `only` picks one view."""
    files: dict[str, Content] = {}
    for stem, template, curve in VIEWS:
        if only is not None and stem != only:
            continue
        options = Options(digits=digits, stem=stem, notation=notation, inline_images=inline_images)
        if "md" in formats:
            files.update(markdown_view(exercise.derivation, options, f"{template}.md.j2", curve, exercise=exercise))
        if "tex" in formats or "pdf" in formats:
            tex = latex_view(exercise.derivation, options, f"{template}.tex.j2", exercise=exercise)[f"{stem}.tex"]
            if "tex" in formats:
                files[f"{stem}.tex"] = tex
            if "pdf" in formats:
                files[f"{stem}.pdf"] = LatexSource(tex, f"{exercise.id} {stem}")
    return files
