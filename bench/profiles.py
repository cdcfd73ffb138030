"""How big each scenario is: the full run (``python -m bench``), ``--quick`` (under a minute) and
``--smoke`` (the smallest sizes that still run every row: the test suite's check that the bench
works end to end; its numbers say little)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "SMOKE", "Profile"]


@dataclass(frozen=True)
class Profile:
    name: str
    # B1: sequential runs per workflow type at upstream latency b1_latency (median taken).
    b1_runs: int
    b1_latency: float
    # B2: b2_total runs in flight at once at b2_latency; b2_single_runs alone first for the ratio.
    b2_total: int
    b2_latency: float
    b2_single_runs: int
    # B3: runs one at a time, and runs by b3_concurrency looping clients, at zero latency.
    b3_serial_runs: int
    b3_concurrent_runs: int
    b3_info_serial_runs: int
    b3_info_concurrent_runs: int
    # B4: alternating rounds (bare, agentflow) of closed-loop submits.
    b4_rounds: int
    b4_warmup: float
    b4_duration: float
    # B5: open-loop GETs at b5_rate per second.
    b5_duration: float
    # B7: how long a fresh server sits idle before its RSS is read, and how many samples are taken.
    b7_settle: float
    b7_samples: int = 10
    # B9: a burst of b9_runs at L = 1 s through 1, 2 and 4 queue workers of b9_concurrency slots each.
    b9_runs: int = 192
    b9_concurrency: int = 16
    b9_latency: float = 1.0
    # B6: sequential repeats of one cached request (after a warm-up), then a burst of identical submits.
    b6_warmup: float = 0.5
    b6_duration: float = 3.0
    b6_flight_runs: int = 50
    b6_flight_latency: float = 0.5
    b3_concurrency: int = 64
    b4_concurrency: int = 32
    b4_latency: float = 30.0
    b5_rate: float = 500.0
    # B8: alternating start-ups of the bare app and agentflow (after one cold start of each).
    b8_rounds: int = 3


FULL = Profile(
    name="full",
    b1_runs=5,
    b1_latency=0.5,
    b2_total=1000,
    b2_latency=2.0,
    b2_single_runs=3,
    b3_serial_runs=100,
    b3_concurrent_runs=1000,
    b3_info_serial_runs=100,
    b3_info_concurrent_runs=1000,
    b4_rounds=3,
    b4_warmup=1.0,
    b4_duration=5.0,
    b5_duration=10.0,
    b7_settle=5.0,
)

QUICK = Profile(
    name="quick",
    b1_runs=1,
    b1_latency=0.5,
    b2_total=100,
    b2_latency=1.0,
    b2_single_runs=1,
    b3_serial_runs=10,
    b3_concurrent_runs=128,
    b3_info_serial_runs=5,
    b3_info_concurrent_runs=64,
    b4_rounds=1,
    b4_warmup=0.5,
    b4_duration=1.5,
    b5_duration=1.5,
    b7_settle=0.5,
    b7_samples=5,
    b6_warmup=0.2,
    b6_duration=1.0,
    b9_runs=8,
    b9_concurrency=4,
    b8_rounds=1,
)

SMOKE = Profile(
    name="smoke",
    b1_runs=1,
    b1_latency=0.1,
    b2_total=20,
    b2_latency=0.3,
    b2_single_runs=1,
    b3_serial_runs=3,
    b3_concurrent_runs=16,
    b3_info_serial_runs=2,
    b3_info_concurrent_runs=8,
    b3_concurrency=8,
    b4_rounds=1,
    b4_warmup=0.2,
    b4_duration=0.5,
    b4_concurrency=8,
    b5_duration=0.5,
    b7_settle=0.2,
    b7_samples=3,
    b6_warmup=0.1,
    b6_duration=0.3,
    b6_flight_runs=10,  # still one burst of identical submits while the first runs (L = 0.5 s)
    b9_runs=4,
    b9_concurrency=2,
    b9_latency=0.3,
    b8_rounds=1,
)
