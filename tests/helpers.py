"""Small helpers shared by tests: scripted stand-in answers and polling."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from typing import Any, TypedDict

import httpx

from tests.standins import ChatReply, ChatRequest

TERMINAL = {"completed", "failed", "cancelled"}


def reflection_responder(
    scores: Iterable[float | None],
    *,
    approved_at: float | None = None,
    revise: Callable[[str], str] | None = None,
) -> Callable[[ChatRequest], ChatReply | None]:
    """Script the OpenAI stand-in for a reflection run.

    ``scores`` are given to successive critiques (None → an answer that does not validate);
    drafts and revisions are numbered so each text differs unless ``revise`` says otherwise.
    """
    queue = list(scores)

    def respond(request: ChatRequest) -> ChatReply | None:
        if request.schema_name is not None:
            score = queue.pop(0) if queue else 5.0
            if score is None:
                return ChatReply(json={"score": "not a number", "issues": "none"})
            approved = approved_at is not None and score >= approved_at
            issues = [] if approved else [{"severity": "medium", "text": f"Needs more depth (score {score})."}]
            return ChatReply(json={"score": score, "issues": issues, "approved": approved})
        text = request.last_user_message
        version = re.search(r'<draft version="(\d+)">', text)
        if version is None:
            return ChatReply(content="Draft 1 about the topic.")
        previous = re.search(r'<draft version="\d+">\n(.*?)\n</draft>', text, re.S)
        if revise is not None and previous is not None:
            return ChatReply(content=revise(previous.group(1)))
        return ChatReply(content=f"Draft {int(version.group(1)) + 1}, revised with more depth.")

    return respond


async def wait_terminal(client: httpx.AsyncClient, workflow_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll until the workflow ends (fails the test on timeout)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body: dict[str, Any] = (await client.get(f"/workflows/{workflow_id}")).json()
        if body["status"] in TERMINAL:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"workflow {workflow_id} still {body['status']} after {timeout} s")
        await asyncio.sleep(0.05)


class _StepsState(TypedDict):
    steps: list[str]


def interrupt_graph(saver: Any) -> Any:
    """A two-node graph on ``saver``: ``first`` appends a step, ``ask`` stops at an interrupt
    and appends the answer it is resumed with (for checkpointer tests)."""
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt

    async def first(state: _StepsState) -> dict[str, Any]:
        return {"steps": [*state["steps"], "first"]}

    async def ask(state: _StepsState) -> dict[str, Any]:
        answer = interrupt({"question": "go on?"})
        return {"steps": [*state["steps"], f"answer={answer}"]}

    builder = StateGraph(_StepsState)
    builder.add_node("first", first)
    builder.add_node("ask", ask)
    builder.add_edge(START, "first")
    builder.add_edge("first", "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver)
