"""The serving process's GC policy: start-up objects frozen, young collections less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from backend import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()  # the test process must not keep its own objects out of collections
    gc.set_threshold(*threshold)
    heap._settled = False  # nor freeze again when a later test loads a workflow stack


@pytest.mark.usefixtures("restored_gc")
def test_settle_freezes_what_is_alive_and_raises_the_young_threshold() -> None:
    alive = {"built": ["at start-up"]}
    assert any(obj is alive for obj in gc.get_objects())
    heap.settle()
    # In the permanent generation: no collection walks it any more.
    assert gc.get_freeze_count() > 0
    assert not any(obj is alive for obj in gc.get_objects())
    assert gc.get_threshold()[0] == heap.GEN0_THRESHOLD


@pytest.mark.usefixtures("restored_gc")
def test_settle_keeps_a_higher_threshold() -> None:
    gc.set_threshold(50_000, 10, 10)
    heap.settle()
    assert gc.get_threshold() == (50_000, 10, 10)


@pytest.mark.usefixtures("restored_gc")
def test_refreeze_freezes_later_objects_only_in_a_settled_process() -> None:
    heap.refreeze()
    assert gc.get_freeze_count() == 0  # not settled: nothing frozen
    heap.settle()
    later = {"loaded": ["after start-up"]}
    assert any(obj is later for obj in gc.get_objects())
    heap.refreeze()
    assert not any(obj is later for obj in gc.get_objects())
