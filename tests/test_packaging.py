"""The wheel carries the templates and the examples: built, installed in a fresh
virtual environment, and run from outside the source tree."""

from __future__ import annotations

import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_renders(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("derive-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "derive/templates/solution.body.j2" in names
    assert "derive/templates/md/macros.j2" in names and "derive/templates/tex/macros.j2" in names
    assert "derive/spec/examples/esuli.yaml" in names

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # Dependencies come from this environment's site-packages (no network needed); its
    # .pth files, such as an editable install of derive, are not read from there.
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "outer-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)

    where = subprocess.run([str(python), "-c", "import derive; print(derive.__file__)"], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert where.stdout.strip().startswith(str(env_dir))
    result = subprocess.run([str(env_dir / "bin" / "derive"), "solve", "esuli", "--format", "md", "--output", "-"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Forward and backward pass in a neural network")
    assert "0.038" in result.stdout
