"""``agentflow keys create | list | revoke``: manage API keys directly on the configured database.

The first admin key can only come from here (HTTP key management needs an admin key already).
Audit lines (``key_created``, ``key_revoked``) go to stderr; what the command prints goes to stdout,
the secret once, at creation.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from backend.config import RATE_LIMIT_PATTERN

__all__ = ["create", "list_keys", "revoke"]


def _with_keys(action: Callable[[Any], Awaitable[int]]) -> int:
    from backend import serving

    # Settings and database checked (one line on failure, exit 2), schema current; logs to stderr.
    code = serving.main("migrate", log_stream=sys.stderr)
    if code:
        return code

    from backend.config import get_settings
    from backend.runs.keys import KeyService
    from backend.runs.store import create_engine
    from backend.runs.store.keys import ApiKeyStore

    settings = get_settings()

    async def run() -> int:
        engine = create_engine(settings.database_url)
        try:
            return await action(KeyService(ApiKeyStore(engine), secret=settings.key_secret))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _public(key: Any) -> dict[str, Any]:
    """A key as ``GET /keys`` shows it (never the secret)."""
    from backend.api.routes.keys import KeyPublic

    return KeyPublic.from_key(key).model_dump(mode="json")


def create(*, name: str, admin: bool, max_queued: int | None, rate_limit: str | None, as_json: bool) -> int:
    """Create a key and print its secret once."""
    if not name.strip() or len(name) > 200:
        print("agentflow: --name: 1 to 200 characters", file=sys.stderr)
        return 2
    if max_queued is not None and max_queued < 1:
        print("agentflow: --max-queued: at least 1", file=sys.stderr)
        return 2
    if rate_limit is not None and not re.match(RATE_LIMIT_PATTERN, rate_limit):
        print(f"agentflow: --rate-limit: {rate_limit!r} is not a limit like 30/minute", file=sys.stderr)
        return 2

    async def action(keys: Any) -> int:
        issued = await keys.create(
            name=name.strip(), scopes=["admin"] if admin else [], max_queued=max_queued, rate_limit=rate_limit
        )
        if as_json:
            print(json.dumps({**_public(issued.key), "secret": issued.secret}))
        else:
            scopes = ", ".join(issued.key.scopes) or "none"
            print(f"Created API key {issued.key.id} ({issued.key.name}; scopes: {scopes}).")
            print("Its secret is shown this once; store it now:")
            print(issued.secret)
        return 0

    return _with_keys(action)


def list_keys(*, as_json: bool) -> int:
    """Print every key (prefixes, never secrets)."""

    async def action(keys: Any) -> int:
        found = [_public(key) for key in await keys.list()]
        if as_json:
            print(json.dumps(found))
            return 0
        if not found:
            print("No API keys yet: agentflow keys create --name NAME [--scope admin]")
        for key in found:
            state = f"revoked {key['revoked_at']}" if key["revoked_at"] else "active"
            scopes = ",".join(key["scopes"]) or "-"
            print(f"{key['id']}  {key['prefix']}…  {key['name']}  scopes={scopes}  {state}")
        return 0

    return _with_keys(action)


def revoke(*, key_id: str) -> int:
    """Revoke a key (exit 1 if there is no such key)."""

    async def action(keys: Any) -> int:
        key = await keys.revoke(key_id=key_id)
        if key is None:
            print(f"agentflow: no API key with id {key_id!r}", file=sys.stderr)
            return 1
        print(f"Revoked {key.id} ({key.name}) at {key.revoked_at.isoformat() if key.revoked_at else '?'}.")
        return 0

    return _with_keys(action)
