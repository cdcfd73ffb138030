"""LangGraph-API assistants: one read-only assistant per registered workflow type.

An assistant's ``graph_id`` is the workflow type (``reflection``, ``research``) and its id is
``uuid5(NAMESPACE_GRAPH, graph_id)``, the id LangGraph Server gives the default assistant of a
graph, so the id is the same in every process and across restarts. Where the SDK takes an
assistant id it may also pass the graph id, as it may with LangGraph Server.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agents.errors import NotFound
from workflows.base import WorkflowSpec
from workflows.registry import WORKFLOWS

__all__ = ["NAMESPACE_GRAPH", "Assistant", "assistant_id_of", "find_assistants", "graph_of", "resolve_assistant"]

#: LangGraph Server's namespace for the ids of the assistants it makes for each graph.
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
#: Assistants exist as long as their workflow is registered: since this process loaded it.
_REGISTERED_AT = datetime.now(UTC)


def assistant_id_of(graph_id: str) -> str:
    """The stable assistant id of a workflow type."""
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph_id))


@dataclass(frozen=True, slots=True)
class Assistant:
    """A workflow type seen as a LangGraph assistant."""

    assistant_id: str
    spec: WorkflowSpec

    @property
    def graph_id(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str | None:
        doc = (self.spec.request_model.__doc__ or "").strip()
        return f"The {self.spec.name} workflow." if not doc else doc.splitlines()[0]

    @property
    def created_at(self) -> datetime:
        return _REGISTERED_AT

    def schemas(self) -> dict[str, Any]:
        """JSON schemas: the input is the workflow's request model (what a run's ``input`` must be)."""
        return {
            "graph_id": self.graph_id,
            "input_schema": self.spec.request_model.model_json_schema(),
            "output_schema": None,
            "state_schema": None,
            "config_schema": None,
            "context_schema": None,
        }


_ASSISTANTS = {name: Assistant(assistant_id_of(name), spec) for name, spec in WORKFLOWS.items()}


def resolve_assistant(assistant_id: str) -> Assistant:
    """The assistant with this id, or the one of the graph so named; NotFound otherwise."""
    if assistant_id in _ASSISTANTS:
        return _ASSISTANTS[assistant_id]
    for assistant in _ASSISTANTS.values():
        if assistant.assistant_id == assistant_id:
            return assistant
    raise NotFound(f"No assistant {assistant_id!r}; known graphs: {', '.join(sorted(_ASSISTANTS))}.")


def find_assistants(
    *, graph_id: str | None = None, name: str | None = None, metadata: dict[str, Any] | None = None
) -> list[Assistant]:
    """Assistants matching the filters, in registry order."""
    found = list(_ASSISTANTS.values())
    if graph_id is not None:
        found = [a for a in found if a.graph_id == graph_id]
    if name is not None:
        found = [a for a in found if name.lower() in a.graph_id.lower()]
    if metadata:
        system = {"created_by": "system"}
        found = [a for a in found if all(system.get(k) == v for k, v in metadata.items())]
    return found


@functools.cache
def graph_of(graph_id: str) -> dict[str, Any]:
    """The workflow's graph as LangGraph draws it (``{"nodes": [...], "edges": [...]}``).

    Imports the workflow's graph module (and LangGraph) if no run has loaded them yet.
    """
    from langgraph.checkpoint.memory import InMemorySaver

    spec = WORKFLOWS[graph_id]
    drawable: dict[str, Any] = spec.compile(InMemorySaver()).get_graph().to_json()
    return drawable
