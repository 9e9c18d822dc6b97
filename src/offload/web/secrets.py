"""Where tokens come from, and keeping them out of logs.

On the command line a token is visible to every user of the machine (``ps``), so
``offload web`` also reads them from ``OFFLOAD_WEB_TOKENS`` and from a file. A
server given none makes one at start and prints a link carrying it, once, as
Jupyter does: open is never the silent default.

Browsers cannot set headers on ``EventSource``, so streams take ``?token=``;
``RedactTokens`` rewrites it to ``token=[redacted]`` in every log record it
filters (``create_app`` installs it on uvicorn's access log).
"""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path

ENV = "OFFLOAD_WEB_TOKENS"
_TOKEN_IN_TEXT = re.compile(r"((?:^|[?&;\s])(?:token|access_token)=)[^&\s\"']+", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the value of every ``token=`` query parameter hidden."""
    return _TOKEN_IN_TEXT.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Hides tokens in a record's message and arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_redaction(*names: str) -> None:
    """Add the filter to the named loggers once, however many apps are built."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def generate() -> str:
    return secrets.token_urlsafe(24)


def parse_pairs(values: list[str], source: str) -> dict[str, str | None]:
    """``TOKEN=TENANT`` pairs (``*`` for an admin); ``source`` names where they
    came from in the error, never the token itself."""
    tokens: dict[str, str | None] = {}
    for number, value in enumerate(values, 1):
        token, sep, tenant = value.strip().partition("=")
        if not sep or not token.strip() or not tenant.strip():
            raise ValueError(f"{source}: entry {number} is not TOKEN=TENANT (TENANT '*' for admin)")
        tokens[token.strip()] = None if tenant.strip() == "*" else tenant.strip()
    return tokens


def from_env(value: str | None) -> dict[str, str | None]:
    """``OFFLOAD_WEB_TOKENS``: pairs separated by commas or whitespace."""
    if not value:
        return {}
    return parse_pairs([v for v in re.split(r"[,\s]+", value) if v], ENV)


def from_file(path: Path) -> dict[str, str | None]:
    """One ``TOKEN=TENANT`` a line; blank lines and ``#`` comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read the token file {str(path)!r}: {exc.strerror}") from None
    kept = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return parse_pairs(kept, str(path))
