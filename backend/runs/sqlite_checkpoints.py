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
more CPU than the writes. Reads (``aget_tuple``, ``alist``) run inline too, and the opening
read of a run that never started is not made (``backend.runs.checkpoints.NEW_THREAD``). The
batching is the store's (``backend.runs.group_commit``); this class only says how a batch is
committed.

Written here because langgraph-checkpoint-sqlite offers only the per-write async saver; this
wrapper adds batching and leaves everything the library does to the library.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.sqlite import SqliteSaver

from backend.runs.checkpoints import is_new_thread
from backend.runs.group_commit import GroupCommit

__all__ = ["GroupCommitSqliteSaver", "open_sqlite_saver"]

T = TypeVar("T")


class GroupCommitSqliteSaver(SqliteSaver):
    """``SqliteSaver`` with async methods that group-commit concurrent writes (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self._batches: GroupCommit[_Write[Any]] = GroupCommit(self._commit, name="checkpoint-batches")
        self._in_batch = False

    @property
    def batches(self) -> int:
        """Batches committed whole (a test and the curious can see that writes shared them)."""
        return self._batches.batches

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

    async def _commit(self, writes: Sequence[_Write[Any]]) -> None:
        """Run ``writes`` in one transaction, on the loop and without yielding (see the module docstring)."""
        self._in_batch = True
        try:
            for write in writes:
                write.run()
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        finally:
            self._in_batch = False

    async def _write(self, call: Callable[[], T]) -> T:
        """Queue a write for the next batch and wait until its batch is committed; its result."""
        write = _Write(call)
        await self._batches(write)
        return write.result

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
        return None if is_new_thread(config) else self.get_tuple(config)

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
        await self._batches.aclose()
        self.conn.close()


class _Write(Generic[T]):
    """One of LangGraph's writes, queued for a batch; ``result`` is what its last run returned
    (a write whose batch failed runs again alone)."""

    __slots__ = ("call", "result")

    def __init__(self, call: Callable[[], T]) -> None:
        self.call = call

    def run(self) -> None:
        self.result = self.call()


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
