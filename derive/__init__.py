"""derive: step-by-step worked solutions of forward and backward passes through
small neural networks — forward pass, loss, backpropagation by the chain rule,
gradient-descent update — in Markdown, LaTeX and JSON.

    >>> import derive
    >>> solution = derive.solve("esuli")
    >>> markdown = derive.render(solution, "md")

This module is the public face of the package and the last stage of its pipeline
(spec → network → derivation → records → views → files): the records know nothing of
how they are shown, so their views (Jupyter's Markdown, an exercise's sheet and
solution) are attached here.
"""

from .solution.derivation import solve
from .errors import DeriveError, NumericalError, OutputError, SpecError, UsageError
from .spec.examples import DESCRIPTIONS as _EXAMPLES

# After the submodule: `derive.exercise` is the function, not the module of that name.
from .exercises.variants import Exercise, exercise, exercise_from_shape
from .limits import DEFAULT_LIMITS, Limits
from .views.document import check_view, compile_latex_sources, render
from .exercises.audit import check
from .exercises.grading import grade
from .exercises.sheets import views as _exercise_views
from .solution.graph import GraphSolution
from .solution.record import Solution
from .spec.schema import GraphSpec, Spec, load_spec
from .version import __version__


def examples() -> dict[str, str]:
    """The built-in example specs: name → one-line description."""
    return dict(_EXAMPLES)


def _exercise_view(exercise: Exercise, view: str, format: str, notation: str | None) -> str | bytes:
    if format not in ("md", "tex", "pdf"):
        raise DeriveError(f"unknown format {format!r}; choose one of md, tex, pdf")
    check_view(notation, "handout", exercise.derivation)
    files = _exercise_views(exercise, [format], exercise.digits, notation, inline_images=True, only=view)
    errors = compile_latex_sources([files])
    if errors:
        raise errors[0]
    return files[f"{view}.{format}"]


def _sheet(self: Exercise, format: str = "md", *, notation: str | None = None) -> str | bytes:
    """The student's sheet of this variant: "md" (pictures inline), "tex" or "pdf" (bytes)."""
    return _exercise_view(self, "sheet", format, notation)


def _worked_solution(self: Exercise, format: str = "md", *, notation: str | None = None) -> str | bytes:
    """The worked solution of this variant with its answers: "md", "tex" or "pdf" (bytes)."""
    return _exercise_view(self, "solution", format, notation)


Solution._repr_markdown_ = lambda self: render(self, "md")
GraphSolution._repr_markdown_ = lambda self: render(self, "md")
Exercise.sheet = _sheet
Exercise.solution = _worked_solution
Exercise._repr_markdown_ = lambda self: _worked_solution(self, "md")


__all__ = [
    "DEFAULT_LIMITS",
    "DeriveError",
    "Limits",
    "OutputError",
    "UsageError",
    "Exercise",
    "GraphSolution",
    "GraphSpec",
    "exercise",
    "exercise_from_shape",
    "NumericalError",
    "Solution",
    "Spec",
    "SpecError",
    "check",
    "examples",
    "grade",
    "load_spec",
    "render",
    "solve",
    "__version__",
]
