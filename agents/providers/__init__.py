"""Provider clients (OpenAI-compatible chat, Tavily, arXiv), each with its limits and retries.

Limits are per process; with ``redis_url`` in a config, arXiv's spacing and the RPM caps also
hold across every process sharing that Redis (``shared_limits``).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from agents.providers.arxiv_search import ArxivConfig, ArxivSearch
from agents.providers.openai_chat import ChatProvider, OpenAIConfig
from agents.providers.search import SearchHit, SearchProvider
from agents.providers.tavily_search import TavilyConfig, TavilySearch
from agents.providers.usage import Usage

__all__ = [
    "ArxivConfig",
    "ArxivSearch",
    "ChatProvider",
    "OpenAIConfig",
    "Providers",
    "SearchHit",
    "SearchProvider",
    "TavilyConfig",
    "TavilySearch",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class Providers:
    """The process-wide provider clients, built once in the app lifespan.

    The search providers default to None so a bundle with only a chat model (enough for the
    reflection workflow) stays valid; the research workflow refuses to start without them.
    """

    chat: ChatProvider
    arxiv: ArxivSearch | None = None
    web: TavilySearch | None = None

    async def aclose(self) -> None:
        """Close every client's connection pool, each one even if another fails."""
        async with AsyncExitStack() as stack:
            for provider in (self.chat, self.arxiv, self.web):
                if provider is not None:
                    stack.push_async_callback(provider.aclose)
