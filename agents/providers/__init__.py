"""Provider clients (OpenAI-compatible chat, Tavily, arXiv), each with its limits and retries."""

from __future__ import annotations

from dataclasses import dataclass

from agents.providers.openai_chat import ChatProvider, LLMUsage, OpenAIConfig

__all__ = ["ChatProvider", "LLMUsage", "OpenAIConfig", "Providers"]


@dataclass(frozen=True, slots=True)
class Providers:
    """The process-wide provider clients, built once in the app lifespan."""

    chat: ChatProvider

    async def aclose(self) -> None:
        await self.chat.aclose()
