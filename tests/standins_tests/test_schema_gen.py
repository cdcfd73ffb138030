"""Unit tests of the JSON Schema value generator and the default text."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

import pytest
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, Field

from tests.standins import GenContext, generate
from tests.standins.text_gen import default_chat_text, review_score


class Source(BaseModel):
    url: str
    title: str
    published: dt.date | None = None


class Finding(BaseModel):
    claim: str = Field(min_length=20, max_length=80)
    confidence: float = Field(gt=0, lt=1)
    source_ids: list[str] = Field(min_length=1, max_length=3)
    kind: Literal["fact", "opinion"]


class Report(BaseModel):
    title: str
    findings: list[Finding] = Field(min_length=3)
    sources: list[Source]
    caveat: str | None = None
    id: uuid.UUID
    created: dt.datetime
    pages: int = Field(ge=10, le=20, multiple_of=5)
    tags: dict[str, int]


class Node(BaseModel):
    name: str
    children: list[Node] = []
    parent: Node | None = None


class Critique(BaseModel):
    score: int = Field(ge=0, le=10)
    approved: bool
    needs_revision: bool
    queries: list[str]
    follow_up_queries: list[str] = Field(max_length=1)


@pytest.mark.parametrize("strict", [False, True])
def test_generated_values_validate_against_pydantic_models(strict: bool) -> None:
    schema = to_strict_json_schema(Report) if strict else Report.model_json_schema()
    report = Report.model_validate(generate(schema, "Report on durable workflow engines"))
    assert len(report.findings) >= 3
    assert 10 <= report.pages <= 20
    assert report.pages % 5 == 0
    assert all(0 < f.confidence < 1 and 20 <= len(f.claim) <= 80 for f in report.findings)
    assert report.caveat is not None


def test_generation_is_deterministic_and_follows_the_text() -> None:
    schema = Report.model_json_schema()
    assert generate(schema, "graph databases") == generate(schema, "graph databases")
    assert generate(schema, "graph databases") != generate(schema, "protein folding")
    assert "graph" in generate(schema, "graph databases")["title"].lower()


def test_recursive_schema_terminates() -> None:
    node = Node.model_validate(generate(Node.model_json_schema(), "tree"))
    depth, current = 0, node
    while current.children:
        current, depth = current.children[0], depth + 1
    assert 1 <= depth < 10


@pytest.mark.parametrize(
    ("text", "score", "approved"),
    [("A first draft", 6, False), ("Revised draft", 8, True), ("Revised, REVISED", 10, True)],
)
def test_score_and_approval_follow_revised_count(text: str, score: int, approved: bool) -> None:
    critique = Critique.model_validate(generate(Critique.model_json_schema(), text))
    assert (critique.score, critique.approved, critique.needs_revision) == (
        score,
        approved,
        not approved,
    )
    assert review_score(text) == score


def test_score_is_scaled_to_a_small_maximum() -> None:
    schema = {"type": "object", "properties": {"score": {"type": "number", "maximum": 1}}}
    assert generate(schema, "Revised") == {"score": pytest.approx(0.8)}


def test_queries_are_short_and_built_from_the_message() -> None:
    critique = Critique.model_validate(
        generate(Critique.model_json_schema(), "Find papers on retrieval augmented generation")
    )
    assert len(critique.queries) == 2
    assert len(set(critique.queries)) == 2
    assert all("retrieval" in q or "generation" in q for q in critique.queries)
    assert len(critique.follow_up_queries) == 1


def test_refs_consts_enums_and_type_lists() -> None:
    schema = {
        "$defs": {"Mode": {"enum": ["fast", "slow"]}, "Id": {"type": "string", "const": "x"}},
        "type": "object",
        "properties": {
            "mode": {"$ref": "#/$defs/Mode"},
            "id": {"$ref": "#/$defs/Id"},
            "maybe": {"type": ["integer", "null"], "minimum": 5},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}]},
            "anything": {},
        },
        "required": ["mode", "id"],
    }
    value = generate(schema, GenContext(text="x"))
    assert value["mode"] == "fast"
    assert value["id"] == "x"
    assert value["maybe"] == 5
    assert isinstance(value["pair"][0], str)
    assert isinstance(value["pair"][1], bool)


def test_default_text_mentions_topic_and_cites_sources() -> None:
    plain = default_chat_text("Summarize recent work on battery chemistry")
    assert plain.startswith("## ")
    assert "battery" in plain.lower()
    assert default_chat_text("quantum computing") != default_chat_text("ocean acidification")
    synthesis = default_chat_text("Synthesize:\n[S1] Paper one\n[S2] Paper two\n[S3] Three")
    assert "[S1]" in synthesis
    assert "[S2]" in synthesis


def test_revision_text_says_revised_once_more_than_its_input() -> None:
    first = default_chat_text("Revise this draft about solar panels")
    second = default_chat_text(f"Revise this draft:\n{first}")
    assert first.count("Revised") == 1
    assert second.count("Revised") == 2
