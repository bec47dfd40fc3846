"""The `mpc-ray` command line: a thin layer over the Python API (local_cluster, connect, MpcClient).

    mpc-ray demo                      embedded cluster: keygen, signing, a node-kill drill, then gone
    mpc-ray up / status / down        a local multi-node committee that stays up between commands
    mpc-ray keygen / sign / bench     against the cluster `up` started
    mpc-ray audit verify|export       a holder's signed audit log (export-audit is the same as audit export)

Every command prints prose for a person, or one JSON object with --json (progress bars go to stderr and are
off with --json or --quiet;
without a terminal each step is one plain line instead). Exit status: 0 ok, 1 a failure the command reports (bad audit chain, signing
refused, no cluster), 2 a usage error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

SCHEMES = ("ecdsa-secp256k1", "eddsa-ed25519", "schnorr-bip340")


# output helpers --------------------------------------------------------------------------------------------------
def _emit(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, default=str))
    else:
        print("\n".join(lines))


def _quiet(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False) or getattr(args, "quiet", False))


def _no_bars(args: argparse.Namespace) -> bool:
    """Bars only on a terminal; a log (CI, a pipe) gets one plain line per step from `_note` instead."""
    return _quiet(args) or not sys.stderr.isatty()


def _note(args: argparse.Namespace, text: str) -> None:
    if not _quiet(args) and not sys.stderr.isatty():
        print(f"[mpc-ray] {text}", file=sys.stderr, flush=True)


@contextmanager
def _spinner(args: argparse.Namespace, desc: str) -> Iterator[Any]:
    """A tqdm bar without a total (elapsed time ticking) for a step whose length is unknown."""
    from tqdm import tqdm

    _note(args, desc + " ...")
    bar = tqdm(total=None, desc=desc, disable=_no_bars(args), file=sys.stderr, leave=False,
               bar_format="{desc}: {elapsed}")
    stop = False

    def tick() -> None:
        while not stop:
            bar.refresh()
            time.sleep(0.5)

    import threading

    t = threading.Thread(target=tick, daemon=True)
    t.start()
    try:
        yield bar
    finally:
        stop = True
        t.join()
        bar.close()


def _home(args: argparse.Namespace) -> Path:
    from .devcluster import default_home

    return Path(args.state_dir).expanduser() if args.state_dir else default_home()


def _evm_address(public_key: bytes) -> str:
    import coincurve
    from eth_keys import keys as eth_keys

    return eth_keys.PublicKey(coincurve.PublicKey(public_key).format(compressed=False)[1:]).to_checksum_address()


# demo ------------------------------------------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    import contextlib

    out = sys.stdout  # Ray prints the killed node's last raylet log lines to stdout: they go to stderr instead
    say = (lambda *a, **k: None) if args.json else (lambda *a, **k: print(*a, **k, file=out, flush=True))
    report: dict = {}
    with contextlib.redirect_stdout(sys.stderr):
        _demo_steps(args, say, report)
    if args.json:
        print(json.dumps(report), file=out)
    return 0


def _demo_steps(args: argparse.Namespace, say, report: dict) -> None:
    import coincurve

    import mpc_ray

    t0 = time.perf_counter()
    say(f"starting an embedded Ray cluster: a head node and {args.parties} party nodes (labels mpc-party, region) ...")
    with _spinner(args, "Ray nodes, share holders, aux-info (safe primes, proofs)"):
        cm = mpc_ray.local_cluster(parties=args.parties, threshold=args.threshold, security=args.security,
                                   pool_depth=16)
        mpc = cm.__enter__()
    try:
        report["cluster_start_s"] = round(time.perf_counter() - t0, 2)
        say(f"  up in {report['cluster_start_s']} s; share holders pinned one per node; aux-info done "
            f"(Paillier-Blum moduli from fresh safe primes, level {args.security}, every proof checked)")
        key = mpc.create_key("ecdsa-secp256k1")
        address = _evm_address(key.public_key)
        report.update(key_id=key.key_id, public_key=key.public_key.hex(), address=address)
        say(f"key {key.key_id}: {key.threshold}-of-{key.parties}, public key {key.public_key.hex()}")
        say(f"  EVM address {address} (the full private key never exists anywhere)")
        pub = coincurve.PublicKey(key.public_key)
        s0 = time.perf_counter()
        depths = _wait_pools(args, mpc, key.key_id, 8)
        report["pool_warmup_s"] = round(time.perf_counter() - s0, 2)
        say(f"  presignature pools warmed in the background ({report['pool_warmup_s']} s): {depths}")
        for i in range(3):
            digest = hashlib.sha256(f"x402 payment #{i}: 0.01 USDC".encode()).digest()
            s0 = time.perf_counter()
            sig = mpc.sign(key.key_id, digest)
            ok = pub.verify(sig.der(), digest, hasher=None)
            say(f"  signed payment #{i}: r={sig.r:#066x}"[:40] + f"... verified={ok} ({(time.perf_counter() - s0) * 1e3:.0f} ms)")
        # refills start at a quarter of the depth (16 // 4 = 4), so a pool may rest at 5: wait for no more than that
        _wait_pools(args, mpc, key.key_id, 5)
        digests = [hashlib.sha256(b"batch %d" % i).digest() for i in range(16)]
        s0 = time.perf_counter()
        sigs = mpc.sign_many(key.key_id, digests)
        dt = time.perf_counter() - s0
        assert all(pub.verify(s.der(), d, hasher=None) for s, d in zip(sigs, digests))
        report["sign_many_16_s"] = round(dt, 3)
        say(f"  sign_many: {len(sigs)} signatures in {dt * 1e3:.0f} ms, all verified")
        say(f"fault drill: killing party {args.parties}'s node (Ray logs the lost raylet on stderr: expected) ...")
        mpc.kill_node(args.parties)
        s0 = time.perf_counter()
        digest = hashlib.sha256(b"after the outage").digest()
        sig = mpc.sign(key.key_id, digest)
        report["sign_after_kill_s"] = round(time.perf_counter() - s0, 3)
        say(f"  signed with the remaining parties in {report['sign_after_kill_s']} s, "
            f"verified={pub.verify(sig.der(), digest, hasher=None)}")
        mpc.restart_node(args.parties)
        say(f"  party {args.parties}'s node restarted; its holder reloads its shares from its encrypted store")
        report["pools"] = mpc.pool_depths()
        say(f"presignature pools: {report['pools']}")
    finally:
        cm.__exit__(*sys.exc_info())
    report["total_s"] = round(time.perf_counter() - t0, 2)
    say(f"done in {report['total_s']} s")


# up / down / status ----------------------------------------------------------------------------------------------
def _up(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .devcluster import PHASES, start

    home = _home(args)
    labels = {"launching": "launching the supervisor", "starting": "starting Ray nodes (head + one per party)",
              "aux-info": "aux-info: safe primes, Paillier and ring-Pedersen proofs", "ready": "ready"}
    bar = tqdm(total=len(PHASES) - 1, desc=labels["launching"], disable=_no_bars(args), file=sys.stderr,
               bar_format="{desc:<60} {n}/{total} [{elapsed}]")
    t0 = time.perf_counter()

    def on_phase(phase: str) -> None:
        _note(args, f"{labels.get(phase, phase)} ({time.perf_counter() - t0:.0f} s)")
        if phase in PHASES:
            bar.n = PHASES.index(phase)
        bar.set_description_str(labels.get(phase, phase))
        bar.refresh()

    try:
        state = start(home, parties=args.parties, threshold=args.threshold, security=args.security,
                      pool_depth=args.pool_depth, workers_per_node=args.workers_per_node, kdf=args.kdf,
                      auth=args.auth, tracing=args.tracing, timeout=args.timeout, on_phase=on_phase)
    finally:
        bar.close()
    took = round(time.perf_counter() - t0, 1)
    data = {"address": state["address"], "namespace": state["namespace"], "state_dir": str(home),
            "parties": state["parties"], "threshold": state["threshold"], "security": state["security"],
            "auth": state["auth"], "supervisor_pid": state["pid"], "log": state["log"], "start_s": took}
    _emit(args, data, [
        f"mpc-ray cluster up in {took} s: {state['threshold']}-of-{state['parties']} committee, "
        f"Paillier level {state['security']}, Ray auth {state['auth']}",
        f"  address     {state['address']} (namespace {state['namespace']})",
        f"  state dir   {home} (each party's encrypted store under parties/; supervisor log {state['log']})",
        "next: mpc-ray keygen   |   mpc-ray status   |   mpc-ray down",
    ])
    return 0


def _down(args: argparse.Namespace) -> int:
    import shutil

    from .devcluster import stop

    home = _home(args)
    with _spinner(args, "stopping the cluster"):
        result = stop(home, timeout=args.timeout)
    if args.purge:
        shutil.rmtree(home / "parties", ignore_errors=True)
        (home / "auth_token").unlink(missing_ok=True)
    result.update(state_dir=str(home), purged=bool(args.purge))
    if result["stopped"]:
        msg = f"stopped the cluster of {home} (supervisor pid {result['pid']})"
    else:
        msg = f"no running cluster for {home}; nothing to stop"
    _emit(args, result, [msg] + ([] if args.purge else
                                 [f"  the parties' stores stay in {home / 'parties'} (delete them with --purge)"]))
    return 0


def _holder_report(namespace: str, parties: list[int]) -> dict[int, dict[str, Any]]:
    import ray

    from .coordinator.coordinator import HOLDER_NAME

    out: dict[int, dict[str, Any]] = {}
    refs = {}
    for p in parties:
        try:
            h = ray.get_actor(HOLDER_NAME.format(party=p), namespace=namespace)
            refs[p] = (h.ping.remote(), h.node_labels.remote())
        except ValueError:
            out[p] = {"ok": False, "error": "not registered"}
    for p, (ping, labels) in refs.items():
        try:
            ray.get(ping, timeout=3)
            out[p] = {"ok": True, "node_labels": ray.get(labels, timeout=3)}
        except Exception as exc:  # noqa: BLE001 - a status line, not a failure of `status`
            out[p] = {"ok": False, "error": type(exc).__name__}
    return dict(sorted(out.items()))


def _status(args: argparse.Namespace) -> int:
    from .devcluster import connect, read_state

    home = _home(args)
    mpc = connect(home)
    state = read_state(home) or {}
    import ray

    st = mpc.status()
    nodes = [{"node_id": n["NodeID"][:12], "alive": n["Alive"], "labels": {k: v for k, v in n.get("Labels", {}).items()
                                                                         if not k.startswith("ray.io/")},
              "cpus": n.get("Resources", {}).get("CPU", 0)} for n in ray.nodes()]
    holders = _holder_report(state.get("namespace", "mpc-ray"), st["parties"])
    tel = st.get("telemetry", {})
    data = {"address": state.get("address"), "state_dir": str(home), "auth": state.get("auth"),
            "uptime_s": round(time.time() - state.get("ready_at", time.time()), 1), "nodes": nodes,
            "holders": holders, "keys": st["keys"], "pools": st["pools"], "down": st["down"],
            "excluded": st["excluded"], "disputes": st.get("disputes", []), "telemetry": tel}
    lines = [f"cluster   {data['address']}  auth {data['auth']}  up {data['uptime_s']:.0f} s  state {home}"]
    alive = [n for n in nodes if n["alive"]]
    lines.append(f"nodes     {len(alive)} alive of {len(nodes)}")
    for n in sorted(nodes, key=lambda n: n["labels"].get("mpc-party", "0")):
        role = f"party {n['labels']['mpc-party']} ({n['labels'].get('region', '?')})" if "mpc-party" in n["labels"] else "head"
        lines.append(f"          {n['node_id']}  {'alive' if n['alive'] else 'DEAD '}  {role}")
    lines.append("holders   " + "   ".join(
        f"{p}: {'ok' if h['ok'] else 'DOWN (' + h.get('error', '?') + ')'}" for p, h in holders.items()))
    if st["down"] or st["excluded"] or st.get("disputes"):
        lines.append(f"          coordinator skips {st['down']} (no answer), excludes {st['excluded']} (bad values)"
                     + (f", never pairs {st['disputes']} (identification disputes)" if st.get("disputes") else ""))
    lines.append(f"keys      {len(st['keys'])}")
    for kid, info in st["keys"].items():
        lines.append(f"          {kid}  {info.get('scheme', 'ecdsa-secp256k1')}  {info['threshold']}-of-"
                     f"{len(info.get('members', st['parties']))}  {info['public_key']}")
    lines.append("pools     " + ("(none yet)" if not st["pools"] else ""))
    for name, depth in sorted(st["pools"].items()):
        lines.append(f"          {name:<40} {depth}")
    for scheme, lat in tel.get("sign_latency", {}).items():
        lines.append(f"signing   {scheme}: {lat['count']} requests, p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms")
    lines.append(f"denials   {tel.get('denials') or 'none'}")
    lines.append(f"aborts    {tel.get('aborts') or 'none'}")
    errors = tel.get("last_errors", [])
    lines.append("errors    " + ("none" if not errors else f"last {min(5, len(errors))}:"))
    for e in errors[-5:]:
        when = time.strftime("%H:%M:%S", time.localtime(e["time"]))
        rest = ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("time", "error"))
        lines.append(f"          {when} {e['error']} {rest}")
    _emit(args, data, lines)
    return 0


# keygen / sign / bench -------------------------------------------------------------------------------------------
def _wait_pools(args: argparse.Namespace, mpc, key_id: str, depth: int, timeout: float = 600.0) -> dict[str, int]:
    """Block until every pool of `key_id` holds `depth`, with a progress bar over the presignatures made."""
    import itertools

    from tqdm import tqdm

    st = mpc.status()
    info = st["keys"].get(key_id, {})
    members = info.get("members", st["parties"])  # the key's own committee (it may differ after a reshare)
    if info.get("scheme", "ecdsa-secp256k1") == "ecdsa-secp256k1":
        names = [f"{key_id}:{'-'.join(map(str, c))}" for c in itertools.combinations(members, info["threshold"])]
        what = "presignatures"
    else:
        names = [f"{key_id}:{p}" for p in members]
        what = "nonce commitments"
    _note(args, f"filling pools: {depth} {what} per pool, {len(names)} pools")
    bar = tqdm(total=depth * len(names), desc=f"filling pools ({what})", disable=_no_bars(args), file=sys.stderr,
               leave=False)
    deadline = time.monotonic() + timeout
    try:
        while True:
            current = mpc.pool_depths()
            depths = {n: current.get(n, 0) for n in names}
            bar.n = sum(min(depth, d) for d in depths.values())
            bar.refresh()
            if min(depths.values()) >= depth:
                return depths
            if time.monotonic() > deadline:
                raise TimeoutError(f"pools of {key_id} did not reach {depth} in {timeout:.0f} s: {depths}")
            time.sleep(0.3)
    finally:
        bar.close()


def _keygen(args: argparse.Namespace) -> int:
    from .devcluster import connect, read_state

    home = _home(args)
    mpc = connect(home)
    t0 = time.perf_counter()
    with _spinner(args, f"distributed key generation ({args.scheme})"):
        key = mpc.create_key(args.scheme, threshold=args.threshold, key_id=args.key_id)
    data: dict[str, Any] = {"key_id": key.key_id, "scheme": key.scheme, "public_key": key.public_key.hex(),
                            "threshold": key.threshold, "parties": key.parties,
                            "keygen_s": round(time.perf_counter() - t0, 2)}
    if key.scheme == "ecdsa-secp256k1":
        data["evm_address"] = _evm_address(key.public_key)
    lines = [f"key {key.key_id}: {key.scheme}, {key.threshold}-of-{key.parties}, made in {data['keygen_s']} s",
             f"  public key   {data['public_key']}"]
    if "evm_address" in data:
        lines.append(f"  EVM address  {data['evm_address']}")
    depth = args.wait_depth if args.wait_depth is not None else min(8, int((read_state(home) or {}).get("pool_depth", 8)))
    if depth > 0:
        s0 = time.perf_counter()
        data["pools"] = _wait_pools(args, mpc, key.key_id, depth)
        data["pool_fill_s"] = round(time.perf_counter() - s0, 2)
        lines.append(f"  pools ready ({depth} each) in {data['pool_fill_s']} s: {len(data['pools'])} pools")
    lines.append(f"sign with: mpc-ray sign {key.key_id} --message 'hello'")
    _emit(args, data, lines)
    return 0


def _message_bytes(args: argparse.Namespace, scheme: str) -> tuple[bytes, str]:
    """The bytes to sign and how they were obtained. ECDSA signs a 32-byte digest; FROST the message itself."""
    from .errors import InvalidInput

    given = [x is not None for x in (args.digest, args.message, args.message_hex)]
    if sum(given) != 1:
        raise InvalidInput("give exactly one of --digest, --message, --message-hex")
    if args.digest is not None:
        raw = bytes.fromhex(args.digest)
        if scheme == "ecdsa-secp256k1" and len(raw) != 32:
            raise InvalidInput("--digest must be 32 bytes (64 hex characters)")
        return raw, "digest"
    raw = args.message.encode() if args.message is not None else bytes.fromhex(args.message_hex)
    if scheme != "ecdsa-secp256k1":
        return raw, "message"
    if args.hash == "keccak256":
        from eth_utils import keccak

        return keccak(raw), "keccak256(message)"
    return hashlib.sha256(raw).digest(), "sha256(message)"


def _verify(scheme: str, public_key: bytes, signed: bytes, sig) -> bool:
    import coincurve

    if scheme == "ecdsa-secp256k1":
        return coincurve.PublicKey(public_key).verify(sig.der(), signed, hasher=None)
    if scheme == "eddsa-ed25519":
        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey

        try:
            VerifyKey(public_key).verify(signed, sig.to_bytes())
            return True
        except BadSignatureError:
            return False
    return coincurve.PublicKeyXOnly(public_key).verify(sig.to_bytes(), signed)


def _sign(args: argparse.Namespace) -> int:
    from .devcluster import connect
    from .errors import InvalidInput

    mpc = connect(_home(args))
    keys = mpc.status()["keys"]
    if args.key_id not in keys:
        raise InvalidInput(f"unknown key {args.key_id!r}; keys: {sorted(keys)}")
    scheme = keys[args.key_id].get("scheme", "ecdsa-secp256k1")
    signed, how = _message_bytes(args, scheme)
    t0 = time.perf_counter()
    sig = mpc.sign(args.key_id, signed)
    ms = round((time.perf_counter() - t0) * 1e3, 2)
    ok = _verify(scheme, bytes.fromhex(keys[args.key_id]["public_key"]), signed, sig)
    data: dict[str, Any] = {"key_id": args.key_id, "scheme": scheme, "signed": how, "signed_hex": signed.hex(),
                            "signature": sig.to_bytes().hex(), "verified": ok, "latency_ms": ms}
    lines = [f"signature  {data['signature']}", f"  key {args.key_id} ({scheme}), signed {how} = {signed.hex()[:64]}"
             + ("..." if len(signed) > 32 else "")]
    if scheme == "ecdsa-secp256k1":
        data.update(r=f"{sig.r:064x}", s=f"{sig.s:064x}", recovery_id=sig.recovery_id, der=sig.der().hex())
        lines.append(f"  r {data['r']}\n  s {data['s']} (low-s)\n  recovery id {sig.recovery_id}")
    lines.append(f"  verified against the public key: {ok}  ({ms} ms)")
    _emit(args, data, lines)
    return 0 if ok else 1


def _bench(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .devcluster import connect, read_state
    from .loadtest import run_load, summary

    mpc = connect(_home(args))
    key_id = args.key
    depth = int((read_state(_home(args)) or {}).get("pool_depth", 16))
    if key_id is None:
        with _spinner(args, "making a benchmark key"):
            key_id = mpc.create_key(args.scheme).key_id
        _wait_pools(args, mpc, key_id, depth)  # a new key's pools fill up completely once
    elif args.warm:
        # the refill tops a pool up only once it falls to a quarter of its depth: wait for no more than that
        _wait_pools(args, mpc, key_id, min(args.warm, depth // 4 + 1), timeout=120.0)
    scheme = mpc.status()["keys"].get(key_id, {}).get("scheme", "ecdsa-secp256k1")
    _note(args, f"signing {args.n} digests at concurrency {args.concurrency}")
    bar = tqdm(total=args.n, desc=f"signing at concurrency {args.concurrency}", disable=_no_bars(args),
               file=sys.stderr, leave=False)
    t0 = time.perf_counter()
    samples = run_load(mpc, key_id, concurrency=args.concurrency, n=args.n, on_sample=lambda s: bar.update(1))
    wall = time.perf_counter() - t0
    bar.close()
    data = {"key_id": key_id, "scheme": scheme, "concurrency": args.concurrency, "wall_s": round(wall, 2),
            **summary(samples, wall)}
    first_errors = sorted({s.error for s in samples if not s.ok})
    if first_errors:
        data["error_types"] = first_errors
    _emit(args, data, [
        f"{data['requests']} signatures ({scheme}, key {key_id}) at concurrency {args.concurrency} in {data['wall_s']} s",
        f"  throughput  {data['throughput_per_s']} signatures/s",
        f"  latency     p50 {data['p50_ms']} ms   p95 {data['p95_ms']} ms   p99 {data['p99_ms']} ms   "
        f"max {data['max_ms']} ms",
        f"  errors      {data['errors']}" + (f" ({', '.join(first_errors)})" if first_errors else ""),
    ])
    return 0 if data["errors"] == 0 else 1


# audit -----------------------------------------------------------------------------------------------------------
def _audit_target(args: argparse.Namespace) -> tuple[Path, bytes]:
    """The log and node verify key: given explicitly, or party N of the cluster `up` started."""
    from .errors import InvalidInput

    if args.party is not None:
        import ray

        from .coordinator.coordinator import HOLDER_NAME
        from .devcluster import connect, read_state

        home = _home(args)
        connect(home)
        state = read_state(home) or {}
        holder = ray.get_actor(HOLDER_NAME.format(party=args.party), namespace=state.get("namespace", "mpc-ray"))
        verify_key = ray.get(holder.public_identity.remote(), timeout=30).verify_key
        log = Path(args.log) if args.log else home / "parties" / f"party-{args.party}" / "audit.jsonl"
        return log, bytes(verify_key)
    if not args.log or not args.verify_key:
        raise InvalidInput("give LOG and --verify-key, or --party N for a cluster started with `mpc-ray up`")
    return Path(args.log), bytes.fromhex(args.verify_key)


def _audit(args: argparse.Namespace) -> int:
    from .errors import InvalidInput
    from .node.audit import export_jsonl, verify_chain

    log, key = _audit_target(args)
    if args.action == "export" and not args.out:
        raise InvalidInput("export needs --out FILE")
    if not log.exists():
        raise InvalidInput(f"no audit log at {log} (a holder writes it once it has decided a policy request)")
    report = export_jsonl(log, args.out, key) if args.action == "export" else verify_chain(log, key)
    data = {"log": str(log), "ok": report.ok, "records": report.records,
            "first_break_index": report.first_break_index, "problem": report.problem}
    if args.action == "export":
        data["out"] = str(args.out)
    if report.ok:
        msg = f"OK: {report.records} records, chain and node signatures intact"
        if args.action == "export":
            msg += f"; exported to {args.out}"
    else:
        msg = f"BROKEN at record {report.first_break_index}: {report.problem} ({report.records} records verified)"
    _emit(args, data, [msg])
    return 0 if report.ok else 1


def _export_audit(args: argparse.Namespace) -> int:
    args.action = "export"
    return _audit(args)


# parser ----------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="mpc-ray",
        description="Self-hosted threshold signing (CGGMP21 ECDSA, FROST) on Ray.",
        epilog="Quick start: `mpc-ray demo` (everything in one go), or `mpc-ray up`, `mpc-ray keygen`, "
               "`mpc-ray sign KEY --message hi`, `mpc-ray status`, `mpc-ray down`. "
               "Add --json to any command for machine-readable output.",
    )
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of prose")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    cluster = argparse.ArgumentParser(add_help=False, parents=[common])
    cluster.add_argument("--state-dir", metavar="DIR",
                         help="where `up` keeps cluster.json, the auth token and the parties' stores "
                              "(default $MPC_RAY_HOME or ~/.mpc-ray)")

    demo = sub.add_parser("demo", parents=[common], help="keygen, signing and a node-kill drill on a throwaway cluster",
                          description="Start an embedded Ray cluster (head + one node per party), make an ECDSA "
                                      "key, sign, sign a batch, kill a party's node and sign again, then tear it all "
                                      "down. About two minutes on 2 cores.")
    demo.add_argument("--parties", type=int, default=3, help="share holders, one Ray node each (default 3)")
    demo.add_argument("--threshold", type=int, default=2, help="how many must sign (default 2: 2-of-3)")
    demo.add_argument("--security", choices=["112", "128"], default="112",
                      help="Paillier security level (128 takes about a minute longer for aux-info on 2 cores)")
    demo.set_defaults(func=_demo)

    up = sub.add_parser("up", parents=[cluster], help="start a local multi-node committee that stays up",
                        description="Start a Ray head node and one Ray node per party on this machine (labels "
                                    "mpc-party=<i>, region=region-<i>), pin a share holder on each, run aux-info and "
                                    "start the coordinator. It keeps running in the background until `mpc-ray down`; "
                                    "other commands find it through <state dir>/cluster.json.")
    up.add_argument("--parties", type=int, default=3, help="share holders, one Ray node each (default 3)")
    up.add_argument("--threshold", type=int, default=2, help="default signers per key (default 2: 2-of-3)")
    up.add_argument("--security", choices=["112", "128"], default="128",
                    help="Paillier security level (default 128; 112 starts faster)")
    up.add_argument("--pool-depth", type=int, default=16, help="presignatures kept ready per signer set (default 16)")
    up.add_argument("--workers-per-node", type=int, default=1, help="presign workers beside each holder (default 1)")
    up.add_argument("--auth", choices=["token", "disabled"], default="token",
                    help="Ray authentication (default token: a fresh token in <state dir>/auth_token, mode 0600)")
    up.add_argument("--tracing", choices=["console", "otlp"], default=None,
                    help="export the coordinator's spans (otlp: set OTEL_EXPORTER_OTLP_ENDPOINT or "
                         "MPC_RAY_OTLP_ENDPOINT); default off")
    up.add_argument("--kdf", choices=["interactive", "min"], default="interactive",
                    help="Argon2id cost of the store key (min: tests only)")
    up.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds (default 900)")
    up.set_defaults(func=_up)

    down = sub.add_parser("down", parents=[cluster], help="stop the cluster `up` started (and nothing else)",
                          description="Stop the supervisor `up` started and every Ray process it owns. Other Ray "
                                      "clusters on the machine are left alone. The parties' stores stay unless --purge.")
    down.add_argument("--purge", action="store_true", help="also delete the parties' stores (keys!) and the token")
    down.add_argument("--timeout", type=float, default=60.0, help="seconds to wait before killing (default 60)")
    down.set_defaults(func=_down)

    status = sub.add_parser("status", parents=[cluster], help="nodes, holders, keys, pool depths, last errors",
                            description="Show the cluster's Ray nodes and their labels, whether each share holder "
                                        "answers, keys, presignature / nonce pool depths, signing latency, denials "
                                        "and aborts by reason, and the last errors the coordinator saw.")
    status.set_defaults(func=_status)

    keygen = sub.add_parser("keygen", parents=[cluster], help="make a threshold key (distributed key generation)",
                            description="Run distributed key generation among the holders, print the public key "
                                        "(and the EVM address for ECDSA), then wait until the pools are filled.")
    keygen.add_argument("--scheme", choices=SCHEMES, default="ecdsa-secp256k1", help="default ecdsa-secp256k1")
    keygen.add_argument("--threshold", type=int, default=None, help="signers needed (default: the cluster's)")
    keygen.add_argument("--key-id", default=None, help="1-64 characters of [A-Za-z0-9_-] (default: random)")
    keygen.add_argument("--wait-depth", type=int, default=None,
                        help="wait until every pool holds this many (default min(8, pool depth); 0: do not wait)")
    keygen.set_defaults(func=_keygen)

    sign = sub.add_parser("sign", parents=[cluster], help="sign a digest or message with a key",
                          description="Sign with a key of the running cluster and verify the signature locally. "
                                      "ECDSA signs a 32-byte digest: give --digest, or --message / --message-hex "
                                      "with --hash (sha256 or keccak256). Ed25519 and BIP340 sign the message bytes.")
    sign.add_argument("key_id", metavar="KEY_ID", help="a key of the cluster (see `mpc-ray status`)")
    sign.add_argument("--digest", metavar="HEX", help="the 32-byte digest to sign (ECDSA), hex")
    sign.add_argument("--message", metavar="TEXT", help="a UTF-8 message")
    sign.add_argument("--message-hex", metavar="HEX", help="message bytes, hex")
    sign.add_argument("--hash", choices=["sha256", "keccak256"], default="sha256",
                      help="ECDSA: how --message is hashed to the digest (default sha256)")
    sign.set_defaults(func=_sign)

    bench = sub.add_parser("bench", parents=[cluster], help="measure signing latency and throughput on the cluster",
                           description="Sign N digests with C requests in flight against the running cluster and "
                                       "report throughput and latency percentiles (benchmarks/run_all.py runs the "
                                       "full suite from a checkout).")
    bench.add_argument("--key", default=None,
                       help="an existing key (default: make a new one and wait until its pools are full). Once "
                            "the pools run dry, each signature waits for a fresh presignature: N larger than the "
                            "pools measures the sustained rate")
    bench.add_argument("--scheme", choices=SCHEMES, default="ecdsa-secp256k1", help="for a new key")
    bench.add_argument("--n", type=int, default=200, help="signatures (default 200)")
    bench.add_argument("--concurrency", "-c", type=int, default=4, help="requests in flight (default 4)")
    bench.add_argument("--warm", type=int, default=0,
                       help="with --key: first wait until every pool holds this many (capped at a quarter of the pool depth, "
                            "where refills start; default 0: measure from the pools as they are)")
    bench.set_defaults(func=_bench)

    audit_common = argparse.ArgumentParser(add_help=False, parents=[cluster])
    audit_common.add_argument("--verify-key", metavar="HEX", help="the node's Ed25519 public key, hex")
    audit_common.add_argument("--party", type=int, help="party N of the cluster `up` started: finds its log and key")
    audit_common.add_argument("--out", help="export: JSON Lines file for the verified records")
    audit = sub.add_parser("audit", parents=[audit_common],
                           help="verify a holder's audit log (hash chain, node signatures) or export it",
                           description="verify: check every record's hash link and node signature and report the "
                                       "first broken one. export: verify, then write the records as JSON Lines.")
    audit.add_argument("action", choices=["verify", "export"], help="verify the chain, or verify and export it")
    audit.add_argument("log", nargs="?", help="the node's audit.jsonl (beside its store); or use --party")
    audit.set_defaults(func=_audit)
    export = sub.add_parser("export-audit", parents=[audit_common], help="same as `audit export`",
                            description="Verify a holder's audit log and write its records as JSON Lines (--out).")
    export.add_argument("log", nargs="?", help="the node's audit.jsonl (beside its store); or use --party")
    export.set_defaults(func=_export_audit)
    return ap


def main(argv: list[str] | None = None) -> int:
    from .errors import MpcError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (MpcError, TimeoutError, ValueError) as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        else:
            print(f"mpc-ray {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mpc-ray status | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
