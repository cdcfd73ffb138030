"""Group commit: writes that arrive together share one transaction; each caller awaits its own.

Under load many runs write at once (a submitted record, a checkpoint), and one transaction for
all of them costs about what one costs. ``GroupCommit`` queues each write and one task commits
everything queued so far; what arrives meanwhile makes the next batch. Every caller awaits the
commit that holds its write, so nobody goes on before its write is stored. A batch that fails
with one of ``retry_alone_on`` is committed again write by write, so only a bad write fails (a
reused Idempotency-Key must not refuse the submits it was batched with); any other error fails
the whole batch.

Used by the store's inserts and both checkpointers (the SQLite one commits each batch inline on
the loop: ``backend.runs.sqlite_checkpoints``).

Written by hand because it is a list, one task and a future per write: no asyncio library
offers it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit", "settle"]

W = TypeVar("W")


class GroupCommit(Generic[W]):
    """Commits queued writes in batches with ``commit`` (which gets one or more writes)."""

    def __init__(
        self,
        commit: Callable[[Sequence[W]], Awaitable[None]],
        *,
        name: str,
        retry_alone_on: tuple[type[Exception], ...] = (Exception,),
    ) -> None:
        self._commit = commit
        self._name = name
        self._retry_alone_on = retry_alone_on
        self._pending: list[tuple[W, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        #: Batches committed whole (writes retried alone are not counted).
        self.batches = 0

    async def __call__(self, write: W) -> None:
        """Queue ``write`` for the next batch and wait until its batch is committed (or it failed)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((write, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self._name)
        await done

    async def _run(self) -> None:
        await asyncio.sleep(0)  # one more turn of the loop: the writes made in it join the first batch
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._commit([write for write, _ in batch])
            except self._retry_alone_on:
                for write, done in batch:
                    try:
                        await self._commit([write])
                    except Exception as error:  # handed to its caller, who re-raises it
                        settle(done, error)
                    else:
                        settle(done, None)
            except Exception as error:
                for _, done in batch:
                    settle(done, error)
            else:
                self.batches += 1
                for _, done in batch:
                    settle(done, None)

    async def aclose(self) -> None:
        """Wait for the writes in flight (before what ``commit`` uses is closed)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)


def settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    """Answer a waiting caller, unless it went away."""
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
