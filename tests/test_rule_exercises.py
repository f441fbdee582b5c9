"""Exercises from a spec with an update rule (the adam example): sheets that state the
rule, keys that match torch.optim, grading and the LMS exports."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
import zipfile

from derive.cli import main
from tests import torch_oracle


def test_adam_exercise_of_30_variants(tmp_path):
    out = tmp_path / "exam"
    assert main(["exercise", "adam", "--count", "30", "--format", "md,json,moodle,qti", "--output", str(out)]) == 0
    variants = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(variants) == 30
    sheet = (out / variants[0] / "sheet.md").read_text()
    assert "one Adam update" in sheet and "**Update rule**: Adam with $\\beta_{1} = 0.9$" in sheet
    solution = (out / variants[0] / "solution.md").read_text()
    assert "## Adam update" in solution and "after the first update" in sheet
    # the keys agree with torch.optim.Adam on each variant's own numbers
    for variant in variants[:5]:
        key = json.loads((out / variant / "key.json").read_text())
        assert key["spec"]["optimizer"]["name"] == "adam"
        expected = torch_oracle.train(key["spec"])["steps"][0]
        for question in key["questions"]:
            kind, _, name = question["id"].partition(":")
            if kind == "new":
                assert abs(question["value"] - expected["updated"][name]) <= question["tolerance"], question
            elif kind == "grad":
                assert abs(question["value"] - expected["gradients"][name]) <= question["tolerance"], question
    # grading: answers as the key gives them are all right
    rows = list(csv.DictReader((out / "answers.csv").open()))
    responses = tmp_path / "responses.csv"
    with responses.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", "variant", "question", "value"])
        for r in rows:
            writer.writerow([f"s-{r['variant']}", r["variant"], r["question"], r["value"]])
    assert main(["grade", str(out / "answers.csv"), str(responses), "--output", str(tmp_path / "grades.csv")]) == 0
    grades = list(csv.DictReader((tmp_path / "grades.csv").open()))
    assert len(grades) == 30 and all(g["score"] == g["max"] for g in grades)
    root = ET.parse(out / "moodle.xml").getroot()
    texts = [q.find("questiontext/text").text for q in root.iter("question") if q.get("type") == "cloze"]
    assert len(texts) == 30 and all("Update rule: Adam" in text for text in texts)
    # Moodle's MathJax filter reads \( … \), not dollars
    assert all("$" not in text and "\\(" in text for text in texts)
    assert "imsmanifest.xml" in zipfile.ZipFile(out / "qti.zip").namelist()
