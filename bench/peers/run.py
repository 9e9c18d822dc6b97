"""offload and its peers side by side, in one command:

    python bench/peers/run.py [--quick] [--only NAME,...]

Any Python 3.11 starts it. It builds ``bench/.venvs/harness`` (rich, matplotlib,
redis-py, psycopg) and re-executes itself there; every library then gets its own
venv, so none is ever imported into another's environment (see ``harness.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import venvs


def in_harness_venv() -> bool:
    return Path(sys.prefix).resolve() == (venvs.VENVS / "harness").resolve()


if __name__ == "__main__":
    if not in_harness_venv():
        python = venvs.ensure("harness")
        os.execv(python, [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])
    from harness import main

    main(sys.argv[1:])
