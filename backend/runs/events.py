"""A run's events as the LangGraph-compatible stream reads them (stand-in until the per-run event log lands).

Provisional: derived from record changes (``RunService.events``), so it carries ``status`` on
every change, the final ``values`` and ``end``, with no tokens, and ids that do not survive a
reconnect. The event-log branch replaces this module with the stored, resumable log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["EVENT_KINDS", "RunEvent"]

EVENT_KINDS = ("values", "updates", "messages", "custom", "status", "end")


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One event of a run."""

    seq: int  #: per run, from 1, strictly increasing
    kind: str  #: one of ``EVENT_KINDS``
    data: Any  #: JSON-able
