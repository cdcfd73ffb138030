"""The reflection agents: draft, critique and revise, each ``async def execute(...)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from agents.prompting import load_prompt
from agents.providers.openai_chat import ChatProvider
from agents.providers.usage import Usage

__all__ = ["Critique", "CritiqueAgent", "CritiqueOutcome", "DraftAgent", "Issue", "ReviseAgent", "TextOutcome"]


class Issue(BaseModel):
    """One problem the reviewer found."""

    severity: Literal["low", "medium", "high"] = Field(description="How much the issue matters.")
    text: str = Field(description="What is wrong and how to fix it.")


class Critique(BaseModel):
    """The reviewer's structured verdict on one draft."""

    score: float = Field(ge=0, le=10, description="Quality from 0 (unusable) to 10 (publishable as is).")
    issues: list[Issue] = Field(description="Concrete issues, most severe first.")
    approved: bool = Field(description="True only if the draft needs no further revision.")


@dataclass(frozen=True, slots=True)
class TextOutcome:
    text: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class CritiqueOutcome:
    """A critique, or the reason the model's answer could not be read as one."""

    critique: Critique | None
    parse_error: str | None
    usage: Usage

    def verdict(self) -> dict[str, Any]:
        """The critique as stored in workflow state; an unreadable one counts as not approved."""
        if self.critique is None:
            return {"score": None, "issues": [], "approved": False, "parse_error": self.parse_error}
        return {**self.critique.model_dump(), "parse_error": None}


def _messages(prompt: str, **values: object) -> list[BaseMessage]:
    system, user = load_prompt(prompt).render(**values)
    return [SystemMessage(system), HumanMessage(user)]


@dataclass(frozen=True, slots=True)
class DraftAgent:
    """Writes the first draft for a request."""

    llm: ChatProvider

    async def execute(self, *, topic: str, model: str) -> TextOutcome:
        result = await self.llm.complete(model=model, messages=_messages("reflection/draft", topic=topic))
        return TextOutcome(result.text.strip(), result.usage)


@dataclass(frozen=True, slots=True)
class CritiqueAgent:
    """Scores a draft; an answer that does not validate is reported, never raised."""

    llm: ChatProvider

    async def execute(self, *, topic: str, draft: str, version: int, model: str) -> CritiqueOutcome:
        messages = _messages("reflection/critique", topic=topic, draft=draft, version=version)
        result = await self.llm.structured(model=model, messages=messages, schema=Critique)
        return CritiqueOutcome(result.value, result.error, result.usage)


@dataclass(frozen=True, slots=True)
class ReviseAgent:
    """Rewrites a draft to address a critique."""

    llm: ChatProvider

    async def execute(
        self, *, topic: str, draft: str, version: int, score: float | None, issues: list[dict[str, str]], model: str
    ) -> TextOutcome:
        listed = "\n".join(f"- ({issue['severity']}) {issue['text']}" for issue in issues) or "- (none listed)"
        messages = _messages(
            "reflection/revise",
            topic=topic,
            draft=draft,
            version=version,
            score="unreadable" if score is None else f"{score:g}",
            issues=listed,
        )
        result = await self.llm.complete(model=model, messages=messages)
        return TextOutcome(result.text.strip(), result.usage)
