"""Hostile input: every case a hostile user found is refused up front with exit 2 and one
short line naming the file, the field and what was expected — or, where the input is
legitimate after all (a sigmoid far out on its tail), computed correctly."""

from __future__ import annotations

import copy
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import mpmath
import pytest
import yaml

import derive
from derive.spec import schema as spec_module
from derive.cli import main
from derive.solution.derivation import solve
from derive.errors import NumericalError, SpecError, UsageError
from derive.exercises.variants import exercise
from derive.limits import DEFAULT_LIMITS, MAX_DEPTH, Limits
from derive.spec.schema import load_spec

BASE = {
    "inputs": 2,
    "layers": [
        {"units": 2, "activation": "relu", "weights": [[0.1, 0.2], [0.3, -0.4]], "bias": [0.1, 0.1]},
        {"units": 1, "activation": "sigmoid", "weights": [[0.5, -0.5]], "bias": 0.1},
    ],
    "loss": "bce",
    "learning_rate": 0.5,
    "data": [{"x": [1, 2], "y": [1]}],
}


def spec_with(**changes) -> dict:
    spec = copy.deepcopy(BASE)
    spec.update(changes)
    return spec


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def refused(capsys, path: Path, *expected: str, argv: tuple[str, ...] = ()) -> str:
    """Runs `derive solve path` and checks: exit 2, one line naming the file, each expected
    text in it, nothing written."""
    output = path.parent / "out"
    started = time.monotonic()
    code, out, err = cli(capsys, "solve", str(path), "--output", str(output), *argv)
    assert time.monotonic() - started < 10, "refused up front, not after the work"
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(str(path)), err
    assert "\x1b" not in err and "Traceback" not in err
    for text in expected:
        assert text in err, err
    assert not output.exists()
    return err


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- numbers and nesting -------------------------------------------------------------------


def test_an_integer_above_1e308_is_refused(tmp_path, capsys):
    text = json.dumps(BASE).replace('"x": [1,', f'"x": [{10**309},')
    refused(capsys, write(tmp_path, "big.json", text), "310 digits", "at most 1,000,000")
    refused(capsys, write(tmp_path, "big.yaml", text), "at most 1,000,000")


def test_an_integer_of_thousands_of_digits_is_refused_unread(tmp_path, capsys):
    digits = "9" * 4400
    text = json.dumps(BASE).replace('"x": [1,', f'"x": [{digits},')
    refused(capsys, write(tmp_path, "long.json", text), "4400 digits")
    refused(capsys, write(tmp_path, "long.yaml", text), "4400 characters")


def test_numbers_beyond_a_million_are_refused(tmp_path, capsys):
    refused(capsys, write(tmp_path, "x.json", json.dumps(spec_with(data=[{"x": [2e6, 1], "y": [1]}]))),
            "data[0].x[0]", "between -1,000,000 and 1,000,000", "2e+06")
    refused(capsys, write(tmp_path, "w.yaml", yaml.safe_dump(spec_with(learning_rate=10**7))), "learning_rate")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_json_nested_deeply_is_refused(tmp_path, capsys, depth):
    refused(capsys, write(tmp_path, "deep.json", "[" * depth + "]" * depth), "nested more than 20 levels")


def test_brackets_inside_json_strings_do_not_count(tmp_path):
    spec = spec_with(title="[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ {{{{{{{{{{{{{{{{{{{{{{{{{")
    assert load_spec(write(tmp_path, "ok.json", json.dumps(spec))).title.startswith("[[[")


@pytest.mark.parametrize("loader", ["libyaml", "pure Python"])
def test_yaml_nested_deeply_is_refused_by_either_parser(tmp_path, capsys, monkeypatch, loader):
    if loader == "pure Python":
        class Pure(yaml.SafeLoader):
            pass

        monkeypatch.setattr(spec_module, "_Loader", Pure)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.fail("PyYAML without libyaml: install libyaml")
    text = "a: " + "[" * 25_000 + "]" * 25_000 + "\n"
    err = refused(capsys, write(tmp_path, "deep.yaml", text), "deep.yaml: line 1")
    assert "nest" in err


def test_yaml_merge_key_bomb_is_refused_at_once(tmp_path, capsys):
    lines = ["a0: &a0 {x: 1, y: 2}"]
    for level in range(1, 9):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} {{" + ", ".join(f"k{n}: {previous}" for n in range(9)) + "}")
    lines.append("b: {<<: *a8}")
    refused(capsys, write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n"), "anchors and aliases", "line 1")


def test_billion_laughs_is_refused(tmp_path, capsys):
    text = 'a: &a ["lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n'
    refused(capsys, write(tmp_path, "laughs.yaml", text), "anchors and aliases")


def test_a_file_too_large_or_not_a_file_is_refused_unread(tmp_path, capsys):
    refused(capsys, write(tmp_path, "huge.yaml", "# " + "x" * 1_100_000 + "\n"), "larger than 1,000,000 bytes")
    code, _, err = cli(capsys, "solve", "/dev/zero", "--output", str(tmp_path / "out"))
    assert code == 2 and err.strip() == "/dev/zero: is not a regular file (a device or a pipe?), expected a spec file"
    refused(capsys, tmp_path, "is a directory")


def test_a_file_that_is_not_text_is_refused(tmp_path, capsys):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"inputs: 2\n\xff\xfe\x00")
    refused(capsys, path, "not UTF-8 text")


# -- limits on the work --------------------------------------------------------------------


def test_steps_beyond_the_limit_are_refused_before_any_work(tmp_path, capsys):
    err = refused(capsys, write(tmp_path, "s.json", json.dumps(spec_with(steps=100_000_000))),
                  "steps: the number of steps is 100,000,000, above the limit of 10,000", "--limit steps=N")
    assert err.count("\n") == 1


def test_a_huge_layer_is_refused_before_any_work(tmp_path, capsys):
    wide = spec_with(layers=[
        {"units": 2000, "activation": "relu", "weights": [[0.1, 0.1]] * 2000, "bias": [0.0] * 2000},
        {"units": 1, "activation": "sigmoid", "weights": [[0.1] * 2000], "bias": 0.0},
    ])
    refused(capsys, write(tmp_path, "wide.json", json.dumps(wide)), "layers[0].units", "above the limit of 64", "--limit units=N")


def test_a_limit_can_be_raised(tmp_path, capsys):
    path = write(tmp_path, "s.json", json.dumps(spec_with(steps=12_000, loss="half_sse", learning_rate=0.1)))
    with pytest.raises(SpecError, match="above the limit of 10,000"):
        load_spec(path)
    assert load_spec(path, limits=Limits(steps=20_000)).steps == 12_000
    code, out, err = cli(capsys, "solve", str(path), "--format", "json", "--output", str(tmp_path / "o"), "--limit", "steps=12000")
    assert code == 0, err
    assert len(json.loads((tmp_path / "o" / "s.json").read_text())["steps"]) == 12_000


def test_work_limits_multiply(tmp_path):
    many = spec_with(data=[{"x": [0.1, 0.2], "y": [1]}] * 1000, steps=10_000)
    with pytest.raises(SpecError, match=r"steps: parameters × samples × steps is 90,000,000, above the limit"):
        load_spec(many)


def test_bad_limit_settings_are_usage_errors(capsys):
    code, _, err = cli(capsys, "solve", "esuli", "--limit", "bogus=3")
    assert code == 2 and "unknown limit" in err and err.count("\n") == 1
    code, _, err = cli(capsys, "solve", "esuli", "--limit", "steps=0")
    assert code == 2 and "from 1 to 10^12" in err


def test_variant_numbers_and_counts_are_capped(tmp_path, capsys):
    started = time.monotonic()
    code, _, err = cli(capsys, "exercise", "esuli", "--variant", "V99999999999-0001", "--output", str(tmp_path / "v"))
    assert code == 2 and "variant number: 99,999,999,999 is above the limit of 1,000" in err
    code, _, err = cli(capsys, "exercise", "esuli", "--count", "100000", "--output", str(tmp_path / "c"))
    assert code == 2 and "count: 100,000 is above the limit of 1,000 variants" in err and "--limit variants=N" in err
    code, _, err = cli(capsys, "exercise", "esuli", "--stress", "100000")
    assert code == 2 and "draws" in err
    assert time.monotonic() - started < 10
    assert not any(tmp_path.iterdir())
    with pytest.raises(UsageError, match="variant number"):
        exercise("esuli", 1, only=5000)


@pytest.mark.parametrize("shape", ["99999999999999999999,1", "2,100", "1," * 20 + "1", "3,-1", "3,,1"])
def test_bad_shapes_exit_2(capsys, tmp_path, shape):
    try:
        code = main(["exercise", "--shape", shape, "--activations", "sigmoid", "--loss", "half_sse", "--output", str(tmp_path / "o")])
    except SystemExit as exit_info:  # refused by the argument parser
        code = exit_info.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--shape" in err
    assert not any(tmp_path.iterdir())


def test_shape_limits_through_the_api():
    with pytest.raises(UsageError, match="at most 64 units"):
        derive.exercise_from_shape([2, 100], ["sigmoid"], "half_sse", 1)


# -- messages ------------------------------------------------------------------------------


def test_messages_are_one_line_without_escape_sequences(tmp_path, capsys):
    hostile = spec_with()
    hostile["layers"][0]["activation"] = "bogus\x1b[31m\nsecond line\x07" + "x" * 200
    err = refused(capsys, write(tmp_path, "esc.json", json.dumps(hostile)), "layers[0].activation: unknown activation 'bogus")
    assert "second line" in err and "\x07" not in err and "[31m" not in err
    assert len(err) < 300


def test_a_file_that_is_no_spec_is_quoted_briefly(capsys, tmp_path):
    passwd = write(tmp_path, "passwd", "root:x:0:0:root:/root:/bin/bash\n" * 40)
    err = refused(capsys, passwd, "expected a mapping of spec fields")
    assert err.count("/bin/bash") <= 1 and len(err) < 250


def test_choices_ignore_case_and_say_what_was_wrong(tmp_path, capsys):
    spec = spec_with()
    spec["layers"][0]["activation"] = "ReLU"
    spec["layers"][1]["activation"] = "Sigmoid"
    spec["loss"] = "BCE"
    loaded = load_spec(spec)
    assert [layer.activation for layer in loaded.layers] == ["relu", "sigmoid"] and loaded.loss == "bce"
    spec["layers"][0]["activation"] = "Leaky-ReLU"
    assert load_spec(spec).layers[0].activation == "leaky_relu"
    spec["loss"] = "bogus"
    err = refused(capsys, write(tmp_path, "s.json", json.dumps(spec)), "loss: unknown loss 'bogus'; choose one of")
    assert "the text" not in err


def test_formats_separated_by_a_space_get_a_hint(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["solve", "esuli", "--format", "pdf", "md"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "separate several formats with commas: --format pdf,md" in err and err.count("\n") == 1


def test_an_internal_error_is_one_line_and_exit_1(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("derive.solution.derivation.solve", broken)  # the CLI imports it when it runs
    code, _, err = cli(capsys, "solve", "esuli", "--format", "md", "--output", "-")
    assert code == 1 and err.startswith("derive: internal error (KeyError") and err.count("\n") == 1


# -- numerics ------------------------------------------------------------------------------


def _sigmoid(z) -> float:
    return float(1 / (1 + mpmath.exp(-mpmath.mpf(z))))


@pytest.mark.parametrize("rounding", ["exact", "carry"])
@pytest.mark.parametrize("x", [-4000, -8000])
def test_a_sigmoid_far_out_on_its_tail_is_computed(rounding, x):
    """z = −399.7 is below −354.9, where exp(−z)² overflows, and z = −799.7 below −709.8,
    where exp(−z) does; σ(z) and σ′(z) are representable (or 0) all the same."""
    spec = spec_with(loss="half_sse", data=[{"x": [x, 1], "y": [0.5]}])
    spec["layers"][0]["activation"] = "sigmoid"
    solution = solve(load_spec(spec), rounding=rounding)
    run = solution.exact if rounding == "exact" else solution.shown
    z = run.initial[0].pre[0][0]
    assert z == pytest.approx(0.1 * x + 0.2 * 1 + 0.1)
    a = run.initial[0].out[0][0]
    if rounding == "exact":
        assert a == pytest.approx(_sigmoid(z), rel=1e-12, abs=1e-320)
    else:
        assert a == 0.0  # σ(z) to 3 decimals
    assert all(math.isfinite(g) for g in run.updates[0].gradient)


def test_a_softmax_with_a_large_logit_is_computed():
    spec = {
        "inputs": 2,
        "layers": [{"units": 2, "activation": "softmax", "weights": [[0.0, 0.0], [0.0, 0.0]], "bias": [800.0, 799.0]}],
        "loss": "cross_entropy",
        "learning_rate": 0.1,
        "data": [{"x": [1, 1], "y": [0.5, 0.5]}],
    }
    solution = solve(load_spec(spec), rounding="exact")
    out = solution.exact.initial[0].out[0]
    e = mpmath.exp(-1)  # softmax(800, 799) = (1, e⁻¹) / (1 + e⁻¹)
    assert out == pytest.approx([float(1 / (1 + e)), float(e / (1 + e))], rel=1e-12)
    loss = -(0.5 * mpmath.log(1 / (1 + e)) + 0.5 * mpmath.log(e / (1 + e)))
    assert solution.exact.initial_loss == pytest.approx(float(loss), rel=1e-12)


def test_a_diverging_half_sse_run_says_overflow_not_log0():
    spec = spec_with(loss="half_sse", learning_rate=1000, steps=200, data=[{"x": [1000, 1000], "y": [1]}])
    spec["layers"] = [{"units": 1, "activation": "linear", "weights": [[1.0, 1.0]], "bias": 0.0}]
    with pytest.raises(NumericalError) as error:
        solve(load_spec(spec))
    message = str(error.value)
    assert "log(0)" not in message
    assert re.search(r"step \d+, sample 1: overflow( in the (forward|backward) pass| in the update of [Wb]1\S*|: \S+ is too large)", message), message
    assert error.value.when is not None and error.value.when.startswith("step ")


def test_a_failure_after_the_last_update_names_that_pass(monkeypatch):
    """The forward pass after the last update is not a step of its own."""
    from derive.model import numeric as numeric

    spec = load_spec(spec_with(steps=2))
    real = numeric.CompiledNetwork.forward
    calls = {"n": 0}

    def failing_after_training(self, parameters, x, y, given=False):
        calls["n"] += 1
        if calls["n"] > 2:  # two steps of one sample each, then the pass after the last
            raise OverflowError
        return real(self, parameters, x, y)

    monkeypatch.setattr(numeric.CompiledNetwork, "forward", failing_after_training)
    with pytest.raises(NumericalError, match=r"the forward pass after the last update \(step 2\), sample 1: overflow in the forward pass"):
        solve(spec, rounding="exact")


def test_a_loss_sum_that_overflows_is_a_numerical_error():
    from derive.solution.derivation import runs

    spec = spec_with(loss="half_sse", data=[{"x": [1e6, 1e6], "y": [1]}] * 2)
    spec["layers"] = [{"units": 1, "activation": "linear", "weights": [[1e6, 1e6]], "bias": 0.0}]
    compiled = runs(load_spec(spec), rounding="exact").compiled
    with pytest.raises(NumericalError, match="step 4: overflow"):
        compiled.combine([1e308, 1e308], "step 4")


# -- text that reaches LaTeX ---------------------------------------------------------------


@pytest.mark.parametrize("title", ["A\x07b", "bell\x1b[31m", "nul\x00", "del\x7f", "csi\x9b31m"])
def test_control_characters_in_a_title_are_refused(tmp_path, capsys, title):
    refused(capsys, write(tmp_path, "t.json", json.dumps(spec_with(title=title))), "title: contains the control character")


def test_line_breaks_in_a_title_become_spaces():
    assert load_spec(spec_with(title="Two\nlines\tand a tab\u2028")).title == "Two lines and a tab"


def test_a_title_too_long_is_refused(tmp_path, capsys):
    refused(capsys, write(tmp_path, "t.json", json.dumps(spec_with(title="x" * 201))), "title: expected at most 200 characters")


@pytest.mark.parametrize(
    "symbol, problem",
    [
        ("}", "a } closes no {"),
        ("{", "a { is never closed"),
        ("^", "^ needs an argument"),
        ("x^", "^ needs an argument"),
        ("x^2^3", "double superscript"),
        (r"\(", r"the command \( is not allowed"),
        (r"\hat", r"\hat needs an argument"),
        (r"\hat{", "never closed"),
        (r"\input{x}", r"\input is not allowed"),
        (r"\text{a^b}", r"\text{…} takes plain letters"),
        ("a$b", "the character '$' is not allowed"),
        ("", "it is empty"),
    ],
)
def test_notation_overrides_that_break_latex_are_refused_up_front(tmp_path, capsys, symbol, problem):
    spec = spec_with(notation={"base": "layered", "loss": symbol})
    refused(capsys, write(tmp_path, "n.json", json.dumps(spec)), "notation.loss: expected a LaTeX symbol", problem)


def test_accepted_notation_overrides_and_long_titles_compile(tmp_path, capsys):
    """What the checks let through compiles: symbols that take our scripts, and a title
    with an unbreakable word longer than the line."""
    spec = spec_with(
        title="A title with " + "Unbreakable" * 12 + " and more words",
        notation={"base": "layered", "loss": r"E_{\text{train}}", "input": "x'", "target": r"\hat t", "learning_rate": r"\mathcal{N}"},
    )
    path = write(tmp_path, "ok.json", json.dumps(spec))
    code, out, err = cli(capsys, "solve", str(path), "--format", "pdf", "--output", str(tmp_path / "o"))
    assert code == 0, err
    text = subprocess.run(["pdftotext", str(tmp_path / "o" / "ok.pdf"), "-"], capture_output=True, text=True, check=True).stdout
    assert "Unbreakable" in text
    tex = derive.render(solve(load_spec(spec)), "tex")
    assert "{E_{\\text{train}}}" in tex and "{x'}_{1}" in tex


# -- templates -----------------------------------------------------------------------------


def test_templates_are_sandboxed(tmp_path, capsys):
    folder = tmp_path / "templates"
    folder.mkdir()
    marker = tmp_path / "pwned"
    (folder / "solution.md.j2").write_text(
        "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}", encoding="utf-8"
    )
    code, _, err = cli(capsys, "solve", "esuli", "--format", "md", "--output", "-", "--template-dir", str(folder))
    assert code == 2 and err.startswith("template solution.md.j2:") and "unsafe" in err
    assert not marker.exists()


def test_template_problems_are_exit_2_naming_the_template(tmp_path, capsys):
    code, _, err = cli(capsys, "solve", "esuli", "--format", "md", "--output", "-", "--template-dir", str(tmp_path / "missing"))
    assert code == 2 and "--template-dir" in err and "no such folder" in err
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "solution.md.j2").write_text("fine\n{% if %}\n", encoding="utf-8")
    code, _, err = cli(capsys, "solve", "esuli", "--format", "md", "--output", "-", "--template-dir", str(folder))
    assert code == 2 and err.strip().startswith("template solution.md.j2, line 2:")
    (folder / "solution.md.j2").write_text("{{ 1 / 0 }}\n", encoding="utf-8")
    code, _, err = cli(capsys, "solve", "esuli", "--format", "md", "--output", "-", "--template-dir", str(folder))
    assert code == 2 and "ZeroDivisionError" in err and err.count("\n") == 1


def test_a_template_cache_folder_that_is_a_file_is_skipped(tmp_path):
    cache = tmp_path / "cache"
    cache.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "derive", "solve", "esuli", "--format", "md", "--output", "-"],
        capture_output=True, text=True, env={**os.environ, "XDG_CACHE_HOME": str(cache)},
    )
    assert result.returncode == 0 and result.stdout.startswith("# ") and result.stderr == ""


def test_a_template_cache_of_another_owner_is_not_used(tmp_path, monkeypatch):
    render = sys.modules["derive.views.document"]

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert render._bytecode_cache("markdown_text") is not None
    owner = os.getuid()
    monkeypatch.setattr(render.os, "getuid", lambda: owner + 1)
    assert render._bytecode_cache("markdown_text") is None


def test_a_broken_cache_entry_is_a_miss(tmp_path, monkeypatch):
    render = sys.modules["derive.views.document"]

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = render._bytecode_cache("markdown_text")
    env = render.jinja2.Environment(loader=render.jinja2.DictLoader({"t": "{{ 1 + 1 }}"}), bytecode_cache=cache)
    assert env.get_template("t").render() == "2"
    for entry in (tmp_path / "derive" / "templates").iterdir():
        entry.write_bytes(b"garbage")
    fresh = render.jinja2.Environment(loader=render.jinja2.DictLoader({"t": "{{ 1 + 1 }}"}), bytecode_cache=cache)
    assert fresh.get_template("t").render() == "2"


def test_the_template_cache_lives_in_the_users_cache_folder(tmp_path):
    cache = tmp_path / "cache"
    result = subprocess.run(
        [sys.executable, "-m", "derive", "solve", "esuli", "--format", "md", "--output", "-"],
        capture_output=True, text=True, env={**os.environ, "XDG_CACHE_HOME": str(cache)},
    )
    assert result.returncode == 0
    folder = cache / "derive" / "templates"
    assert any(folder.iterdir()) and (folder.stat().st_mode & 0o777) == 0o700


# -- files ---------------------------------------------------------------------------------


def test_a_spec_named_dots_writes_inside_outputs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    Path("...yaml").write_text(yaml.safe_dump(BASE), encoding="utf-8")
    code, out, err = cli(capsys, "solve", "...yaml", "--format", "md")
    assert code == 0, err
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "work/...yaml", "work/outputs/solution/solution.md", "work/outputs/solution/solution.network.svg",
    ]


def test_a_hostile_file_name_cannot_inject_markdown_or_html(tmp_path, capsys):
    path = tmp_path / 'x"><img src=x onerror=alert(1)>.yaml'
    path.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    code, out, err = cli(capsys, "solve", str(path), "--format", "md", "--output", str(tmp_path / "o"))
    assert code == 0, err
    (markdown,) = (tmp_path / "o").glob("*.md")
    text = markdown.read_text(encoding="utf-8")
    assert "<img" not in text and re.fullmatch(r"[A-Za-z0-9._-]+", markdown.name)
    assert f"]({markdown.stem}.network.svg)" in text


def test_an_earlier_loss_picture_is_not_left_stale(tmp_path, capsys):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec_with(steps=3, loss="half_sse")), encoding="utf-8")
    assert cli(capsys, "solve", str(path), "--format", "md", "--output", str(tmp_path / "o"))[0] == 0
    assert (tmp_path / "o" / "net.loss.svg").exists()
    path.write_text(json.dumps(spec_with(steps=1, loss="half_sse")), encoding="utf-8")
    assert cli(capsys, "solve", str(path), "--format", "md", "--output", str(tmp_path / "o"))[0] == 0
    assert not (tmp_path / "o" / "net.loss.svg").exists()
    assert "net.loss.svg" not in (tmp_path / "o" / "net.md").read_text(encoding="utf-8")


def test_no_progress_bar_remnants_when_stderr_is_not_a_terminal(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "derive", "exercise", "esuli", "--count", "3", "--format", "json", "--output", str(tmp_path / "o")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0 and result.stderr == ""


def test_rounding_holds_any_double():
    """Decimal's default context (28 digits) cannot quantize 1e25 to 3 decimals; ours can."""
    from decimal import Decimal

    from derive.views.printing import format_number, half_up

    assert half_up(1e25, 3) == Decimal("1e25")  # its shortest decimal form, 1e+25
    assert half_up(-1.7976931348623157e308, 12) < 0
    assert format_number(1e25, 3) == r"1 \times 10^{25}"


def test_updates_count_each_sample_when_each_sample_makes_one(tmp_path, capsys):
    """2 × 209 × 10,000 = 2,090,000 updates of a tiny network would keep gigabytes."""
    spec = spec_with(steps=10_000, update="sample", loss="half_sse", data=[{"x": [0.1, 0.2], "y": [0.5]}] * 209)
    spec["layers"] = [{"units": 1, "activation": "tanh", "weights": [[0.1, 0.2]], "bias": 0.0},
                      {"units": 1, "activation": "sigmoid", "weights": [[0.3]], "bias": 0.0}]
    refused(capsys, write(tmp_path, "s.json", json.dumps(spec)),
            "the number of updates (steps × samples, one update per sample) is 2,090,000", "--limit steps=N")


def test_the_values_a_run_keeps_are_bounded(tmp_path, capsys):
    """10,000 steps of a 2-32-2 network: 4.3 million values kept, 2.4 GB while solving."""
    spec = spec_with(steps=10_000, loss="half_sse", data=[{"x": [0.1, 0.2], "y": [0.5, 0.2]}])
    spec["layers"] = [{"units": 32, "activation": "sigmoid", "weights": [[0.1, -0.2]] * 32, "bias": [0.1] * 32},
                      {"units": 2, "activation": "sigmoid", "weights": [[0.3] * 32, [-0.3] * 32], "bias": [0.0, 0.1]}]
    refused(capsys, write(tmp_path, "k.json", json.dumps(spec)),
            "steps: the number of values the JSON key lists", "is 4,270,000, above the limit of 1,000,000", "--limit kept=N")
