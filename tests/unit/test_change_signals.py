"""The change hub: who wakes on which change (a ``?wait`` for a run to settle skips its steps)."""

from __future__ import annotations

from backend.runs.signals import ChangeHub, status_key


def test_a_settled_only_watcher_skips_changes_of_a_running_run_and_wakes_when_it_settles() -> None:
    hub = ChangeHub(sees_every_change=True)
    every, settled = hub.watch("run-1"), hub.watch("run-1", settled_only=True)
    hub.changed(status_key("run-1", "running"))
    assert every.is_set()
    assert not settled.is_set()
    every = hub.watch("run-1")
    hub.changed(status_key("run-1", "completed"))
    assert every.is_set()
    assert settled.is_set()


def test_waiting_and_a_change_of_unknown_status_wake_a_settled_only_watcher() -> None:
    hub = ChangeHub(sees_every_change=True)
    parked = hub.watch("run-1", settled_only=True)
    hub.changed(status_key("run-1", "waiting"))
    assert parked.is_set()
    unknown = hub.watch("run-1", settled_only=True)
    hub.changed("run-1")  # a signal that names no status: it may be anything
    assert unknown.is_set()


def test_other_runs_and_event_keys_wake_nobody_else() -> None:
    hub = ChangeHub(sees_every_change=True)
    every, settled = hub.watch("run-1"), hub.watch("run-1", settled_only=True)
    hub.changed(status_key("run-2", "completed"))
    hub.changed("run-1:events")
    assert not every.is_set()
    assert not settled.is_set()
    hub.changed_all()  # after a gap in notifications everyone re-reads
    assert every.is_set()
    assert settled.is_set()
