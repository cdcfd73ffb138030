"""Observability routes: Prometheus metrics and a JSON summary of the stored records.

Both cover every owner's runs, so with ``AGENTFLOW_AUTH=required`` they need an admin key (a
Prometheus scrape job sends it as a bearer token); with auth off they are open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from backend.api.deps import AdminDep, RunServiceDep
from backend.api.schemas import MetricsSummaryPublic
from backend.observability import render_metrics

__all__ = ["router"]

router = APIRouter(prefix="/metrics", tags=["observability"], dependencies=[AdminDep])


@router.get(
    "",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Every worker's metrics, summed"}},
)
async def prometheus_metrics(runs: RunServiceDep) -> Response:
    """HTTP requests, workflows, upstream calls and retries, tokens and cost by model, the result
    cache and rate-limit refusals, plus the queued and running runs of every process."""
    body, content_type = render_metrics(await runs.live_counts())
    return Response(body, media_type=content_type)


@router.get("/summary", response_model=MetricsSummaryPublic, summary="Totals over the stored records")
async def metrics_summary(
    runs: RunServiceDep,
    since: Annotated[
        datetime | None, Query(description="Only records created at or after this ISO-8601 time (default: all).")
    ] = None,
) -> MetricsSummaryPublic:
    """Counts by status (overall and per type), p50/p95 execution time, tokens and cost, the
    cache's hit rate and the cost it saved. Read from the store: it survives restarts and
    covers every process."""
    return MetricsSummaryPublic.model_validate(await runs.summary(since=since))
