"""Load generation against a committee: what `mpc-ray bench`, notebooks/load_test.ipynb and benchmarks use.

`run_load` signs with `concurrency` client threads (each waits for its signature before asking for the next, so
concurrency is the number of requests in flight) and records one `Sample` per request; `ramp` runs it at rising
concurrency levels; `windows` turns samples into throughput and latency percentiles per time window; `PoolSampler`
records pool depths in the background.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence


@dataclass
class Sample:
    start_s: float  # since the run's start
    latency_s: float
    ok: bool
    concurrency: int
    error: str | None = None  # the error's type name


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))]


def run_load(client, key_id: str, *, concurrency: int, n: int | None = None, duration_s: float | None = None,
             t0: float | None = None, stop: threading.Event | None = None,
             on_sample: Callable[[Sample], None] | None = None, digest_prefix: bytes = b"load") -> list[Sample]:
    """Sign `n` digests (or for `duration_s`) with `concurrency` requests in flight; one Sample per request."""
    if (n is None) == (duration_s is None):
        raise ValueError("give exactly one of n and duration_s")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    t0 = time.perf_counter() if t0 is None else t0
    deadline = None if duration_s is None else time.perf_counter() + duration_s
    counter = itertools.count()
    lock = threading.Lock()
    samples: list[Sample] = []
    nonce = time.time_ns().to_bytes(8, "big")

    def worker() -> None:
        while True:
            if stop is not None and stop.is_set():
                return
            if deadline is not None and time.perf_counter() >= deadline:
                return
            with lock:
                i = next(counter)
            if n is not None and i >= n:
                return
            digest = hashlib.sha256(digest_prefix + nonce + i.to_bytes(8, "big")).digest()
            s0 = time.perf_counter()
            try:
                client.sign(key_id, digest)
                sample = Sample(s0 - t0, time.perf_counter() - s0, True, concurrency)
            except Exception as exc:  # noqa: BLE001 - a failed request is a data point, not the end of the run
                sample = Sample(s0 - t0, time.perf_counter() - s0, False, concurrency, type(exc).__name__)
            with lock:
                samples.append(sample)
            if on_sample is not None:
                on_sample(sample)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(samples, key=lambda s: s.start_s)


def ramp(client, key_id: str, levels: Sequence[int], step_s: float, *, t0: float | None = None,
         at_step: Callable[[int, int], None] | None = None, **kw: Any) -> list[Sample]:
    """run_load for `step_s` seconds at each concurrency level in turn; `at_step(index, level)` runs before each."""
    t0 = time.perf_counter() if t0 is None else t0
    out: list[Sample] = []
    for idx, level in enumerate(levels):
        if at_step is not None:
            at_step(idx, level)
        out += run_load(client, key_id, concurrency=level, duration_s=step_s, t0=t0, **kw)
    return out


def summary(samples: Sequence[Sample], wall_s: float | None = None) -> dict[str, Any]:
    ok = [s.latency_s for s in samples if s.ok]
    span = wall_s if wall_s is not None else (
        max((s.start_s + s.latency_s for s in samples), default=0.0) - min((s.start_s for s in samples), default=0.0))
    return {
        "requests": len(samples),
        "errors": sum(not s.ok for s in samples),
        "throughput_per_s": round(len(ok) / span, 2) if span > 0 else 0.0,
        "p50_ms": round(percentile(ok, 50) * 1e3, 2),
        "p95_ms": round(percentile(ok, 95) * 1e3, 2),
        "p99_ms": round(percentile(ok, 99) * 1e3, 2),
        "max_ms": round(max(ok, default=float("nan")) * 1e3, 2),
    }


def windows(samples: Sequence[Sample], width_s: float = 1.0) -> list[dict[str, Any]]:
    """Per window of `width_s` (by completion time): throughput, p50/p95/p99 latency, errors, concurrency."""
    if not samples:
        return []
    end = max(s.start_s + s.latency_s for s in samples)
    rows = []
    for w in range(int(end // width_s) + 1):
        lo, hi = w * width_s, (w + 1) * width_s
        inside = [s for s in samples if lo <= s.start_s + s.latency_s < hi]
        ok = [s.latency_s for s in inside if s.ok]
        rows.append({
            "t_s": hi,
            "throughput_per_s": len(ok) / width_s,
            "p50_ms": percentile(ok, 50) * 1e3,
            "p95_ms": percentile(ok, 95) * 1e3,
            "p99_ms": percentile(ok, 99) * 1e3,
            "errors": sum(not s.ok for s in inside),
            "concurrency": max((s.concurrency for s in inside), default=0),
        })
    return rows


class PoolSampler:
    """Records (t, {pool: depth}) every `every_s` seconds in a background thread until stopped."""

    def __init__(self, client, key_id: str, every_s: float = 0.5, t0: float | None = None) -> None:
        self.client, self.key_id, self.every_s = client, key_id, every_s
        self.t0 = time.perf_counter() if t0 is None else t0
        self.points: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PoolSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                depths = {k: v for k, v in self.client.pool_depths().items() if k.startswith(self.key_id + ":")}
                self.points.append((time.perf_counter() - self.t0, depths))
            except Exception:  # noqa: BLE001 - the coordinator may be busy or restarting; the gap shows in the plot
                pass
            self._stop.wait(self.every_s)


def samples_as_dicts(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    return [asdict(s) for s in samples]
