#!/usr/bin/env python
"""Run every fuzz harness of tests/fuzz/harnesses.py for a set time and print a Markdown table of executions and
failures per harness.

    python benchmarks/fuzz.py --seconds 20            # each harness 20 s
    python benchmarks/fuzz.py --seconds 60 --only envelope,wire

Each harness runs Hypothesis' generator (no shrinking, no example database) until its time is up; a failure (an
input the decoder neither accepted nor refused with its documented error, or one slower than the time bound) is
counted, its first message kept, and the search goes on. Exit status 1 if anything failed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# solders panics (documented, refused as InvalidInput) on some Solana instructions; one line each on stderr is enough
os.environ["RUST_BACKTRACE"] = "0"

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from tests.fuzz.harnesses import HARNESSES, TIME_BOUND_S, Harness, check  # noqa: E402


class _TimeUp(Exception):
    pass


def run(h: Harness, seconds: float) -> dict:
    """Fuzz `h` for `seconds`: executions, accepted, failures and the first failure's message."""
    stats = {"executions": 0, "accepted": 0, "failures": 0, "first": ""}
    strategy = h.inputs()
    end = time.monotonic() + seconds

    @settings(max_examples=10**9, deadline=None, database=None, phases=(Phase.generate,),
              suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False)
    @given(strategy)
    def one(value):
        if time.monotonic() >= end:
            raise _TimeUp
        stats["executions"] += 1
        stats["accepted"] += check(h, value)

    while time.monotonic() < end:
        try:
            one()
        except _TimeUp:
            break
        except Exception as exc:  # noqa: BLE001 - a finding: count it, keep the first, search on
            stats["failures"] += 1
            if not stats["first"]:
                stats["first"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        else:
            break  # Hypothesis ran out of distinct inputs: the space is exhausted
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="time per harness")
    ap.add_argument("--only", default="", help="comma-separated harness names")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(HARNESSES)
    unknown = sorted(set(names) - set(HARNESSES))
    if unknown:
        ap.error(f"unknown harness(es) {unknown}; known: {sorted(HARNESSES)}")
    rows, failed = [], 0
    for name in names:
        h = HARNESSES[name]
        for seed in h.seeds():  # the harness must start from inputs the decoder takes
            assert check(h, seed), f"{name}: a seed was refused"
        started = time.monotonic()
        stats = run(h, args.seconds)
        wall = time.monotonic() - started
        failed += stats["failures"]
        rows.append((name, h.target, stats, wall))
        print(f"{name}: {stats['executions']} executions, {stats['failures']} failures", file=sys.stderr)
    print(f"# Fuzzing the decoders of hostile input ({args.seconds:g} s per harness)\n")
    print(f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.python_implementation()} "
          f"{platform.python_version()}, {os.cpu_count()} cores; time bound per input {TIME_BOUND_S:g} s\n")
    print("| harness | entry point | executions | exec/s | accepted | failures | first failure |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, target, s, wall in rows:
        first = s["first"].replace("|", "\\|") or "-"
        print(f"| {name} | {target} | {s['executions']} | {s['executions'] / max(wall, 1e-9):.0f} | "
              f"{s['accepted']} | {s['failures']} | {first} |")
    total = sum(s["executions"] for _, _, s, _ in rows)
    print(f"\n{total} executions in all, {failed} failures.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
