"""The research agents: plan the searches, synthesize a cited report, revise it keeping citations."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from agents.prompting import load_prompt
from agents.providers.openai_chat import ChatProvider
from agents.providers.usage import Usage

__all__ = [
    "PlanOutcome",
    "PlannerAgent",
    "ReportReviserAgent",
    "ResearchPlan",
    "SynthesizerAgent",
    "TextOutcome",
    "render_sources",
]

_SOURCE_TAG = re.compile(r"<\s*/?\s*sources?\b", re.IGNORECASE)


class ResearchPlan(BaseModel):
    """The planner's search queries, one list per source."""

    arxiv_queries: list[str] = Field(description="Keyword queries for the arXiv search API.")
    web_queries: list[str] = Field(description="Natural-language queries for a web search engine.")


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    """A plan, or the reason the model's answer could not be read as one."""

    plan: ResearchPlan | None
    parse_error: str | None
    usage: Usage


@dataclass(frozen=True, slots=True)
class TextOutcome:
    text: str
    usage: Usage


def _messages(prompt: str, **values: object) -> list[BaseMessage]:
    system, user = load_prompt(prompt).render(**values)
    return [SystemMessage(system), HumanMessage(user)]


def _data(text: object) -> str:
    # Retrieved text must not be able to close its own block and pose as instructions.
    return _SOURCE_TAG.sub("[tag removed]", " ".join(str(text or "").split()))


def render_sources(sources: Sequence[Mapping[str, Any]]) -> str:
    """The retrieved sources as delimited data blocks, each headed by the id to cite it by."""
    blocks = []
    for source in sources:
        authors = ", ".join(source.get("authors") or []) or "n/a"
        blocks.append(
            f'<source id="{source["id"]}" kind="{source["kind"]}">\n'
            f"Cite as: [{source['id']}]\n"
            f"Title: {_data(source.get('title'))}\n"
            f"Authors: {_data(authors)}\n"
            f"Published: {_data(source.get('published') or 'n/a')}\n"
            f"Text: {_data(source.get('snippet'))}\n"
            "</source>"
        )
    return "\n\n".join(blocks)


@dataclass(frozen=True, slots=True)
class PlannerAgent:
    """Turns a topic into search queries per source; an unreadable answer is reported, not raised."""

    llm: ChatProvider

    async def execute(self, *, topic: str, sources: Sequence[str], max_queries: int, model: str) -> PlanOutcome:
        messages = _messages("research/plan", topic=topic, sources=", ".join(sources), max_queries=max_queries)
        result = await self.llm.structured(model=model, messages=messages, schema=ResearchPlan)
        return PlanOutcome(result.value, result.error, result.usage)


@dataclass(frozen=True, slots=True)
class SynthesizerAgent:
    """Writes the Markdown report from the retrieved sources, citing them as ``[S#]``."""

    llm: ChatProvider

    async def execute(self, *, topic: str, sources: Sequence[Mapping[str, Any]], model: str) -> TextOutcome:
        messages = _messages("research/synthesize", topic=topic, sources=render_sources(sources))
        result = await self.llm.complete(model=model, messages=messages)
        return TextOutcome(result.text.strip(), result.usage)


@dataclass(frozen=True, slots=True)
class ReportReviserAgent:
    """Rewrites a report to address a critique, keeping its ``[S#]`` citations."""

    llm: ChatProvider

    async def execute(
        self,
        *,
        topic: str,
        report: str,
        sources: Sequence[Mapping[str, Any]],
        score: float | None,
        issues: Sequence[Mapping[str, str]],
        model: str,
    ) -> TextOutcome:
        listed = "\n".join(f"- ({issue['severity']}) {issue['text']}" for issue in issues) or "- (none listed)"
        messages = _messages(
            "research/revise",
            topic=topic,
            sources=render_sources(sources),
            report=report,
            score="unreadable" if score is None else f"{score:g}",
            issues=listed,
        )
        result = await self.llm.complete(model=model, messages=messages)
        return TextOutcome(result.text.strip(), result.usage)
