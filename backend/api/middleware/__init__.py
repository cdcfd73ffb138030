"""The HTTP edge: one pure ASGI middleware (``edge``) over small modules, one per concern (streaming-safe).

Request ids (``correlation``), the access log and HTTP metrics (``access_log``, ``metrics``), header
and body limits (``header_limit``, ``body_limit``), the rate limit (``rate_limit``) and the last-resort
500 (``unhandled``); authentication is ``backend.api.auth``.
"""

from backend.api.middleware.edge import EdgeMiddleware

__all__ = ["EdgeMiddleware"]
