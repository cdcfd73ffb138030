"""Observability of a real ``agentflow serve``: one OTLP trace per run (to an in-test OTLP/HTTP
receiver), trace ids in the JSON logs, and /metrics that cover every worker of ``--workers 2``."""

from __future__ import annotations

import gzip
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.servers import ServerProcess
from tests.standins import StandinServer

pytestmark = pytest.mark.slow


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class OtlpReceiver:
    """A minimal OTLP/HTTP trace collector on loopback: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.add(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_id": span.parent_span_id.hex(),
                                "attributes": {a.key: _value(a.value) for a in span.attributes},
                                "events": [event.name for event in span.events],
                                "status": span.status.code,
                                "resource": resource,
                            }
                        )

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.spans)

    def __enter__(self) -> OtlpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def test_a_research_run_is_one_trace_with_every_node_and_upstream_call(
    tmp_path: Path, standin: StandinServer, otlp: OtlpReceiver
) -> None:
    server = ServerProcess(
        {
            **standin.env(),
            "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/traced.db",
            "AGENTFLOW_ARXIV_MIN_INTERVAL": "0",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SERVICE_NAME": "agentflow-test",
        }
    ).start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            submitted = http.post(
                "/workflows/research",
                json={"topic": "Tracing agent workflows", "sources": ["arxiv", "web"], "max_queries": 2},
                headers={"X-Request-ID": "trace-me-1"},
            )
            assert submitted.status_code == 202, submitted.text
            workflow_id = submitted.json()["workflow_id"]
            record = http.get(f"/workflows/{workflow_id}?wait=60").json()
            assert record["status"] == "completed", record
            timeline = http.get(f"/workflows/{workflow_id}/timeline").json()["entries"]
        nodes = [e["name"] for e in timeline if e["kind"] == "node"]
        calls = [e for e in timeline if e["kind"] == "upstream"]
        journal = {name: len(standin.requests(name)) for name in ("openai", "arxiv", "tavily")}
        assert {"plan_queries", "search_arxiv", "search_web", "synthesize", "finalize"} <= set(nodes)
        assert len(calls) == sum(journal.values()) and journal["arxiv"] and journal["tavily"]

        def run_trace() -> list[dict[str, Any]] | None:
            spans = otlp.snapshot()
            roots = [
                s
                for s in spans
                if s["name"] == "POST /workflows/research"
                and s["attributes"].get("agentflow.correlation_id") == "trace-me-1"
            ]
            if not roots:
                return None
            trace = [s for s in spans if s["trace_id"] == roots[0]["trace_id"]]
            # The run span ends last, just after the record is final: wait for it too.
            done = any(s["name"] == "workflow research" for s in trace)
            done = done and sum(s["name"].startswith("node ") for s in trace) >= len(nodes)
            return trace if done and sum(s["name"].endswith(" call") for s in trace) >= len(calls) else None

        trace = wait_for(run_trace, 30, "the run's spans")
    finally:
        server.terminate()

    names = [s["name"] for s in trace]
    assert all(s["resource"].get("service.name") == "agentflow-test" for s in trace)
    run = next(s for s in trace if s["name"] == "workflow research")
    assert run["attributes"]["agentflow.workflow_id"] == workflow_id
    assert run["attributes"]["agentflow.correlation_id"] == "trace-me-1"
    # Every node and every upstream call of the run, and nothing of any other trace.
    assert sorted(n.removeprefix("node ") for n in names if n.startswith("node ")) == sorted(nodes)
    upstream = [s for s in trace if s["name"].endswith(" call")]
    for provider, count in journal.items():
        assert sum(s["attributes"]["agentflow.provider"] == provider for s in upstream) == count
    chat = [s for s in upstream if s["attributes"]["agentflow.provider"] == "openai"]
    assert all(s["attributes"]["gen_ai.request.model"] == "gpt-4o-mini" for s in chat)
    assert all(s["attributes"]["gen_ai.usage.output_tokens"] > 0 for s in chat)
    # The instrumentations add the HTTP spans: the server span and each client request.
    client_spans = [s for s in trace if s["parent_id"] in {u["span_id"] for u in upstream}]
    assert len(client_spans) >= sum(journal.values())
    # One tree: the submit's server span is the only root; the run hangs under it.
    by_id = {s["span_id"]: s for s in trace}
    roots = [s for s in trace if s["parent_id"] not in by_id]
    assert [r["name"] for r in roots] == ["POST /workflows/research"]
    assert by_id[run["parent_id"]]["name"] == "POST /workflows/research"

    lines = server.json_lines()
    traced = [line for line in lines if line.get("workflow_id") == workflow_id and line.get("event") == "llm_call"]
    assert traced and {line.get("trace_id") for line in traced} == {run["trace_id"]}
    assert all(line.get("span_id") for line in traced)


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_cover_both_workers_of_a_two_worker_server(tmp_path: Path, standin: StandinServer) -> None:
    server = ServerProcess(
        {
            **standin.env(),
            "AGENTFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/workers.db",
            "AGENTFLOW_WORKERS": "2",
        }
    ).start()
    root = Path(tempfile.gettempdir()) / "agentflow-prometheus"
    try:
        # The workers share one metrics directory, derived from their parent (the supervisor).
        shared = wait_for(lambda: sorted(root.glob(f"{server.pid}-*")), 60, "the shared metrics directory")
        assert len(shared) == 1

        def pids() -> set[str]:
            return {path.stem.rpartition("_")[2] for path in shared[0].glob("*.db")}

        missing = "/workflows/00000000-0000-0000-0000-000000000000"
        sent = 0
        deadline = time.monotonic() + 60
        # Fresh connections until requests have landed on both workers (the kernel spreads them).
        while len(pids()) < 2 and time.monotonic() < deadline:
            for _ in range(10):
                assert httpx.get(server.base_url + missing, timeout=30).status_code == 404
                sent += 1
        assert len(pids()) == 2, f"only {pids()} served {sent} requests"
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            done = http.post("/workflows/reflection?wait=30", json={"topic": "Two workers", "max_iterations": 1})
            assert done.json()["status"] == "completed"
        key = frozenset({"route": "/workflows/{workflow_id}", "method": "GET", "status": "404"}.items())
        finished = frozenset({"workflow_type": "reflection", "status": "completed", "source": "run"}.items())

        def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
            return _samples(httpx.get(server.base_url + "/metrics", timeout=30).text)

        # The run's worker counts it right after committing it (the reply may come from the other).
        wait_for(lambda: scrape().get(("agentflow_workflows_finished_total", finished)) == 1, 10, "the run counted")
        # Any worker answers a scrape with the sum over both.
        for _ in range(4):
            samples = scrape()
            assert samples[("agentflow_http_requests_total", key)] == sent
            assert samples[("agentflow_workflows_finished_total", finished)] == 1
    finally:
        server.terminate()
        for directory in root.glob(f"{server.pid}-*"):
            shutil.rmtree(directory, ignore_errors=True)
