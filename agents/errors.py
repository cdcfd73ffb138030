"""The agentflow error hierarchy: every failure a client or a workflow record can see.

    AgentflowError                       code                    HTTP
    ├── InvalidInput                     invalid_input           422
    ├── Unauthorized                     unauthorized            401
    ├── Forbidden                        forbidden               403
    ├── NotFound                         not_found               404
    ├── Conflict                         conflict                409
    ├── PayloadTooLarge                  payload_too_large       413
    ├── RateLimited                      rate_limited            429
    │   └── QuotaExceeded                quota_exceeded          429
    ├── ProviderNotConfigured            provider_not_configured 503
    ├── ServiceUnavailable               service_unavailable     503
    ├── NotSupported                     not_implemented         501
    ├── UpstreamError                    upstream_error          502
    │   ├── UpstreamRateLimited          upstream_rate_limited
    │   ├── UpstreamTimeout              upstream_timeout
    │   ├── UpstreamUnavailable          upstream_unavailable
    │   └── UpstreamBadResponse          upstream_bad_response
    ├── BudgetExceeded                   budget_exceeded
    └── WorkflowTimeout                  workflow_timeout

Services and agents raise these; the HTTP edge renders them once as RFC 9457 problem+json
(``backend.api.errors``), and the executor stores ``code`` and ``message`` on a failed run.
The hierarchy lives at the bottom layer so providers and agents can raise it without
importing the web framework.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AgentflowError",
    "BudgetExceeded",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "NotSupported",
    "PayloadTooLarge",
    "ProviderNotConfigured",
    "QuotaExceeded",
    "RateLimited",
    "ServiceUnavailable",
    "Unauthorized",
    "UpstreamBadResponse",
    "UpstreamError",
    "UpstreamRateLimited",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "WorkflowTimeout",
]


class AgentflowError(Exception):
    """Base of every error agentflow raises on purpose.

    Attributes:
        code: stable machine-readable identifier, also the last segment of the problem ``type``.
        status: HTTP status used when the error reaches a client.
        title: short human summary shared by every instance of the class.
        detail: the instance-specific human message (safe to show to clients).
    """

    code: ClassVar[str] = "agentflow_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(self.detail)


class InvalidInput(AgentflowError):
    code = "invalid_input"
    status = 422
    title = "Invalid input"


class Unauthorized(AgentflowError):
    """No API key, or one that is unknown or revoked (answered with ``WWW-Authenticate``)."""

    code = "unauthorized"
    status = 401
    title = "Unauthorized"


class Forbidden(AgentflowError):
    """A valid key without the scope the operation needs."""

    code = "forbidden"
    status = 403
    title = "Forbidden"


class NotFound(AgentflowError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(AgentflowError):
    code = "conflict"
    status = 409
    title = "Conflict"


class PayloadTooLarge(AgentflowError):
    code = "payload_too_large"
    status = 413
    title = "Payload too large"


class RateLimited(AgentflowError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"


class QuotaExceeded(RateLimited):
    """The key already has as many unfinished workflows as its ``max_queued`` allows."""

    code = "quota_exceeded"
    title = "Quota exceeded"


class ProviderNotConfigured(AgentflowError):
    code = "provider_not_configured"
    status = 503
    title = "Provider not configured"


class ServiceUnavailable(AgentflowError):
    code = "service_unavailable"
    status = 503
    title = "Service unavailable"


class NotSupported(AgentflowError):
    """A LangGraph Server feature agentflow does not offer (crons, the store, assistant editing, ...)."""

    code = "not_implemented"
    status = 501
    title = "Not implemented"


class UpstreamError(AgentflowError):
    """An upstream provider (OpenAI, Tavily, arXiv) failed in a way we could not absorb."""

    code = "upstream_error"
    status = 502
    title = "Upstream provider error"
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        provider: str = "unknown",
        http_status: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail, **extra)
        self.retryable = self.default_retryable if retryable is None else retryable
        self.provider = provider
        self.http_status = http_status
        self.retry_after = retry_after


class UpstreamRateLimited(UpstreamError):
    code = "upstream_rate_limited"
    title = "Upstream rate limit"
    default_retryable = True


class UpstreamTimeout(UpstreamError):
    code = "upstream_timeout"
    status = 504
    title = "Upstream timeout"
    default_retryable = True


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"
    status = 503
    title = "Upstream unavailable"
    default_retryable = True


class UpstreamBadResponse(UpstreamError):
    code = "upstream_bad_response"
    title = "Upstream bad response"


class BudgetExceeded(AgentflowError):
    code = "budget_exceeded"
    status = 402
    title = "Token budget exceeded"


class WorkflowTimeout(AgentflowError):
    code = "workflow_timeout"
    status = 504
    title = "Workflow deadline exceeded"
