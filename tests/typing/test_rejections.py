"""Wrong calls must fail ``mypy --strict``, each with the error it deserves.

``usage.py`` proves the same with ``type: ignore`` comments inside the suite's
own mypy run; this test states it without that run: one mypy pass over one
small file, every line of which must be rejected with its expected code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.servers import require

mypy_api: Any = require("mypy.api")

PRELUDE = """\
from typing import assert_type
from pydantic import BaseModel
from offload import App, Job, JobContext

app = App("memory://")

class Resize(BaseModel):
    path: str

@app.task
async def send(to: str, retries: int = 1) -> str:
    return to

@app.task
def first(ctx: JobContext, n: int) -> int:
    return n

@app.handler(Resize)
def resize(command: Resize) -> bytes:
    return b""

def cases(job: Job) -> None:
"""

# (a call, the mypy error code it must produce)
CASES = [
    ("send.enqueue(42)", "arg-type"),
    ('send.enqueue("a", retries="2")', "arg-type"),
    ("send.enqueue()", "call-arg"),
    ('send.options(queue="high").enqueue(42)', "arg-type"),
    ('send.prepare(b"a")', "arg-type"),
    ('first.enqueue("1")', "arg-type"),
    ("first.enqueue(1, ctx=None)", "call-arg"),
    ('resize.enqueue("a.png")', "arg-type"),
    ("send.options(queue=1)", "arg-type"),
    ("assert_type(send.result_of(job), int)", "assert-type"),
    ("assert_type(resize.result_of(job), str)", "assert-type"),
    ('app.schedule("s", send, "* * * * *", timezon="UTC")', "call-arg"),
    ("app.batch([], tenant=1)", "arg-type"),
    ('app.dispatch(Resize(path="a"), queue=2)', "arg-type"),
]

CONFIG = """\
[mypy]
strict = True
python_version = 3.11
"""


def test_wrong_calls_are_type_errors(tmp_path: Path) -> None:
    source = tmp_path / "wrong.py"
    first_line = PRELUDE.count("\n") + 1
    source.write_text(PRELUDE + "".join(f"    {call}\n" for call, _ in CASES))
    config = tmp_path / "mypy.ini"
    config.write_text(CONFIG)
    out, err, _ = mypy_api.run(
        ["--config-file", str(config), "--cache-dir", str(tmp_path / "cache"), str(source)]
    )
    found: dict[int, set[str]] = {}
    for line, code in re.findall(r"wrong\.py:(\d+): error: .*\[([a-z-]+)\]$", out, re.M):
        found.setdefault(int(line), set()).add(code)
    assert min(found, default=first_line) >= first_line, f"the prelude must check clean:\n{out}"
    for offset, (call, code) in enumerate(CASES):
        assert code in found.get(first_line + offset, set()), f"{call!r}: no [{code}]\n{out}{err}"
