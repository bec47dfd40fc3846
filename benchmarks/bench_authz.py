"""What operator authorization costs: one-hop `sign` latency and `sign_many` throughput on the embedded 2-of-3
cluster, and a holder's per-signature work in process against the Ed25519 verify it needs.

    python benchmarks/bench_authz.py ray [--n 150] [--batch 256] [--isolation actor|process]
    python benchmarks/bench_authz.py holder [--n 300]

Both modes use only the public API (`mpc.sign`, `mpc.sign_many`) or detect the holder's API, so the same script
measures a tree from before operator requests existed: run it with ``PYTHONPATH=<that tree>`` right before or after
this one, on the same machine, and compare (BENCHMARKS.md records such a pair). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cpu_model, pct  # noqa: E402


def bench_ray(n: int, batch: int, isolation: str | None = None) -> dict:
    import mpc_ray

    # pools deep enough that neither phase takes one below low water: no presigning runs while a phase is timed
    depth = max(2 * n, batch + 24)
    extra = {} if isolation is None else {"isolation": isolation}  # older trees have no isolation argument
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=depth,
                               pool_low_water=4, workers_per_node=1, **extra) as mpc:
        key = mpc.create_key("ecdsa-secp256k1")
        mpc.wait_for_pools(key.key_id, depth, timeout=3600)
        for i in range(3):  # first calls pay imports and the lease fetch
            mpc.sign(key.key_id, hashlib.sha256(b"warm %d" % i).digest())
        time.sleep(1.0)
        lat = []
        for i in range(n):
            d = hashlib.sha256(b"lat %d" % i).digest()
            t = time.perf_counter()
            mpc.sign(key.key_id, d)
            lat.append(time.perf_counter() - t)
            time.sleep(0.003)
        rates = []
        for rep in range(3):  # each batch from the fullest pool
            ds = [hashlib.sha256(b"batch %d %d" % (rep, i)).digest() for i in range(batch)]
            t = time.perf_counter()
            sigs = mpc.sign_many(key.key_id, ds)
            rates.append(batch / (time.perf_counter() - t))
            assert len(sigs) == batch
    return {"one_hop_p50_ms": 1e3 * pct(lat, 50), "one_hop_p90_ms": 1e3 * pct(lat, 90),
            "sign_many_per_s": statistics.median(rates), "sign_many_rates": rates}


def bench_holder(n: int) -> dict:
    """A 2-of-3 committee of in-process holders (fixture primes); per call of one holder: a single-digest sign and,
    per signature, a batch of 64; beside them the Ed25519 verify and sign of a request of that size."""
    import nacl.signing

    from mpc_ray.coordinator.sessions import finished, new_sid, route
    from mpc_ray.node.holder import BeginRequest, ShareHolder
    from mpc_ray.protocols.ecdsa import aux_info
    from mpc_ray.protocols.ecdsa.presign import PresignaturePublic
    from mpc_ray.protocols.wire import decode

    import mpc_ray

    sys.path.insert(0, str(Path(mpc_ray.__file__).resolve().parent.parent))  # the tree under test, its fixtures
    from tests.support.committee import FixturePrimes

    aux_info.generate_keypair = FixturePrimes()
    new_api = "request" in inspect.signature(ShareHolder.partial_sign).parameters
    root = Path(tempfile.mkdtemp(prefix="bench-authz-"))
    holders = {i: ShareHolder(i, str(root / f"p{i}"), kdf="min") for i in (1, 2, 3)}
    ids = [h.public_identity() for h in holders.values()]
    for h in holders.values():
        h.set_directory(ids)
    creds = None
    if new_api:
        from mpc_ray.client.credentials import Credentials

        creds = Credentials.generate()
        for h in holders.values():
            h.bootstrap_principals(creds.registry().to_bytes())

    grants = None  # the coordinator's session grants, where the holders need them (requests/grants.py)
    if "grant" in inspect.signature(ShareHolder.begin).parameters:
        from mpc_ray.requests.grants import GrantSigner

        grants = GrantSigner.generate()
        for h in holders.values():
            h.set_directory(ids, grants.verify_key)

    def run(protocol, parties, params, count=1):
        sids = [new_sid(protocol) for _ in range(count)]
        reqs = [BeginRequest(protocol, s, parties, params) for s in sids]
        extra = () if grants is None else (grants.for_begin(reqs, time.time()),)
        res = {i: holders[i].begin(reqs, *extra) for i in parties}
        while (done := finished(parties, sids, res)) is None:
            inputs = route(parties, sids, res)
            res = {i: holders[i].step(inputs[i]) for i in parties}
        return done

    run("aux", [1, 2, 3], {"level": "112"})
    params = {"key_id": "k1", "threshold": 2}
    if new_api:
        from mpc_ray.node.principals import RequestKind

        params["approval"] = creds.admin_request(RequestKind.CREATE_KEY, {"key_id": "k1", "scheme": "ecdsa-secp256k1",
                                                                          "threshold": 2, "parties": [1, 2, 3]})
    run("keygen", [1, 2, 3], params)
    if new_api:
        for h in holders.values():
            h.set_policy(creds.operator_policy_request("k1"))
    batch = 64
    total = n + batch * 3
    pubs = []
    while len(pubs) < total:
        out = run("presign", [1, 2], {"key_id": "k1"}, count=min(16, total - len(pubs)))
        pubs += [decode(next(iter(r.values())), PresignaturePublic) for r in out.values()]
    h = holders[1]

    def sign(pids, digests):
        if new_api:
            request = creds.operator_request("k1", digests)
            return h.partial_sign(request, list(enumerate(pids)))
        return h.partial_sign("k1", list(zip(pids, digests)))

    single = []
    for i in range(n):
        d = hashlib.sha256(b"one %d" % i).digest()
        t = time.perf_counter()
        sign([pubs[i].presignature_id], [d])
        single.append(time.perf_counter() - t)
        time.sleep(0.002)  # requests arrive one at a time, not in a hot loop
    per_sig = []
    for rep in range(3):
        chunk = pubs[n + rep * batch: n + (rep + 1) * batch]
        ds = [hashlib.sha256(b"b %d %d" % (rep, i)).digest() for i in range(batch)]
        t = time.perf_counter()
        sign([p.presignature_id for p in chunk], ds)
        per_sig.append((time.perf_counter() - t) / batch)
    sk = nacl.signing.SigningKey.generate()
    body = b"x" * 42
    signed = sk.sign(body)
    ver = []
    for _ in range(2000):
        t = time.perf_counter()
        sk.verify_key.verify(signed)
        ver.append(time.perf_counter() - t)
    return {"api": "operator request" if new_api else "unauthenticated", "sign_one_p50_ms": 1e3 * pct(single, 50),
            "per_sig_in_batch_of_64_us": 1e6 * statistics.median(per_sig), "ed25519_verify_us": 1e6 * pct(ver, 50)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("ray", "holder"))
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--isolation", choices=("actor", "process"),
                    help="ray mode: the holders in their actors or in vault processes behind proxies")
    args = ap.parse_args()
    out = bench_ray(args.n, args.batch, args.isolation) if args.mode == "ray" else bench_holder(args.n)
    if args.isolation:
        out["isolation"] = args.isolation
    import mpc_ray

    out.update(mode=args.mode, tree=str(Path(mpc_ray.__file__).parent.parent), cpu=cpu_model(),
               cores=os.cpu_count(), when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
