"""Garbage-collector policy for a serving process: freeze what start-up built, collect the young less often.

A server process imports a great deal (FastAPI, pydantic, SQLAlchemy, LangGraph, the OpenAI SDK):
about 280,000 tracked objects after start-up, none of which ever become garbage. CPython's full
(generation 2) collection walks every one of them, which took 130-380 ms on the bench machine;
it runs whenever the objects that survived younger collections grow by a quarter, e.g. after a
few thousand runs, and every request in flight waits for it (issue 16: ``GET /workflows/{id}``
p99 at 134 ms right after B3, 2.4 ms on a fresh server). ``gc.freeze()`` moves them to the
permanent generation, which collections never scan.

Generation 0 is collected after 700 net allocations by default: under a stream of submits
that is ~0.5 collections per request, each examining the young objects of the requests in
flight. 10,000 keeps each collection's work about the same per object and runs it 14 times less
often (measured: GC CPU per submit 0.031 → 0.007 ms with the freeze).

Start-up itself runs with the collector off (``hold``, from ``backend.serving``): importing and
building the app allocates ~195,000 container objects, ~125,000 of which stay alive, and the
young and full collections that walked them as they piled up were ~13 % of start-up's CPU
(~90 ms of ~700 on the bench machine). The rest is garbage in cycles worth ~1 MB (measured:
peak RSS with and without the collector); ``settle`` freezes it with everything else, once,
and turns the collector back on.

Only the serving processes apply this (``create_app_from_env``, and ``agentflow worker``): a
test process that builds many apps must not freeze each test's leftovers. The workflow stack
loads on first use (``backend.runs.stack``), after start-up: its modules are frozen then
(``refreeze``), in a process that settled.
"""

from __future__ import annotations

import gc

__all__ = ["GEN0_THRESHOLD", "hold", "refreeze", "release", "settle"]

GEN0_THRESHOLD = 10_000
_settled = False


def hold() -> None:
    """Turn the collector off while a server process starts; ``settle`` (or ``release``) turns it on."""
    gc.disable()


def release() -> None:
    """Turn the collector back on without freezing (a process that will not settle)."""
    gc.enable()


def settle() -> None:
    """Freeze every object alive now, raise the young-generation threshold and turn the collector
    on (call once, after start-up)."""
    global _settled
    _settled = True
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(GEN0_THRESHOLD, gen0), gen1, gen2)
    gc.enable()


def refreeze() -> None:
    """Freeze what is alive now too (a large, long-lived addition: the workflow stack), if this process settled."""
    if _settled:
        gc.freeze()
