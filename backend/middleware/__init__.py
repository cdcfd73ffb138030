"""Pure ASGI middlewares (streaming-safe): request ids, access log, body limit, rate limit, errors."""

from backend.middleware.access_log import AccessLogMiddleware
from backend.middleware.body_limit import BodyLimitMiddleware
from backend.middleware.correlation import CorrelationIdMiddleware
from backend.middleware.rate_limit import RateLimitMiddleware
from backend.middleware.unhandled import UnhandledErrorMiddleware

__all__ = [
    "AccessLogMiddleware",
    "BodyLimitMiddleware",
    "CorrelationIdMiddleware",
    "RateLimitMiddleware",
    "UnhandledErrorMiddleware",
]
