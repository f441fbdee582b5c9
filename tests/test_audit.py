"""`derive check`: auditing the values a written solution states. The published handout is
the test case: it prints w₁₀₀ = 0.8 but computes with 0.7, and cuts two values off where
it should round them; the audit finds exactly that."""

from __future__ import annotations

from pathlib import Path

import pytest

import derive
from derive.cli import main
from derive.errors import SpecError
from derive.exercises.audit import Verdict, check
from derive.spec.schema import Update, load_spec

SPECS = Path(__file__).parent / "specs"
HANDOUT, STATED = SPECS / "esuli-handout.yaml", SPECS / "esuli-handout-stated.yaml"


def test_the_handout_audit_finds_exactly_its_slips():
    audit = check(HANDOUT, STATED)
    assert [(m.parameter, m.given, m.used) for m in audit.misreadings] == [("W2[0,0]", 0.8, 0.7)]
    wrong = {f.id: f for f in audit.findings if not f.ok}
    assert set(wrong) == {"grad:W1[0,0]", "new:W1[0,0]"}
    assert all(f.verdict is Verdict.TRUNCATED for f in wrong.values())
    assert wrong["grad:W1[0,0]"].first and wrong["grad:W1[0,0]"].expected == 0.083
    # the update follows from the cut-off gradient, and is cut off itself
    assert wrong["new:W1[0,0]"].sources == ("grad:W1[0,0]",) and not wrong["new:W1[0,0]"].first
    assert len(audit.findings) == 29 and not audit.ok


def test_the_cli_reports_and_exits_3(capsys):
    assert main(["check", str(HANDOUT), str(STATED)]) == 3
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "uses W2[0,0] = 0.7 where the spec gives 0.8"
    assert "-> grad:W1[0,0]  0.082  truncated" in out and "errors start at: W2[0,0] (misread), grad:W1[0,0]" in out


def test_a_right_solution_exits_0(tmp_path, capsys):
    key = derive.solve("esuli").to_dict()["steps"][0]["shown"]
    stated = {"a2[0]": key["forward"][0]["a2[0]"], "loss": key["loss"], **{f"grad:{k}": v for k, v in key["gradients"].items()}}
    answers = tmp_path / "answers.csv"
    answers.write_text("question,value\n" + "".join(f'"{k}",{v}\n' for k, v in stated.items()))
    assert main(["check", "esuli", str(answers)]) == 0
    assert capsys.readouterr().out.strip().endswith("all right")


def test_rounded_at_the_end_is_right_within_rounding():
    """In the students example ∂E/∂w₀₁ is 0.376 carrying rounded values and 0.37502 at full
    precision: 0.375 is right within rounding; 0.374 is not."""
    assert check("students", {"grad:W1[0,1]": "0.376"}).findings[0].verdict is Verdict.RIGHT
    assert check("students", {"grad:W1[0,1]": "0.375"}).findings[0].verdict is Verdict.ROUNDING
    assert check("students", {"grad:W1[0,1]": "0.375"}).ok
    assert not check("students", {"grad:W1[0,1]": "0.374"}).ok


def test_follow_through_and_named_mistakes():
    # ŷ written 0.6: the loss ½ · 0.6² = 0.18 follows from it
    audit = check("esuli", {"a2[0]": "0.6", "loss": "0.18"})
    found = {f.id: f for f in audit.findings}
    assert found["a2[0]"].verdict is Verdict.WRONG and found["a2[0]"].first
    assert found["loss"].verdict is Verdict.FOLLOW_THROUGH and found["loss"].sources == ("a2[0]",)
    # the update climbing the gradient: 0.7 + 0.1 · 0.038 = 0.704
    mistaken = check("esuli", {"new:W2[0,0]": "0.704"}).findings[0]
    assert mistaken.verdict is Verdict.MISTAKE and mistaken.mistake in ("update_sign", "error_sign")


@pytest.mark.parametrize("answers, message", [
    ({"zz[0]": 1}, "not an answer-key id"),
    ({"loss": "about 0.1"}, "loss: expected a number"),
    ({}, "expected a mapping"),
])
def test_bad_answers_are_refused(answers, message):
    with pytest.raises(derive.DeriveError, match=message):
        check("esuli", answers)


def test_graph_specs_are_not_audited_yet(tmp_path, capsys):
    stated = tmp_path / "a.yaml"
    stated.write_text("f: 0.73\n")
    assert main(["check", "circuit", str(stated)]) == 2
    assert "only network specs" in capsys.readouterr().err


def _stated_from_key(name: str) -> dict[str, float]:
    """Every value of the JSON key's shown numbers, by the audit's ids: step K's sample N
    forward values, losses, gradients and updated parameters, and the final forward pass."""
    key = derive.solve(name).to_dict()
    batch = load_spec(name).update is Update.BATCH
    stated: dict[str, float] = {}
    for step in key["steps"]:
        shown, prefix = step["shown"], f"step{step['step']}:"
        first_sample = 1 if batch else step["step"]
        for position, forward in enumerate(shown["forward"]):
            for name_, value in forward.items():
                if name_ != "loss":
                    stated[f"{prefix}sample{first_sample + position}:{name_}"] = value
        stated[f"{prefix}loss"] = shown["loss"]
        stated.update({f"{prefix}grad:{p}": v for p, v in shown["gradients"].items()})
        stated.update({f"{prefix}new:{p}": v for p, v in shown["updated"].items()})
    for position, forward in enumerate(key["final"]["shown"]["forward"]):
        stated.update({f"final:sample{position + 1}:{n}": v for n, v in forward.items() if n != "loss"})
    stated["final:loss"] = key["final"]["shown"]["loss"]
    return stated


@pytest.mark.parametrize("name", ["students", "momentum", "adam"])
def test_every_step_and_sample_has_an_id(name):
    """The ids reach every value of the run, as the JSON key places it; a slip in a later
    step is found there, and where its error starts."""
    stated = _stated_from_key(name)
    assert len(stated) > 50
    audit = check(name, stated)
    assert audit.ok, [f for f in audit.findings if not f.ok][:3]
    later = [k for k in stated if k.startswith("step2:grad:")][0]
    stated[later] = round(stated[later] + 0.05, 3)
    audit = check(name, stated)
    wrong = [f for f in audit.findings if not f.ok]
    assert [(f.id, f.verdict, f.first) for f in wrong] == [(later, Verdict.WRONG, True)]


def test_a_step_without_the_sample_is_refused():
    with pytest.raises(SpecError, match="sampleN:, stepK: and final:"):
        check("elbasheer", {"step1:sample2:z1[0]": "0.5"})
