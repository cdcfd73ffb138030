"""Unit tests of the behaviour runtime (faults, rate window) and the journal."""

from __future__ import annotations

import pytest

from tests.standins import UpstreamBehaviour
from tests.standins.behaviour import BehaviourRuntime, retry_after_headers
from tests.standins.journal import Journal, max_overlap, min_gap


def test_rpm_window_slides_and_reports_the_wait() -> None:
    runtime = BehaviourRuntime(UpstreamBehaviour(rpm=2, rpm_window_seconds=10), "openai")
    assert not runtime.admit("/p", now=0.0).rate_limited
    assert not runtime.admit("/p", now=4.0).rate_limited
    limited = runtime.admit("/p", now=5.0)
    assert limited.rate_limited
    assert limited.retry_after == pytest.approx(5.0)
    assert not runtime.admit("/p", now=10.0).rate_limited  # the first slot freed at t=10
    assert retry_after_headers(0.2) == {"retry-after": "1", "retry-after-ms": "200"}


def test_fail_first_n_then_seeded_random_faults() -> None:
    behaviour = UpstreamBehaviour(fail_first_n=2, fail_first_fault="500", fault_rate=0.5, faults=["429", "timeout"])

    def run() -> list[str | None]:
        runtime = BehaviourRuntime(behaviour, "tavily")
        return [runtime.admit("/search").fault for _ in range(30)]

    faults = run()
    assert faults[:2] == ["500", "500"]
    assert set(faults[2:]) == {None, "429", "timeout"}
    assert run() == faults  # same seed, same sequence


def test_unknown_faults_and_rates_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        UpstreamBehaviour(faults=["teapot"])
    with pytest.raises(ValueError, match="fault_rate"):
        UpstreamBehaviour(fault_rate=2)


def test_journal_keeps_newest_entries_but_counts_all() -> None:
    journal = Journal(("openai",), max_entries=2)
    for _ in range(3):
        entry = journal.begin("openai", "POST", "/v1/chat/completions", "")
        journal.annotate(entry, fault="503")
        journal.finish(entry, 503)
    assert [e["seq"] for e in journal.entries()] == [2, 3]
    stats = journal.stats()["upstreams"]["openai"]
    assert stats["count"] == 3
    assert stats["by_status"] == {"503": 3}
    assert stats["faults"] == {"503": 3}
    journal.clear()
    assert journal.stats()["total"] == 0


def test_overlap_and_gap_helpers() -> None:
    entries = [
        {"started_at": 0.0, "finished_at": 1.0},
        {"started_at": 1.5, "finished_at": 2.0},
        {"started_at": 1.8, "finished_at": 2.5},
    ]
    assert max_overlap(entries) == 2
    assert min_gap(entries) == pytest.approx(-0.2)
    assert max_overlap(entries[:2]) == 1
