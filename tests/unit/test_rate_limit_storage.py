"""The in-memory rate-limit storage: slowapi's counting, without a thread started every 10 ms."""

from __future__ import annotations

from limits import parse

from backend.api.middleware._limiter import SweptMemoryStorage, build_limiter


def test_memory_limiter_uses_the_swept_storage() -> None:
    assert isinstance(build_limiter("memory://").limiter.storage, SweptMemoryStorage)


def test_hits_schedule_one_sweep_a_second_not_a_thread_per_10_ms() -> None:
    limiter = build_limiter("memory://").limiter
    storage = limiter.storage
    assert isinstance(storage, SweptMemoryStorage)
    storage.timer.join()  # the 10 ms timer limits' constructor starts
    item = parse("1000/minute")
    assert limiter.hit(item, "key:k", "submit")
    sweep = storage.timer
    # Had limits renamed the hook this class overrides, the hit would have started its own 10 ms timer.
    assert sweep.is_alive() and sweep.interval == SweptMemoryStorage.SWEEP_SECONDS >= 1.0
    assert sweep.daemon  # a pending sweep never holds up the process's exit
    for _ in range(499):
        assert limiter.hit(item, "key:k", "submit")
    assert storage.timer is sweep  # the burst started no other thread
    assert limiter.get_window_stats(item, "key:k", "submit").remaining == 500  # counted as limits counts
    sweep.cancel()


def test_the_limit_still_refuses() -> None:
    limiter = build_limiter("memory://").limiter
    item = parse("3/hour")
    assert [limiter.hit(item, "ip:1.2.3.4", "submit") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit(item, "ip:5.6.7.8", "submit")  # another key, its own bucket


def test_storage_methods_translate_errors_once() -> None:
    """limits wraps the storage methods of every subclass again; ours are MemoryStorage's own."""
    from limits.storage import MemoryStorage

    for name in ("get", "incr", "get_expiry", "check", "reset", "clear"):
        assert getattr(SweptMemoryStorage, name) is getattr(MemoryStorage, name), name
