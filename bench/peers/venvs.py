"""One virtualenv per library under ``bench/.venvs/``, built from the pinned files in
``requirements/``.

Standard library only: ``run.py`` imports this before it has re-executed itself
inside the harness's own venv. A venv is rebuilt only when its requirements file
changed (its hash is kept inside the venv), so a second run starts at once.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENVS = REPO / "bench" / ".venvs"
REQUIREMENTS = HERE / "requirements"
STAMP = ".requirements.sha256"
# offload is measured as its users install it, from this checkout, with the
# server extras (and azure); the venv keeps the editable link, so a re-run sees new code.
EDITABLE = {"offload": [f"{REPO}[postgres,redis,azure]"]}


def python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def _digest(name: str) -> str:
    text = (REQUIREMENTS / f"{name}.txt").read_bytes()
    return hashlib.sha256(text + repr(EDITABLE.get(name)).encode()).hexdigest()


def is_current(name: str) -> bool:
    stamp = VENVS / name / STAMP
    return python(name).exists() and stamp.exists() and stamp.read_text() == _digest(name)


def ensure(name: str, log: Path | None = None) -> Path:
    """The venv's interpreter, creating or updating the venv first if needed."""
    if is_current(name):
        return python(name)
    venv = VENVS / name
    out = log.open("ab") if log else subprocess.DEVNULL
    try:
        if not python(name).exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=out,
                           stderr=out)  # fmt: skip
        command = [str(python(name)), "-m", "pip", "install", "-q",
                   "-r", str(REQUIREMENTS / f"{name}.txt")]  # fmt: skip
        for target in EDITABLE.get(name, []):
            command += ["-e", target]
        subprocess.run(command, check=True, stdout=out, stderr=out)
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    (venv / STAMP).write_text(_digest(name))
    return python(name)
