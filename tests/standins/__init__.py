"""Offline stand-ins for the OpenAI, Tavily and arXiv APIs, speaking their real wire formats.

Typical use from a test::

    from tests.standins import OpenAIConfig, serve_standins

    with serve_standins(openai=OpenAIConfig(latency=0.1)) as s:
        client = openai.OpenAI(base_url=s.openai_base_url, api_key="sk-test")
        ...
        assert s.stats()["upstreams"]["openai"]["count"] == 1

Run ``python -m tests.standins --port 0`` for a standalone server (see ``__main__``).
"""

from .app import create_app
from .behaviour import UpstreamBehaviour
from .chat_types import ChatReply, ChatRequest, ChatRule, Responder
from .config import ArxivConfig, OpenAIConfig, StandinConfig, TavilyConfig
from .journal import max_overlap, min_gap, min_start_interval
from .schema_gen import GenContext, generate
from .server import StandinServer, serve_standins
from .state import StandinState

__all__ = [
    "ArxivConfig",
    "ChatReply",
    "ChatRequest",
    "ChatRule",
    "GenContext",
    "OpenAIConfig",
    "Responder",
    "StandinConfig",
    "StandinServer",
    "StandinState",
    "TavilyConfig",
    "UpstreamBehaviour",
    "create_app",
    "generate",
    "max_overlap",
    "min_gap",
    "min_start_interval",
    "serve_standins",
]
