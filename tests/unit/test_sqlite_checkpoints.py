"""The group-committing SQLite checkpointer: LangGraph's SqliteSaver, one commit per batch."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.types import Command

from backend.runs.checkpoints import NEW_THREAD
from backend.runs.sqlite_checkpoints import open_sqlite_saver
from tests.helpers import interrupt_graph


async def test_a_graph_checkpoints_interrupts_and_resumes_through_it(tmp_path: Path) -> None:
    location = str(tmp_path / "checkpoints.db")
    config: Any = {"configurable": {"thread_id": "run-1"}}
    async with open_sqlite_saver(location) as saver:
        graph = interrupt_graph(saver)
        await graph.ainvoke({"steps": []}, config, durability="sync")
        assert (await graph.aget_state(config)).interrupts
    # A new process (a new saver on the same file) resumes from what the first one committed.
    async with open_sqlite_saver(location) as saver:
        graph = interrupt_graph(saver)
        result = await graph.ainvoke(Command(resume="yes"), config, durability="sync")
        assert result == {"steps": ["first", "answer=yes"]}
        history = [item async for item in saver.alist(config)]
        assert len(history) >= 3
        await saver.adelete_thread("run-1")
        assert await saver.aget_tuple(config) is None


async def test_a_new_thread_starts_without_a_read_and_is_checkpointed_as_usual(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_sqlite_saver(str(tmp_path / "checkpoints.db")) as saver:
        reads: list[Any] = []
        read = saver.get_tuple
        monkeypatch.setattr(saver, "get_tuple", lambda config: reads.append(config) or read(config))
        graph = interrupt_graph(saver)
        await graph.ainvoke({"steps": []}, {"configurable": {"thread_id": "new", NEW_THREAD: True}}, durability="sync")
        assert reads == []  # LangGraph's opening read was answered without a query
        await graph.ainvoke({"steps": []}, {"configurable": {"thread_id": "other"}}, durability="sync")
        assert reads  # without the hint, it reads
        state = await graph.aget_state({"configurable": {"thread_id": "new"}})
        assert state.values == {"steps": ["first"]} and state.interrupts
        metadata = [item.metadata async for item in saver.alist({"configurable": {"thread_id": "new"}})]
        assert metadata and all(NEW_THREAD not in entry for entry in metadata)  # the hint is not stored


async def test_concurrent_writes_share_commits_and_each_is_durable_when_it_returns(tmp_path: Path) -> None:
    location = str(tmp_path / "checkpoints.db")
    async with open_sqlite_saver(location) as saver:

        async def put(thread: int) -> None:
            config: Any = {"configurable": {"thread_id": f"t{thread}", "checkpoint_ns": ""}}
            await saver.aput(config, empty_checkpoint(), {"source": "input", "step": -1}, {})
            # Durable once aput returns: another connection sees it at once.
            with sqlite3.connect(location) as reader:
                found = reader.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?", (f"t{thread}",))
                assert found.fetchone()[0] == 1

        await asyncio.gather(*(put(thread) for thread in range(50)))
        batches = saver.batches
        assert batches < 50  # writes that arrived together were committed together


async def test_one_failing_write_does_not_fail_the_others_of_its_batch(tmp_path: Path) -> None:
    async with open_sqlite_saver(str(tmp_path / "checkpoints.db")) as saver:

        def broken(*_args: Any) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        good_config: Any = {"configurable": {"thread_id": "good", "checkpoint_ns": ""}}
        outcomes = await asyncio.gather(
            saver._write(broken),
            saver.aput(good_config, empty_checkpoint(), {"source": "input", "step": -1}, {}),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], sqlite3.OperationalError)
        assert not isinstance(outcomes[1], BaseException)
        assert await saver.aget_tuple({"configurable": {"thread_id": "good"}}) is not None


async def test_closing_waits_for_writes_in_flight(tmp_path: Path) -> None:
    location = str(tmp_path / "checkpoints.db")
    async with open_sqlite_saver(location) as saver:
        config: Any = {"configurable": {"thread_id": "late", "checkpoint_ns": ""}}
        pending = asyncio.ensure_future(saver.aput(config, empty_checkpoint(), {"source": "input", "step": -1}, {}))
        await asyncio.sleep(0)  # queued, not yet committed
    await pending
    with sqlite3.connect(location) as reader:
        assert reader.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == 1


@pytest.mark.parametrize("location", [":memory:"])
async def test_an_in_memory_location_works(location: str) -> None:
    async with open_sqlite_saver(location) as saver:
        graph = interrupt_graph(saver)
        config: Any = {"configurable": {"thread_id": "m"}}
        await graph.ainvoke({"steps": []}, config, durability="sync")
        assert (await graph.aget_state(config)).values == {"steps": ["first"]}
