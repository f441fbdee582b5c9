"""The worked solutions of the update rules (momentum, RMSprop, Adam) and of weight decay,
read as a student with a calculator reads them.

Every displayed line is recomputed from the numbers it shows (tests/calculator.py, with a
square root added for RMSprop and Adam); a result is judged to its last shown digit: the
document's decimals, or more where it shows more (the rules' states m, v, s, m̂, v̂ keep at
least the shown digits as significant figures). Values in scientific notation are read as
the decimals they stand for. The tables of the later updates are recomputed from the
values the update before shows. Then: the words and symbols around the numbers, the
LaTeX's width, the exercises, and bad optimizer fields on the command line.
"""

from __future__ import annotations

import copy
import math
import re
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest

import derive
from derive.cli import main
from tests.calculator import check, displays, function_table
from tests.test_render import compile_latex

# ---------------------------------------------------------------------------------
# A calculator that reads √ and judges each result to the digits it shows
# ---------------------------------------------------------------------------------


def _sqrt(x):
    """√x, to 60 digits for an exact argument (so a tie is judged right), else a float."""
    if isinstance(x, Fraction):
        with localcontext() as context:
            context.prec = 60
            return Fraction((Decimal(x.numerator) / Decimal(x.denominator)).sqrt())
    return math.sqrt(float(x))


FUNCTIONS = {**function_table(), "sqrt": _sqrt}
_SCIENTIFIC = re.compile(r"(-?\d+(?:\.\d+)?) \\times 10\^\{(-?\d+)\}")


def _plain(markdown: str) -> str:
    """1.06 \\times 10^{-4} → 0.000106, so that the calculator sees a plain number."""
    return _SCIENTIFIC.sub(lambda m: format(Decimal(m.group(1)).scaleb(int(m.group(2))), "f"), markdown)


def _decimals(number: Decimal) -> int:
    return max(0, -number.as_tuple().exponent)


def _agrees(computed, shown, digits: int) -> bool:
    if isinstance(shown, tuple) or isinstance(computed, tuple):
        return False
    places = max(digits, _decimals(shown))
    with localcontext() as context:
        context.prec = 200
        return Decimal(computed).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP) == shown


def wrong_lines(markdown: str, digits: int = 3) -> tuple[int, list[str]]:
    """(lines checked, the lines whose result a calculator does not give)."""
    checked, wrong = 0, []
    for display in displays(_plain(markdown)):
        for c in check(display, digits, FUNCTIONS):
            checked += 1
            if not c.ok and not _agrees(c.computed, c.shown, digits):
                wrong.append(f"{c.form} = {c.shown}, but a calculator gives {c.computed}")
    return checked, wrong


# ---------------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------------

BASE = {
    "inputs": 2,
    "layers": [
        {"units": 2, "activation": "tanh", "weights": [[0.4, -0.2], [0.3, 0.6]], "bias": [0, 0.1]},
        {"units": 1, "activation": "sigmoid", "weights": [[0.7, -0.5]], "bias": [0.1]},
    ],
    "loss": "bce",
    "learning_rate": 0.05,
    "steps": 3,
    "data": [{"x": [1, 2], "y": [1]}, {"x": [-1, 0.5], "y": [0]}],
}
OPTIMIZERS = {
    "momentum": {"name": "momentum", "momentum": 0.9},
    "nesterov": {"name": "momentum", "momentum": 0.9, "nesterov": True},
    "rmsprop": {"name": "rmsprop"},
    "adam": {"name": "adam"},
}


def spec(**fields) -> dict:
    result = copy.deepcopy(BASE)
    result.update(fields)
    return result


def variant(name: str) -> dict:
    result = spec()
    if name == "sample":
        result["update"] = "sample"
    elif name == "frozen":
        for layer in result["layers"]:
            layer["train_bias"] = False
    elif name == "shared":
        result["layers"][0]["bias"] = 0.5
    elif name == "softmax":
        result["layers"][1] = {"units": 2, "activation": "softmax", "weights": [[0.7, -0.5], [0.2, 0.3]], "bias": [0.1, -0.1]}
        result["loss"] = "cross_entropy"
        result["data"] = [{"x": [1, 2], "y": [1, 0]}, {"x": [-1, 0.5], "y": [0, 1]}]
    return result


def key_of(solution) -> dict:
    return solution.to_dict()


# ---------------------------------------------------------------------------------
# The later updates' tables, recomputed from the update before
# ---------------------------------------------------------------------------------


def _cell(text: str) -> Decimal:
    text = text.strip().strip("$")
    scientific = _SCIENTIFIC.fullmatch(text)
    return Decimal(scientific.group(1)).scaleb(int(scientific.group(2))) if scientific else Decimal(text)


def later_tables(markdown: str) -> dict[int, list[tuple[str, list[Decimal]]]]:
    tables = {}
    for match in re.finditer(r"\*\*Update (\d+)\*\*\n\n\|[^\n]*\n\|[^\n]*\n((?:\|[^\n]*\n)+)", markdown):
        rows = []
        for line in match.group(2).strip().split("\n"):
            cells = [c.strip() for c in line.split("|")[1:-1]]
            rows.append((cells[0], [_cell(c) for c in cells[1:]]))
        tables[int(match.group(1))] = rows
    return tables


def table_problems(spec_: dict, markdown: str, key: dict, digits: int = 3) -> list[str]:
    """Each row of each later table from the shown values of the update before: the state,
    the bias-corrected values and θ*; and each row against the key's shown values."""
    rule = spec_["optimizer"]
    name = rule["name"]
    rate = Fraction(str(spec_["learning_rate"]))
    problems = []
    names = list(key["steps"][0]["updated"])
    theta = {p: Decimal(repr(key["steps"][0]["shown"]["updated"][p])) for p in names}
    state = {n: {p: Decimal(repr(v)) for p, v in values.items()} for n, values in key["steps"][0]["shown"]["state"].items()}
    F = lambda d: Fraction(str(d))  # noqa: E731
    for t, rows in sorted(later_tables(markdown).items()):
        assert len(rows) == len(names)
        new_theta, new_state = {}, {n: {} for n in state}
        for p, (label, cells) in zip(names, rows):
            g = F(cells[0])
            if name == "momentum":
                mu = Fraction(str(rule.get("momentum", 0.9)))
                step = g + mu * F(cells[1]) if rule.get("nesterov") else F(cells[1])
                checks = [("v", mu * F(state["v"][p]) + g, cells[1]), ("θ*", F(theta[p]) - rate * step, cells[2])]
                new_state["v"][p] = cells[1]
            elif name == "rmsprop":
                a, eps = Fraction(str(rule.get("alpha", 0.99))), rule.get("eps", 1e-8)
                moved = float(F(theta[p])) - float(rate * g) / (math.sqrt(float(cells[1])) + eps)
                checks = [("s", a * F(state["s"][p]) + (1 - a) * g**2, cells[1]), ("θ*", moved, cells[2])]
                new_state["s"][p] = cells[1]
            else:
                b1, b2 = Fraction(str(rule.get("beta1", 0.9))), Fraction(str(rule.get("beta2", 0.999)))
                eps = rule.get("eps", 1e-8)
                moved = float(F(theta[p])) - float(rate * F(cells[3])) / (math.sqrt(float(cells[4])) + eps)
                checks = [
                    ("m", b1 * F(state["m"][p]) + (1 - b1) * g, cells[1]),
                    ("v", b2 * F(state["v"][p]) + (1 - b2) * g**2, cells[2]),
                    ("m̂", F(cells[1]) / (1 - b1**t), cells[3]),
                    ("v̂", F(cells[2]) / (1 - b2**t), cells[4]),
                    ("θ*", moved, cells[5]),
                ]
                new_state["m"][p], new_state["v"][p] = cells[1], cells[2]
            for what, value, shown in checks:
                computed = Decimal(value.numerator) / Decimal(value.denominator) if isinstance(value, Fraction) else Decimal(value)
                if not _agrees(computed, shown, digits):
                    problems.append(f"update {t}, {label}: {what} is shown {shown}, a calculator gives {float(value):.8g}")
            shown_key = key["steps"][t - 1]["shown"]
            if Decimal(repr(shown_key["updated"][p])) != cells[-1] or Decimal(repr(shown_key["gradients"][p])) != cells[0]:
                problems.append(f"update {t}, {label}: the table and the key's shown values differ")
            new_theta[p] = cells[-1]
        theta, state = new_theta, new_state
    return problems


# ---------------------------------------------------------------------------------
# Properties that hold
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("example", ["adam", "momentum"])
@pytest.mark.parametrize("notation", [None, "esuli", "flat", "matrix"])
@pytest.mark.parametrize("detail", ["handout", "full", "compact"])
def test_built_in_examples_check_out_on_a_calculator(example, notation, detail):
    markdown = derive.render(derive.solve(example), "md", notation=notation, detail=detail)
    checked, wrong = wrong_lines(markdown)
    assert checked >= 40
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("example", ["adam", "momentum"])
def test_built_in_examples_tables_follow_from_the_update_before(example):
    solution = derive.solve(example)
    markdown = derive.render(solution, "md")
    spec_ = derive.load_spec(example).to_dict()
    assert len(later_tables(markdown)) == spec_["steps"] - 1
    assert not table_problems(spec_, markdown, key_of(solution))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("decay", ["none", "decoupled", "coupled-per-sample"])
@pytest.mark.parametrize("shape", ["batch", "sample", "frozen", "shared", "softmax"])
def test_first_update_lines_check_out(optimizer, decay, shape):
    spec_ = variant(shape)
    spec_["optimizer"] = OPTIMIZERS[optimizer]
    if decay == "decoupled":
        spec_.update(weight_decay=0.1, weight_decay_mode="decoupled")
    elif decay == "coupled-per-sample":  # one sample per update: no batch mean of gradients
        spec_.update(weight_decay=0.1, update="sample")
    checked, wrong = wrong_lines(derive.render(derive.solve(spec_), "md"))
    assert checked >= 40
    assert not wrong, "\n".join(wrong)


def test_frozen_biases_have_no_rows_and_are_named():
    spec_ = variant("frozen")
    spec_["optimizer"] = OPTIMIZERS["adam"]
    solution = derive.solve(spec_)
    markdown = derive.render(solution, "md")
    tables = later_tables(markdown)
    assert sorted(tables) == [2, 3]
    for rows in tables.values():
        assert [label for label, _ in rows] == ["$w^{(1)}_{00}$", "$w^{(1)}_{01}$", "$w^{(1)}_{10}$", "$w^{(1)}_{11}$",
                                                "$w^{(2)}_{00}$", "$w^{(2)}_{01}$"]
    assert "are kept fixed" in markdown
    assert not table_problems(spec_, markdown, key_of(solution))


def test_many_steps_table_the_first_five_and_say_so():
    markdown = derive.render(derive.solve(spec(optimizer=OPTIMIZERS["adam"], steps=50)), "md")
    assert sorted(later_tables(markdown)) == [2, 3, 4, 5, 6]
    assert "the first 5 of the 49 later updates (the JSON key has them all)" in markdown


def test_exercise_key_keeps_the_rule_and_the_sheet_states_it():
    variants = derive.exercise("adam", seed=7, count=3)
    for v in variants:
        assert v.spec.to_dict()["optimizer"] == {"name": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1e-08}
        sheet = v.sheet("md")
        assert r"**Update rule**: Adam with $\beta_{1} = 0.9$, $\beta_{2} = 0.999$" in sheet
        checked, wrong = wrong_lines(v.solution("md"), v.digits)
        assert checked >= 40
        assert not wrong, "\n".join(wrong)


MOMENTUM_YAML = """\
title: bad optimizer
inputs: 2
layers:
  - units: 1
    activation: sigmoid
    weights: [[0.5, -0.4]]
    bias: [0.2]
loss: half_sse
learning_rate: 0.5
data:
  - x: [1, 0.5]
    y: [1]
"""


@pytest.mark.parametrize("line,field", [
    ('optimizer: {name: adam, beta1: "x"}', "optimizer.beta1"),
    ("optimizer: {name: adam, beta1: [0.9]}", "optimizer.beta1"),
    ("optimizer: {name: adam, beta1: {a: 1}}", "optimizer.beta1"),
    ("optimizer: {name: adam, beta1: true}", "optimizer.beta1"),
    ("optimizer: {name: adam, beta2: .nan}", "optimizer.beta2"),
    ("optimizer: {name: adam, eps: 1e-400}", "optimizer.eps"),
    ("optimizer: {name: adam, momentum: 0.9}", "optimizer.momentum"),
    ("optimizer: {name: adam, Beta1: 0.9}", "optimizer.Beta1"),
    ("optimizer: {beta1: 0.9}", "optimizer.name"),
    ("optimizer: {name: [adam]}", "optimizer"),
    ("optimizer: [adam]", "optimizer"),
    ("optimizer: 7", "optimizer"),
    ("optimizer: adamw", "optimizer"),
    ('optimizer: {name: momentum, nesterov: "yes"}', "optimizer.nesterov"),
    ("optimizer: {name: momentum, nesterov: 1}", "optimizer.nesterov"),
    ("optimizer: {name: momentum, momentum: 1}", "optimizer.momentum"),
    ("optimizer: {name: rmsprop, alpha: -1}", "optimizer.alpha"),
    ("optimizer: {name: sgd, nesterov: true}", "optimizer.nesterov"),
    ('weight_decay: "x"', "weight_decay"),
    ("weight_decay: true", "weight_decay"),
    ("weight_decay: [0.1]", "weight_decay"),
    ("weight_decay: 1e7", "weight_decay"),
    ("weight_decay_mode: l2", "weight_decay_mode"),
    ("weight_decay_mode: [coupled]", "weight_decay_mode"),
    ("weight_decay_mode: true", "weight_decay_mode"),
])
def test_bad_optimizer_fields_exit_2_with_one_line(tmp_path, capsys, line, field):
    source = tmp_path / "bad.yaml"
    source.write_text(MOMENTUM_YAML + line + "\n")
    out = tmp_path / "out"
    code = main(["solve", str(source), "--format", "md,json", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"{source}: {field}:"), err
    assert not out.exists() or not any(out.iterdir())


# ---------------------------------------------------------------------------------
# Bugs: each test fails until it is fixed
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_coupled_decay_batch_gradients_check_out(optimizer):
    """With coupled weight decay and several samples, 'Gradients over the batch' showed
    ∂E/∂w = ½(−0.412 − 0.238) = −0.285: the mean is −0.325; −0.285 is ∂J/∂w, which the
    next section computes from −0.325 + λ w."""
    spec_ = spec(optimizer=optimizer if optimizer == "sgd" else OPTIMIZERS[optimizer], weight_decay=0.1)
    checked, wrong = wrong_lines(derive.render(derive.solve(spec_), "md"))
    assert checked >= 40
    assert not wrong, "\n".join(wrong)


def _labelled(markdown: str, pattern: str) -> tuple[str, Decimal]:
    match = re.search(pattern, markdown)
    assert match, pattern
    return match.group(1), Decimal(match.group(2))


def test_coupled_decay_loss_is_labelled_by_what_it_is():
    """With coupled decay the key's `loss` is J = E + (λ/2) Σ w²; the training table, the
    sentence after it and the answers view printed it as the loss E (0.798 where E = 0.728)."""
    solution = derive.solve(spec(optimizer=OPTIMIZERS["adam"], weight_decay=0.1))
    shown = key_of(solution)["steps"][0]["shown"]
    expected = {"E": Decimal(repr(shown["loss_data"])), "J": Decimal(repr(shown["loss"]))}
    training = derive.render(solution, "md")
    symbol, first = _labelled(training, r"\| updates done \| loss \$([EJ])\$ \|\n\|[^\n]*\n\| 0 \| \$(-?[\d.]+)\$ \|")
    assert first == expected[symbol], f"the training table's loss ${symbol}$ before any update is {first}"
    symbol, value = _labelled(derive.render(solution, "md", detail="answers"), r"\| \$([EJ])\$ \| \$(-?[\d.]+)\$ \|")
    assert value == expected[symbol], f"the answers view's ${symbol}$ is {value}"


def test_coupled_decay_exercise_asks_for_what_the_key_holds():
    """An exercise with coupled decay asked 'the loss before the update: E =' and keyed J."""
    template = derive.load_spec("adam").to_dict()
    template.update(steps=1, weight_decay=0.1)
    for v in derive.exercise(template, seed=3, count=2):
        sheet = v.sheet("md")
        symbol = re.search(r"The loss before the update: \$([EJ]) =\$", sheet).group(1)
        shown = key_of(derive.solve(v.spec.to_dict()))["steps"][0]["shown"]
        expected = shown["loss_data"] if symbol == "E" else shown["loss"]
        assert v.answers["loss"].value == expected, (symbol, v.answers["loss"].value, expected)


RMSPROP_TIE = {
    "inputs": 1,
    "layers": [{"units": 1, "activation": "linear", "weights": [[0.35]]}],
    "loss": "half_sse",
    "learning_rate": 0.1,
    "optimizer": {"name": "rmsprop", "alpha": 0.9},
    "data": [{"x": 1, "y": 0}],
}


def test_state_ties_round_half_away_from_zero():
    """s* = 0.9 · 0 + (1 − 0.9) · 0.35² = 0.01225 is a tie at three significant figures:
    0.0123 half away from zero. The state was rounded from the double 0.0122499…, to 0.0122
    (the same slip gives 0.9 · (−0.615) − 0.312 = −0.8655 → −0.865 in a momentum table)."""
    solution = derive.solve(RMSPROP_TIE)
    assert key_of(solution)["steps"][0]["shown"]["state"]["s"]["W1[0,0]"] == 0.0123
    checked, wrong = wrong_lines(derive.render(solution, "md"))
    assert checked >= 5 and not wrong, "\n".join(wrong)


def test_momentum_table_ties_round_half_away_from_zero():
    solution = derive.solve(spec(optimizer=OPTIMIZERS["momentum"]))
    problems = table_problems(spec(optimizer=OPTIMIZERS["momentum"]), derive.render(solution, "md"), key_of(solution))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("digits", [4, 5])
def test_states_keep_their_significant_figures_with_more_digits(digits):
    """derive solve adam --digits 4: v̂ = 8.464 × 10⁻⁵ was printed 0.0001 (four decimals),
    and the next line, with √0.0001, does not give the w* it shows."""
    checked, wrong = wrong_lines(derive.render(derive.solve("adam", digits=digits), "md"), digits)
    assert checked >= 40
    assert not wrong, "\n".join(wrong)


SINGLE_DECOUPLED = {
    "inputs": 1,
    "layers": [{"units": 1, "activation": "relu", "weights": [[2]], "bias": [3]}],
    "loss": "mse",
    "learning_rate": 0.01,
    "steps": 2,
    "optimizer": {"name": "rmsprop", "alpha": 0.9},
    "weight_decay": 0.1,
    "weight_decay_mode": "decoupled",
    "data": [{"x": 9, "y": 1}],
}


@pytest.mark.parametrize("example,notation,rate", [(SINGLE_DECOUPLED, "single", r"\alpha"), ("momentum", "esuli", r"\mu")])
def test_decoupled_decay_is_written_with_the_notations_learning_rate(example, notation, rate):
    """The sentence on decoupled decay wrote 'each weight also shrinks by η λ θ' where the
    notation's learning rate is α (single) or μ (esuli); η is defined nowhere there."""
    spec_ = example if isinstance(example, dict) else dict(derive.load_spec(example).to_dict(), weight_decay=0.1,
                                                           weight_decay_mode="decoupled")
    markdown = derive.render(derive.solve(spec_), "md", notation=notation)
    assert rf"{rate} = " in markdown  # the learning rate as the notation writes it
    assert r"\eta" not in markdown


def test_adam_prose_names_its_betas():
    """'dividing by 1 − β^t': the document defines β₁ and β₂, never a bare β."""
    markdown = derive.render(derive.solve("adam"), "md")
    assert not re.search(r"\\beta(?!_)", markdown), re.search(r".{60}\\beta(?!_).{20}", markdown).group(0)


def test_the_repeated_forward_pass_follows_the_update_it_checks():
    """The tables of updates 2 and 3 came between the first update and 'Forward pass with the
    updated parameters', which uses the parameters after the first update only."""
    markdown = derive.render(derive.solve("adam"), "md")
    repeated = markdown.index("## Forward pass with the updated parameters")
    intro = markdown[repeated:markdown.index("\n\n", markdown.index("\n\n", repeated) + 2)]
    assert markdown.index("**Update 2**") > repeated or "first update" in intro, intro


def test_penalty_line_fits_the_page(tmp_path):
    """J = E + (λ/2)(w² + …) over 15 weights of a 3-3-2 network ran 275pt off the page."""
    spec_ = {
        "inputs": 3,
        "layers": [
            {"units": 3, "activation": "relu", "weights": [[-0.5, 0.1, -0.3], [0.2, 0.3, -0.9], [-1, 0.7, -0.5]], "bias": [0.1] * 3},
            {"units": 2, "activation": "sigmoid", "weights": [[-0.5, 1, -0.1], [0.6, 0.4, -0.8]], "bias": [0, 0]},
        ],
        "loss": "half_sse",
        "learning_rate": 0.1,
        "optimizer": "adam",
        "weight_decay": 0.01,
        "data": [{"x": [1, 2, 3], "y": [0, 1]}],
    }
    _, log = compile_latex(derive.render(derive.solve(spec_), "tex"), tmp_path)
    overfull = [float(x) for x in re.findall(r"Overfull \\hbox \((\d+\.\d+)pt too wide\)", log)]
    assert not [x for x in overfull if x > 10], overfull


def test_notation_override_does_not_reuse_the_penalised_loss_symbol():
    """notation: {loss: J} with coupled decay printed 'J = J + λ/2 (…)'."""
    spec_ = spec(weight_decay=0.1, steps=1, notation={"base": "layered", "loss": "J"})
    try:
        markdown = derive.render(derive.solve(spec_), "md")
    except derive.SpecError:
        return  # refusing the clash is a fix too
    assert not re.search(r"J &?= J \+", markdown)
