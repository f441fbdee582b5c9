"""The mistakes students make in backpropagation, as data: each is a named variation of
the derivation (the same spec, one rule changed) with a short feedback text. Running the
numbers with a mistake's `Variation` gives every value a student making that slip would
write; grading compares wrong answers with them.

A variation changes one point of the engine (model/numeric.py): the local derivative of
an activation or where it is evaluated, the weights the error flows back through, the
sign or scale of the loss's derivative, the batch's combination, the indices of a
weight's gradient, the Jacobian of a softmax, the learning rate in the update rule, or the
rounding. Mistakes that cannot show in a spec (no softmax, one sample) are not applicable
to it and are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Callable

from ..spec.vocabulary import Batch

if TYPE_CHECKING:
    from ..spec.schema import Spec


class Local(Enum):
    """How a unit's local derivative ∂a/∂z is taken."""

    RIGHT = "right"  # f′(z)
    LEFT_OUT = "left_out"  # 1: the activation's derivative forgotten
    TWICE = "twice"  # f′(z)²
    AT_OUTPUT = "at_output"  # f′(a): evaluated at the activation, not the pre-activation
    KINK_ONE = "kink_one"  # ReLU′(0) = 1


class Rate(Enum):
    """What the update does with the learning rate η (a substitution in the update rule)."""

    RIGHT = "right"
    NOT_APPLIED = "not_applied"  # θ − g
    TWICE = "twice"  # θ − η² g
    NEGATED = "negated"  # θ + η g: the sign of the update


@dataclass(frozen=True)
class Variation:
    """A derivation with one rule changed; the defaults are the right derivation."""

    local: Local = Local.RIGHT
    updated_weights: bool = False  # the error flows back through the weights after the update
    error_sign: int = 1  # -1: y − ŷ where ŷ − y belongs
    loss_scale: float = 1.0  # 2: the ½ of ½ Σ (y − ŷ)² forgotten in the derivative
    batch: Batch | None = None  # the combination used instead of the spec's
    transposed: bool = False  # ∂E/∂w_ij = δ_j a_i: the weight's indices swapped
    diagonal: bool = False  # a softmax's Jacobian: only ∂a_i/∂z_i
    rate: Rate = Rate.RIGHT
    decimals: int | None = None  # values rounded to this many decimals as they are written
    truncate: bool = False  # … cut off there rather than rounded

    @property
    def right(self) -> bool:
        return self == RIGHT


RIGHT = Variation()


@dataclass(frozen=True)
class GraphVariation:
    """A computational graph worked with one rule changed (model/circuit.py); the
    defaults are the right derivation."""

    first_use_only: bool = False  # a value used by several gates keeps one contribution, not their sum
    local_at_output: bool = False  # a sigmoid's or tanh's local gradient taken at the gate's output
    multiply_own: bool = False  # ∂(a·b)/∂a taken as a: the multiply gate's swap missed
    subtract_plus: bool = False  # ∂(a − b)/∂b taken as +1
    chain_left_out: bool = False  # a contribution is the local gradient alone, not times the upstream


GRAPH_RIGHT = GraphVariation()


@dataclass(frozen=True)
class Mistake:
    name: str  # an id: updated_weights, no_activation_derivative, …
    title: str  # a few words, for tables
    feedback: str  # what the student is told
    variation: Variation | GraphVariation  # a rounding mistake (decimals, truncate) holds for both kinds
    applies: Callable[[Spec], bool] = lambda spec: True
    # The answers where the slip is made (not merely carried on): a variant is drawn so that
    # these tell it from the right answer and from each other mistake made there.
    shows_in: frozenset[str] = frozenset({"gradient", "update"})
    kinds: frozenset[str] = frozenset({"network"})  # the kinds of spec it is made in: network, graph


def _has(activation: str) -> Callable[[Spec], bool]:
    return lambda spec: any(layer.activation == activation for layer in spec.layers)


def _hidden_layers(spec: Spec) -> bool:
    return len(spec.layers) > 1


def _square_layer(spec: Spec) -> bool:
    widths = [spec.inputs] + [layer.units for layer in spec.layers]
    return any(units == fan_in and units > 1 for fan_in, units in zip(widths, widths[1:]))


def _softmax_without_shortcut(spec: Spec) -> bool:
    # With cross-entropy the solution writes ∂E/∂z = ŷ − y in one step; the Jacobian is
    # not used, so taking its diagonal alone changes nothing there.
    return any(layer.activation == "softmax" for layer in spec.layers) and spec.loss != "cross_entropy"



def _graph_mistake(name: str, title: str, feedback: str, variation: GraphVariation) -> Mistake:
    """A slip in a graph's backward pass: it shows in the gradients."""
    return Mistake(name, title, feedback, variation, shows_in=frozenset({"gradient"}), kinds=frozenset({"graph"}))


CATALOGUE: tuple[Mistake, ...] = (
    Mistake(
        "updated_weights",
        "updated weights in backpropagation",
        "You backpropagated the error through weights you had already updated. The gradients of a layer use "
        "the weights of the layer after it as they were in the forward pass, before any update.",
        Variation(updated_weights=True),
        _hidden_layers,
        shows_in=frozenset({"gradient"}),
    ),
    Mistake(
        "no_activation_derivative",
        "activation's derivative left out",
        "The activation's derivative is missing from the chain rule: the derivative of each unit's "
        "activation with respect to its pre-activation must multiply the unit's error.",
        Variation(local=Local.LEFT_OUT),
        lambda spec: any(layer.activation != "linear" for layer in spec.layers),
        shows_in=frozenset({"gradient"}),
    ),
    Mistake(
        "activation_derivative_twice",
        "activation's derivative applied twice",
        "The activation's derivative appears twice in your chain rule: it is one factor, taken once per unit.",
        Variation(local=Local.TWICE),
        lambda spec: any(layer.activation not in ("linear", "relu") for layer in spec.layers),
        shows_in=frozenset({"gradient"}),
    ),
    Mistake(
        "derivative_at_activation",
        "derivative at the activation",
        "You evaluated the activation's derivative at the unit's output instead of at its pre-activation "
        "(its weighted input): for the sigmoid that derivative is output × (1 − output), not the sigmoid's derivative taken at the output.",
        Variation(local=Local.AT_OUTPUT),
        lambda spec: any(layer.activation in ("sigmoid", "tanh") for layer in spec.layers),
        shows_in=frozenset({"gradient"}),
    ),
    Mistake(
        "relu_kink_one",
        "ReLU′(0) = 1",
        "At a pre-activation of exactly 0 the ReLU has no derivative; the convention (and most libraries) "
        "takes 0 there, not 1.",
        Variation(local=Local.KINK_ONE),
        _has("relu"),
        shows_in=frozenset({"gradient"}),
    ),
    Mistake(
        "update_sign",
        "update in the wrong direction",
        "The update moves the parameter along its gradient instead of against it: the step is subtracted.",
        Variation(rate=Rate.NEGATED),
        shows_in=frozenset({"update"}),
    ),
    Mistake(
        "error_sign",
        "y − ŷ for ŷ − y",
        "The sign of the error is reversed: the derivative of the loss with respect to the network's output "
        "is output − target, not target − output.",
        Variation(error_sign=-1),
        shows_in=frozenset({"gradient"}),
    ),
    Mistake(
        "half_forgotten",
        "the ½ forgotten",
        "The squared-error loss has a factor ½: its derivative is output − target, without the factor 2 (the "
        "½ cancels it).",
        Variation(loss_scale=2.0),
        lambda spec: spec.loss == "half_sse",
        shows_in=frozenset({"gradient"}),
    ),
    Mistake(
        "batch_sum",
        "batch summed, not averaged",
        "The batch's loss and gradients are the mean over the samples: divide the sum by the number of samples.",
        Variation(batch=Batch.SUM),
        lambda spec: spec.batch is Batch.MEAN and len(spec.data) > 1 and spec.update.value == "batch",
        shows_in=frozenset({"gradient"}),
    ),
    Mistake(
        "batch_mean",
        "batch averaged, not summed",
        "This spec sums the batch's losses and gradients; they are not divided by the number of samples.",
        Variation(batch=Batch.MEAN),
        lambda spec: spec.batch is Batch.SUM and len(spec.data) > 1 and spec.update.value == "batch",
        shows_in=frozenset({"gradient"}),
    ),
    Mistake(
        "transposed_indices",
        "weight indices swapped",
        "The indices of the weight are swapped: a weight's gradient is the error of the unit it leads to "
        "times the value it comes from.",
        Variation(transposed=True),
        _square_layer,
        shows_in=frozenset({"gradient"}),
    ),
    Mistake(
        "softmax_diagonal",
        "softmax Jacobian's diagonal only",
        "A softmax couples its outputs: the error of each of its pre-activations sums over every output of "
        "the softmax, not only its own.",
        Variation(diagonal=True),
        _softmax_without_shortcut,
        shows_in=frozenset({"gradient"}),
    ),
    Mistake(
        "rate_not_applied",
        "learning rate left out",
        "The learning rate is missing from your update: the step is multiplied by it.",
        Variation(rate=Rate.NOT_APPLIED),
        shows_in=frozenset({"update"}),
    ),
    Mistake(
        "rate_twice",
        "learning rate applied twice",
        "The learning rate is applied once in the update; yours applies it twice.",
        Variation(rate=Rate.TWICE),
        shows_in=frozenset({"update"}),
    ),
    Mistake(
        "rounded_early",
        "rounded too early",
        "Your intermediate values were rounded to one decimal; keep the decimals the solution asks for until the end.",
        Variation(decimals=1),
        shows_in=frozenset(),
        kinds=frozenset({"network", "graph"}),
    ),
    Mistake(
        "truncated",
        "truncated instead of rounded",
        "Your intermediate values were cut off after the last decimal instead of rounded (0.0828 is 0.083, not 0.082).",
        Variation(truncate=True),
        shows_in=frozenset(),
        kinds=frozenset({"network", "graph"}),
    ),
    # Computational graphs, gate by gate (where a graph has no such gate, nothing changes).
    _graph_mistake(
        "fork_not_summed",
        "uses of a value not summed",
        "A value used by several gates gets a gradient from each of them: its gradient is the sum of those "
        "contributions, not one of them.",
        GraphVariation(first_use_only=True),
    ),
    _graph_mistake(
        "gate_derivative_at_output",
        "gate's derivative at its output",
        "You took the gate's local gradient at its output instead of its input: for q = σ(x), ∂q/∂x = σ(x)(1 − σ(x)) "
        "= q(1 − q), not σ(q)(1 − σ(q)).",
        GraphVariation(local_at_output=True),
    ),
    _graph_mistake(
        "multiply_not_swapped",
        "multiply gate's swap missed",
        "A multiply gate swaps its inputs in the backward pass: ∂(a·b)/∂a = b, the other operand's value.",
        GraphVariation(multiply_own=True),
    ),
    _graph_mistake(
        "subtract_sign",
        "subtraction's sign lost",
        "A subtraction a − b sends the upstream gradient back to b with a minus sign: ∂(a − b)/∂b = −1.",
        GraphVariation(subtract_plus=True),
    ),
    _graph_mistake(
        "chain_left_out",
        "upstream gradient not multiplied",
        "Each gate sends back the upstream gradient times its local gradient (the chain rule), not its local gradient alone.",
        GraphVariation(chain_left_out=True),
    ),
)
MISTAKES = {mistake.name: mistake for mistake in CATALOGUE}


def applicable(spec) -> tuple[Mistake, ...]:
    """The mistakes that can show in this spec's derivation (a network's or a graph's)."""
    kind = getattr(spec, "kind", "network")
    return tuple(m for m in CATALOGUE if kind in m.kinds and (kind != "network" or m.applies(spec)))
