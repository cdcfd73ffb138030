"""GroupCommit: writes that arrive together share a commit, and one bad write fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from backend.runs.group_commit import GroupCommit


class Conflict(Exception):
    """Stands for an integrity error: one write spoils its batch."""


class Store:
    def __init__(self, *, refuse: set[int] | None = None, fail_batches_with: Exception | None = None) -> None:
        self.commits: list[list[int]] = []
        self.stored: list[int] = []
        self.refuse = refuse or set()
        self.fail_batches_with = fail_batches_with

    async def commit(self, writes: Sequence[int]) -> None:
        await asyncio.sleep(0)  # a round trip: writes queued meanwhile make the next batch
        self.commits.append(list(writes))
        if self.fail_batches_with is not None:
            raise self.fail_batches_with
        if self.refuse & set(writes):
            raise Conflict(f"refused {sorted(self.refuse & set(writes))}")
        self.stored.extend(writes)


async def test_writes_that_arrive_together_share_one_commit_and_each_caller_waits_for_it() -> None:
    store = Store()
    group = GroupCommit(store.commit, name="test")
    await asyncio.gather(*(group(n) for n in range(50)))
    assert sorted(store.stored) == list(range(50))  # every caller returned after its write was stored
    assert len(store.commits) < 50
    assert group.batches == len(store.commits)


async def test_a_refused_write_fails_alone_when_its_error_is_retried_alone() -> None:
    store = Store(refuse={3})
    group = GroupCommit(store.commit, name="test", retry_alone_on=(Conflict,))
    outcomes = await asyncio.gather(*(group(n) for n in range(6)), return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [type(None)] * 3 + [Conflict] + [type(None)] * 2
    assert sorted(store.stored) == [0, 1, 2, 4, 5]
    assert [3] in store.commits  # it was tried on its own


async def test_any_other_error_fails_the_whole_batch() -> None:
    store = Store(fail_batches_with=OSError("disk full"))
    group = GroupCommit(store.commit, name="test", retry_alone_on=(Conflict,))
    outcomes = await asyncio.gather(*(group(n) for n in range(4)), return_exceptions=True)
    assert all(isinstance(outcome, OSError) for outcome in outcomes)
    assert store.commits == [[0, 1, 2, 3]]  # not retried one by one
    assert group.batches == 0


async def test_a_caller_that_goes_away_does_not_disturb_the_others() -> None:
    store = Store()
    group = GroupCommit(store.commit, name="test")
    impatient = asyncio.create_task(group(1))
    others = [asyncio.create_task(group(n)) for n in (2, 3)]
    await asyncio.sleep(0)
    impatient.cancel()
    await asyncio.gather(*others)
    with pytest.raises(asyncio.CancelledError):
        await impatient
    await group.aclose()
    assert {2, 3} <= set(store.stored)
