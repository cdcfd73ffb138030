"""The plan schema the planner agent answers in and a human may edit: importable without any model client.

Kept apart from ``agents.planner`` so a server can validate an edited plan (and describe the
schema in its OpenAPI document) before it loads langchain and the provider SDKs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

__all__ = ["MAX_PLAN_STEPS", "Plan", "PlanStep", "StepKind"]

#: The most steps any plan may have (a request's ``max_steps`` is at most this).
MAX_PLAN_STEPS = 20
StepKind = Literal["research", "write", "critique"]


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
