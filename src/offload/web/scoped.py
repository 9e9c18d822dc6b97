"""Signed, expiring tokens for pages the public sees.

The end-user widget runs in a page anyone can read, so the token it carries must
not be a tenant's read-write key. The product's server signs one per visitor
instead, with the key it shares with ``create_app(signing_key=…)``::

    token = sign(key, tenant="acme", jobs=[job.id], ttl=3600)

It is read-only unless ``read_only=False``, expires, and when ``jobs`` is given
sees those jobs only (their pages, status, output and live events); a per-user
token is a tenant per user, or the ids of the jobs that user started. The format
is ``ofs1.<payload>.<signature>``: base64url JSON and an HMAC-SHA256 of it, so
the server needs no storage to check one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

PREFIX = "ofs1."


@dataclass(frozen=True, slots=True)
class Claims:
    tenant: str | None
    jobs: frozenset[str] | None
    read_only: bool


def key_bytes(key: str | bytes) -> bytes:
    raw = key.encode() if isinstance(key, str) else key
    if len(raw) < 16:
        raise ValueError("a signing key needs at least 16 bytes")
    return raw


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(
    key: str | bytes,
    *,
    tenant: str | None,
    jobs: Iterable[str] | None = None,
    read_only: bool = True,
    ttl: float = 3600,
) -> str:
    """A token for ``tenant`` (``None``: every tenant) valid for ``ttl`` seconds."""
    if tenant is not None and not tenant.strip():
        raise ValueError("a scoped token's tenant is empty; name one, or None for all")
    claims = {"t": tenant, "j": None if jobs is None else sorted(set(jobs)),
              "ro": read_only, "exp": int(time.time() + ttl)}  # fmt: skip
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = _b64(hmac.new(key_bytes(key), payload.encode(), hashlib.sha256).digest())
    return f"{PREFIX}{payload}.{signature}"


def verify(key: bytes, token: str, now: float | None = None) -> Claims | None:
    """The claims of a valid, unexpired token; ``None`` for anything else."""
    if not token.startswith(PREFIX) or token.count(".") != 2:
        return None
    payload, _, signature = token[len(PREFIX) :].partition(".")
    expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return None
    try:
        claims = json.loads(_unb64(payload))
        expires, tenant, jobs = float(claims["exp"]), claims["t"], claims["j"]
        read_only = bool(claims["ro"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires < (time.time() if now is None else now):
        return None
    return Claims(tenant, None if jobs is None else frozenset(map(str, jobs)), read_only)
