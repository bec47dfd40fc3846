#!/usr/bin/env python
"""Benchmarks for the key lifecycle: proactive refresh and resharing, 3 and 5 parties, ECDSA and FROST.

    python benchmarks/bench_lifecycle.py             # protocol CPU per party (in process), ~3 minutes on 2 cores
    python benchmarks/bench_lifecycle.py --quick     # smoke run, under a minute
    python benchmarks/bench_lifecycle.py --runtime   # also wall time on an embedded Ray cluster (~3 more minutes)

Prints a Markdown report and writes it to benchmarks/results/lifecycle-<date>.md (-quick with --quick).

How the numbers are taken: the protocols run in one process through the per-party CPU driver of
bench_ecdsa.py (`drive`, the same delivery as `sim.run_parties`), so each party's `time.process_time()` is its
own. ECDSA refresh includes the new aux info (Pi-prm, Pi-mod, Pi-fac) with TEST ONLY fixture Paillier keys, so
safe-prime generation is not in these numbers (BENCHMARKS.md has its own table: add two primes per party).
ECDSA resharing is the resharing session among dealers and new committee plus the aux-info session among the new
committee. The runtime section is the wall time of `MpcClient.refresh_key` / `reshare_key` on a local cluster
(holders in separate processes on this machine, fresh safe primes made by the holders, everything included:
sessions, confirmations, commit, pool drop).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.bench_ecdsa import drive, machine_info, source_state  # noqa: E402
from mpc_ray import sim  # noqa: E402
from mpc_ray.crypto.frost_suites import SECP256K1, get_suite  # noqa: E402
from mpc_ray.crypto.params import level as as_level  # noqa: E402
from mpc_ray.protocols.ecdsa.aux_info import AuxInfoParty  # noqa: E402
from mpc_ray.protocols.ecdsa.refresh import RefreshParty  # noqa: E402
from mpc_ray.protocols.reshare import OldCommittee, ReshareParty  # noqa: E402
from mpc_ray.sim import run_keygen  # noqa: E402
from tests.support.primes import fixture_paillier_key  # noqa: E402  (TEST ONLY keys)


def _sid(tag: str) -> bytes:
    return tag.encode() + b":" + secrets.token_bytes(16)


def per_party(cpu: dict[int, list[float]]) -> list[float]:
    return [sum(v) for v in cpu.values()]


def ecdsa_refresh(level: str, n: int, t: int, reps: int) -> list[dict]:
    lv = as_level(level)
    ids = list(range(1, n + 1))
    key = sim.keygen(parties=n, threshold=t, security=level,
                     paillier_keys={i: fixture_paillier_key(level, i - 1) for i in ids})
    runs = []
    for _ in range(reps):
        sid = _sid("refresh")
        machines = {i: RefreshParty(sid, key.shares[i], key.aux[i], lv, fixture_paillier_key(level, n + i - 1),
                                    epoch=1, allow_test_keys=True) for i in ids}
        out, cpu, wall = drive(machines)
        assert all(o.key.public_key == key.public_point for o in out.values())
        runs.append({"cpu": per_party(cpu), "wall": wall})
    return runs


def reshare_session(group, old: OldCommittee, shares: dict[int, int], dealers, new_parties, t2):
    sid = _sid("reshare")
    machines = {i: ReshareParty(sid, i, group=group, old=old, dealers=dealers, new_parties=new_parties,
                                new_threshold=t2, epoch=1, share=shares.get(i))
                for i in sorted(set(dealers) | set(new_parties))}
    out, cpu, wall = drive(machines)
    assert all(o.public_key == old.public_key for o in out.values())
    return cpu, wall


def ecdsa_reshare(level: str, old_n: int, t: int, new_n: int, t2: int, reps: int) -> list[dict]:
    lv = as_level(level)
    shares = run_keygen(list(range(1, old_n + 1)), t)
    s = shares[1]
    old = OldCommittee(s.public_key, t, dict(s.public_shares))
    new_parties = list(range(1, new_n + 1))
    runs = []
    for _ in range(reps):
        cpu, wall = reshare_session(SECP256K1, old, {i: shares[i].x for i in shares}, list(shares), new_parties, t2)
        sid = _sid("aux")
        aux = {i: AuxInfoParty(sid, i, new_parties, lv, fixture_paillier_key(level, i - 1), allow_test_keys=True)
               for i in new_parties}
        _, aux_cpu, aux_wall = drive(aux)
        total = {i: sum(cpu.get(i, [])) + sum(aux_cpu.get(i, [])) for i in sorted(set(cpu) | set(aux_cpu))}
        runs.append({"cpu": list(total.values()), "wall": wall + aux_wall, "reshare_cpu": per_party(cpu)})
    return runs


def frost_runs(scheme: str, old_n: int, t: int, new_n: int, t2: int, reps: int) -> list[dict]:
    key = sim.keygen(scheme, parties=old_n, threshold=t)
    pub = key.public_package
    old = OldCommittee(pub.group_key, t, dict(pub.verifying_shares))
    shares = {i: key.outputs[i].key_package.signing_share for i in key.parties}
    runs = []
    for _ in range(reps):
        cpu, wall = reshare_session(get_suite(scheme).group, old, shares, list(key.parties),
                                    list(range(1, new_n + 1)), t2)
        runs.append({"cpu": per_party(cpu), "wall": wall})
    return runs


def summarise(runs: list[dict]) -> tuple[float, float, float, float, float]:
    """(median per-party CPU s, min, max over parties and runs, median sum over parties s, median wall s)."""
    cpus = [c for r in runs for c in r["cpu"]]
    return (statistics.median(cpus), min(cpus), max(cpus), statistics.median(sum(r["cpu"]) for r in runs),
            statistics.median(r["wall"] for r in runs))


def runtime_section(log) -> list[str]:
    import coincurve

    import mpc_ray

    digest = hashlib.sha256(b"bench").digest()
    rows = []
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=4) as mpc:
        for scheme in ("ecdsa-secp256k1", "eddsa-ed25519"):
            key = mpc.create_key(scheme)
            mpc.sign(key.key_id, digest)
            t0 = time.perf_counter()
            mpc.refresh_key(key.key_id)
            rows.append((scheme, "refresh 2-of-3", time.perf_counter() - t0))
            log(f"runtime {scheme} refresh {rows[-1][2]:.1f}s")
        t0 = time.perf_counter()
        mpc.add_node(4, 5)
        rows.append(("-", "add two nodes (directories, committee aux info among 5)", time.perf_counter() - t0))
        for key_id, scheme in ((k, v["scheme"] if "scheme" in v else "ecdsa-secp256k1")
                               for k, v in mpc.status()["keys"].items()):
            t0 = time.perf_counter()
            mpc.reshare_key(key_id, parties=[1, 2, 3, 4, 5], threshold=3)
            rows.append((scheme, "reshare 2-of-3 -> 3-of-5", time.perf_counter() - t0))
            log(f"runtime {scheme} reshare {rows[-1][2]:.1f}s")
            t0 = time.perf_counter()
            mpc.refresh_key(key_id)
            rows.append((scheme, "refresh 3-of-5", time.perf_counter() - t0))
            log(f"runtime {scheme} refresh5 {rows[-1][2]:.1f}s")
            if scheme == "ecdsa-secp256k1":
                sig = mpc.sign(key_id, digest)
                pk = bytes.fromhex(mpc.status()["keys"][key_id]["public_key"])
                assert coincurve.PublicKey(pk).verify(sig.der(), digest, hasher=None)
    out = ["### Runtime: wall time on an embedded Ray cluster (level 112, fresh safe primes)", "",
           "| scheme | operation | wall s |", "|---|---|---|"]
    out += [f"| {s} | {op} | {w:.1f} |" for s, op, w in rows]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runtime", action="store_true")
    ap.add_argument("--only-runtime", action="store_true", help="the runtime section alone")
    args = ap.parse_args()
    args.runtime = args.runtime or args.only_runtime
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    started = _dt.datetime.now(_dt.timezone.utc)
    src = source_state()
    load0 = os.getloadavg()
    reps = 1 if args.quick else 3
    levels = ["112"] if args.quick else ["112", "128"]
    rows = []
    for level in ([] if args.only_runtime else levels):
        for n, t in ((3, 2), (5, 3)):
            r = ecdsa_refresh(level, n, t, reps if level == "112" else max(1, reps - 1))
            rows.append(("ECDSA", level, f"refresh {t}-of-{n} (+ new aux info)", r))
            log(f"ecdsa refresh {level} n={n}: {summarise(r)}")
        for (n, t), (n2, t2) in (((3, 2), (3, 2)), ((3, 2), (5, 3)), ((5, 3), (5, 3))):
            r = ecdsa_reshare(level, n, t, n2, t2, reps if level == "112" else max(1, reps - 1))
            rows.append(("ECDSA", level, f"reshare {t}-of-{n} -> {t2}-of-{n2} (+ aux info of the new committee)", r))
            log(f"ecdsa reshare {level} {n}->{n2}: {summarise(r)}")
    for scheme in ([] if args.only_runtime else ("eddsa-ed25519", "schnorr-bip340")):
        for (n, t), (n2, t2), what in (((3, 2), (3, 2), "refresh"), ((5, 3), (5, 3), "refresh"),
                                       ((3, 2), (5, 3), "reshare")):
            r = frost_runs(scheme, n, t, n2, t2, reps * 3)
            label = f"{what} {t}-of-{n}" + (f" -> {t2}-of-{n2}" if what == "reshare" else "")
            rows.append((scheme, "-", label, r))
            log(f"{scheme} {label}: {summarise(r)}")
    runtime = runtime_section(log) if args.runtime else []
    elapsed = (_dt.datetime.now(_dt.timezone.utc) - started).total_seconds()
    L = [f"# Key lifecycle benchmark ({'quick' if args.quick else 'full'} run)", "",
         f"Run {started:%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s; load average {load0[0]:.2f} at start, "
         f"{os.getloadavg()[0]:.2f} at end (2 cores shared with other work).", "", *machine_info(src), "",
         "## Protocol CPU per party (in process; TEST ONLY fixture Paillier keys, no safe-prime generation)", "",
         "| scheme | level | operation | runs | CPU per party s, median (min-max) | all parties CPU s "
         "| of which the resharing session, per party s | wall s (one process) |",
         "|---|---|---|---|---|---|---|---|"]
    for scheme, level, op, r in rows:
        med, lo, hi, total, wall = summarise(r)
        own = (f"{statistics.median(c for x in r for c in x['reshare_cpu']):.3f}" if "reshare_cpu" in r[0]
               else "-")
        L.append(f"| {scheme} | {level} | {op} | {len(r)} | {med:.3f} ({lo:.3f}-{hi:.3f}) | {total:.2f} | {own} "
                 f"| {wall:.2f} |")
    L += ["", "On separate nodes the parties work in parallel, so a refresh or resharing takes about the largest "
          "per-party CPU plus the network round trips (four message rounds each; ECDSA resharing three plus the "
          "four of aux info). The wall column runs every party one after the other in this one process, on a "
          "shared machine: it is at least the all-parties CPU and, under load, much more.", ""]
    L += runtime
    report = "\n".join(L) + "\n"
    print(report)
    suffix = "-runtime" if args.only_runtime else ("-quick" if args.quick else "")
    out = REPO / "benchmarks" / "results" / f"lifecycle-{started:%Y-%m-%d}{suffix}.md"
    out.write_text(report)
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
