"""Process set-up for observability: Prometheus (multi-process aware) and OpenTelemetry tracing.

**Metrics.** ``agentflow serve --workers N`` runs N processes behind one port, and a scrape
reaches any one of them. With N > 1 every worker writes its metrics to one shared directory
(``prometheus_client``'s multiprocess mode) and ``/metrics`` sums them, so the counters cover
every worker. The directory is ``PROMETHEUS_MULTIPROC_DIR`` when set (set it, to one directory
shared by every process of the host, to also cover separate ``agentflow worker`` processes);
otherwise each worker derives the same private directory from its supervisor (the parent
process: its pid and start time), and stale directories of supervisors that are gone are
removed. It must be in place before ``prometheus_client`` is first imported, which
``agents.metrics`` defers to the first metric.

**Tracing** is off unless the standard OpenTelemetry environment asks for it:
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set, and neither
``OTEL_SDK_DISABLED=true`` nor ``OTEL_TRACES_EXPORTER=none``. Then spans go over OTLP/HTTP (the
exporter reads its own ``OTEL_EXPORTER_OTLP_*`` variables; ``OTEL_SERVICE_NAME`` defaults to
``agentflow``, ``OTEL_TRACES_SAMPLER`` and ``OTEL_BSP_*`` apply as usual), and the FastAPI, httpx
(Tavily), aiohttp (the OpenAI SDK's transport) and requests (arXiv) instrumentations add the HTTP
spans around ``agents.telemetry``'s run, node and upstream-call spans. Nothing of OpenTelemetry
is imported when tracing is off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from agents import telemetry
from agents.metrics import metrics

__all__ = [
    "flush_traces",
    "instrument_app",
    "prepare_metrics_dir",
    "render_metrics",
    "setup_tracing",
    "tracing_requested",
]

logger = logging.getLogger("agentflow.observability")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_OWN_DIR = re.compile(r"^(\d+)-(\d+)$")
_provider: Any = None


# --- Prometheus ---------------------------------------------------------------------------------


def _start_time(pid: int) -> str:
    """A process's start time (clock ticks since boot, Linux), so a reused pid gets a new directory."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    return stat.rpartition(")")[2].split()[19]


def prepare_metrics_dir(workers: int) -> str | None:
    """Point ``prometheus_client`` at the directory this server's workers share (None: one process)."""
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        Path(configured).mkdir(parents=True, exist_ok=True)
        return configured
    if workers <= 1:
        return None
    if "prometheus_client" in sys.modules:
        logger.warning(
            "prometheus_client was imported before its multiprocess directory was set: "
            "/metrics covers this worker only",
            extra={"event": "metrics_multiprocess_late"},
        )
        return None
    supervisor = os.getppid()
    root = Path(tempfile.gettempdir()) / "agentflow-prometheus"
    directory = root / f"{supervisor}-{_start_time(supervisor)}"
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale(root, keep=directory.name)
    os.environ[MULTIPROC_ENV] = str(directory)
    return str(directory)


def _remove_stale(root: Path, *, keep: str) -> None:
    for entry in root.iterdir():
        match = _OWN_DIR.match(entry.name)
        if entry.name == keep or match is None:
            continue
        pid, started = int(match.group(1)), match.group(2)
        if not _alive(pid) or _start_time(pid) != started:
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _LiveRuns:
    """Queued and running records right now, read from the store at scrape time (all processes)."""

    def __init__(self, counts: Mapping[str, int]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        yield GaugeMetricFamily(
            "agentflow_workflows_in_flight", "Workflow runs running now (every process).", self.counts.get("running", 0)
        )
        yield GaugeMetricFamily(
            "agentflow_workflows_queued", "Workflow runs queued now (every process).", self.counts.get("queued", 0)
        )
        yield GaugeMetricFamily(
            "agentflow_workflows_waiting",
            "Workflow runs waiting for a human answer now (every process).",
            self.counts.get("waiting", 0),
        )


def render_metrics(live: Mapping[str, int]) -> tuple[bytes, str]:
    """The Prometheus text exposition of every worker's metrics, plus the live-run gauges."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    metrics()  # every family is listed from the first scrape on
    directory = os.environ.get(MULTIPROC_ENV)
    registry = REGISTRY
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    gauges = CollectorRegistry(auto_describe=False)
    gauges.register(_LiveRuns(live))
    return generate_latest(registry) + generate_latest(gauges), CONTENT_TYPE_LATEST


# --- OpenTelemetry ------------------------------------------------------------------------------


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the standard OTel variables ask for traces (an OTLP endpoint, SDK not disabled)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def setup_tracing() -> bool:
    """Once per process, if requested: an OTLP/HTTP tracer provider and the client instrumentations."""
    global _provider
    if _provider is not None:
        return True
    if not tracing_requested():
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(resource=Resource.create({} if named else {SERVICE_NAME: "agentflow"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    AioHttpClientInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    telemetry.enable_tracing(provider.get_tracer("agentflow"))
    _provider = provider
    logger.info("tracing on: spans export over OTLP/HTTP", extra={"event": "tracing_enabled"})
    return True


def instrument_app(app: Any) -> None:
    """Trace every HTTP request of ``app`` (health probes and scrapes excluded), when tracing is on."""
    if not setup_tracing():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, excluded_urls="healthz,readyz,metrics")


def flush_traces() -> None:
    """Export the spans still buffered (at shutdown)."""
    if _provider is not None:
        with contextlib.suppress(Exception):
            _provider.force_flush(5_000)
