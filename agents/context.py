"""Context variables that say which request and which workflow the current code serves.

Log records pick these up (``backend.logs``), asyncio tasks inherit them, and the executor
sets them again when it resumes a run after a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar

__all__ = [
    "bind",
    "correlation_id",
    "node",
    "observe_nodes",
    "token_watch",
    "tokens_wanted",
    "workflow_id",
    "workflow_type",
]

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
workflow_id: ContextVar[str | None] = ContextVar("workflow_id", default=None)
workflow_type: ContextVar[str | None] = ContextVar("workflow_type", default=None)
node: ContextVar[str | None] = ContextVar("node", default=None)

#: Says whether anyone is watching the current run's LLM tokens right now (the run engine sets
#: it; None: assume someone is). Streaming a call costs CPU per chunk, so calls nobody watches
#: are made whole.
token_watch: ContextVar[Callable[[], bool] | None] = ContextVar("token_watch", default=None)


def tokens_wanted() -> bool:
    """Whether an LLM call made now should stream its tokens (see ``token_watch``)."""
    watch = token_watch.get()
    return True if watch is None else watch()


_VARS: dict[str, ContextVar[str | None]] = {
    "correlation_id": correlation_id,
    "workflow_id": workflow_id,
    "workflow_type": workflow_type,
    "node": node,
}


#: Wraps every block that binds a ``node``: each graph node runs inside it (agents.telemetry
#: registers its timeline-and-span recorder here).
_node_observer: Callable[[str], AbstractContextManager[None]] | None = None


def observe_nodes(observer: Callable[[str], AbstractContextManager[None]] | None) -> None:
    """Run every block that binds ``node=<name>`` inside ``observer(name)``."""
    global _node_observer
    _node_observer = observer


@contextmanager
def bind(**values: str | None) -> Iterator[None]:
    """Set some of the context variables for the duration of a block.

    Binding a ``node`` marks the block as that graph node's execution (see ``observe_nodes``).
    """
    tokens = [(_VARS[name], _VARS[name].set(value)) for name, value in values.items()]
    try:
        name = values.get("node")
        if name is not None and _node_observer is not None:
            with _node_observer(name):
                yield
        else:
            yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
