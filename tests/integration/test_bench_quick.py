"""``python -m bench --smoke`` end to end: every row of the table measured (or pending), results written.

The smoke profile runs each scenario at the smallest size that still exercises it (``bench/profiles.py``):
this test proves the bench works, not how fast agentflow is, and fails if any row errors.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Every line the table must have; each carries a number unless it is allowed to be pending.
EXPECTED_ROWS = {
    "B1.reflection.server",
    "B1.reflection.client",
    "B1.research.server",
    "B1.research.client",
    "B2.completed",
    "B2.wall_ratio",
    "B2.in_flight",
    "B2.peak_rss",
    "B2q.completed",
    "B2q.wall_ratio",
    "B2q.in_flight",
    "B2q.peak_rss",
    "B2q.cpu_per_run",
    "B3.serial.warning",
    "B3.c64.warning",
    "B3.serial.info",
    "B3.c64.info",
    "B4.ratio",
    "B4.rps",
    "B4.p50",
    "B4.p99",
    "B5.p50",
    "B5.p99",
    "B6.cache_hit_p50",
    "B6.hit_upstream_calls",
    "B6.changed_misses",
    "B6.single_flight",
    "B7.idle_rss",
    "B8.startup_ratio",
    "B9.w1",
    "B9.w2",
    "B9.w4",
    "B9.speedup2",
    "B9.speedup4",
}
# Every row is measured now (the research workflow and the result cache exist).
MAY_BE_PENDING: dict[str, str] = {}


@pytest.mark.slow
def test_bench_smoke_measures_every_row(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json-out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=480,  # B9 and B2q start their own processes (five, three) on a shared 2-core machine
    )
    output = f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, output

    document = json.loads((out / "latest.json").read_text())
    assert document["profile"] == "smoke"
    assert document["interrupted"] is False
    rows = {row["key"]: row for row in document["rows"]}
    assert set(rows) >= EXPECTED_ROWS, f"missing rows {sorted(EXPECTED_ROWS - set(rows))}\n{output}"

    for key, row in rows.items():
        if row["status"] == "pending":
            assert MAY_BE_PENDING.get(key) == row["note"], f"{key} may not be pending: {row}"
            assert row["value"] is None
        else:
            assert row["status"] in {"pass", "miss", "info"}, f"{key}: {row}"
            assert isinstance(row["value"], int | float), f"{key}: {row}"
            assert math.isfinite(row["value"]), f"{key}: {row}"
        assert row["anchor"] or row["row"] in {"B4", "B5"}, f"{key} has no anchor"
    # The cache's behaviour rows are exact, whatever the machine's load.
    for key in ("B6.hit_upstream_calls", "B6.changed_misses", "B6.single_flight"):
        assert rows[key]["status"] == "pass", f"{key}: {rows[key]}"
    # A row with a target says pass or miss, never just "info".
    for key in (
        "B1.reflection.server",
        "B2.wall_ratio",
        "B3.c64.warning",
        "B4.ratio",
        "B5.p99",
        "B6.cache_hit_p50",
        "B7.idle_rss",
        "B8.startup_ratio",
        "B2.in_flight",
        "B2q.wall_ratio",
        "B2q.in_flight",
    ):
        assert rows[key]["status"] in {"pass", "miss"}, f"{key}: {rows[key]}"
        assert rows[key]["target"] is not None

    # The table was printed too, one line per row.
    for row_id in ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8"):
        assert any(line.startswith(row_id) for line in proc.stdout.splitlines()), f"no {row_id} line\n{output}"
