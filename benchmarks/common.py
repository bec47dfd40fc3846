"""Helpers shared by the benchmark scripts: machine description and percentiles."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pct(values, q):
    """The q-th percentile (nearest rank) of `values`."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def sign_latencies(mpc, key_id: str, n: int, tag: bytes, pause: float = 0.002) -> list[float]:
    """Seconds of each of `n` single `mpc.sign` calls on distinct digests, one at a time with `pause` between them."""
    import hashlib
    import time

    out = []
    for i in range(n):
        digest = hashlib.sha256(tag + b" %d" % i).digest()
        t = time.perf_counter()
        mpc.sign(key_id, digest)
        out.append(time.perf_counter() - t)
        time.sleep(pause)
    return out
