"""B9: throughput of the queue executor with 1, 2 and 4 worker processes at upstream latency 1 s
(the profile's ``b9_latency``).

One fresh PostgreSQL database, one API process that only accepts (``agentflow serve
--worker-concurrency 0``), and ``agentflow worker`` processes with the same per-worker
concurrency, added between bursts: 1, then 2, then 4. Each burst of reflection runs (4 model
calls each) is submitted at once to an empty queue;
throughput = completed runs ÷ wall time from the first submit to the last run's end. With a
fixed per-worker cap, adding workers adds capacity, so throughput should grow with N until the
two cores run out (each worker process costs CPU per run).

Needs PostgreSQL: ``AGENTFLOW_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``
as the admin connection that creates and drops one database per measurement).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from bench._procs import VENV_BIN, Child, clean_env, wait_http_ready
from bench.report import Row

if TYPE_CHECKING:
    from bench.scenarios import Bench

__all__ = ["b9_workers"]

ADMIN_URL = os.environ.get("AGENTFLOW_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# cache "bypass": the runs are identical, and the result cache would otherwise answer all but one.
BODY = {"topic": "Scale-out throughput", "max_iterations": 1, "score_threshold": 10, "cache": "bypass"}
WORKER_COUNTS = (1, 2, 4)


@contextmanager
def _database() -> Iterator[str]:
    import psycopg

    name = f"agentflow_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _url(ADMIN_URL, name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _url(admin_url: str, database: str) -> str:
    base, _, _old = admin_url.rpartition("/")
    return f"{base}/{database}"


def _wait_worker(child: Child, *, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.proc.returncode}\n{child.tail()}")
        if '"worker_started"' in child.tail(200):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{child.name} never logged worker_started\n{child.tail()}")


def _burst(bench: Bench, api: Child, runs: int) -> dict[str, Any]:
    bench.standin_latency(openai=bench.profile.b9_latency, search=bench.profile.b9_latency)
    spec = {
        "mode": "burst",
        "base_url": f"http://127.0.0.1:{api.port}",
        "path": "/workflows/reflection",
        "body": BODY,
        "total": runs,
        "wait": 60,
    }
    return bench.loadgen(spec, timeout=600)


def _measure_all(bench: Bench, *, concurrency: int, runs: int) -> dict[int, dict[str, Any]]:
    """One database and one API process; workers are added between bursts (1, then 2, then 4).

    Each burst starts with an empty queue, so the only difference between them is the number
    of worker processes taking jobs.
    """
    results: dict[int, dict[str, Any]] = {}
    with _database() as database_url:
        env = bench.server_env("b9", worker_concurrency=0, log_level="INFO")
        env["AGENTFLOW_DATABASE_URL"] = database_url
        env["AGENTFLOW_OPENAI_MAX_CONCURRENCY"] = str(concurrency * 2)
        api = bench.children.server("b9-api", env)
        workers: list[Child] = []
        try:
            for count in WORKER_COUNTS:
                argv = [str(VENV_BIN / "agentflow"), "worker", "--concurrency", str(concurrency)]
                new = [
                    bench.children.spawn(f"b9-worker-{n}", argv, env=clean_env(env), cwd=bench.workdir)
                    for n in range(len(workers), count)
                ]
                if not workers:  # the first workers start alongside the API: nothing is measured yet
                    bench.children.ready(api)
                    wait_http_ready(f"http://127.0.0.1:{api.port}/readyz", timeout=90, child=api)
                for child in new:
                    _wait_worker(child)
                workers += new
                results[count] = _burst(bench, api, runs)
        finally:
            for child in [*workers, api]:
                bench.stop(child)
    return results


def b9_workers(bench: Bench) -> list[Row]:
    """Rows B9.w1 / w2 / w4 (runs/s) and the speed-up of 2 and 4 workers over 1."""
    try:
        import psycopg

        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except Exception as exc:
        return [Row.failed("B9.error", "B9", "queue workers need PostgreSQL", f"{ADMIN_URL}: {exc}"[:300])]
    concurrency, runs = bench.profile.b9_concurrency, bench.profile.b9_runs
    rates: dict[int, float] = {}
    rows: list[Row] = []
    for workers, result in _measure_all(bench, concurrency=concurrency, runs=runs).items():
        rate = result["completed"] / result["wall_s"] if result["wall_s"] else 0.0
        rates[workers] = rate
        rows.append(
            Row(
                key=f"B9.w{workers}",
                row="B9",
                label=f"{workers} worker process{'es' if workers > 1 else ''} × {concurrency} slots: runs/s",
                value=rate,
                unit="runs/s",
                note=f"{result['completed']}/{runs} completed in {result['wall_s']:.1f} s ({result['statuses']})",
                details={
                    "workers": workers,
                    "concurrency": concurrency,
                    **{k: result[k] for k in ("wall_s", "statuses")},
                },
            )
        )
    for workers, target in ((2, 1.6), (4, 2.5)):
        if rates.get(1):
            rows.append(
                Row(
                    key=f"B9.speedup{workers}",
                    row="B9",
                    label=f"throughput with {workers} workers ÷ with 1",
                    value=rates[workers] / rates[1],
                    unit="×",
                    op=">=",
                    target=target,
                    note="the upstream is the bound: each worker adds its slots",
                )
            )
    return rows
