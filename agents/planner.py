"""The planner agents: plan a goal into typed steps, write a step, synthesize the deliverable."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agents.plans import MAX_PLAN_STEPS, Plan, PlanStep, StepKind
from agents.prompting import load_prompt
from agents.providers.openai_chat import ChatProvider
from agents.providers.usage import Usage
from agents.research import TextOutcome, render_sources

__all__ = [
    "MAX_PLAN_STEPS",
    "Plan",
    "PlanOutcome",
    "PlanStep",
    "PlannerAgent",
    "StepKind",
    "SynthesizerAgent",
    "WriterAgent",
    "render_outputs",
]

_STEP_TAG = re.compile(r"<\s*/?\s*(?:step|inputs|steps)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    """A plan, or the reason the model's answer could not be read as one."""

    plan: Plan | None
    parse_error: str | None
    usage: Usage


def _messages(prompt: str, **values: object) -> list[BaseMessage]:
    system, user = load_prompt(prompt).render(**values)
    return [SystemMessage(system), HumanMessage(user)]


def _data(text: object) -> str:
    # A step output must not be able to close its own block and pose as instructions.
    return _STEP_TAG.sub("[tag removed]", str(text or "").strip())


def render_outputs(outputs: Sequence[Mapping[str, Any]]) -> str:
    """Earlier steps' outputs as delimited data blocks, each headed by its step id and kind."""
    return "\n\n".join(
        f'<step id="{output["id"]}" kind="{output["kind"]}">\n'
        f"Instruction: {_data(output.get('instruction'))}\n\n"
        f"{_data(output.get('text'))}\n"
        "</step>"
        for output in outputs
    )


@dataclass(frozen=True, slots=True)
class PlannerAgent:
    """Turns a goal into a plan; an unreadable answer is reported, not raised."""

    llm: ChatProvider

    async def execute(self, *, goal: str, max_steps: int, model: str) -> PlanOutcome:
        messages = _messages("planner/plan", goal=goal, max_steps=max_steps)
        result = await self.llm.structured(model=model, messages=messages, schema=Plan)
        return PlanOutcome(result.value, result.error, result.usage)


@dataclass(frozen=True, slots=True)
class WriterAgent:
    """Carries out a ``write`` step from the outputs of the steps it depends on."""

    llm: ChatProvider

    async def execute(
        self, *, goal: str, instruction: str, inputs: Sequence[Mapping[str, Any]], model: str
    ) -> TextOutcome:
        rendered = render_outputs(inputs) or "(no earlier step outputs)"
        messages = _messages("planner/write", goal=goal, instruction=instruction, inputs=rendered)
        result = await self.llm.complete(model=model, messages=messages)
        return TextOutcome(result.text.strip(), result.usage)


@dataclass(frozen=True, slots=True)
class SynthesizerAgent:
    """Assembles the deliverable from every step's output, citing the retrieved sources as ``[S#]``."""

    llm: ChatProvider

    async def execute(
        self,
        *,
        goal: str,
        outputs: Sequence[Mapping[str, Any]],
        sources: Sequence[Mapping[str, Any]],
        model: str,
    ) -> TextOutcome:
        messages = _messages(
            "planner/synthesize",
            goal=goal,
            steps=render_outputs(outputs) or "(no step produced output)",
            sources=render_sources(sources) or "(no sources were retrieved)",
        )
        result = await self.llm.complete(model=model, messages=messages)
        return TextOutcome(result.text.strip(), result.usage)
