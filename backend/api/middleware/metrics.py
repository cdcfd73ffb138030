"""HTTP metrics: requests by route template, method and status, and a latency histogram.

Recorded with the access log line (``access_log.log_request``), which the edge calls once every
response has ended: one observer of status and end per request instead of two.

The route label is the matched route's template (``/workflows/{workflow_id}``), never the raw
path, so ids cannot blow up the label set. A request answered before routing (a rate-limit
429, an oversized body) is matched against the app's routes here; a path no route knows is
``unmatched``.
"""

from __future__ import annotations

import re
import weakref
from typing import Any

from starlette.routing import Match
from starlette.types import Scope

from agents.metrics import metrics

__all__ = ["record_http_request", "route_template"]

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The template of the route that served (or would serve) ``scope``."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app: Any = scope.get("app")
    for candidate in getattr(app, "routes", ()):  # plain routes (docs, schema) carry their path
        template = getattr(candidate, "path", None)
        if isinstance(template, str) and candidate.matches(scope)[0] is not Match.NONE:
            return template
    return _documented_template(app, scope["path"], scope["method"])


_TEMPLATES: weakref.WeakKeyDictionary[Any, list[tuple[re.Pattern[str], str, frozenset[str]]]] = (
    weakref.WeakKeyDictionary()
)


def _documented_template(app: Any, path: str, method: str) -> str:
    """Match ``path`` against the templates of the app's documented operations (cached per app).

    Only for requests answered before routing (e.g. a rate-limit 429), where no route was chosen.
    """
    if not hasattr(app, "openapi"):
        return UNMATCHED
    table = _TEMPLATES.get(app)
    if table is None:
        table = _TEMPLATES[app] = [
            (
                re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"),
                template,
                frozenset(operation.upper() for operation in operations),
            )
            for template, operations in app.openapi().get("paths", {}).items()
        ]
    matching = [(template, methods) for pattern, template, methods in table if pattern.match(path)]
    for template, methods in matching:
        if method in methods:
            return template
    return matching[0][0] if matching else UNMATCHED


def record_http_request(scope: Scope, status: int, seconds: float) -> None:
    """Count one answered request and observe its latency (called with the access log line)."""
    route = route_template(scope)
    method = scope["method"] if scope["method"] in _METHODS else "other"
    instruments = metrics()
    instruments.child(instruments.http_requests, route, method, str(status)).inc()
    instruments.child(instruments.http_duration, route, method).observe(seconds)
