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

from ..errors import UsageError
from ..spec.vocabulary import EXERCISE_FORMATS, QTI_LAYOUTS
from .variants import Exercise
from .selfcheck import selfcheck_page
from .exports import answers_csv, answers_json, cloze_answers, mistakes_csv, moodle_xml, plain_title, qti_zip, variants_json
from ..views.printing import DEFAULT_DIGITS, latex_text, markdown_text
from ..views.document import Content, LatexSource, Options, environment, latex_view, markdown_view, printer_for, render_template



def exercise_files(
    exercises: Sequence[Exercise], formats: Sequence[str], digits: int = DEFAULT_DIGITS, notation: str | None = None,
    qti_layout: str = "group", jobs: int = 1,
) -> dict[str, Content]:
    """Every file of a set of exercise variants, by path relative to the output directory:
    per variant V…/sheet, V…/solution (md, tex), V…/selfcheck.html, V…/key.json; then sheets.pdf and
    solutions.pdf, moodle.xml, the Canvas quiz, and always answers.csv and answers.json.

    The Canvas quiz (qti) depends on `qti_layout`:
    - "group" (the default): qti.zip, one quiz of all the variants with a question group per
      asked question; each group holds that question of every variant and Canvas draws one
      of them per student. A Canvas numerical question takes one answer, and Canvas draws
      each group on its own, so a student's questions may come from different variants:
      each item therefore shows its own variant's network and data in full.
    - "variants": qti/V….zip, one quiz per variant (its network and data as a text, then its
      questions), for giving each student a whole variant (e.g. by Canvas's assign-to)."""
    unknown = [f for f in formats if f not in EXERCISE_FORMATS]
    if unknown:
        raise UsageError(f"unknown format {unknown[0]!r}; choose from {', '.join(EXERCISE_FORMATS)}")
    if qti_layout not in QTI_LAYOUTS:
        raise UsageError(f"unknown QTI layout {qti_layout!r}; choose from {', '.join(QTI_LAYOUTS)}")
    files: dict[str, Content] = {}
    collected: dict[str, list[str]] = {name: [] for name, _ in COLLECTIONS}
    for own, parts in _each_variant(exercises, formats, digits, notation, jobs):
        files.update(own)
        for name, text in parts.items():
            collected[name].append(text)
    if "pdf" in formats:
        for name, _ in COLLECTIONS:
            parts = collected[name]
            # a loss curve (pgfplots) where a variant makes several updates
            curves = name == "solutions" and any(e.spec.kind == "network" and e.spec.updates > 1 for e in exercises)
            text = environment(latex_text).get_template("collection.tex.j2").render(parts=parts, curves=curves)
            files[f"{name}.pdf"] = LatexSource(re.sub(r"\n{3,}", "\n\n", text), name)
    if "moodle" in formats:
        def question_html(exercise: Exercise) -> str:
            return environment(None).get_template("moodle.html.j2").render(
                exercise=exercise, solution=exercise.derivation, printer=printer_for(exercise.derivation, digits, notation),
                cloze=cloze_answers(exercise),
            )

        files["moodle.xml"] = moodle_xml(exercises, question_html)
    if "qti" in formats:
        files.update(qti_files(exercises, qti_layout, digits, notation))
    files["answers.csv"] = answers_csv(exercises)
    files["answers.json"] = answers_json(exercises)
    files["mistakes.csv"] = mistakes_csv(exercises)
    files["variants.json"] = variants_json(exercises)
    return files


# The printable collections of a set (with --format pdf): each variant's part, by its template.
COLLECTIONS = (("sheets", "sheet.part.tex.j2"), ("solutions", "exercise-solution.part.tex.j2"))


def variant_files(
    exercise: Exercise, formats: Sequence[str], digits: int, notation: str | None,
) -> tuple[dict[str, Content], dict[str, str]]:
    """The files of one variant, in its folder: the sheet and the worked solution (md, tex),
    the self-check page and the JSON key; and with pdf, its part of each collection."""
    folder, files = exercise.id, {}
    for stem, content in views(exercise, [f for f in formats if f in ("md", "tex")], digits, notation).items():
        files[f"{folder}/{stem}"] = content
    if "html" in formats:
        files[f"{folder}/selfcheck.html"] = selfcheck_page(exercise, digits, notation)
    if "json" in formats:
        files[f"{folder}/key.json"] = json.dumps(exercise.key(), indent=2, ensure_ascii=False) + "\n"
    parts = {}
    if "pdf" in formats:
        options = Options(digits=digits, notation=notation)
        parts = {name: render_template(exercise.derivation, part, latex_text, options, exercise=exercise) for name, part in COLLECTIONS}
    return files, parts


# What the processes that write variants' files work on: set before they start (a fork inherits it).
_WORK: dict[str, object] = {}


def _variant_files(index: int) -> tuple[dict[str, Content], dict[str, str]]:
    return variant_files(_WORK["exercises"][index], *_WORK["settings"])


def _each_variant(exercises: Sequence[Exercise], formats: Sequence[str], digits: int, notation: str | None, jobs: int):
    """Each variant's files, in order: written here, or by `jobs` processes (the same files)."""
    if jobs <= 1 or len(exercises) < 2:
        return [variant_files(e, formats, digits, notation) for e in exercises]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    _WORK.update(exercises=exercises, settings=(formats, digits, notation))
    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_variant_files, range(len(exercises)), chunksize=max(1, len(exercises) // (4 * jobs))))
    finally:
        _WORK.clear()


def qti_files(exercises: Sequence[Exercise], layout: str, digits: int, notation: str | None) -> dict[str, bytes]:
    """The Canvas quizzes of a set of variants, by path (see `exercise_files`)."""
    template = environment(markdown_text).get_template("qti.txt.j2")
    # Each variant's problem and questions are printed by its own printer: the template's
    # macros, bound to that variant (see the template).
    variants = [
        (e, template.make_module({"exercise": e, "solution": e.derivation, "printer": printer_for(e.derivation, digits, notation)}))
        for e in exercises
    ]
    assert len({len(e.questions) for e in exercises}) == 1, "every variant asks as many questions"
    title = plain_title(exercises)
    quizzes = {"qti.zip": variants} if layout == "group" else {f"qti/{e.id}.zip": [(e, text)] for e, text in variants}
    return {path: qti_zip(template.render(title=title, layout=layout, variants=chosen), path) for path, chosen in quizzes.items()}


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
