"""Bearer tokens scoped to tenants.

A token maps to one tenant, or to ``None``/``"*"`` for an admin who sees every
tenant. With no tokens configured the API is open, which suits a dashboard run on
a developer's machine; anything reachable by others should configure tokens.

Browsers cannot set headers on ``EventSource``, so stream endpoints also accept
``?token=``; everywhere else the token must travel in the header, where proxies
and access logs do not record it.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

from offload.web import scoped
from offload.web.problems import Problem

ADMIN = "*"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: ``tenant`` is ``None`` for an admin (every tenant). A
    scoped token (``offload.web.scoped``) may be ``read_only`` and limited to
    some ``jobs``."""

    tenant: str | None
    read_only: bool = False
    jobs: frozenset[str] | None = None

    @property
    def admin(self) -> bool:
        return self.tenant is None and self.jobs is None and not self.read_only

    def sees(self, job_id: str | None) -> bool:
        """Whether a feed event is shown: one of its jobs, or, for an event of
        no job (a pause, a finished batch), a token not limited to some jobs."""
        return self.jobs is None or (job_id is not None and job_id in self.jobs)

    def scope(self, requested: str | None) -> str | None:
        """The tenant a read is limited to: a tenant token's own, whatever was asked."""
        return requested if self.tenant is None else self.tenant


OPEN = Principal(None)


class TokenAuth:
    """Resolves the request's token; one instance per web app."""

    def __init__(
        self, tokens: Mapping[str, str | None] | None, signing_key: str | bytes | None = None
    ) -> None:
        self.key = None if signing_key is None else scoped.key_bytes(signing_key)
        self.tokens = {t: (None if v in (None, ADMIN) else v) for t, v in (tokens or {}).items()}
        if any(not t for t in self.tokens):
            raise ValueError("an empty token would let anyone in")
        if any(v is not None and not v.strip() for v in self.tokens.values()):
            raise ValueError("a token's tenant is empty; name a tenant, or '*' for an admin")

    @property
    def enabled(self) -> bool:
        return bool(self.tokens) or self.key is not None

    def principal(self, request: Request, *, query_token: bool = False) -> Principal:
        if not self.enabled:
            return OPEN
        token = _header_token(request)
        if token is None and query_token:
            token = request.query_params.get("token") or None
        if token is None:
            raise _unauthorized("a bearer token is required", None)
        who = self._resolve(token)
        _within_scope(who, request)
        return who

    def _resolve(self, token: str) -> Principal:
        if self.key is not None and token.startswith(scoped.PREFIX):
            claims = scoped.verify(self.key, token)
            if claims is None:
                raise _unauthorized("the token is not valid or has expired", "invalid_token")
            return Principal(claims.tenant, claims.read_only, claims.jobs)
        tenant = self._lookup(token)
        if tenant is False:
            raise _unauthorized("the bearer token is not valid", "invalid_token")
        return Principal(tenant if isinstance(tenant, str) else None)

    def _lookup(self, token: str) -> str | bool | None:
        # Compare against every token in constant time so the timing of a miss
        # does not reveal how much of a guess was right.
        found: str | bool | None = False
        for known, tenant in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = tenant
        return found


# What a token limited to some jobs may call besides the pages of those jobs.
JOB_SCOPED_PATHS = ("/api/v1/jobs", "/api/v1/stream", "/api/v1/me")
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def _within_scope(who: Principal, request: Request) -> None:
    if who.read_only and request.method not in SAFE:
        raise Problem(403, "this token is read-only", kind="forbidden")
    if who.jobs is None:
        return
    job_id = request.path_params.get("job_id")
    if job_id is not None:
        if not who.sees(str(job_id).lower()):
            raise Problem(404, f"no job {job_id!r}", kind="job-not-found")
        return
    if not request.url.path.endswith(JOB_SCOPED_PATHS):
        raise Problem(403, "this token sees only its own jobs", kind="forbidden")


def _header_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _unauthorized(detail: str, error: str | None) -> Problem:
    challenge = 'Bearer realm="offload"' + (f', error="{error}"' if error else "")
    return Problem(401, detail, kind="unauthorized", headers={"WWW-Authenticate": challenge})


def auth_of(request: Request) -> TokenAuth:
    auth: TokenAuth = request.app.state.offload_auth
    return auth
