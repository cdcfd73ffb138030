"""``/metrics/summary``: totals over stored records, so they survive restarts and cover every process."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from agents.providers.usage import Usage
from backend.runs.records import CacheOutcome, WorkflowStatus
from backend.runs.store import RunFacts

__all__ = ["percentile", "summarize"]

_SERVED = (CacheOutcome.HIT, CacheOutcome.COALESCED)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), linearly interpolated; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 4)


def _by_status(facts: Iterable[RunFacts]) -> dict[str, int]:
    counts = Counter(fact.status.value for fact in facts)
    return {status.value: counts.get(status.value, 0) for status in WorkflowStatus}


def _times(facts: Iterable[RunFacts]) -> dict[str, Any]:
    """Execution times of the runs that executed and completed (answers from the cache excluded)."""
    seconds = [
        fact.execution_time
        for fact in facts
        if fact.status is WorkflowStatus.COMPLETED and fact.cache_outcome not in _SERVED
        if fact.execution_time is not None
    ]
    return {"runs": len(seconds), "p50_s": percentile(seconds, 50), "p95_s": percentile(seconds, 95)}


def _usage(facts: Iterable[RunFacts]) -> dict[str, Any]:
    total = Usage()
    cost = 0.0
    unpriced = 0
    for fact in facts:
        total = total + fact.usage.model_copy(update={"est_cost_usd": 0.0})
        if fact.usage.est_cost_usd is None:
            unpriced += 1
        else:
            cost += fact.usage.est_cost_usd
    return {
        "input_tokens": total.input_tokens,
        "cached_input_tokens": total.cached_input_tokens,
        "output_tokens": total.output_tokens,
        "llm_calls": total.llm_calls,
        "est_cost_usd": round(cost, 6),
        "unpriced_records": unpriced,
    }


def summarize(
    facts: list[RunFacts],
    *,
    source_usage: Mapping[str, Usage],
    since: datetime | None,
    now: datetime,
    live: Mapping[str, int],
) -> dict[str, Any]:
    """The summary document: counts by status (overall and per type), cache effect, times, usage.

    ``source_usage`` holds the usage of every run a cache-served record took its result from:
    what that record would have cost is what the cache saved.
    """
    outcomes = Counter(fact.cache_outcome for fact in facts if fact.cache_outcome is not None)
    served = [fact for fact in facts if fact.status is WorkflowStatus.COMPLETED and fact.cache_outcome in _SERVED]
    saved_usd = 0.0
    saved_tokens = 0
    for fact in served:
        usage = source_usage.get(fact.cached_from or "")
        if usage is not None:
            saved_usd += usage.est_cost_usd or 0.0
            saved_tokens += usage.total_tokens
    reused = outcomes[CacheOutcome.HIT] + outcomes[CacheOutcome.COALESCED]
    consulted = reused + outcomes[CacheOutcome.MISS]
    types = sorted({fact.workflow_type for fact in facts})
    return {
        "since": since,
        "until": now,
        "records": len(facts),
        "by_status": _by_status(facts),
        "live": dict(live),
        "by_type": {
            name: {
                "records": sum(1 for fact in facts if fact.workflow_type == name),
                "by_status": _by_status(fact for fact in facts if fact.workflow_type == name),
                "execution_time": _times(fact for fact in facts if fact.workflow_type == name),
            }
            for name in types
        },
        "execution_time": _times(facts),
        "usage": _usage(facts),
        "cache": {
            "hits": outcomes[CacheOutcome.HIT],
            "coalesced": outcomes[CacheOutcome.COALESCED],
            "misses": outcomes[CacheOutcome.MISS],
            "bypassed": outcomes[CacheOutcome.BYPASS],
            "refreshed": outcomes[CacheOutcome.REFRESH],
            # Of the submits that consulted the cache (``cache: use``), the share another run answered.
            "hit_rate": round(reused / consulted, 4) if consulted else None,
            "saved_usd": round(saved_usd, 6),
            "saved_tokens": saved_tokens,
        },
    }
