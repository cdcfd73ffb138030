"""The registry of workflow types: name → WorkflowSpec."""

from __future__ import annotations

from workflows.base import WorkflowSpec
from workflows.planner import SPEC as PLANNER
from workflows.reflection import SPEC as REFLECTION
from workflows.research import SPEC as RESEARCH

__all__ = ["WORKFLOWS", "get_spec", "load_graphs"]

WORKFLOWS: dict[str, WorkflowSpec] = {spec.name: spec for spec in (REFLECTION, RESEARCH, PLANNER)}


def get_spec(name: str) -> WorkflowSpec | None:
    return WORKFLOWS.get(name)


def load_graphs() -> None:
    """Import every workflow's graph module (LangGraph, the agents, the provider SDKs): slow, once."""
    for spec in WORKFLOWS.values():
        _ = spec.graph
