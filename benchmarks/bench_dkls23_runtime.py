"""DKLs23 against CGGMP21 on the embedded 2-of-3 cluster: key creation (with DKLs23's pairwise setup), the
presigning rate of the runtime's pools, one-hop `sign` latency and one `sign_many` of 64.

    python benchmarks/bench_dkls23_runtime.py [--depth 48] [--n 40]

Level 112 (CGGMP21's aux info is made when the cluster starts, before the timed key creation); each protocol's
pools are filled from empty to `--depth` for each of the 3 signer sets and the fill is timed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cpu_model, pct

import mpc_ray


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=48)
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu_model()}, {os.cpu_count()} cores")
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=args.depth,
                               pool_low_water=4) as mpc:
        for protocol in ("dkls23", "cggmp21"):
            t = time.perf_counter()
            key = mpc.create_key("ecdsa-secp256k1", protocol=protocol)
            created = time.perf_counter() - t
            t = time.perf_counter()
            mpc.wait_for_pools(key.key_id, args.depth, timeout=1800)
            filled = time.perf_counter() - t
            for i in range(3):  # first calls pay imports and the lease fetch
                mpc.sign(key.key_id, hashlib.sha256(b"warm %d" % i).digest())
            lat = []
            for i in range(args.n):
                t = time.perf_counter()
                mpc.sign(key.key_id, hashlib.sha256(b"one %d" % i).digest())
                lat.append(1e3 * (time.perf_counter() - t))
            t = time.perf_counter()
            mpc.sign_many(key.key_id, [hashlib.sha256(b"many %d" % i).digest() for i in range(64)])
            batch = 64 / (time.perf_counter() - t)
            print(f"{protocol}: create_key {created:.2f} s; pools to {args.depth} for 3 signer sets in {filled:.1f} s "
                  f"= {3 * args.depth / filled:.1f} presignatures/s; one-hop sign p50 {pct(lat, 50):.2f} / p90 "
                  f"{pct(lat, 90):.2f} ms; sign_many of 64 {batch:,.0f}/s", flush=True)


if __name__ == "__main__":
    main()
