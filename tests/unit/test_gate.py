"""The provider gate's wake-ups: one waiter per freed slot, none lost to a cancelled waiter."""

from __future__ import annotations

import asyncio

import pytest

from agents.providers.gate import ProviderGate


async def _hold(gate: ProviderGate, release: asyncio.Event, entered: list[int], index: int) -> None:
    async with gate.slot():
        entered.append(index)
        await release.wait()
        await asyncio.sleep(0)  # the others run while the slot is held


async def test_each_release_wakes_one_waiter_not_all(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = ProviderGate("t", max_concurrency=1)
    wakeups = 0
    original = asyncio.Condition.wait

    async def counting_wait(self: asyncio.Condition) -> bool:
        nonlocal wakeups
        result = await original(self)
        wakeups += 1
        return result

    monkeypatch.setattr(asyncio.Condition, "wait", counting_wait)
    entered: list[int] = []
    release = asyncio.Event()
    release.set()  # every holder leaves as soon as it entered
    first = asyncio.Event()
    blocker = asyncio.create_task(_hold(gate, first, entered, -1))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(_hold(gate, release, entered, i)) for i in range(50)]
    await asyncio.sleep(0.01)  # the 50 queue up behind the blocker
    assert entered == [-1]
    first.set()
    await asyncio.gather(blocker, *tasks)
    assert sorted(entered) == [-1, *range(50)]
    # notify_all would wake the whole queue on every release: ~50 * 50 / 2 wake-ups.
    assert wakeups <= 50


async def test_cancelled_waiter_passes_its_wakeup_on() -> None:
    gate = ProviderGate("t", max_concurrency=1)
    release = asyncio.Event()
    entered: list[int] = []
    holder = asyncio.create_task(_hold(gate, release, entered, 0))
    await asyncio.sleep(0.01)
    doomed = asyncio.create_task(_hold(gate, asyncio.Event(), entered, 1))
    survivor = asyncio.create_task(_hold(gate, asyncio.Event(), entered, 2))
    await asyncio.sleep(0.01)
    release.set()  # the slot frees and wakes the first waiter ...
    await asyncio.sleep(0)
    doomed.cancel()  # ... which is cancelled before it could take the slot
    await holder
    async with asyncio.timeout(5):
        while 2 not in entered and 1 not in entered:
            await asyncio.sleep(0.01)
    assert gate._in_flight == 1
    for task in (doomed, survivor):
        task.cancel()
    await asyncio.gather(doomed, survivor, return_exceptions=True)
    assert gate._in_flight == 0


async def test_a_grown_limit_admits_more_than_one_waiter() -> None:
    gate = ProviderGate("t", max_concurrency=4)
    gate.on_rate_limited(None)  # limit drops to 1
    release = asyncio.Event()
    entered: list[int] = []
    tasks = [asyncio.create_task(_hold(gate, release, entered, i)) for i in range(4)]
    async with asyncio.timeout(5):
        while not entered:
            await asyncio.sleep(0.01)
    for _ in range(3):
        gate.on_success()  # the limit grows back to 4, but no slot was released yet
    release.set()  # the one holder leaves: its wake-up is passed on while there is room
    await asyncio.gather(*tasks)
    assert sorted(entered) == [0, 1, 2, 3]
