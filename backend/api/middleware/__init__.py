"""Pure ASGI middlewares (streaming-safe): request ids, access log, header and body limits, rate limit, errors."""

from backend.api.middleware.access_log import AccessLogMiddleware
from backend.api.middleware.body_limit import BodyLimitMiddleware
from backend.api.middleware.correlation import CorrelationIdMiddleware
from backend.api.middleware.header_limit import HeaderLimitMiddleware
from backend.api.middleware.rate_limit import RateLimitMiddleware
from backend.api.middleware.unhandled import UnhandledErrorMiddleware

__all__ = [
    "AccessLogMiddleware",
    "BodyLimitMiddleware",
    "CorrelationIdMiddleware",
    "HeaderLimitMiddleware",
    "RateLimitMiddleware",
    "UnhandledErrorMiddleware",
]
