"""The agentflow HTTP client and the CLI commands built on it (``agentflow run|watch|get|list|cancel``)."""

from backend.client.http import (
    DEFAULT_URL,
    AgentflowClient,
    ApiError,
    ClientError,
    InvalidUrl,
    ServerEvent,
    ServerUnreachable,
)

__all__ = [
    "DEFAULT_URL",
    "AgentflowClient",
    "ApiError",
    "ClientError",
    "InvalidUrl",
    "ServerEvent",
    "ServerUnreachable",
]
