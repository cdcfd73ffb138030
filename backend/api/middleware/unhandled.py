"""Last resort for an exception the app let through: log its traceback, answer a generic problem 500.

The edge (``backend.api.middleware.edge``) applies it around the app, inside CORS and the request
id (Starlette's own ServerErrorMiddleware sits outside them), so even a crash answers with
``X-Request-ID`` and CORS headers.
"""

from __future__ import annotations

import logging

from starlette.responses import Response
from starlette.types import Scope

from backend.api.errors import InternalError, problem_for

__all__ = ["log_unhandled", "unhandled_response"]

logger = logging.getLogger("agentflow.errors")


def log_unhandled(scope: Scope) -> None:
    """Log the exception being handled, with its traceback (call it from the ``except`` block)."""
    logger.exception("unhandled error", extra={"event": "unhandled_error", "path": scope["path"]})


def unhandled_response(scope: Scope) -> Response:
    """The generic 500 problem (its detail asks to quote the request id; nothing of the error leaks)."""
    error = InternalError("An unexpected error occurred; quote the request_id when reporting it.")
    return problem_for(error, instance=scope["path"])
