"""Context variables that say which request and which workflow the current code serves.

Log records pick these up (``backend.logs``), asyncio tasks inherit them, and the executor
sets them again when it resumes a run after a restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["bind", "correlation_id", "node", "workflow_id", "workflow_type"]

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
workflow_id: ContextVar[str | None] = ContextVar("workflow_id", default=None)
workflow_type: ContextVar[str | None] = ContextVar("workflow_type", default=None)
node: ContextVar[str | None] = ContextVar("node", default=None)

_VARS: dict[str, ContextVar[str | None]] = {
    "correlation_id": correlation_id,
    "workflow_id": workflow_id,
    "workflow_type": workflow_type,
    "node": node,
}


@contextmanager
def bind(**values: str | None) -> Iterator[None]:
    """Set some of the context variables for the duration of a block."""
    tokens = [(_VARS[name], _VARS[name].set(value)) for name, value in values.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
