"""The queue executor's rows: B9 (scale-out) and B2q (B2's burst through two workers).

Both run on one fresh PostgreSQL database with one API process that only accepts
(``agentflow serve --worker-concurrency 0``) and ``agentflow worker`` processes (``queue_setup``).

B9: throughput with 1, 2 and 4 worker processes at upstream latency 1 s. Workers with the same
per-worker concurrency are added between bursts: 1, then 2, then 4. Each burst of reflection
runs (4 model calls each) is submitted at once to an empty queue;
throughput = completed runs ÷ wall time from the first submit to the last run's end. With a
fixed per-worker cap, adding workers adds capacity, so throughput should grow with N until the
two cores run out (each worker process costs CPU per run).

B2q: B2's measurement (one run alone, then every run of the burst in flight at once, at B2's
size and latency) with 2 workers that have a slot for every run between them.

Needs PostgreSQL: ``AGENTFLOW_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``
as the admin connection that creates and drops one database per measurement).
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from bench._procs import VENV_BIN, Child, clean_env, wait_http_ready
from bench.report import Row
from bench.scenarios import burst_rows

if TYPE_CHECKING:
    from bench.scenarios import Bench

__all__ = ["PostgresMeter", "QueueSetup", "b2q_queue_burst", "b9_workers", "queue_setup"]

ADMIN_URL = os.environ.get("AGENTFLOW_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# cache "bypass": the runs are identical, and the result cache would otherwise answer all but one.
BODY = {"topic": "Scale-out throughput", "max_iterations": 1, "score_threshold": 10, "cache": "bypass"}
WORKER_COUNTS = (1, 2, 4)
#: B2q: the issue's queue-executor set-up, 2 worker processes.
B2Q_WORKERS = 2


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


class QueueSetup:
    """One API process that only accepts and the ``agentflow worker`` processes behind it, on one database."""

    def __init__(self, bench: Bench, name: str, database_url: str, env: dict[str, str], api: Child) -> None:
        self.bench = bench
        self.name = name
        self.database_url = database_url
        self.env = env
        self.api = api
        self.workers: list[Child] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api.port}"

    def spawn_workers(self, count: int, *, concurrency: int) -> list[Child]:
        """Start ``count`` more workers of ``concurrency`` slots each; ``wait_workers()`` waits for them."""
        argv = [str(VENV_BIN / "agentflow"), "worker", "--concurrency", str(concurrency)]
        new = [
            self.bench.children.spawn(f"{self.name}-worker-{n}", argv, env=clean_env(self.env), cwd=self.bench.workdir)
            for n in range(len(self.workers), len(self.workers) + count)
        ]
        self.workers += new
        return new

    def run_statuses(self, *, skip: int = 0) -> dict[str, int]:
        """How many runs the database holds in each status, leaving out the ``skip`` oldest."""
        import psycopg

        query = (
            "SELECT status, count(*) FROM (SELECT status FROM workflows ORDER BY created_at OFFSET %s) AS r GROUP BY 1"
        )
        with psycopg.connect(self.database_url, connect_timeout=3) as connection:
            rows = connection.execute(query, (skip,)).fetchall()
        return {str(status): int(count) for status, count in rows}

    def wait_workers(self, *, timeout: float = 90.0) -> None:
        """Until every started worker has registered with procrastinate (it then takes jobs)."""
        import psycopg

        deadline = time.monotonic() + timeout
        registered = 0
        while time.monotonic() < deadline:
            for child in self.workers:
                if child.proc.poll() is not None:
                    raise RuntimeError(f"{child.name} exited with {child.proc.returncode}\n{child.tail()}")
            try:
                with psycopg.connect(self.database_url, connect_timeout=3) as connection:
                    row = connection.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
                    registered = int(row[0]) if row else 0
            except psycopg.errors.UndefinedTable:  # the first process is still migrating
                registered = 0
            if registered >= len(self.workers):
                return
            time.sleep(0.2)
        tails = "\n".join(child.tail(10) for child in self.workers)
        raise TimeoutError(f"{registered} of {len(self.workers)} workers registered within {timeout:.0f} s\n{tails}")


class PostgresMeter:
    """The PostgreSQL side of a measurement on one database, between enter and exit.

    ``cpu_s``: CPU seconds of the backends serving the database. They are read from
    ``pg_stat_activity`` at both ends: one present at both counts its difference, one that
    connected meanwhile all of its CPU, one that closed meanwhile is missed (the pools keep
    theirs open); 0 when the server is not on this machine. ``peak_connections``: the most
    client connections to this database, and to the whole server, seen every 0.25 s, beside
    ``max_connections`` (a server shared with other databases may run out first).
    ``peak_queued``: the most jobs waiting for a worker (procrastinate ``todo``), and
    ``queued_until_s`` when a sample last saw one, from enter: how long the queue held jobs back.
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.cpu_s = 0.0
        self.max_connections = 0
        self.peak_connections = {"database": 0, "server": 0}
        self.peak_queued = 0
        self.queued_until_s = 0.0
        self._before: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_connections, name="pg-connections", daemon=True)

    def _cpu_by_pid(self) -> dict[int, float]:
        import psutil
        import psycopg

        try:
            with psycopg.connect(self.database_url, connect_timeout=3) as connection:
                rows = connection.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
        except psycopg.Error:  # e.g. the server is full: the meter must not fail the measurement
            return {}
        cpu: dict[int, float] = {}
        for (pid,) in rows:
            with suppress(psutil.Error):
                times = psutil.Process(pid).cpu_times()
                cpu[pid] = times.user + times.system
        return cpu

    def _sample_connections(self) -> None:
        import psycopg

        # One connection held throughout: when the server is full, a new one would fail.
        with (
            suppress(psycopg.Error),
            psycopg.connect(self.database_url, connect_timeout=3, autocommit=True) as connection,
        ):
            self.max_connections = int(connection.execute("SHOW max_connections").fetchone()[0])  # type: ignore[index]
            started = time.monotonic()
            while not self._stop.is_set():
                (queued,) = connection.execute(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"
                ).fetchone() or (0,)
                if queued:
                    self.peak_queued = max(self.peak_queued, int(queued))
                    self.queued_until_s = round(time.monotonic() - started, 1)
                ours, everyone = connection.execute(
                    "SELECT count(*) FILTER (WHERE datname = current_database() AND pid <> pg_backend_pid()), "
                    "count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                ).fetchone() or (0, 0)
                self.peak_connections["database"] = max(self.peak_connections["database"], int(ours))
                self.peak_connections["server"] = max(self.peak_connections["server"], int(everyone))
                self._stop.wait(0.25)

    def __enter__(self) -> PostgresMeter:
        self._before = self._cpu_by_pid()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)
        after = self._cpu_by_pid()
        self.cpu_s = round(sum(cpu - self._before.get(pid, 0.0) for pid, cpu in after.items()), 3)

    def details(self) -> dict[str, Any]:
        return {
            "cpu_s": self.cpu_s,
            "peak_connections": self.peak_connections,
            "max_connections": self.max_connections,
            "peak_queued_jobs": self.peak_queued,
            "jobs_queued_until_s": self.queued_until_s,
        }

    def text(self) -> str:
        peak = self.peak_connections
        return (
            f"PostgreSQL: {peak['database']} connections to this database at the peak, "
            f"{peak['server']} to the server of max_connections {self.max_connections}; "
            f"at most {self.peak_queued} jobs waited for a worker, the last {self.queued_until_s:.1f} s in"
        )


@contextmanager
def queue_setup(
    bench: Bench, name: str, *, workers: int, concurrency: int, **overrides: str | int
) -> Iterator[QueueSetup]:
    """A fresh database, ``agentflow serve --worker-concurrency 0`` and ``workers`` workers,
    started side by side (migrations take turns on an advisory lock); all stopped on the way out."""
    with _database() as database_url:
        env = bench.server_env(name, worker_concurrency=0, **overrides)
        env["AGENTFLOW_DATABASE_URL"] = database_url
        setup = QueueSetup(bench, name, database_url, env, bench.children.server(f"{name}-api", env))
        try:
            setup.spawn_workers(workers, concurrency=concurrency)
            bench.children.ready(setup.api)
            wait_http_ready(f"{setup.base_url}/readyz", timeout=90, child=setup.api)
            setup.wait_workers()
            yield setup
        finally:
            for child in [*setup.workers, setup.api]:
                bench.stop(child)


def _burst(bench: Bench, setup: QueueSetup, runs: int) -> dict[str, Any]:
    bench.standin_latency(openai=bench.profile.b9_latency, search=bench.profile.b9_latency)
    spec = {
        "mode": "burst",
        "base_url": setup.base_url,
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
    overrides: dict[str, str | int] = {"log_level": "INFO", "openai_max_concurrency": concurrency * 2}
    with queue_setup(bench, "b9", workers=WORKER_COUNTS[0], concurrency=concurrency, **overrides) as setup:
        for count in WORKER_COUNTS:
            setup.spawn_workers(count - len(setup.workers), concurrency=concurrency)
            setup.wait_workers()
            results[count] = _burst(bench, setup, runs)
    return results


def _postgres_missing(row: str) -> Row | None:
    """An error line for ``row`` when the admin connection fails (the queue executor needs PostgreSQL)."""
    try:
        import psycopg

        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except Exception as exc:
        return Row.failed(f"{row}.error", row, "queue workers need PostgreSQL", f"{ADMIN_URL}: {exc}"[:300])
    return None


def b9_workers(bench: Bench) -> list[Row]:
    """Rows B9.w1 / w2 / w4 (runs/s) and the speed-up of 2 and 4 workers over 1."""
    if (missing := _postgres_missing("B9")) is not None:
        return [missing]
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


def b2q_queue_burst(bench: Bench) -> list[Row]:
    """B2 on the queue executor: one API process that only accepts, B2Q_WORKERS worker processes.

    The same measurement as B2 (one run alone, then the burst, both through the API), with
    every run of the burst in flight at once: each worker has ⌈runs ÷ workers⌉ slots and as
    many OpenAI calls allowed.
    """
    if (missing := _postgres_missing("B2q")) is not None:
        return [missing]
    total = bench.profile.b2_total
    slots = math.ceil(total / B2Q_WORKERS)
    overrides: dict[str, str | int] = {"max_concurrent_workflows": max(slots, 64), "openai_max_concurrency": slots}
    with queue_setup(bench, "b2q", workers=B2Q_WORKERS, concurrency=slots, **overrides) as setup:
        # Several runs at once, so that every worker has run one before the single run is timed.
        warm_runs = 4 * B2Q_WORKERS
        bench.warm(setup.api, runs=warm_runs, latency=0.2)
        processes = {"api": setup.api.pid} | {f"worker-{n}": w.pid for n, w in enumerate(setup.workers)}
        postgres = PostgresMeter(setup.database_url)
        measured = bench.single_then_burst(setup.api, processes, py_spy_name="b2q-burst", during_burst=[postgres])
        # What the workers recorded, whatever the long polls saw (a poll can fail on its own).
        recorded = setup.run_statuses(skip=warm_runs + bench.profile.b2_single_runs)
    rows = burst_rows("B2q", measured, wall_target=2.0, rss_label="peak RSS of one process (API, each worker)")
    rows[0].details |= {"postgres": postgres.details(), "recorded_statuses": recorded}
    rows[0].note += f"; recorded by the workers {recorded}; {postgres.text()}"
    cpu = sum(measured.cpu_s.values())
    # Runs the workers completed: a long poll that failed does not make its run cost nothing.
    runs = max(recorded.get("completed", 0), 1)
    rows.append(
        Row(
            key="B2q.cpu_per_run",
            row="B2q",
            label="CPU per completed run: API + workers",
            value=cpu / runs * 1000,
            unit="ms",
            note=f"{cpu:.0f} s over the burst: {measured.cpu_text()}; "
            f"PostgreSQL backends {postgres.cpu_s:.0f} s = {postgres.cpu_s / runs * 1000:.0f} ms per run",
        )
    )
    return rows
