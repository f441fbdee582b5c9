"""The gallery in outputs/: the built-in examples (Markdown with its pictures, LaTeX,
JSON) and the esuli example in every notation (the single-neuron notation with the
elbasheer example). Regenerate it from the repository root with

    python -m derive.gallery --pdf --selfcheck

(`--pdf` adds each example's PDF, for reading; `--selfcheck` the self-check page of an
esuli exercise variant and a screenshot of it answered, taken in Debian's Chromium through
Playwright; the tests compare the other files, which do not depend on the TeX, pandoc or
browser version.)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .solution.derivation import solve
from .spec.examples import NAMES
from .files import Pieces, write_all
from .views.document import Options, render_files

NOTATION_EXAMPLES = (("esuli", "layered"), ("esuli", "esuli"), ("esuli", "flat"), ("esuli", "matrix"), ("elbasheer", "single"))


def gallery_files() -> dict[str, str | bytes]:
    """Every file of the gallery, by path relative to outputs/."""
    jobs, folders = [], []
    for name in NAMES:
        jobs.append((solve(name), ("md", "tex", "json"), Options(stem=name)))
        folders.append(name)
    for name, notation in NOTATION_EXAMPLES:
        jobs.append((solve(name), ("md", "tex"), Options(stem=f"{name}.{notation}", notation=notation)))
        folders.append("notations")
    results, errors = render_files(jobs)
    assert not errors, errors  # no PDFs here
    return {
        f"{folder}/{file}": content.text() if isinstance(content, Pieces) else content
        for folder, files in zip(folders, results)
        for file, content in files.items()
    }


def gallery_pdfs() -> dict[str, bytes]:
    """The examples' PDFs (`--pdf`): kept beside the gallery for reading, not compared
    byte by byte (they differ between TeX versions)."""
    jobs = [(solve(name), ("pdf",), Options(stem=name)) for name in NAMES]
    results, errors = render_files(jobs)
    if errors:
        raise errors[0]
    return {f"{name}/{file}": content for name, files in zip(NAMES, results) for file, content in files.items()}


SELFCHECK_SEED = 2026
CHROMIUM = "/usr/bin/chromium"
# Chromium as root in a container, with nothing started that would reach the network.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync")


def gallery_selfcheck() -> dict[str, str | bytes]:
    """The self-check page of one esuli variant, and a PNG of it as a student sees it
    after checking: one slip, an answer right from the slip, a catalogued mistake."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from .exercises.selfcheck import selfcheck_page
    from .exercises.variants import exercise, update_values
    from .solution.derivation import runs

    variant = exercise("esuli", seed=SELFCHECK_SEED, count=1)[0]
    page_text = selfcheck_page(variant)
    answers = {q: a.value for q, a in variant.answers.items()}
    slip = round(answers["a2[0]"] + 0.05, 3)
    numbers = runs(variant.spec, digits=variant.digits)
    own = update_values(numbers.network, numbers.compiled.varied(numbers.compiled.keep, given={"a2[0]": slip}).first_update())
    typed = {**{q: f"{v:g}" for q, v in answers.items()}, "a2[0]": f"{slip:g}", "loss": f"{round(own['loss'], 3):g}"}
    updated = next(q.id for q in variant.questions if q.id.startswith("new:") and "update_sign" in variant.mistakes.get(q.id, {}))
    typed[updated] = f"{variant.mistakes[updated]['update_sign']:g}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "selfcheck.html"
        path.write_text(page_text, encoding="utf-8")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True)
            page = browser.new_page(viewport={"width": 900, "height": 1000}, device_scale_factor=1)
            page.goto(path.as_uri())
            inputs = page.locator("input.derive-answer")
            for k in range(inputs.count()):
                inputs.nth(k).fill(typed[inputs.nth(k).get_attribute("data-question")])
            page.click("#derive-check")
            page.locator("details.derive-step").nth(2).locator("summary").click()
            top = page.evaluate("document.getElementById('your-answers').getBoundingClientRect().top + window.scrollY") - 10
            screenshot = page.screenshot(clip={"x": 0, "y": top, "width": 900, "height": 1000}, full_page=True)
            browser.close()
    return {"selfcheck/selfcheck.html": page_text, "selfcheck/selfcheck.png": screenshot}


def main(argv: list[str] | None = None) -> int:
    arguments = list(argv if argv is not None else sys.argv[1:])
    pdf = "--pdf" in arguments
    selfcheck = "--selfcheck" in arguments
    arguments = [a for a in arguments if a not in ("--pdf", "--selfcheck")]
    target = Path(arguments[0] if arguments else "outputs")
    files = gallery_files()
    if pdf:
        files.update(gallery_pdfs())
    if selfcheck:
        files.update(gallery_selfcheck())
    if target.exists():
        shutil.rmtree(target)  # files no longer made must not linger
    for path in write_all([(target / relative, content) for relative, content in files.items()]):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
