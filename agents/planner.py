"""The planner agents: plan a goal into typed steps, write a step, synthesize the deliverable."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

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

#: The most steps any plan may have (a request's ``max_steps`` is at most this).
MAX_PLAN_STEPS = 20
StepKind = Literal["research", "write", "critique"]
_STEP_TAG = re.compile(r"<\s*/?\s*(?:step|inputs|steps)\b", re.IGNORECASE)


def _no_nul(text: str) -> str:
    # Plans are stored as JSON in the database: PostgreSQL refuses NUL in text.
    if "\x00" in text:
        raise ValueError("Text must not contain NUL (U+0000).")
    return text


StepId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
Instruction = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), AfterValidator(_no_nul)
]


class PlanStep(BaseModel):
    """One step of a plan: what to do, which agent does it, and what it needs first."""

    model_config = ConfigDict(extra="forbid")

    id: StepId = Field(description='Unique in the plan: letters, digits, "-" or "_" (at most 32).')
    kind: StepKind = Field(description="research (cited search summary), write (draft text) or critique (review).")
    instruction: Instruction = Field(description="What the step must do.")
    depends_on: list[StepId] = Field(
        default_factory=list, max_length=MAX_PLAN_STEPS, description="Ids of earlier steps whose output it needs."
    )


class Plan(BaseModel):
    """An ordered plan of typed steps; independent steps run in parallel."""

    model_config = ConfigDict(extra="forbid")

    steps: list[PlanStep] = Field(min_length=1, max_length=MAX_PLAN_STEPS, description="The steps, in order.")


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
