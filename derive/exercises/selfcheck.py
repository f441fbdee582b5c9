"""The self-check page of an exercise variant: one self-contained HTML file where a student
types each answer and is told, by the rules of `derive grade`, whether it is right, right
from their own earlier answers (follow-through), a catalogued mistake (with its feedback)
or wrong; the worked solution's steps open once they have tried.

Everything the page's script needs is generated here: the answers and tolerances of the
key, each catalogued mistake's value and feedback, and the worked solution's lines as a
program (solution/program.py) for follow-through.
"""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup

from .grading import UNEXPLAINED
from .variants import Exercise
from ..model.mistakes import MISTAKES
from ..solution.program import graph_program, program
from ..solution.record import Solution
from ..views.document import Options, environment, markdown_view, template_dir
from ..views.html import markdown_to_html, step_functions
from ..views.printing import DEFAULT_DIGITS

# The reasons and phrases of grading.py, as the page words them.
TEXTS = {
    "zero": "your earlier answers make this 0, which skips the work",
    "copy": "your earlier answers make this a copy of one of them",
    "followed": "It is right from your own answer to",
    "refused": "Not follow-through:",
    "unexplained": f"It {UNEXPLAINED}.",
}


def page_data(exercise: Exercise) -> tuple[dict[str, Any], str]:
    """What the page's script grades with: per question (in the key's order) its id, value,
    tolerance, points and the catalogued mistakes' values, and the program that recomputes
    the answers from a student's own (a network's or a graph's); then that program's
    steps as JavaScript functions."""
    questions = [
        {
            "id": q.id,
            "value": exercise.answers[q.id].value,
            "tolerance": exercise.answers[q.id].tolerance,
            "points": exercise.answers[q.id].points,
            "mistakes": [
                {"name": name, "value": value, "feedback": MISTAKES[name].feedback}
                for name, value in exercise.mistakes.get(q.id, {}).items()
            ],
        }
        for q in exercise.questions
    ]
    names = {q.id: f"question {n}" for n, q in enumerate(exercise.questions, 1)}
    solution = exercise.derivation
    compiled = program(solution, [q.id for q in exercise.questions]) if isinstance(solution, Solution) else graph_program(solution)
    steps = [{"name": s.name, "inputs": list(s.inputs), "significant": s.significant} for s in compiled.steps]
    data = {
        "variant": exercise.id, "questions": questions, "names": names, "texts": TEXTS,
        "program": {"constants": compiled.constants, "steps": steps, "questions": compiled.questions, "digits": compiled.digits},
    }
    return data, step_functions(compiled)


def _script_safe(text: str) -> str:
    """Text to go inside a <script> element: nothing in it can end the element."""
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def selfcheck_page(exercise: Exercise, digits: int = DEFAULT_DIGITS, notation: str | None = None) -> str:
    """The page of one variant, as HTML text."""
    options = Options(digits=digits, stem="selfcheck", notation=notation, inline_images=True)
    markdown = markdown_view(exercise.derivation, options, "selfcheck.md.j2", True, exercise=exercise)["selfcheck.md"]
    body = markdown_to_html(str(markdown), f"the self-check page of {exercise.id}")
    data, functions = page_data(exercise)
    script = (template_dir() / "selfcheck.js").read_text(encoding="utf-8")
    return environment(None).get_template("selfcheck.html.j2").render(
        title=f"{exercise.derivation.title} — {exercise.id}",
        body=Markup(body),
        data=Markup(_script_safe(json.dumps(data, ensure_ascii=False, allow_nan=False))),
        functions=Markup(_script_safe(functions)),
        script=Markup(_script_safe(script)),
    )
