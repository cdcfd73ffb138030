"""The group-committing PostgreSQL checkpointer: LangGraph's SQL and serialisation, one transaction per batch."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.types import Command

from backend.runs.checkpoints import NEW_THREAD, open_checkpointer
from backend.runs.postgres_checkpoints import GroupCommitPostgresSaver, rows_by_statement
from tests.helpers import interrupt_graph


def _count(url: str, table: str, thread_id: str) -> int:
    with psycopg.connect(url) as reader:
        row = reader.execute(f"SELECT count(*) FROM {table} WHERE thread_id = %s", (thread_id,)).fetchone()
        assert row is not None
        return int(row[0])


async def test_a_graph_checkpoints_interrupts_and_resumes_through_it(postgres_url: str) -> None:
    config: Any = {"configurable": {"thread_id": "run-1"}}
    async with open_checkpointer(postgres_url) as saver:
        assert isinstance(saver, GroupCommitPostgresSaver)
        graph = interrupt_graph(saver)
        await graph.ainvoke({"steps": []}, config, durability="sync")
        assert (await graph.aget_state(config)).interrupts
    # A new process (a new saver on the same database) resumes from what the first one committed.
    async with open_checkpointer(postgres_url) as saver:
        graph = interrupt_graph(saver)
        result = await graph.ainvoke(Command(resume="yes"), config, durability="sync")
        assert result == {"steps": ["first", "answer=yes"]}
        history = [item async for item in saver.alist(config)]
        assert len(history) >= 3
        assert _count(postgres_url, "checkpoint_blobs", "run-1") > 0
        await saver.adelete_thread("run-1")
        assert await saver.aget_tuple(config) is None
        for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
            assert _count(postgres_url, table, "run-1") == 0


async def test_a_new_thread_starts_without_a_read_and_is_checkpointed_as_usual(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[Any] = []
    read = AsyncPostgresSaver.aget_tuple

    async def counted(self: AsyncPostgresSaver, config: Any) -> Any:
        reads.append(config)
        return await read(self, config)

    monkeypatch.setattr(AsyncPostgresSaver, "aget_tuple", counted)
    async with open_checkpointer(postgres_url) as saver:
        graph = interrupt_graph(saver)
        new: Any = {"configurable": {"thread_id": "new-thread", NEW_THREAD: True}}
        await graph.ainvoke({"steps": []}, new, durability="sync")
        assert reads == []  # LangGraph's opening read was answered without a query
        await graph.ainvoke({"steps": []}, {"configurable": {"thread_id": "other-thread"}}, durability="sync")
        assert reads  # without the hint, it reads
        state = await graph.aget_state({"configurable": {"thread_id": "new-thread"}})
        assert state.values == {"steps": ["first"]} and state.interrupts
        for thread in ("new-thread", "other-thread"):
            await saver.adelete_thread(thread)


async def test_concurrent_writes_share_commits_and_each_is_durable_when_it_returns(postgres_url: str) -> None:
    async with open_checkpointer(postgres_url) as saver:
        assert isinstance(saver, GroupCommitPostgresSaver)

        async def put(thread: int) -> None:
            config: Any = {"configurable": {"thread_id": f"t{thread}", "checkpoint_ns": ""}}
            stored = await saver.aput(config, empty_checkpoint(), {"source": "input", "step": -1}, {})
            await saver.aput_writes(stored, [("steps", ["x"])], task_id="task-1")
            # Durable once the call returns: another connection sees it at once.
            assert await asyncio.to_thread(_count, postgres_url, "checkpoints", f"t{thread}") == 1
            assert await asyncio.to_thread(_count, postgres_url, "checkpoint_writes", f"t{thread}") == 1

        await asyncio.gather(*(put(thread) for thread in range(50)))
        assert saver.batches < 100  # writes that arrived together were committed together


async def test_one_failing_write_does_not_fail_the_others_of_its_batch(postgres_url: str) -> None:
    async with open_checkpointer(postgres_url) as saver:
        assert isinstance(saver, GroupCommitPostgresSaver)
        good: Any = {"configurable": {"thread_id": "good", "checkpoint_ns": ""}}
        outcomes = await asyncio.gather(
            saver._write([("INSERT INTO no_such_table VALUES (1)", None, False)]),
            saver.aput(good, empty_checkpoint(), {"source": "input", "step": -1}, {}),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], psycopg.errors.UndefinedTable)
        assert not isinstance(outcomes[1], BaseException)
        assert await saver.aget_tuple({"configurable": {"thread_id": "good"}}) is not None


async def test_a_batch_is_all_or_nothing(postgres_url: str) -> None:
    async with open_checkpointer(postgres_url) as saver:
        assert isinstance(saver, GroupCommitPostgresSaver)
        config: Any = {"configurable": {"thread_id": "atomic", "checkpoint_ns": ""}}
        good, _ = saver._recorder.record(
            saver._recorder.put, config, empty_checkpoint(), {"source": "input", "step": -1}, {}
        )
        with pytest.raises(psycopg.errors.UndefinedTable):
            await saver._commit([good, [("INSERT INTO no_such_table VALUES (1)", None, False)]])
        assert _count(postgres_url, "checkpoints", "atomic") == 0


async def test_closing_waits_for_writes_in_flight(postgres_url: str) -> None:
    async with open_checkpointer(postgres_url) as saver:
        config: Any = {"configurable": {"thread_id": "late", "checkpoint_ns": ""}}
        pending = asyncio.ensure_future(saver.aput(config, empty_checkpoint(), {"source": "input", "step": -1}, {}))
        await asyncio.sleep(0)  # queued, not yet committed
    await pending
    assert _count(postgres_url, "checkpoints", "late") == 1


def test_a_batch_runs_each_statement_once_over_its_rows_in_order() -> None:
    insert, upsert, delete = "INSERT a", "UPSERT b", "DELETE c"
    writes = [
        [(insert, [(1,), (2,)], True), (upsert, ("k", 1), False)],
        [(delete, ("t1",), False)],
        [(insert, [(3,)], True), (upsert, ("k", 2), False)],
    ]

    grouped = rows_by_statement(writes)

    assert list(grouped) == [insert, upsert, delete]
    assert grouped == {insert: [(1,), (2,), (3,)], upsert: [("k", 1), ("k", 2)], delete: [("t1",)]}
