"""/metrics (parsed with prometheus_client's parser), /metrics/summary and the run timeline, in process."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from backend.config import Settings
from tests.standins import OpenAIConfig, StandinServer

BODY = {"topic": "Observe me", "max_iterations": 1, "score_threshold": 10}
MODELS = ["gpt-4o-mini", "gpt-4o", "local-llama"]


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition: (name, labels) → value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class Metrics:
    """Two scrapes of /metrics and the difference of any sample between them."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.before: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        self.after: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}

    async def read(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = await self.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return scrape(response.text)

    async def start(self) -> None:
        self.before = await self.read()

    async def stop(self) -> None:
        self.after = await self.read()

    def delta(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return self.after.get(key, 0.0) - self.before.get(key, 0.0)

    def total(self, name: str, **labels: str) -> float:
        """Sum of the deltas of every sample named ``name`` whose labels include ``labels``."""
        keys = {key for key in (*self.before, *self.after) if key[0] == name and set(labels.items()) <= key[1]}
        return sum(self.after.get(key, 0.0) - self.before.get(key, 0.0) for key in keys)


async def finish(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = (await client.post("/workflows/reflection?wait=30", json=body)).json()
    assert record["status"] in ("completed", "failed"), record
    return record


async def test_metrics_count_runs_cache_upstream_tokens_and_http_by_route(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(models=MODELS))
    client = await app_factory(make_settings())
    metrics = Metrics(client)
    await metrics.start()

    completed = await finish(client, BODY)  # a run
    cached = await finish(client, BODY)  # a fresh cache hit
    standin.configure(openai=OpenAIConfig(models=MODELS, fail_first_n=1, fail_first_fault="500"))
    retried = await finish(client, {**BODY, "topic": "Retried", "cache": "bypass"})  # one 500, retried
    standin.configure(openai=OpenAIConfig(models=MODELS, fault_rate=1.0, faults=["400"]))
    failed = await finish(client, {**BODY, "topic": "Fails"})
    standin.configure(openai=OpenAIConfig(models=MODELS))
    missing = await client.get("/workflows/00000000-0000-0000-0000-000000000000")
    await metrics.stop()

    assert completed["status"] == retried["status"] == "completed" and cached["cache_hit"]
    assert failed["status"] == "failed"
    assert missing.status_code == 404
    finished = "agentflow_workflows_finished_total"
    assert metrics.delta(finished, workflow_type="reflection", status="completed", source="run") == 2
    assert metrics.delta(finished, workflow_type="reflection", status="completed", source="cache") == 1
    assert metrics.delta(finished, workflow_type="reflection", status="failed", source="run") == 1
    assert metrics.delta("agentflow_workflows_submitted_total", workflow_type="reflection") == 4
    cache = "agentflow_cache_requests_total"
    assert metrics.delta(cache, workflow_type="reflection", result="hit") == 1
    assert metrics.delta(cache, workflow_type="reflection", result="miss") == 2
    assert metrics.delta(cache, workflow_type="reflection", result="bypass") == 1
    duration = "agentflow_workflow_duration_seconds_count"
    assert metrics.delta(duration, workflow_type="reflection", status="completed") == 2  # hits excluded

    # Every request the stand-in saw is one counted attempt: 2 runs' calls, the 500, the 400.
    journal = standin.requests("openai")
    assert metrics.total("agentflow_upstream_requests_total", provider="openai") == len(journal)
    assert metrics.delta("agentflow_upstream_requests_total", provider="openai", outcome="upstream_unavailable") == 1
    assert metrics.delta("agentflow_upstream_requests_total", provider="openai", outcome="upstream_bad_response") == 1
    assert metrics.delta("agentflow_upstream_retries_total", provider="openai", reason="upstream_unavailable") == 1
    assert metrics.delta("agentflow_upstream_request_duration_seconds_count", provider="openai") == len(journal)

    records = (await client.get("/workflows?limit=100")).json()["items"]  # this test's database only
    tokens = "agentflow_llm_tokens_total"
    for kind in ("input", "output", "cached_input"):
        spent = sum(r["usage"][f"{kind}_tokens"] for r in records)
        assert metrics.delta(tokens, model="gpt-4o-mini", kind=kind) == spent
    cost = sum(r["usage"]["est_cost_usd"] for r in records)
    assert abs(metrics.delta("agentflow_llm_cost_usd_total", model="gpt-4o-mini") - cost) < 1e-5

    http = "agentflow_http_requests_total"
    assert metrics.delta(http, route="/workflows/reflection", method="POST", status="200") == 4
    assert metrics.delta(http, route="/workflows/{workflow_id}", method="GET", status="404") == 1
    labels = {dict(key[1]).get("route") for key in metrics.after if key[0] == http}
    assert not any(label and "0000" in label for label in labels)  # templates, never raw ids
    assert ("agentflow_workflows_in_flight", frozenset()) in metrics.after
    assert metrics.after[("agentflow_workflows_queued", frozenset())] == 0


async def test_rate_limit_refusals_are_counted(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> None:
    client = await app_factory(make_settings(rate_limit_default="2/hour"))
    metrics = Metrics(client)
    await metrics.start()  # /metrics itself is exempt from the limit
    statuses = [(await client.get("/workflows")).status_code for _ in range(4)]
    await metrics.stop()
    assert statuses == [200, 200, 429, 429]
    assert metrics.delta("agentflow_rate_limited_total", bucket="default") == 2
    assert metrics.delta("agentflow_http_requests_total", route="/workflows", method="GET", status="429") == 2


async def test_unpriced_models_report_tokens_with_a_null_cost(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    standin.configure(openai=OpenAIConfig(models=MODELS))
    client = await app_factory(make_settings())
    record = await finish(client, {**BODY, "models": {"draft": "local-llama"}})
    assert record["status"] == "completed"
    assert record["usage"]["input_tokens"] > 0
    assert record["usage"]["est_cost_usd"] is None
    summary = (await client.get("/metrics/summary")).json()
    assert summary["usage"]["unpriced_records"] == 1


async def test_summary_matches_the_records_after_a_restart(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    settings = make_settings()
    client = await app_factory(settings)
    first = await finish(client, BODY)
    await finish(client, BODY)  # hit
    await finish(client, BODY)  # hit
    await finish(client, {**BODY, "topic": "Second", "cache": "bypass"})
    standin.configure(openai=OpenAIConfig(fault_rate=1.0, faults=["400"]))
    await finish(client, {**BODY, "topic": "Third"})

    restarted = await app_factory(settings)
    summary = (await restarted.get("/metrics/summary")).json()
    records = (await restarted.get("/workflows?limit=100")).json()["items"]
    assert summary["records"] == len(records) == 5
    assert summary["by_status"] == {
        "queued": 0,
        "running": 0,
        "waiting": 0,
        "completed": sum(r["status"] == "completed" for r in records),
        "failed": sum(r["status"] == "failed" for r in records),
        "cancelled": 0,
    }
    assert summary["by_type"]["reflection"]["records"] == 5
    assert summary["usage"]["input_tokens"] == sum(r["usage"]["input_tokens"] for r in records)
    assert summary["usage"]["output_tokens"] == sum(r["usage"]["output_tokens"] for r in records)
    assert summary["usage"]["llm_calls"] == sum(r["usage"]["llm_calls"] for r in records)
    assert summary["usage"]["est_cost_usd"] == round(sum(r["usage"]["est_cost_usd"] for r in records), 6)
    cache = summary["cache"]
    assert (cache["hits"], cache["misses"], cache["bypassed"], cache["coalesced"]) == (2, 2, 1, 0)
    assert cache["hit_rate"] == 0.5
    assert cache["saved_usd"] == round(2 * first["usage"]["est_cost_usd"], 6)
    ran = sorted(r["execution_time"] for r in records if r["status"] == "completed" and not r["cache_hit"])
    assert summary["execution_time"]["runs"] == len(ran) == 2
    assert abs(summary["execution_time"]["p50_s"] - statistics.median(ran)) < 0.002  # records round to ms

    later = (await restarted.get("/metrics/summary", params={"since": "2999-01-01T00:00:00Z"})).json()
    assert later["records"] == 0 and later["cache"]["hit_rate"] is None


async def test_the_timeline_lists_nodes_and_upstream_calls_and_survives_a_restart(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any], standin: StandinServer
) -> None:
    settings = make_settings()
    client = await app_factory(settings)
    record = await finish(client, BODY)
    restarted = await app_factory(settings)
    timeline = (await restarted.get(f"/workflows/{record['workflow_id']}/timeline")).json()
    assert timeline["status"] == "completed"
    entries = timeline["entries"]
    nodes = [e for e in entries if e["kind"] == "node"]
    calls = [e for e in entries if e["kind"] == "upstream"]
    assert [n["name"] for n in nodes] == ["draft", "critique", "revise", "critique", "finalize"]
    assert len(calls) == record["usage"]["llm_calls"] == len(standin.requests("openai"))
    assert all(c["name"] == "openai gpt-4o-mini" and c["status"] == "ok" and c["tokens"] > 0 for c in calls)
    assert sum(c["tokens"] for c in calls) == record["usage"]["input_tokens"] + record["usage"]["output_tokens"]
    assert sum(n["tokens"] for n in nodes) == sum(c["tokens"] for c in calls)
    assert [c["node"] for c in calls] == ["draft", "critique", "revise", "critique"]
    assert all(e["duration_ms"] >= 0 and e["started_at"] for e in entries)
    assert (await restarted.get("/workflows/nope/timeline")).status_code == 404


async def test_metrics_summary_and_cache_clearing_need_an_admin_key_when_auth_is_required(
    make_settings: Callable[..., Settings], app_factory: Callable[[Settings], Any]
) -> None:
    client = await app_factory(make_settings(auth="required"))
    keys = client.app.state.keys  # type: ignore[attr-defined]
    reader = (await keys.create(name="reader")).secret
    admin = (await keys.create(name="ops", scopes=["admin"])).secret
    for method, path in (("GET", "/metrics"), ("GET", "/metrics/summary"), ("DELETE", "/cache")):
        assert (await client.request(method, path)).status_code == 401
        assert (await client.request(method, path, headers={"X-API-Key": reader})).status_code == 403
        assert (await client.request(method, path, headers={"X-API-Key": admin})).status_code == 200
