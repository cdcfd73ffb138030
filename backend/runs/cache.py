"""The result cache: exact-match reuse of completed results, and single flight for identical runs.

``RunService.submit`` consults it for every request (the request's ``cache`` field says how):

- **Key.** SHA-256 over the workflow type; the normalised input (every request field except
  ``cache`` and ``webhook``; the topic trimmed, inner whitespace collapsed and case-folded); the model of every
  agent role as the run would resolve it (the request's ``models``, else the configured
  defaults, so a changed ``AGENTFLOW_MODEL_<ROLE>`` is a different key); the prompt-set version
  (a hash of every prompt file); and the model server settings that change answers (base URL,
  temperature).
- **use** (default): a fresh entry answers at once, as a new ``completed`` record with
  ``cache_outcome: hit``, zero usage and ``cached_from`` naming the run that produced the result;
  no run is scheduled. Without one, if an identical run is in flight (queued or running, in any
  process: the store's single-flight index), the new record follows it (``coalesced``): it
  waits for that run and then ends as it did, completed with its result (zero usage) or failed
  with its error. Only if that run is cancelled does the follower run itself. Otherwise the
  request runs (``miss``) and, if it completes, becomes the cached result.
- **bypass**: run; neither read nor write the cache, never coalesce.
- **refresh**: run (never coalesce); when it completes, it replaces the cached result.

Only completed runs are cached; failed (budget stops included) and cancelled runs never are.
Entries live ``AGENTFLOW_CACHE_TTL`` seconds (0 turns the cache off) in the database, so they
survive restarts and every process shares them. Each process remembers an entry it read for
``MEMO_SECONDS`` (a burst of repeats costs one lookup, not one each), so a ``DELETE /cache`` or
a ``refresh`` made by another process reaches it at most that much later.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from agents.prompting import prompt_set_version
from backend.runs.records import CacheOutcome, WorkflowRecord
from backend.runs.store import WorkflowStore
from workflows.base import CachePolicy, WorkflowSpec, resolve_models

__all__ = ["CACHE_KEY_VERSION", "MEMO_SECONDS", "ResultCache", "normalised_input"]

#: Bumped whenever the key's recipe changes, so old entries simply stop matching.
CACHE_KEY_VERSION = 1
#: How long a process reuses an entry it read, without asking the store again.
MEMO_SECONDS = 1.0
_MEMO_SIZE = 1024
#: Request fields that cannot change the result, left out of the key.
_NOT_IN_KEY = frozenset({"cache", "webhook"})


def normalised_input(body: BaseModel) -> dict[str, Any]:
    """The request as the key sees it: every result-changing field, the topic normalised."""
    data = body.model_dump(mode="json", exclude=set(_NOT_IN_KEY | {"models"}))
    topic = data.get("topic")
    if isinstance(topic, str):
        data["topic"] = " ".join(topic.split()).casefold()
    return data


class ResultCache:
    """Computes cache keys and reads the store's cached results for ``RunService``."""

    def __init__(
        self,
        *,
        store: WorkflowStore,
        default_models: Mapping[str, Mapping[str, str]],
        ttl: float,
        model_settings: Mapping[str, Any],
    ) -> None:
        self.store = store
        self.default_models = default_models
        self.ttl = ttl
        self.model_settings = dict(model_settings)
        self._prompts = prompt_set_version()
        #: key → (the cached run, when its entry expires, until when this process reuses it)
        self._memo: OrderedDict[str, tuple[WorkflowRecord, datetime, datetime]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def policy(self, body: BaseModel) -> CachePolicy | None:
        """The request's policy, or None when the cache is off."""
        if not self.enabled:
            return None
        policy: CachePolicy = getattr(body, "cache", "use")
        return policy

    def key(self, spec: WorkflowSpec, body: BaseModel, *, scope: str = "") -> str:
        """The cache key of ``body``. ``scope`` partitions the cache (e.g. per API-key owner, so
        one tenant never sees another's results or in-flight runs); "" is the shared cache."""
        models = resolve_models(getattr(body, "models", None), self.default_models.get(spec.name, {}))
        canonical = {
            "v": CACHE_KEY_VERSION,
            "scope": scope,
            "workflow": spec.name,
            "input": normalised_input(body),
            "models": models,
            "prompts": self._prompts,
            "model_settings": self.model_settings,
        }
        return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def expires_at(self, finished_at: datetime) -> datetime:
        return finished_at + timedelta(seconds=self.ttl)

    async def fresh(self, *, key: str, now: datetime) -> WorkflowRecord | None:
        """The completed run cached under ``key``, if its entry has not expired."""
        memo = self._memo.get(key)
        if memo is not None:
            record, expires_at, reuse_until = memo
            if now < reuse_until and now < expires_at:
                return record
            del self._memo[key]
        entry = await self.store.cached_entry(key=key, now=now)
        if entry is None:
            return None
        record, expires_at = entry
        self._memo[key] = (record, expires_at, now + timedelta(seconds=MEMO_SECONDS))
        while len(self._memo) > _MEMO_SIZE:
            self._memo.popitem(last=False)
        return record

    async def clear(self, *, workflow_type: str | None = None) -> int:
        self._memo.clear()
        return await self.store.clear_cache(workflow_type=workflow_type)

    @staticmethod
    def outcome(policy: CachePolicy | None) -> CacheOutcome | None:
        """What a run that was not answered from the cache records as its outcome."""
        if policy is None:
            return None
        return {"use": CacheOutcome.MISS, "bypass": CacheOutcome.BYPASS, "refresh": CacheOutcome.REFRESH}[policy]
