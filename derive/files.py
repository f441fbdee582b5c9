"""Writing output files all-or-nothing: each goes to a temporary file beside its
target and is renamed into place only when every file has been written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from .errors import OutputError


def write_all(files: Iterable[tuple[Path, str | bytes]]) -> list[Path]:
    """Writes every (path, text); on any failure removes what it wrote and raises."""
    staged: list[tuple[str, Path]] = []
    umask = os.umask(0)
    os.umask(umask)
    try:
        for path, text in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
            staged.append((temporary, path))
            os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; outputs are ordinary files
            with os.fdopen(handle, "wb") as stream:
                stream.write(text if isinstance(text, bytes) else text.encode("utf-8"))
    except OSError as error:
        for temporary, _ in staged:
            Path(temporary).unlink(missing_ok=True)
        raise OutputError(f"{error.filename or 'output'}: cannot write: {error.strerror}") from None
    for temporary, path in staged:
        os.replace(temporary, path)
    return [path for _, path in staged]
