#!/usr/bin/env python
"""Sustained threshold-ECDSA signatures per second with presigning included: what a user who signs continuously,
with no stock of presignatures, gets. 2-of-3, both signers' work counted.

    python benchmarks/bench_throughput.py                       # in process, wasm peer, Ray (0, 1, 2 workers)
    python benchmarks/bench_throughput.py --quick               # short run
    python benchmarks/bench_throughput.py --no-ray --wasm-dir /tmp/dklswasm

In process, per protocol: setup once (not in the rate), then for every signature a fresh presignature (both
signers, messages through the in-process router) and the online round (both partials, re-randomised, combined and
verified). P worker processes run this loop at once, for P = 1 .. the machine's cores, started together after
their setup: signatures per second is the sum of the workers' rates, CPU per signature their `process_time`.
- cggmp21-112, cggmp21-128: `mpc_ray.protocols.ecdsa` (TEST ONLY fixture Paillier keys, aux-info done in setup);
- dkls23: `mpc_ray.protocols.dkls23` (setup: key generation and the pairwise base-OT setup);
- dkls23-wasm: Silence Laboratories' DKLs23 in WebAssembly (`npm install @silencelaboratories/dkls-wasm-ll-node`
  into --wasm-dir), driven by benchmarks/dkls_wasm_peer.js in Node.js; every one of its signatures is verified here
  with coincurve (s normalised to low-s first, as libsecp256k1 requires). Skipped, and said so, without the package.
Every signature of ours is verified with coincurve too (outside the timed loop).

On the embedded Ray cluster (`mpc_ray.local_cluster`, 2-of-3; cggmp21-112, cggmp21-128 and dkls23): per protocol
first a warm-up key (processes and code paths warmed, `--ray-chunk` signatures, its pools left full), then a fresh
key (empty pools) and `sign_many` in chunks of `--ray-chunk` (default 16) until the count is reached, with 0 (the
holders presign), 1 and 2 presign workers per node; the presignatures come from the background refill (pools
`--ray-chunk` deep, refilled in batches of up to 8) and on-demand presigning during the run. One cluster per level
and worker count: its protocols run one after the other, each after the pools of the keys before it are full again
(their refill idle). CPU there is that of this process and every process under it (the cluster's, Ray's own daemons
included: an upper bound), read from /proc, divided by the signatures plus the presignatures left unused in the
pools at the end.

Prints a Markdown report and writes benchmarks/results/throughput-<date>[-quick].md. The machine is shared: compare
CPU per signature first, the wall-clock rates only within one run.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import cpu_model  # noqa: E402

PROTOCOLS = ("cggmp21-112", "cggmp21-128", "dkls23", "dkls23-wasm")
WASM_JS = Path(__file__).resolve().parent / "dkls_wasm_peer.js"
WASM_PACKAGE = "@silencelaboratories/dkls-wasm-ll-node"


# --------------------------------------------------------------------------------------------------------------
# verification (coincurve), shared by ours and the peer's
# --------------------------------------------------------------------------------------------------------------


def _der_int(x: int) -> bytes:
    b = x.to_bytes(32, "big").lstrip(b"\x00") or b"\x00"
    if b[0] & 0x80:
        b = b"\x00" + b
    return b"\x02" + bytes([len(b)]) + b


def verify_rs(public_key: bytes, digest: bytes, r: int, s: int) -> bool:
    """coincurve (libsecp256k1) verification of (r, s), s taken low (libsecp256k1 refuses a high s)."""
    import coincurve

    from mpc_ray.crypto.secp256k1 import Q

    s = min(s, Q - s)
    body = _der_int(r) + _der_int(s)
    return coincurve.PublicKey(public_key).verify(b"\x30" + bytes([len(body)]) + body, digest, hasher=None)


# --------------------------------------------------------------------------------------------------------------
# one in-process worker: setup, wait for "go", then `count` signatures
# --------------------------------------------------------------------------------------------------------------


def _setup(protocol: str):
    """Returns (sign(digest) -> (r, s), public key bytes)."""
    if protocol.startswith("cggmp21-"):
        from mpc_ray import sim
        from tests.support.primes import fixture_paillier_key  # TEST ONLY keys

        level = protocol.split("-")[1]
        aux = sim.aux_info(3, level, paillier_keys={i: fixture_paillier_key(level, i) for i in (1, 2, 3)})
        key = sim.keygen(parties=3, threshold=2, aux=aux)

        def sign(digest: bytes):
            sig = key.sign(digest, signers=[1, 2])  # presign (both signers) + online round
            return sig.r, sig.s

        return sign, key.public_key
    if protocol == "dkls23":
        from mpc_ray.protocols.dkls23 import sign as dsign
        from mpc_ray.protocols.dkls23.setup import DKLs23Setup
        from mpc_ray.sim import run_keygen, run_parties

        key = run_keygen((1, 2, 3), 2)
        committee = run_parties({p: DKLs23Setup(b"throughput-committee", p, (1, 2, 3)) for p in (1, 2, 3)})
        public_key = key[1].public_key
        signers = (1, 2)

        def sign(digest: bytes):
            sid = b"throughput-presign:" + secrets.token_bytes(16)
            shares = run_parties({p: dsign.DKLs23PresignParty(sid, key[p], committee[p], signers) for p in signers})
            public = shares[1].public
            child = dsign.rerandomize_for(public, public_key, 0, digest)
            partials = {p: dsign.partial_sign(shares[p], digest, child) for p in signers}
            sig = dsign.combine(public, public_key, digest, partials, child)
            return sig.r, sig.s

        return sign, public_key.to_bytes()
    raise ValueError(protocol)


def worker(protocol: str, count: int) -> None:
    """Run in a subprocess: setup, print "ready", wait for a line on stdin, sign, print one JSON line."""
    t0 = time.process_time()
    sign, public_key = _setup(protocol)
    setup_cpu = time.process_time() - t0
    print("ready", flush=True)
    sys.stdin.readline()
    digests = [hashlib.sha256(b"throughput %d" % i).digest() for i in range(count)]
    w0, c0 = time.perf_counter(), time.process_time()
    sigs = [sign(d) for d in digests]
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    ok = all(verify_rs(public_key, d, r, s) for d, (r, s) in zip(digests, sigs))
    ok = ok and not verify_rs(public_key, digests[0][::-1], *sigs[0])  # the check can fail
    print(json.dumps({"count": count, "wall_s": wall, "cpu_s": cpu, "setup_cpu_s": setup_cpu, "verified": ok}))


def _start(protocol: str, count: int, wasm_dir: Path | None) -> subprocess.Popen:
    if protocol == "dkls23-wasm":
        cmd = ["node", str(WASM_JS), str(wasm_dir), str(count)]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", protocol, "--count", str(count)]
    return subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def run_in_process(protocol: str, procs: int, count: int, wasm_dir: Path | None) -> dict:
    """`procs` workers at once, released together after their setup."""
    ps = [_start(protocol, count, wasm_dir) for _ in range(procs)]
    for p in ps:
        line = p.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"{protocol} worker did not start: {line!r}")
    for p in ps:
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = []
    for p in ps:
        out, _ = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(f"{protocol} worker failed ({p.returncode})")
        outs.append(json.loads(out.strip().splitlines()[-1]))
    if protocol == "dkls23-wasm":
        for o in outs:
            pub = bytes.fromhex(o["public_key"])
            sigs = [(bytes.fromhex(s["digest"]), int(s["r"], 16), int(s["s"], 16)) for s in o.pop("signatures")]
            o["verified"] = (all(verify_rs(pub, d, r, s) for d, r, s in sigs)
                             and not verify_rs(pub, sigs[0][0][::-1], *sigs[0][1:]))  # the check can fail
            o["setup_cpu_s"] = o["keygen_cpu_s"]
    return {
        "protocol": protocol, "procs": procs, "count": count * procs,
        "rate": sum(o["count"] / o["wall_s"] for o in outs),
        "cpu_per_sig_ms": 1e3 * sum(o["cpu_s"] for o in outs) / (count * procs),
        "setup_cpu_s": max(o["setup_cpu_s"] for o in outs),
        "verified": all(o["verified"] for o in outs),
        "extra": (f"peer's own split: presignature {outs[0]['presign_cpu_ms']:.1f} ms, online "
                  f"{outs[0]['online_cpu_ms']:.2f} ms CPU" if protocol == "dkls23-wasm" else ""),
    }


# --------------------------------------------------------------------------------------------------------------
# the embedded Ray cluster
# --------------------------------------------------------------------------------------------------------------


def _tree_cpu_s() -> float:
    """CPU seconds (user + system, children reaped included) of this process and every live descendant."""
    parent: dict[int, int] = {}
    times: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parent[int(d)] = int(fields[1])
        times[int(d)] = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    me, total = os.getpid(), 0
    for pid in times:
        p = pid
        while p > 1 and p != me:
            p = parent.get(p, 0)
        if p == me:
            total += times[pid]
    return total / os.sysconf("SC_CLK_TCK")


RAY_PROTOCOLS = ("cggmp21-112", "cggmp21-128", "dkls23")
RAY_DKLS23_LEVEL = "112"  # the cluster's aux-info level where DKLs23 runs (DKLs23 itself uses no Paillier keys)


def _ray_clusters(protocols: list[str]) -> dict[str, list[str]]:
    """{cluster level: the protocols measured on it, in order}."""
    out: dict[str, list[str]] = {}
    for protocol in protocols:
        level = protocol.split("-")[1] if protocol.startswith("cggmp21-") else RAY_DKLS23_LEVEL
        out.setdefault(level, []).append(protocol)
    return out


def run_ray(level: str, workers: int, protocols: list[tuple[str, int]], chunk: int) -> list[dict]:
    """One cluster at `level` with `workers` presign workers per node; for each (protocol, count): a fresh key and
    `count` signatures (module docstring)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import mpc_ray

    rows, keys = [], []
    # shallow pools, so that few presignatures are left unused at the end (they are counted: see `left`)
    with mpc_ray.local_cluster(parties=3, threshold=2, security=level, kdf="min", pool_depth=chunk,
                               pool_low_water=max(1, chunk // 2), workers_per_node=workers) as mpc:
        for protocol, count in protocols:
            for key_id in keys:  # the keys measured before: their refill done, so it takes no CPU from this one
                mpc.wait_for_pools(key_id, chunk, timeout=600)
            name = "dkls23" if protocol == "dkls23" else "cggmp21"
            warm = mpc.create_key("ecdsa-secp256k1", protocol=name)  # first sessions of a protocol cost more
            mpc.sign_many(warm.key_id, [hashlib.sha256(b"warm-up %d" % i).digest() for i in range(chunk)])
            mpc.wait_for_pools(warm.key_id, chunk, timeout=600)
            keys.append(warm.key_id)
            key = mpc.create_key("ecdsa-secp256k1", protocol=name)
            keys.append(key.key_id)  # empty pools: every signature below needs a new presignature
            public_key = key.public_key
            done, sigs, digests = 0, [], []
            c0, w0 = _tree_cpu_s(), time.perf_counter()
            while done < count:
                ds = [hashlib.sha256(b"ray %s %d %d" % (protocol.encode(), workers, done + i)).digest()
                      for i in range(min(chunk, count - done))]
                sigs += mpc.sign_many(key.key_id, ds)
                digests += ds
                done += len(ds)
            wall, cpu = time.perf_counter() - w0, _tree_cpu_s() - c0
            # presignatures the refill made during the run and nobody used: their CPU is in `cpu`
            left = sum(v for k, v in mpc.pool_depths().items() if k.startswith(key.key_id + ":"))
            ok = all(verify_rs(public_key, d, s.r, s.s) for d, s in zip(digests, sigs))
            ok = ok and not verify_rs(public_key, digests[0][::-1], sigs[0].r, sigs[0].s)  # the check can fail
            rows.append({"protocol": f"{protocol} on Ray",
                         "procs": f"{workers} worker(s)/node" if workers else "holders only", "count": count,
                         "rate": count / wall, "cpu_per_sig_ms": 1e3 * cpu / (count + left), "setup_cpu_s": None,
                         "verified": ok,
                         "extra": f"{left} presignatures left in the pools (CPU per signature counts them as "
                                  "signatures)"})
    return rows


# --------------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------------


def render(rows: list[dict], notes: list[str], args, started: str, load: tuple, elapsed: float) -> str:
    L = [f"# Sustained signatures per second, presigning included ({started} UTC)", ""]
    L.append(f"- Command: `python benchmarks/bench_throughput.py {' '.join(sys.argv[1:])}`".rstrip())
    L.append(f"- Machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}; "
             f"load average {load[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; {elapsed:.0f} s")
    L.append("- 2-of-3, signers 1 and 2; each signature = a new presignature (both signers) + the online round; "
             "CPU = process_time (in process) or /proc (Ray: this process and the cluster's)")
    L += [""] + [f"- {n}" for n in notes] + [""]
    L.append("| protocol | processes | signatures | signatures/s (wall) | CPU per signature ms | setup CPU s (once) "
             "| verified (coincurve) | note |")
    L.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        setup = "" if r["setup_cpu_s"] is None else f"{r['setup_cpu_s']:.2f}"
        L.append(f"| {r['protocol']} | {r['procs']} | {r['count']} | {r['rate']:.2f} | {r['cpu_per_sig_ms']:,.1f} | "
                 f"{setup} | {'yes' if r['verified'] else '**NO**'} | {r['extra'] or ''} |")
    L.append("")
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few signatures (a smoke run)")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS), help=f"comma-separated, of {', '.join(PROTOCOLS)}")
    ap.add_argument("--procs", help="comma-separated process counts (default 1..cores)")
    ap.add_argument("--wasm-dir", type=Path, default=Path("/tmp/dklswasm"),
                    help=f"where `npm install {WASM_PACKAGE}` ran")
    ap.add_argument("--no-ray", action="store_true", help="skip the embedded-cluster runs")
    ap.add_argument("--ray-protocols", help=f"comma-separated, of {', '.join(RAY_PROTOCOLS)} (default all; --quick: "
                                            "cggmp21-112,dkls23)")
    ap.add_argument("--ray-levels", help="comma-separated CGGMP21 levels on Ray (replaces the cggmp21 entries of "
                                         "--ray-protocols)")
    ap.add_argument("--ray-workers", default="0,1,2",
                    help="comma-separated presign workers per node on Ray (0: the holders presign)")
    ap.add_argument("--ray-chunk", type=int, default=16,
                    help="on Ray: signatures per sign_many call and the pools' depth (refilled in batches of up to 8)")
    ap.add_argument("--out", type=Path, help="report path (default benchmarks/results/throughput-<date>[-quick].md)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.count)

    started_dt = _dt.datetime.now(_dt.UTC)
    load, w0 = os.getloadavg(), time.perf_counter()
    counts = ({"cggmp21-112": 4, "cggmp21-128": 2, "dkls23": 20, "dkls23-wasm": 20} if args.quick else
              {"cggmp21-112": 30, "cggmp21-128": 10, "dkls23": 200, "dkls23-wasm": 200})
    procs = [int(p) for p in args.procs.split(",")] if args.procs else list(range(1, (os.cpu_count() or 1) + 1))
    rows, notes = [], []

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - w0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    for protocol in filter(None, args.protocols.split(",")):
        if protocol == "dkls23-wasm":
            pkg = args.wasm_dir / "node_modules" / WASM_PACKAGE
            if shutil.which("node") is None or not pkg.is_dir():
                notes.append(f"dkls23-wasm skipped: no Node.js or no {pkg} (`npm install {WASM_PACKAGE}` there)")
                continue
            version = json.loads((pkg / "package.json").read_text())["version"]
            notes.append(f"dkls23-wasm: {WASM_PACKAGE} {version}, Node.js {subprocess.check_output(['node', '--version'], text=True).strip()}")
        for p in procs:
            log(f"{protocol}: {p} process(es) x {counts[protocol]} signatures")
            rows.append(run_in_process(protocol, p, counts[protocol], args.wasm_dir))
            log(f"  {rows[-1]['rate']:.2f} signatures/s, {rows[-1]['cpu_per_sig_ms']:.1f} ms CPU per signature")
    if not args.no_ray:
        ray_protocols = (args.ray_protocols or ("cggmp21-112,dkls23" if args.quick else ",".join(RAY_PROTOCOLS)))
        ray_protocols = [p for p in ray_protocols.split(",") if p]
        if args.ray_levels:
            ray_protocols = ([p for p in ray_protocols if not p.startswith("cggmp21-")]
                             + [f"cggmp21-{level}" for level in args.ray_levels.split(",")])
        if unknown := set(ray_protocols) - set(RAY_PROTOCOLS):
            raise SystemExit(f"unknown Ray protocols {sorted(unknown)}: choose from {', '.join(RAY_PROTOCOLS)}")
        ray_counts = ({"cggmp21-112": 8, "cggmp21-128": 4, "dkls23": 16} if args.quick else
                      {"cggmp21-112": 40, "cggmp21-128": 16, "dkls23": 160})
        for level, measured in _ray_clusters(ray_protocols).items():
            for workers in (int(w) for w in args.ray_workers.split(",")):
                log(f"Ray, level {level}, {workers} presign worker(s) per node: "
                    + ", ".join(f"{p} x {ray_counts[p]}" for p in measured))
                for row in run_ray(level, workers, [(p, ray_counts[p]) for p in measured], chunk=args.ray_chunk):
                    rows.append(row)
                    log(f"  {row['protocol']}: {row['rate']:.2f} signatures/s, {row['cpu_per_sig_ms']:.1f} ms CPU "
                        "per signature")

    report = render(rows, notes, args, started_dt.strftime("%Y-%m-%d %H:%M"), load, time.perf_counter() - w0)
    print(report)
    if not all(r["verified"] for r in rows):
        raise SystemExit("some signature did not verify")
    if not args.no_write:
        out = args.out or (REPO / "benchmarks" / "results"
                           / f"throughput-{started_dt.date().isoformat()}{'-quick' if args.quick else ''}.md")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
        log(f"wrote {out}")


if __name__ == "__main__":
    main()
