"""The Prometheus metrics of this process: defined here once, created on first use.

``prometheus_client`` is imported on first use, not at import time: in a multi-worker server it
must see ``PROMETHEUS_MULTIPROC_DIR`` (set up by ``backend.observability``) before it loads,
and a process that never records a metric never pays for the import.

Label values are bounded: route templates (never raw paths), workflow types, statuses, error
codes, provider names, and model names that the server was configured with or has a price for
(any other model a request names is counted as ``other``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram
    from prometheus_client.metrics import MetricWrapperBase

    MetricT = TypeVar("MetricT", bound=MetricWrapperBase)

__all__ = ["Metrics", "allow_model_labels", "metrics", "model_label"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_RUN_BUCKETS = (0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class Metrics:
    """Every metric the server exports (``agentflow_*``)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.http_requests: Counter = Counter(
            "agentflow_http_requests", "HTTP requests answered, by route template.", ["route", "method", "status"]
        )
        self.http_duration: Histogram = Histogram(
            "agentflow_http_request_duration_seconds",
            "Time to answer an HTTP request (streaming bodies included).",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
        )
        self.workflows_submitted: Counter = Counter(
            "agentflow_workflows_submitted", "Workflow submits that created a record.", ["workflow_type"]
        )
        self.workflows_finished: Counter = Counter(
            "agentflow_workflows_finished",
            "Workflow records that reached a final status; source is run, cache (a fresh hit) or coalesced.",
            ["workflow_type", "status", "source"],
        )
        self.workflows_resumed: Counter = Counter(
            "agentflow_workflows_resumed",
            "Answers to waiting runs, by action: approve, edit or reject.",
            ["workflow_type", "action"],
        )
        self.workflow_duration: Histogram = Histogram(
            "agentflow_workflow_duration_seconds",
            "Execution time of runs that executed (cache hits excluded).",
            ["workflow_type", "status"],
            buckets=_RUN_BUCKETS,
        )
        self.upstream_requests: Counter = Counter(
            "agentflow_upstream_requests",
            "Attempts of upstream calls (retries included), by outcome: ok or an error code.",
            ["provider", "outcome"],
        )
        self.upstream_duration: Histogram = Histogram(
            "agentflow_upstream_request_duration_seconds",
            "Time of one upstream attempt.",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
        )
        self.upstream_retries: Counter = Counter(
            "agentflow_upstream_retries", "Upstream attempts that were retried, by reason.", ["provider", "reason"]
        )
        self.llm_tokens: Counter = Counter(
            "agentflow_llm_tokens",
            "Model tokens, by kind: input, cached_input (part of input), output.",
            ["model", "kind"],
        )
        self.llm_cost: Counter = Counter(
            "agentflow_llm_cost_usd", "Estimated model cost in USD (calls with a known price).", ["model"]
        )
        self.llm_unpriced_calls: Counter = Counter(
            "agentflow_llm_unpriced_calls", "Model calls whose model has no price (cost unknown).", ["model"]
        )
        self.cache_requests: Counter = Counter(
            "agentflow_cache_requests",
            "Result-cache decisions at submit: hit, miss, coalesced, bypass or refresh.",
            ["workflow_type", "result"],
        )
        self.webhook_attempts: Counter = Counter(
            "agentflow_webhook_attempts",
            "Webhook delivery attempts, by outcome: ok, http_error, timeout, connection_error or refused.",
            ["outcome"],
        )
        self.webhook_deliveries: Counter = Counter(
            "agentflow_webhook_deliveries", "Webhook deliveries that ended: delivered or failed.", ["outcome"]
        )
        self.rate_limited: Counter = Counter(
            "agentflow_rate_limited", "Requests refused by the rate limiter.", ["bucket"]
        )
        self._children: dict[tuple[object, tuple[str, ...]], object] = {}

    def child(self, metric: MetricT, *values: str) -> MetricT:
        """``metric.labels(*values)``, looked up once per label set (every metric here is
        recorded through it).

        prometheus_client keeps every child it made and returns the same one each time, but its
        ``labels()`` checks and joins the values under a lock on every call: a few microseconds
        that hot paths (each model call, each run) paid several times over.
        """
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found  # type: ignore[return-value]


_metrics: Metrics | None = None
_model_labels: set[str] = set()


def metrics() -> Metrics:
    """The process's metrics (created, and ``prometheus_client`` imported, on the first call)."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


def allow_model_labels(models: Iterable[str]) -> None:
    """Model names that may appear as a ``model`` label (configured defaults, priced models)."""
    _model_labels.update(models)


def model_label(model: str, family: str | None = None) -> str:
    """``model`` if allowed, else its price family, else ``other``: the label set stays bounded."""
    if model in _model_labels:
        return model
    return family or "other"
