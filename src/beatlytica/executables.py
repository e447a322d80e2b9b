"""Finding the project's commands: the one installed beside the running Python first (the
venv or the image's), else the first on PATH."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from beatlytica.errors import BeatlyticaError


def executable(name: str, missing: str) -> str:
    """The path of command ``name``; ``missing`` says what to install when it is nowhere."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise BeatlyticaError(f"`{name}` not found beside {sys.executable} or on PATH: {missing}")
    return found
