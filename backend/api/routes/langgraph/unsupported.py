"""The LangGraph Server routes agentflow does not offer: each answers 501 problem+json saying so.

They are left out of the OpenAPI document: each answers one thing (501) for any input, so there
is nothing about them to describe beyond the list in the README ("Using the LangGraph SDK").
"""

from __future__ import annotations

from typing import NoReturn

from fastapi import APIRouter

from agents.errors import NotSupported
from backend.api.deps import CallerDep

__all__ = ["UNSUPPORTED", "router"]

_CRONS = "Scheduled runs (crons) are not supported; schedule POST /threads/{thread_id}/runs from outside."
_STORE = "The LangGraph store (long-term memory) is not supported."
_ASSISTANTS = "Assistants are the registered workflow types and cannot be created, edited, versioned or deleted."
_STATE = "Thread state comes only from runs: checkpoints are not kept once a run ends, so it cannot be {}."

#: (method, path, why) of every LangGraph Server route langgraph-sdk calls that agentflow does not offer.
UNSUPPORTED: tuple[tuple[str, str, str], ...] = (
    ("POST", "/assistants", _ASSISTANTS),
    ("PATCH", "/assistants/{assistant_id}", _ASSISTANTS),
    ("DELETE", "/assistants/{assistant_id}", _ASSISTANTS),
    ("POST", "/assistants/{assistant_id}/versions", _ASSISTANTS),
    ("POST", "/assistants/{assistant_id}/latest", _ASSISTANTS),
    ("POST", "/threads/{thread_id}/copy", "Copying threads is not supported."),
    ("POST", "/threads/prune", "Pruning threads is not supported; delete them one by one."),
    ("POST", "/threads/{thread_id}/state", _STATE.format("updated")),
    ("POST", "/threads/{thread_id}/state/checkpoint", _STATE.format("read at a checkpoint")),
    ("GET", "/threads/{thread_id}/state/{checkpoint_id}", _STATE.format("read at a checkpoint")),
    ("GET", "/threads/{thread_id}/stream", "Streaming a whole thread is not supported; join a run's stream."),
    ("DELETE", "/threads/{thread_id}/runs/{run_id}", "Runs are workflow records and are never deleted."),
    ("POST", "/runs/batch", "Batches of runs are not supported; create them one by one."),
    ("POST", "/runs/cancel", "Cancelling runs in bulk is not supported; cancel them one by one."),
    ("POST", "/runs/crons", _CRONS),
    ("POST", "/threads/{thread_id}/runs/crons", _CRONS),
    ("POST", "/runs/crons/search", _CRONS),
    ("POST", "/runs/crons/count", _CRONS),
    ("PATCH", "/runs/crons/{cron_id}", _CRONS),
    ("DELETE", "/runs/crons/{cron_id}", _CRONS),
    ("PUT", "/store/items", _STORE),
    ("GET", "/store/items", _STORE),
    ("DELETE", "/store/items", _STORE),
    ("POST", "/store/items/search", _STORE),
    ("POST", "/store/namespaces", _STORE),
)

router = APIRouter(tags=["langgraph: not implemented"])


def _answer(why: str):  # type: ignore[no-untyped-def]
    async def not_implemented(_caller: CallerDep) -> NoReturn:
        raise NotSupported(why)

    return not_implemented


for _method, _path, _why in UNSUPPORTED:
    router.add_api_route(_path, _answer(_why), methods=[_method], include_in_schema=False, response_model=None)
