"""Provider clients (OpenAI-compatible chat, Tavily, arXiv), each with its limits and retries.

Limits are per process; with ``redis_url`` in a config, arXiv's spacing and the RPM caps also
hold across every process sharing that Redis (``shared_limits``).

The client classes are exported lazily (PEP 562): each module imports its SDK (openai and
langchain-openai, tavily, arxiv), about a second and 40 MiB together, so importing this package,
or a light module in it (``usage``, ``pricing``), must not import them all. ``agentflow serve``
answers before they load (see ``backend.runs.stack``).
"""

from __future__ import annotations

import importlib
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents.providers.search import SearchHit, SearchProvider
from agents.providers.usage import Usage

if TYPE_CHECKING:
    from agents.providers.arxiv_search import ArxivConfig, ArxivSearch
    from agents.providers.openai_chat import ChatProvider, OpenAIConfig
    from agents.providers.tavily_search import TavilyConfig, TavilySearch

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

#: Exported name → the module that defines it, imported on first access.
_LAZY = {
    "ArxivConfig": "arxiv_search",
    "ArxivSearch": "arxiv_search",
    "ChatProvider": "openai_chat",
    "OpenAIConfig": "openai_chat",
    "TavilyConfig": "tavily_search",
    "TavilySearch": "tavily_search",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


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
