"""Process settings for the long-lived actors on the signing path (share holders, the coordinator)."""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 10_000  # allocations between young collections (CPython's default is 700)


def in_ray_actor() -> bool:
    """True inside a Ray actor process (not in a driver, a test process or a notebook)."""
    try:
        import ray

        return ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None
    except Exception:  # noqa: BLE001 - no Ray context at all
        return False


def settle_gc_for_latency() -> None:
    """Call once, at the end of an actor's start-up. What exists by then (modules, Ray's state, keys, ledgers) lives
    as long as the process, yet every full collection walks all of it: tens of milliseconds in the middle of a
    signature on a Ray worker. Freeze it out of the collector's reach and collect the young generation less often;
    cyclic garbage made later is still collected. Only inside a Ray actor: a driver or a test keeps its settings."""
    if not in_ray_actor():
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
