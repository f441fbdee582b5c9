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

from .errors import DeriveError, NumericalError, OutputError, SpecError, UsageError
from .limits import DEFAULT_LIMITS, Limits
from .spec.examples import DESCRIPTIONS as _EXAMPLES
from .version import __version__

# The rest of the API loads on first use (PEP 562): `import derive` and the light commands
# (`derive --version`, `derive examples`, `derive grade` without follow-through) do not
# import SymPy, Jinja2 or the exercise machinery.
_LAZY = {
    "solve": ".solution.derivation",
    "Exercise": ".exercises.variants",
    "exercise": ".exercises.variants",
    "exercise_from_shape": ".exercises.variants",
    "check_view": ".views.document",
    "compile_latex_sources": ".views.document",
    "render": ".views.document",
    "check": ".exercises.audit",
    "grade": ".exercises.grading",
    "GraphSolution": ".solution.graph",
    "Solution": ".solution.record",
    "GraphSpec": ".spec.schema",
    "Spec": ".spec.schema",
    "load_spec": ".spec.schema",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'derive' has no attribute {name!r}")
    _load()
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def examples() -> dict[str, str]:
    """The built-in example specs: name → one-line description."""
    return dict(_EXAMPLES)


def _load() -> None:
    """Imports the whole API and attaches the records' views (their Markdown in Jupyter, an
    exercise's sheet and solution): the records know nothing of how they are shown."""
    from importlib import import_module

    for name, module in _LAZY.items():
        globals()[name] = getattr(import_module(module, __name__), name)
    from .exercises.sheets import views as exercise_views
    from .exercises.variants import Exercise
    from .solution.graph import GraphSolution
    from .solution.record import Solution
    from .views.document import check_view, compile_latex_sources, render

    def exercise_view(exercise: Exercise, view: str, format: str, notation: str | None) -> str | bytes:
        if format not in ("md", "tex", "pdf"):
            raise DeriveError(f"unknown format {format!r}; choose one of md, tex, pdf")
        check_view(notation, "handout", exercise.derivation)
        files = exercise_views(exercise, [format], exercise.digits, notation, inline_images=True, only=view)
        errors = compile_latex_sources([files])
        if errors:
            raise errors[0]
        return files[f"{view}.{format}"]

    def sheet(self: Exercise, format: str = "md", *, notation: str | None = None) -> str | bytes:
        """The student's sheet of this variant: "md" (pictures inline), "tex" or "pdf" (bytes)."""
        return exercise_view(self, "sheet", format, notation)

    def worked_solution(self: Exercise, format: str = "md", *, notation: str | None = None) -> str | bytes:
        """The worked solution of this variant with its answers: "md", "tex" or "pdf" (bytes)."""
        return exercise_view(self, "solution", format, notation)

    Solution._repr_markdown_ = lambda self: render(self, "md")
    GraphSolution._repr_markdown_ = lambda self: render(self, "md")
    Exercise.sheet = sheet
    Exercise.solution = worked_solution
    Exercise._repr_markdown_ = lambda self: worked_solution(self, "md")


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
