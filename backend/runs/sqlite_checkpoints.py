"""LangGraph's SQLite checkpointer with group commit and no thread hop per write.

``AsyncSqliteSaver`` runs each checkpoint write as its own transaction on aiosqlite's thread:
four to five thread hops (cursor, execute, commit, close) per write, about a dozen writes per
run, plus the commit each. Profiled under the bench (issue 16), that was ~3 ms of CPU per run
of 5 steps, and it grew with every concurrent run since each write waits its turn.

``GroupCommitSqliteSaver`` is LangGraph's own synchronous ``SqliteSaver`` (its SQL, schema and
serialisation, unchanged) driven from asyncio: the writes that arrive together (``aput``,
``aput_writes``, ``adelete_thread`` from every run in the process, queued before the batch
task gets its turn on the loop) are run together and committed once. Each caller still awaits
the commit that holds its write, so ``durability="sync"`` keeps its meaning: a node's checkpoint
is durable before the next node starts. A write that fails is retried on its own, so one bad
write never fails the others of its batch.

The batch runs on the event loop itself, like the store's SQLite calls
(``backend.runs.store.inline_sqlite``, whose docstring says why that is safe): with WAL and
``synchronous=NORMAL`` a commit costs microseconds, while handing each batch to a thread cost
more CPU than the writes. Reads (``aget_tuple``, ``alist``) run inline too.

Written here because langgraph-checkpoint-sqlite offers only the per-write async saver; this
wrapper adds batching and leaves everything the library does to the library.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.sqlite import SqliteSaver

__all__ = ["GroupCommitSqliteSaver", "open_sqlite_saver"]

T = TypeVar("T")


class GroupCommitSqliteSaver(SqliteSaver):
    """``SqliteSaver`` with async methods that group-commit concurrent writes (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self._pending: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._writing: asyncio.Task[None] | None = None
        self._in_batch = False

    @contextlib.contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        """The library's cursor, except that inside a batch the batch commits, not each write."""
        with self.lock:
            self.setup()
            cur = self.conn.cursor()
            try:
                yield cur
            finally:
                if transaction and not self._in_batch:
                    self.conn.commit()
                cur.close()

    # --- batches -------------------------------------------------------------------------------

    def _run_batch(self, calls: Sequence[Callable[[], Any]]) -> list[tuple[bool, Any]]:
        """Run ``calls`` in one transaction; on any failure, run each alone instead."""
        self._in_batch = True
        try:
            results = [(True, call()) for call in calls]
            self.conn.commit()
            return results
        except Exception:
            self.conn.rollback()
        finally:
            self._in_batch = False
        outcomes: list[tuple[bool, Any]] = []
        for call in calls:
            try:
                outcomes.append((True, call()))  # commits on its own (outside a batch)
            except Exception as error:
                outcomes.append((False, error))
        return outcomes

    async def _write(self, call: Callable[[], T]) -> T:
        """Queue a write for the next batch and wait until its batch is committed."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((call, future))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_batch(), name="checkpoint-batch")
        return await future

    async def _write_batch(self) -> None:
        """Commit every write queued during this turn of the loop, then answer each caller."""
        await asyncio.sleep(0)  # let the writes of this turn of the loop join the batch
        # The batch runs without yielding, so nothing can be queued between taking it and ending.
        batch, self._pending, self._writing = self._pending, [], None
        outcomes = self._run_batch([call for call, _ in batch])
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    # --- the async interface LangGraph calls ----------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._write(functools.partial(self.put, config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await self._write(functools.partial(self.put_writes, config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await self._write(functools.partial(self.delete_thread, thread_id))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return self.get_delta_channel_history(config=config, channels=channels)

    async def aclose(self) -> None:
        """Finish the writes in flight, then close the connection."""
        while self._writing is not None and not self._writing.done():
            await asyncio.shield(self._writing)
        self.conn.close()


@contextlib.asynccontextmanager
async def open_sqlite_saver(location: str) -> AsyncIterator[GroupCommitSqliteSaver]:
    """Open (and set up) the checkpoint file at ``location``; closed on exit."""
    # check_same_thread=False: LangGraph's sync API (``graph.get_state`` from a thread) may use it.
    conn = sqlite3.connect(location, check_same_thread=False)
    saver = GroupCommitSqliteSaver(conn)
    try:
        saver.setup()
        # WAL (set by setup) + NORMAL survives a process crash; it only risks the last commits
        # on power loss, and saves an fsync per batch.
        conn.execute("PRAGMA synchronous=NORMAL")
        yield saver
    finally:
        await saver.aclose()
