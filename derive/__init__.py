"""derive: step-by-step worked solutions of forward and backward passes through
small neural networks — forward pass, loss, backpropagation by the chain rule,
gradient-descent update — in Markdown, LaTeX and JSON.

    >>> import derive
    >>> solution = derive.solve("esuli")
    >>> markdown = derive.render(solution, "md")
"""

__version__ = "0.1.0"

from .derivation import solve
from .errors import DeriveError, NumericalError, SpecError
from .examples import DESCRIPTIONS as _EXAMPLES

# After the submodule: `derive.exercise` is the function, not the module of that name.
from .exercise import Exercise, exercise, exercise_from_shape
from .render import render
from .solution import Solution
from .spec import Spec, load_spec


def examples() -> dict[str, str]:
    """The built-in example specs: name → one-line description."""
    return dict(_EXAMPLES)


__all__ = [
    "DeriveError",
    "Exercise",
    "exercise",
    "exercise_from_shape",
    "NumericalError",
    "Solution",
    "Spec",
    "SpecError",
    "examples",
    "load_spec",
    "render",
    "solve",
    "__version__",
]
