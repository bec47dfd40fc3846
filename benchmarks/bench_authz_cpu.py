"""CPU per one-hop signature and per `sign_many` signature, summed over the driver and the holder processes (steadier
than wall time on a shared machine), plus the one-hop wall p50. Only the public API and the holders' process CPU
(read inside each holder actor with `__ray_call__`), so the same script measures an older tree put first on
PYTHONPATH; run the trees alternately, each at the same `nice` level. Prints one JSON line.

    python benchmarks/bench_authz_cpu.py [--n 100] [--batch 128]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def _process_cpu(actor) -> float:
    """Run inside a holder actor: that process's CPU seconds so far (all its threads)."""
    return time.process_time()


def main() -> None:
    import ray

    import mpc_ray

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    depth = max(args.n, args.batch) + 40
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=depth,
                               pool_low_water=4, workers_per_node=1) as mpc:
        key = mpc.create_key("ecdsa-secp256k1")
        mpc.wait_for_pools(key.key_id, depth, timeout=3600)
        for i in range(3):  # first calls pay imports and the lease fetch
            mpc.sign(key.key_id, hashlib.sha256(b"warm %d" % i).digest())
        mpc.sign_many(key.key_id, [hashlib.sha256(b"warm batch %d" % i).digest() for i in range(8)])
        holders = [ray.get_actor(f"mpc-holder-{p}") for p in (1, 2, 3)]
        time.sleep(1.0)

        def measure(call, count: int) -> tuple[float, float, list[float]]:
            before = ray.get([h.__ray_call__.remote(_process_cpu) for h in holders])
            driver = time.process_time()
            walls = []
            for i in range(count):
                t = time.perf_counter()
                call(i)
                walls.append(time.perf_counter() - t)
            driver = time.process_time() - driver
            after = ray.get([h.__ray_call__.remote(_process_cpu) for h in holders])
            return driver, sum(b - a for a, b in zip(before, after)), walls

        d, h, w = measure(lambda i: mpc.sign(key.key_id, hashlib.sha256(b"one hop %d" % i).digest()), args.n)
        out = {"one_hop_driver_cpu_ms": d / args.n * 1e3, "one_hop_holders_cpu_ms": h / args.n * 1e3,
               "one_hop_wall_p50_ms": statistics.median(w) * 1e3}
        digests = [hashlib.sha256(b"batch %d" % i).digest() for i in range(args.batch)]
        d, h, w = measure(lambda i: mpc.sign_many(key.key_id, digests), 1)
        out.update(batch_driver_cpu_us=d / args.batch * 1e6, batch_holders_cpu_us=h / args.batch * 1e6,
                   batch_wall_ms=w[0] * 1e3, tree=os.environ.get("PYTHONPATH") or ".",
                   when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
