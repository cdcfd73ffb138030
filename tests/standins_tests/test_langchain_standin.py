"""The OpenAI stand-in driven through ``langchain_openai.ChatOpenAI``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

import openai
import pytest
import pytest_asyncio
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from tests.standins import StandinServer


class Claim(BaseModel):
    text: str
    source_ids: list[str] = Field(min_length=1)
    strength: Literal["weak", "moderate", "strong"]


class Review(BaseModel):
    """A review of a draft."""

    score: int = Field(ge=0, le=10)
    approved: bool
    claims: list[Claim]
    follow_up: str | None = None


@pytest_asyncio.fixture
async def llm(standins: StandinServer) -> AsyncIterator[ChatOpenAI]:
    http_client = openai.DefaultAsyncHttpxClient()
    model = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=standins.openai_base_url,
        api_key="sk-test",
        max_retries=0,
        http_async_client=http_client,
    )
    yield model
    await http_client.aclose()


@pytest.mark.asyncio
async def test_ainvoke_returns_text_and_usage(llm: ChatOpenAI) -> None:
    message = await llm.ainvoke([SystemMessage("Be brief."), HumanMessage("Explain consensus protocols like Raft")])
    assert isinstance(message.content, str)
    assert "raft" in message.content.lower()
    assert message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] > 0


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
async def test_structured_output_validates(
    llm: ChatOpenAI, standins: StandinServer, method: Literal["json_schema", "function_calling"]
) -> None:
    structured = llm.with_structured_output(Review, method=method)
    review = await structured.ainvoke("Critique this Revised draft on solar storage [S1] [S2]")
    assert isinstance(review, Review)
    assert review.score == 8
    assert review.approved
    assert review.claims
    assert review.claims[0].source_ids[0] == "S1"
    assert review.follow_up is not None
    (entry,) = standins.requests("openai")
    assert entry["schema_name"] == "Review"
    assert entry["tool_call"] is (method == "function_calling")


@pytest.mark.asyncio
async def test_astream_concatenates_to_the_full_answer(llm: ChatOpenAI) -> None:
    parts = [chunk.content async for chunk in llm.astream("Describe coral reefs")]
    text = "".join(p for p in parts if isinstance(p, str))
    assert "coral" in text.lower()
    assert len(parts) > 3
