"""Authentication at the HTTP edge: ``authenticate`` finds out who is calling, the dependencies decide.

The edge (``backend.api.middleware.edge``) calls it before rate limiting, so limits are keyed by the
authenticated key id, never by a header value nobody checked. The dependencies (``CallerDep``,
``AdminCallerDep``, ``require_admin``) enforce ``AGENTFLOW_AUTH`` per route; every operation using one
documents the Bearer and ``X-API-Key`` schemes in OpenAPI (``SECURITY_SCHEMES``), which gives
``/docs`` a working Authorize button. Every refusal is logged as ``event=auth_failed`` with the
key's prefix, never its secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer
from fastapi.security.base import SecurityBase
from starlette.types import Scope

from agents.errors import Forbidden, Unauthorized
from backend.api.errors import raises
from backend.config import Settings
from backend.runs.keys import AuthOutcome, KeyService
from backend.runs.store.keys import ApiKey

__all__ = [
    "KEY_DEPENDENCIES",
    "SECURITY_SCHEMES",
    "AdminCallerDep",
    "Caller",
    "CallerDep",
    "authenticate",
    "presented_key",
    "principal_of",
    "require_admin",
]

logger = logging.getLogger("agentflow.auth")
STATE_KEY = "agentflow_auth"


def presented_key(headers: Mapping[bytes, bytes]) -> str | None:
    """The key a request carries in its ``headers``: ``X-API-Key``, else an ``Authorization: Bearer`` token."""
    raw = headers.get(b"x-api-key")
    if raw is None:
        authorization = headers.get(b"authorization", b"")
        if authorization[:7].lower() == b"bearer ":
            raw = authorization[7:]
    token = raw.decode("latin-1").strip() if raw else ""
    return token or None


async def authenticate(scope: Scope, headers: Mapping[bytes, bytes]) -> ApiKey | None:
    """Resolve the key an HTTP request presents (if any), once, and keep the outcome in its scope.

    Called by the edge (``backend.api.middleware.edge``) before rate limiting. Returns the
    authenticated key, or None (no key, or one that failed: the dependencies refuse it).
    """
    token = presented_key(headers)
    outcome: AuthOutcome | None = None
    if token is not None:
        keys: KeyService | None = getattr(scope["app"].state, "keys", None)
        outcome = await keys.authenticate(token) if keys is not None else AuthOutcome(None, "unknown")
    scope.setdefault("state", {})[STATE_KEY] = outcome
    return outcome.key if outcome is not None else None


def principal_of(scope: Scope) -> ApiKey | None:
    """The authenticated key of a request (after ``authenticate``), else None."""
    outcome: AuthOutcome | None = (scope.get("state") or {}).get(STATE_KEY)
    return outcome.key if outcome is not None else None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling and what they may see.

    Attributes:
        key: the authenticated key, or None (auth off and no key presented).
        scope_owner: the owner whose workflows this caller sees, or None for all of them
            (auth off, or an admin key).
    """

    key: ApiKey | None
    scope_owner: str | None

    @property
    def owner(self) -> str:
        """The owner recorded on what this caller creates ('' when anonymous)."""
        return self.key.id if self.key is not None else ""


#: How a key is presented, for OpenAPI (``/docs``' Authorize button): documented on every operation
#: that depends on the caller (``backend.api.openapi.with_security``). Not dependencies themselves:
#: ``authenticate`` already read the key, and each FastAPI dependency costs every request ~20 µs
#: of solving, whatever it does.
SECURITY_SCHEMES: tuple[SecurityBase, ...] = (
    HTTPBearer(auto_error=False, description="An agentflow API key (`af_live_…`)."),
    APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key, as a header."),
)


def _refuse(request: Request, reason: str, prefix: str | None) -> Unauthorized:
    logger.warning(
        "authentication failed",
        extra={"event": "auth_failed", "reason": reason, "key_prefix": prefix, "path": request.url.path},
    )
    messages = {
        "missing": "This route needs an API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
        "revoked": "This API key was revoked.",
    }
    return Unauthorized(messages.get(reason, "The API key is not valid."))


def _outcome(request: Request) -> AuthOutcome | None:
    outcome: AuthOutcome | None = request.scope.get("state", {}).get(STATE_KEY)
    return outcome


@raises(Unauthorized)
async def current_caller(request: Request) -> Caller:
    """The caller of a protected route; 401 when ``AGENTFLOW_AUTH=required`` and no valid key."""
    outcome = _outcome(request)
    settings: Settings = request.app.state.settings
    if not settings.auth_required:
        key = outcome.key if outcome is not None else None
        return Caller(key=key, scope_owner=None)
    if outcome is None:
        raise _refuse(request, "missing", None)
    if outcome.key is None:
        raise _refuse(request, outcome.failure or "unknown", outcome.prefix)
    return Caller(key=outcome.key, scope_owner=None if outcome.key.is_admin else outcome.key.id)


@raises(Unauthorized, Forbidden)
async def admin_caller(request: Request) -> Caller:
    """An admin key's caller, whatever ``AGENTFLOW_AUTH`` says: 401 without a valid key, 403 without admin."""
    outcome = _outcome(request)
    if outcome is None:
        raise _refuse(request, "missing", None)
    if outcome.key is None:
        raise _refuse(request, outcome.failure or "unknown", outcome.prefix)
    if not outcome.key.is_admin:
        logger.warning(
            "admin scope required",
            extra={
                "event": "auth_failed",
                "reason": "forbidden",
                "key_prefix": outcome.prefix,
                "path": request.url.path,
            },
        )
        raise Forbidden("This route needs an admin-scoped API key.")
    return Caller(key=outcome.key, scope_owner=None)


@raises(Unauthorized, Forbidden)
async def require_admin(request: Request) -> None:
    """Admin-only when authentication is on (``DELETE /cache``); open, like everything, when it is off."""
    settings: Settings = request.app.state.settings
    if settings.auth_required:
        await admin_caller(request)


#: The dependencies that read the caller: an operation using any of them documents ``SECURITY_SCHEMES``.
KEY_DEPENDENCIES: frozenset[Callable[..., Any]] = frozenset({current_caller, admin_caller, require_admin})

CallerDep = Annotated[Caller, Depends(current_caller)]
#: Always an admin key, whatever ``AGENTFLOW_AUTH`` says (key management).
AdminCallerDep = Annotated[Caller, Depends(admin_caller)]


def caller_extra(caller: Caller) -> dict[str, Any]:
    """Log fields naming the caller's key (its id, never the secret)."""
    return {"key_id": caller.key.id} if caller.key is not None else {}
