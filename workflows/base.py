"""What every workflow module provides to the executor, and the node instrumentation they share.

A workflow is two modules. ``workflows/<name>.py`` declares what the server needs to accept a
run (its request model, agent roles, provider checks, questions for a human, result helpers) and
imports no LangGraph, langchain or provider SDK, so a server answers before those load.
``workflows/graphs/<name>.py`` holds its State, verb nodes and graph builder, and exports
``GRAPH``; it is imported when a run first needs it (``WorkflowSpec.graph``, ``load_graphs``).
"""

from __future__ import annotations

import functools
import importlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from pydantic_core import PydanticCustomError

from agents import context
from agents.providers.usage import Usage

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph

    from agents.providers import Providers

__all__ = [
    "STORABLE",
    "WEBHOOK_URL_MAX_LENGTH",
    "CacheOption",
    "CachePolicy",
    "EditProblem",
    "InterruptPoint",
    "ModelName",
    "StorableText",
    "TokenBudget",
    "Topic",
    "WebhookOption",
    "WorkflowGraph",
    "WorkflowSpec",
    "add_usage",
    "instrumented",
    "resolve_models",
    "result_in_state",
    "topic_input",
    "unstorable",
]


def unstorable(text: str) -> str | None:
    """Why a database could not store ``text`` (PostgreSQL refuses NUL and unpaired surrogates), or None."""
    if "\x00" in text:
        return "Text must not contain NUL (U+0000)."
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "Text must not contain unpaired surrogates (U+D800 to U+DFFF)."
    return None


def _storable(text: str) -> str:
    reason = unstorable(text)
    if reason is not None:
        raise PydanticCustomError("string_unstorable", reason)
    return text


#: Refuses text a store cannot hold, so a request gets a 422 naming the field rather than a 500 later.
STORABLE = AfterValidator(_storable)
#: Text every store can hold: request strings are this (constrained ones end with ``STORABLE``).
StorableText = Annotated[str, STORABLE]
#: What a workflow is about: 1–4000 characters once surrounding whitespace is trimmed.
Topic = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000), STORABLE]
#: An optional cap on the tokens a run may spend (``max_tokens_budget`` in requests).
TokenBudget = Annotated[
    int | None, Field(ge=1, description="Stop with budget_exceeded once this many tokens were spent.")
]
#: A model name a request may choose for one agent role.
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), STORABLE]
#: How a submit uses the result cache (every request model has a ``cache: CacheOption = "use"``).
CachePolicy = Literal["use", "bypass", "refresh"]
CacheOption = Annotated[
    CachePolicy,
    Field(
        description=(
            '"use": answer from a fresh cached result of an identical request, or join an identical run in '
            'flight; "bypass": run, and neither read nor write the cache; "refresh": run, and replace the '
            "cached result."
        )
    ),
]

#: Where to POST the final record when the run ends (every request model has a ``webhook: WebhookOption = None``).
#: Only its shape is checked here; the run service vets the URL itself (scheme, credentials, SSRF).
WEBHOOK_URL_MAX_LENGTH = 2048
WebhookUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=WEBHOOK_URL_MAX_LENGTH), STORABLE
]
WebhookOption = Annotated[
    WebhookUrl | None,
    Field(
        description=(
            "An http(s) URL to POST the final record to when the run ends (completed, failed or cancelled), "
            "signed per Standard Webhooks. Public addresses only; retried with back-off."
        ),
        # A reserved name (RFC 2606) that never resolves: fuzzers that send the example reach nobody.
        examples=["https://receiver.example/hooks/agentflow"],
    ),
]

logger = logging.getLogger("agentflow.workflow")


#: State reducer: token usage adds up across nodes (and survives restarts in checkpoints).
add_usage = Usage.add_dicts


def topic_input(request: BaseModel) -> dict[str, Any]:
    """Graph input for a fresh run of a workflow whose request carries a ``topic``."""
    return {"topic": request.model_dump()["topic"]}


def result_in_state(state: Mapping[str, Any]) -> dict[str, Any] | None:
    """The result a workflow's ``finalize`` node left in its state."""
    result: dict[str, Any] | None = state.get("result")
    return result


def resolve_models(requested: BaseModel | None, defaults: Mapping[str, str]) -> dict[str, str]:
    """Model per role: the request's choice, else the configured default for that role."""
    chosen = requested.model_dump(exclude_none=True) if requested is not None else {}
    return {role: chosen.get(role) or model for role, model in defaults.items()}


class EditProblem(Exception):
    """An edited value a human sent back is invalid at ``loc`` (a path inside that value)."""

    def __init__(self, loc: tuple[str | int, ...], message: str, kind: str = "value_error") -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
        self.kind = kind


@dataclass(frozen=True)
class InterruptPoint:
    """A question a workflow may stop to ask a human, and how the answer is checked.

    The node named ``node`` calls LangGraph's ``interrupt({"kind": kind, ...})``; the run then
    waits (status ``waiting``, the interrupt's value shown as the record's ``pending``) until
    ``POST /workflows/{id}/resume`` answers ``approve``, ``edit`` (with the edited value in the
    body field ``edit_field``) or ``reject`` (the run ends ``cancelled``). The node receives
    ``{"action": "approve"}`` or ``{"action": "edit", edit_field: <validated value>}`` as the
    value of its ``interrupt(...)`` call.

    Attributes:
        kind: the ``pending.kind`` of the question, e.g. ``plan_approval``.
        node: the node that asks it.
        asks: whether a run of this request may stop here (such runs never use the result cache:
            their result depends on the answer).
        edit_field: the resume body's field that carries an edited value (None: no ``edit``).
        edit_model: the schema of that value (validated first: a 422 names the failing field).
        check_edit: further checks of a validated edit against the run's request; raises
            ``EditProblem`` naming the path inside the value.
    """

    kind: str
    node: str
    asks: Callable[[BaseModel], bool]
    edit_field: str | None = None
    edit_model: type[BaseModel] | None = None
    check_edit: Callable[[BaseModel, BaseModel], None] | None = None


class _Node(Protocol):
    """A graph node: returns its state update, or a LangGraph ``Command`` (update and next node)."""

    def __call__(self, state: Any, runtime: Any) -> Awaitable[Any]: ...


def instrumented(name: str) -> Callable[[_Node], _Node]:
    """Bind ``node`` into the log context and log ``event=node_finished`` with ``duration_ms``."""

    def decorate(fn: _Node) -> _Node:
        @functools.wraps(fn)
        async def run(state: Any, runtime: Any) -> Any:
            with context.bind(node=name):
                started = time.perf_counter()
                update = await fn(state, runtime)
                logger.info(
                    "node %s finished",
                    name,
                    extra={"event": "node_finished", "duration_ms": round((time.perf_counter() - started) * 1000, 1)},
                )
                return update

        return run

    return decorate


@dataclass(frozen=True)
class WorkflowGraph:
    """The run-time half of a workflow, exported as ``GRAPH`` by ``workflows/graphs/<name>.py``.

    Attributes:
        compile: builds the compiled graph over a checkpointer (once per process).
        make_context: the run's LangGraph context from its request, the providers and the
            resolved default model of each of its roles (rebuilt identically when a run resumes).
    """

    compile: Callable[[BaseCheckpointSaver[Any]], CompiledStateGraph[Any, Any, Any, Any]]
    make_context: Callable[[BaseModel, Providers, Mapping[str, str]], Any]


@dataclass(frozen=True)
class WorkflowSpec:
    """Everything the server needs to accept, run, resume and report one workflow type.

    Attributes:
        name: the workflow type, also the path segment of ``POST /workflows/{name}``.
        roles: the agent roles the workflow calls models for, each with its default model
            (None: the server's ``AGENTFLOW_MODEL``); ``AGENTFLOW_MODEL_<ROLE>`` overrides it.
        request_model: the validated request body.
        graph_module: the module that exports the workflow's ``GRAPH`` (a ``WorkflowGraph``);
            it imports LangGraph and the agents, so it is imported on first use (``graph``).
        initial_state: the graph input for a fresh run.
        result: the public result from a final state.
        partial_result: the best result reachable from a partial state (kept when a run
            stops on its token budget), or None.
        progress: ``{node, iteration}`` shown while the run is in flight.
        required_providers: raise ``ProviderNotConfigured`` at submit time if a needed
            provider has no credentials.
        interrupts: the questions the workflow may stop to ask a human (see ``InterruptPoint``);
            one at a time: a run waits on at most one question.
    """

    name: str
    roles: Mapping[str, str | None]
    request_model: type[BaseModel]
    graph_module: str
    initial_state: Callable[[BaseModel], dict[str, Any]]
    result: Callable[[Mapping[str, Any]], dict[str, Any] | None]
    partial_result: Callable[[Mapping[str, Any]], dict[str, Any] | None]
    progress: Callable[[str, Mapping[str, Any]], dict[str, Any]]
    required_providers: Callable[[BaseModel, Providers], None]
    interrupts: tuple[InterruptPoint, ...] = ()

    @property
    def graph(self) -> WorkflowGraph:
        """The run-time half; importing it the first time loads LangGraph, the agents and the SDKs.

        A server loads it in a worker thread before its first run (``backend.runs.stack``); the
        import here is then a lookup.
        """
        graph = importlib.import_module(self.graph_module).GRAPH
        if not isinstance(graph, WorkflowGraph):
            raise TypeError(f"{self.graph_module}.GRAPH is not a WorkflowGraph")
        return graph

    @property
    def compile(self) -> Callable[[BaseCheckpointSaver[Any]], CompiledStateGraph[Any, Any, Any, Any]]:
        """``graph.compile``: builds the compiled graph over a checkpointer."""
        return self.graph.compile

    @property
    def make_context(self) -> Callable[[BaseModel, Providers, Mapping[str, str]], Any]:
        """``graph.make_context``: the run's LangGraph context."""
        return self.graph.make_context

    def may_pause(self, request: BaseModel) -> bool:
        """Whether a run of ``request`` may stop to wait for a human."""
        return any(point.asks(request) for point in self.interrupts)

    def interrupt_point(self, kind: str) -> InterruptPoint | None:
        """The declared question of this ``kind``, if any."""
        return next((point for point in self.interrupts if point.kind == kind), None)

    def __post_init__(self) -> None:
        # The result cache reads the policy from every request: one shared field, never forgotten.
        if "cache" not in self.request_model.model_fields:
            raise TypeError(f'{self.request_model.__name__} needs a `cache: CacheOption = "use"` field')
        if "webhook" not in self.request_model.model_fields:
            raise TypeError(f"{self.request_model.__name__} needs a `webhook: WebhookOption = None` field")
