"""The `mpc-ray` command line: a thin layer over the Python API (local_cluster, connect, MpcClient).

    mpc-ray demo                      embedded cluster: keygen, signing, a node-kill drill, then gone
    mpc-ray up / status / down        a local multi-node committee that stays up between commands
    mpc-ray keygen / sign / bench     against the cluster `up` started
    mpc-ray audit verify|export       a holder's signed audit log (export-audit is the same as audit export)
    mpc-ray node start|stop           on a party host: its vault, then its labelled Ray node (a deployment)
    mpc-ray deploy                    from any driver: holders on the labelled nodes, coordinator, aux-info

Every command prints prose for a person, or one JSON object with --json (progress bars go to stderr and are
off with --json or --quiet; without a terminal each step is one plain line instead). Arguments are checked before
Ray is started or connected. A failure is one line on stderr (`error: InvalidInput: threshold must be between 2 and
3`), or {"error": type, "message": text} with --json; -v adds the traceback. Exit status: 0 ok, 1 a failure the
command reports (bad arguments, bad audit chain, signing refused, no cluster), 2 a usage error (argparse).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .protocols.ecdsa_protocols import DEFAULT_ECDSA_PROTOCOL, ECDSA_PROTOCOLS
from .schemes import SCHEMES

ALLOW_SINGLE_HELP = ("permit threshold 1 (tests only): any one node then holds a usable key and signs alone, so one "
                     "compromised node is enough to sign")


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


def _at_least(low: float, **options: float | None) -> None:
    """InvalidInput naming the first option below `low` (None: not given)."""
    from .errors import InvalidInput

    for name, value in options.items():
        if value is not None and value < low:
            raise InvalidInput(f"--{name.replace('_', '-')} must be at least {low}")


def _hex(value: str, option: str) -> bytes:
    """Hex from the command line: an optional 0x prefix, whitespace around it ignored."""
    from .errors import InvalidInput

    text = value.strip()
    text = text[2:] if text[:2].lower() == "0x" else text
    try:
        return bytes.fromhex(text)
    except ValueError:
        shown = value if len(value) <= 24 else value[:24] + "..."
        raise InvalidInput(f"{option} must be hex (an optional 0x, then pairs of 0-9a-f), got {shown!r}") from None


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
    import tempfile

    from .devcluster import check_committee
    from .errors import InvalidInput

    check_committee(args.parties, args.threshold, allow_single=args.allow_single)
    if args.parties <= args.threshold:
        raise InvalidInput(f"the demo kills a party's node and signs without it: --parties must be above "
                           f"--threshold ({args.threshold})")
    # Ray's own driver messages (the killed node's raylet log tail, cluster addresses) belong in a log file, not in
    # the story. Its "ray" logger starts at INFO on import and ray.init sets it again from RAY_LOGGER_LEVEL, read at
    # import; its error listener prints to whatever sys.stdout is, so stdout goes to a log file while the demo runs
    # and the story to the real stdout.
    if "ray" not in sys.modules:
        import logging

        saved = os.environ.get("RAY_LOGGER_LEVEL")
        os.environ["RAY_LOGGER_LEVEL"] = "warning"
        import ray  # noqa: F401

        logging.getLogger("ray").setLevel(logging.WARNING)
        if saved is None:  # the Ray processes the demo starts keep their own default
            os.environ.pop("RAY_LOGGER_LEVEL")
        else:
            os.environ["RAY_LOGGER_LEVEL"] = saved
    out = sys.stdout
    say = (lambda *a, **k: None) if args.json else (lambda *a, **k: print(*a, **k, file=out, flush=True))
    report: dict = {}
    fd, log_path = tempfile.mkstemp(prefix="mpc-ray-demo-", suffix=".log")
    try:
        with os.fdopen(fd, "w") as log, contextlib.redirect_stdout(log):
            _demo_steps(args, say, report)
    finally:
        if os.path.getsize(log_path):
            report["ray_log"] = log_path
            say(f"Ray's own messages (such as the killed node's last raylet log lines) are in {log_path}")
        else:
            os.unlink(log_path)
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
        say(f"fault drill: killing party {args.parties}'s node ...")
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

    from .devcluster import PHASES, check_committee, start

    check_committee(args.parties, args.threshold, allow_single=args.allow_single)
    _at_least(1, pool_depth=args.pool_depth, workers_per_node=args.workers_per_node, timeout=args.timeout)
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
                      auth=args.auth, tracing=args.tracing, timeout=args.timeout, on_phase=on_phase,
                      allow_single=args.allow_single)
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

    from .deploy import actor_name

    out: dict[int, dict[str, Any]] = {}
    refs = {}
    for p in parties:
        try:
            h = ray.get_actor(actor_name(p), namespace=namespace)
            refs[p] = (h.ping.remote(), h.node_labels.remote())
        except ValueError:
            out[p] = {"ok": False, "error": "not registered"}
    for p, (ping, labels) in refs.items():
        try:
            ray.get(ping, timeout=3)
            out[p] = {"ok": True, "node_labels": ray.get(labels, timeout=3)}
        except Exception as exc:  # noqa: BLE001 - a status line, not a failure of `status`
            err = _unwrap(exc)
            out[p] = {"ok": False, "error": type(err).__name__, "message": _clean_message(err)}
    return dict(sorted(out.items()))


def _init_ray(address: str, namespace: str) -> None:
    """Connect this process to the deployed cluster at `address`, token auth unless the environment says otherwise."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    from .errors import ClusterNotRunning

    if not ray.is_initialized():
        try:
            ray.init(address=address, namespace=namespace, log_to_driver=False, logging_level="ERROR")
        except ConnectionError as exc:
            raise ClusterNotRunning(f"no Ray cluster answers at {address} ({type(exc).__name__})") from None


def _attach(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """A client on the cluster: a deployed one at --address (Ray auth from the environment, token when unset;
    the committee's credentials from <state dir>/credentials.json as `deploy` saved them, else the environment), or
    the one `up` started for the state directory. Also what is known of it (cluster.json)."""
    home = _home(args)
    if getattr(args, "address", None) is None:
        from .devcluster import connect, read_state

        return connect(home), read_state(home) or {}
    from .client.client import connect as client_connect
    from .client.credentials import Credentials
    from .devcluster import CREDENTIALS_FILE

    _init_ray(args.address, args.namespace)
    creds = home / CREDENTIALS_FILE
    mpc = client_connect(args.address, namespace=args.namespace,
                         credentials=Credentials.from_file(creds) if creds.exists() else None)
    return mpc, {"address": args.address, "namespace": args.namespace, "auth": os.environ["RAY_AUTH_MODE"]}


def _status(args: argparse.Namespace) -> int:
    home = _home(args)
    mpc, state = _attach(args)
    import ray

    st = mpc.status().to_dict()  # printed as JSON with --json
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
    for p, h in holders.items():
        if not h["ok"] and h.get("message"):
            lines.append(f"          {p}: {h['message']}")
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
    lines += _last_error_lines(tel.get("last_errors", []))
    _emit(args, data, lines)
    return 0


def _last_error_lines(errors: list[dict[str, Any]], last: int = 5) -> list[str]:
    """The coordinator's last errors: time, type and message (typed errors carry one), then the public facts."""
    lines = ["errors    " + ("none" if not errors else f"last {min(last, len(errors))}:")]
    for e in errors[-last:]:
        when = time.strftime("%H:%M:%S", time.localtime(e["time"]))
        rest = ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("time", "error", "message"))
        lines.append(f"          {when} {e['error']}" + (f": {e['message']}" if e.get("message") else "")
                     + (f"  ({rest})" if rest else ""))
    return lines


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
    from .devcluster import check_committee, read_state, running_state

    _at_least(0, wait_depth=args.wait_depth)
    home = _home(args)
    if args.threshold is not None and args.address is None:  # 0 is a bad threshold, not "the cluster's default"
        check_committee(int(running_state(home)["parties"]), args.threshold, allow_single=args.allow_single)
    mpc, _ = _attach(args)
    t0 = time.perf_counter()
    with _spinner(args, f"distributed key generation ({args.scheme})"):
        key = mpc.create_key(args.scheme, threshold=args.threshold, key_id=args.key_id, protocol=args.protocol)
    data: dict[str, Any] = {"key_id": key.key_id, "scheme": key.scheme, "public_key": key.public_key.hex(),
                            "threshold": key.threshold, "parties": key.parties,
                            "keygen_s": round(time.perf_counter() - t0, 2)}
    if key.scheme == "ecdsa-secp256k1":
        data["evm_address"] = _evm_address(key.public_key)
        data["protocol"] = key.protocol
    made = f"{key.scheme} ({key.protocol})" if key.protocol else key.scheme
    lines = [f"key {key.key_id}: {made}, {key.threshold}-of-{key.parties}, made in {data['keygen_s']} s",
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


def _sign_input(args: argparse.Namespace) -> tuple[bytes, bool]:
    """What the command line gives to sign, checked before Ray is connected: (bytes, is a digest)."""
    from .errors import InvalidInput

    given = [x is not None for x in (args.digest, args.message, args.message_hex)]
    if sum(given) != 1:
        raise InvalidInput("give exactly one of --digest, --message, --message-hex")
    if args.digest is not None:
        if args.hash is not None:
            raise InvalidInput("--hash applies to --message / --message-hex; a --digest is signed as given")
        return _hex(args.digest, "--digest"), True
    if args.message is not None:
        return args.message.encode(), False
    return _hex(args.message_hex, "--message-hex"), False


def _message_bytes(args: argparse.Namespace, scheme: str, raw: bytes, is_digest: bool) -> tuple[bytes, str]:
    """The bytes to sign and how they were obtained. ECDSA signs a 32-byte digest; FROST the message itself."""
    from .errors import InvalidInput

    if scheme != "ecdsa-secp256k1":
        if args.hash is not None:
            raise InvalidInput(f"--hash applies to ECDSA keys only; {scheme} signs the message bytes themselves")
        return raw, "digest" if is_digest else "message"
    if is_digest:
        if len(raw) != 32:
            raise InvalidInput(f"--digest must be 32 bytes (64 hex characters) for ECDSA, got {len(raw)} bytes")
        return raw, "digest"
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
    from .errors import InvalidInput

    raw, is_digest = _sign_input(args)
    mpc, _ = _attach(args)
    keys = mpc.status()["keys"]
    if args.key_id not in keys:
        raise InvalidInput(f"unknown key {args.key_id!r}; keys: {sorted(keys)}")
    scheme = keys[args.key_id].get("scheme", "ecdsa-secp256k1")
    signed, how = _message_bytes(args, scheme, raw, is_digest)
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
    import collections

    from tqdm import tqdm

    from .devcluster import read_state
    from .loadtest import PoolSampler, run_load, summary

    _at_least(1, n=args.n, concurrency=args.concurrency)
    _at_least(0, warm=args.warm)
    mpc, _ = _attach(args)
    key_id = args.key
    depth = int((read_state(_home(args)) or {}).get("pool_depth", 16))
    if key_id is None:
        with _spinner(args, "making a benchmark key"):
            key_id = mpc.create_key(args.scheme).key_id
        _wait_pools(args, mpc, key_id, depth)  # a new key's pools fill up completely once
    elif args.warm:
        # the refill tops a pool up only once it falls to a quarter of its depth: wait for no more than that
        _wait_pools(args, mpc, key_id, min(args.warm, depth // 4 + 1), timeout=120.0)
    before = mpc.status()
    scheme = before["keys"].get(key_id, {}).get("scheme", "ecdsa-secp256k1")
    _note(args, f"signing {args.n} digests at concurrency {args.concurrency}")
    bar = tqdm(total=args.n, desc=f"signing at concurrency {args.concurrency}", disable=_no_bars(args),
               file=sys.stderr, leave=False)
    t0 = time.perf_counter()
    with PoolSampler(mpc, key_id, every_s=0.2, t0=t0) as pools:
        samples = run_load(mpc, key_id, concurrency=args.concurrency, n=args.n, on_sample=lambda s: bar.update(1))
    wall = time.perf_counter() - t0
    bar.close()
    after = mpc.status()
    data = {"key_id": key_id, "scheme": scheme, "concurrency": args.concurrency, "wall_s": round(wall, 2),
            **summary(samples, wall)}
    errors = collections.Counter(s.error for s in samples if not s.ok)
    data["errors_by_type"] = dict(errors.most_common())
    data["pools"] = _pool_report(key_id, before, after, pools.points)
    lines = [
        f"{data['requests']} signatures ({scheme}, key {key_id}) at concurrency {args.concurrency} in {data['wall_s']} s",
        f"  throughput  {data['throughput_per_s']} signatures/s",
        f"  latency     p50 {data['p50_ms']} ms   p95 {data['p95_ms']} ms   p99 {data['p99_ms']} ms   "
        f"max {data['max_ms']} ms",
        *_pool_lines(data["pools"], data["requests"], scheme),
        f"  errors      {data['errors']}" + (" (" + ", ".join(f"{n} {t}" for t, n in errors.most_common()) + ")"
                                             if errors else ""),
    ]
    _emit(args, data, lines)
    return 0 if data["errors"] == 0 else 1


def _pool_report(key_id: str, before: dict, after: dict, points: list) -> dict[str, Any]:
    """The key's pools at the start, their lowest point while sampled and at the end, and how many requests the
    coordinator made wait for a fresh presignature (nonce commitments: FROST) because their pool was empty."""
    def mine(depths: dict[str, int]) -> dict[str, int]:
        return {k.split(":", 1)[1]: v for k, v in depths.items() if k.startswith(key_id + ":")}

    def waits(st: dict) -> int:
        return int(st["telemetry"]["waited_for_presigning"].get(key_id, 0))

    start, end = mine(before["pools"]), mine(after["pools"])
    lows = [min(d.values()) for _, d in points if d]
    waited = None  # a coordinator without the counter: unknown, not zero
    if all("waited_for_presigning" in st.get("telemetry", {}) for st in (before, after)):
        waited = waits(after) - waits(before)
    return {"start": start, "end": end, "lowest": min(lows + list(start.values()) + list(end.values()), default=0),
            "waited_for_presigning": waited}


def _pool_lines(pools: dict[str, Any], requests: int, scheme: str) -> list[str]:
    what = "presignatures" if scheme == "ecdsa-secp256k1" else "nonce commitments"
    start, end = pools["start"], pools["end"]
    lines = [f"  pools       {len(start)} pools of {what}: {sum(start.values())} ready at the start, "
             f"lowest pool {pools['lowest']} during the run, {sum(end.values())} at the end"]
    waited = pools["waited_for_presigning"]
    if waited is None:
        lines.append("  presigning  (this coordinator does not count requests that waited for presigning)")
    elif waited:
        lines.append(f"  presigning  pools ran dry: {waited} of {requests} requests waited for {what} made on "
                     f"demand (the slow tail of the latencies; `mpc-ray up --pool-depth` sets how many are kept)")
    else:
        lines.append(f"  presigning  none on demand: every request found {what} ready")
    return lines


# audit -----------------------------------------------------------------------------------------------------------
def _audit_target(args: argparse.Namespace) -> tuple[Path, bytes]:
    """The log and node verify key: given explicitly, or party N of the cluster `up` started."""
    from .errors import InvalidInput

    if args.party is not None:
        _at_least(1, party=args.party)
        import ray

        from .deploy import actor_name
        from .devcluster import connect, read_state

        home = _home(args)
        parties = connect(home).status()["parties"]
        if args.party not in parties:
            raise InvalidInput(f"no party {args.party} in the cluster of {home}; its parties are "
                               + ", ".join(map(str, parties)))
        state = read_state(home) or {}
        holder = ray.get_actor(actor_name(args.party), namespace=state.get("namespace", "mpc-ray"))
        verify_key = ray.get(holder.public_identity.remote(), timeout=30).verify_key
        log = Path(args.log) if args.log else home / "parties" / f"party-{args.party}" / "audit.jsonl"
        return log, bytes(verify_key)
    if not args.log or not args.verify_key:
        raise InvalidInput("give LOG and --verify-key, or --party N for a cluster started with `mpc-ray up`")
    key = _hex(args.verify_key, "--verify-key")
    if len(key) != 32:
        raise InvalidInput(f"--verify-key must be 32 bytes (64 hex characters), got {len(key)} bytes")
    return Path(args.log), key


def _audit(args: argparse.Namespace) -> int:
    from .errors import InvalidInput

    if args.action == "export" and not args.out:
        raise InvalidInput("export needs --out FILE")
    log, key = _audit_target(args)
    from .node.audit import export_jsonl, verify_chain  # after the argument checks: it takes a while to import

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


# deploy / node (a deployment on a Ray cluster of party hosts) -----------------------------------------------------
def _parties(text: str) -> list[int]:
    from .errors import InvalidInput

    try:
        parties = [int(p) for p in text.split(",")]
    except ValueError:
        raise InvalidInput(f"--parties is a comma-separated list of party numbers such as 1,2,3, got {text!r}") from None
    if any(p < 1 for p in parties) or len(set(parties)) != len(parties):
        raise InvalidInput(f"--parties are distinct numbers from 1, got {text!r}")
    return parties


def _address(text: str | None) -> str:
    from .errors import InvalidInput

    host, _, port = (text or "").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"--address is HOST:PORT of the head (its GCS port, 6379 by default), got {text!r}")
    return text


def _deploy(args: argparse.Namespace) -> int:
    from .devcluster import CREDENTIALS_FILE, check_committee

    parties = _parties(args.parties)
    check_committee(len(parties), args.threshold, allow_single=args.allow_single)
    _at_least(0, workers=args.workers)
    _at_least(1, pool_depth=args.pool_depth)
    _address(args.address)
    from .client.deployment import deploy_committee

    _init_ray(args.address, args.namespace)
    with _spinner(args, "placing holders, starting the coordinator, aux-info"):
        report = deploy_committee(parties=parties, threshold=args.threshold, security=args.security,
                                  workers=args.workers, pool_depth=args.pool_depth, namespace=args.namespace,
                                  vault_dir=args.vault_dir, credentials_file=_home(args) / CREDENTIALS_FILE)
    started = [name for name, how in report["actors"].items() if how == "started"]
    if report["coordinator"] == "exists":
        head = f"committee {parties} already deployed in namespace {args.namespace}: left as it is"
    else:
        head = (f"deployed a {args.threshold}-of-{len(parties)} committee (Paillier level {args.security}) in "
                f"{report['setup_s']} s, namespace {args.namespace}")
    lines = [head, f"  actors started  {', '.join(started) or 'none (all existed)'}",
             *(f"  party {p}         node {n['node_id'][:12]}  region {n['region']}"
               for p, n in report["nodes"].items()),
             f"  credentials     {report['credentials']} (the committee's admin and operator keys, mode 0600)",
             f"next: mpc-ray status --address {args.address}   |   mpc_ray.connect({args.address!r})"]
    _emit(args, report, lines)
    return 0


def _node(args: argparse.Namespace) -> int:
    from .partynode import check_start, start_node, stop_node

    if args.action == "stop":
        if args.party is not None:
            _at_least(1, party=args.party)
        result = stop_node(args.state_dir, party=args.party, head=args.head)
        stopped = result["stopped"]
        _emit(args, result, [f"stopped {name}: pids {pids}" for name, pids in stopped.items()]
              or [f"nothing recorded in {args.state_dir}; nothing to stop"])
        return 0
    check_start(party=args.party, region=args.region, head=args.head, address=_address(args.address),
                workers=args.workers, ray_user=args.ray_user, vault_user=args.vault_user,
                allow_root=args.allow_root, ray_args=args.ray_args)
    with _spinner(args, "starting the vault, then Ray" if not args.head else "starting Ray's head"):
        record = start_node(state_dir=args.state_dir, address=args.address, party=args.party, region=args.region,
                            head=args.head, workers=args.workers, vault_user=args.vault_user, ray_user=args.ray_user,
                            allow_root=args.allow_root, secret_file=args.secret_file, secret_env=args.secret_env,
                            secret_command=args.secret_command, kdf=args.kdf, ray_args=args.ray_args,
                            timeout_s=args.timeout)
    what = "the head" if args.head else f"party {args.party} ({args.region})"
    _emit(args, record, [f"{what}: started " + ", ".join(f"{e['role']} (pid {e['pid']})" for e in record["processes"]),
                         f"  Ray auth {record['auth']}; stop with: mpc-ray node stop --state-dir {record['state_dir']}"])
    return 0


# parser ----------------------------------------------------------------------------------------------------------
def _committee_options(parser: argparse.ArgumentParser) -> None:
    """The committee's shape and pools: the same options for the one `up` starts and the one `deploy` deploys."""
    parser.add_argument("--threshold", type=int, default=2, help="default signers per key (default 2)")
    parser.add_argument("--allow-single", action="store_true", help=ALLOW_SINGLE_HELP)
    parser.add_argument("--security", choices=["112", "128"], default="128",
                        help="Paillier security level (default 128; 112 starts faster)")
    parser.add_argument("--pool-depth", type=int, default=16,
                        help="presignatures kept ready per signer set (default 16)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="mpc-ray",
        description="Self-hosted threshold signing (ECDSA: DKLs23 or CGGMP21; FROST) on Ray.",
        epilog="Quick start: `mpc-ray demo` (everything in one go), or `mpc-ray up`, `mpc-ray keygen`, "
               "`mpc-ray sign KEY --message hi`, `mpc-ray status`, `mpc-ray down`. "
               "Add --json to any command for machine-readable output, -v for the traceback of an error.",
    )
    from . import __version__

    ap.add_argument("--version", action="version", version=f"mpc-ray {__version__}")
    ap.add_argument("--verbose", "-v", action="store_true", help="print the traceback of an error")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of prose")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    # SUPPRESS: a -v before the command is not reset by the subcommand's default
    common.add_argument("--verbose", "-v", action="store_true", default=argparse.SUPPRESS,
                        help="print the traceback of an error")
    cluster = argparse.ArgumentParser(add_help=False, parents=[common])
    cluster.add_argument("--state-dir", metavar="DIR",
                         help="where `up` keeps cluster.json, the auth token and the parties' stores "
                              "(default $MPC_RAY_HOME or ~/.mpc-ray)")

    attached = argparse.ArgumentParser(add_help=False, parents=[cluster])
    attached.add_argument("--address", metavar="HOST:PORT",
                          help="a deployed cluster's head (`mpc-ray deploy`), instead of the one `up` started; Ray "
                               "auth from the environment (RAY_AUTH_MODE, token when unset)")
    attached.add_argument("--namespace", default="mpc-ray", help="with --address: the committee's (default mpc-ray)")

    demo = sub.add_parser("demo", parents=[common], help="keygen, signing and a node-kill drill on a throwaway cluster",
                          description="Start an embedded Ray cluster (head + one node per party), make an ECDSA "
                                      "key, sign, sign a batch, kill a party's node and sign again, then tear it all "
                                      "down. About two minutes on 2 cores.")
    demo.add_argument("--parties", type=int, default=3, help="share holders, one Ray node each (default 3)")
    demo.add_argument("--threshold", type=int, default=2,
                      help="how many must sign (default 2: 2-of-3); below --parties, as the drill signs without one")
    demo.add_argument("--allow-single", action="store_true", help=ALLOW_SINGLE_HELP)
    demo.add_argument("--security", choices=["112", "128"], default="112",
                      help="Paillier security level (128 takes about a minute longer for aux-info on 2 cores)")
    demo.set_defaults(func=_demo)

    up = sub.add_parser("up", parents=[cluster], help="start a local multi-node committee that stays up",
                        description="Start a Ray head node and one Ray node per party on this machine (labels "
                                    "mpc-party=<i>, region=region-<i>), pin a share holder on each, run aux-info and "
                                    "start the coordinator. It keeps running in the background until `mpc-ray down`; "
                                    "other commands find it through <state dir>/cluster.json.")
    up.add_argument("--parties", type=int, default=3, help="share holders, one Ray node each (default 3)")
    _committee_options(up)
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

    status = sub.add_parser("status", parents=[attached], help="nodes, holders, keys, pool depths, last errors",
                            description="Show the cluster's Ray nodes and their labels, whether each share holder "
                                        "answers, keys, presignature / nonce pool depths, signing latency, denials "
                                        "and aborts by reason, and the last errors the coordinator saw.")
    status.set_defaults(func=_status)

    keygen = sub.add_parser("keygen", parents=[attached], help="make a threshold key (distributed key generation)",
                            description="Run distributed key generation among the holders, print the public key "
                                        "(and the EVM address for ECDSA), then wait until the pools are filled.")
    keygen.add_argument("--scheme", choices=SCHEMES, default="ecdsa-secp256k1", help="default ecdsa-secp256k1")
    keygen.add_argument("--threshold", type=int, default=None,
                        help="signers needed, 2 up to the cluster's parties (default: the cluster's threshold)")
    keygen.add_argument("--protocol", choices=sorted(ECDSA_PROTOCOLS), default=None,
                        help=f"ECDSA only (default {DEFAULT_ECDSA_PROTOCOL}: fastest presigning, no Paillier); "
                             "cggmp21 identifies a cheating signer in presigning")
    keygen.add_argument("--allow-single", action="store_true", help=ALLOW_SINGLE_HELP)
    keygen.add_argument("--key-id", default=None, help="1-64 characters of [A-Za-z0-9_-] (default: random)")
    keygen.add_argument("--wait-depth", type=int, default=None,
                        help="wait until every pool holds this many (default min(8, pool depth); 0: do not wait)")
    keygen.set_defaults(func=_keygen)

    sign = sub.add_parser("sign", parents=[attached], help="sign a digest or message with a key",
                          description="Sign with a key of the running cluster and verify the signature locally. "
                                      "ECDSA signs a 32-byte digest: give --digest, or --message / --message-hex "
                                      "with --hash (sha256 or keccak256). Ed25519 and BIP340 sign the message bytes.")
    sign.add_argument("key_id", metavar="KEY_ID", help="a key of the cluster (see `mpc-ray status`)")
    sign.add_argument("--digest", metavar="HEX", help="the 32-byte digest to sign (ECDSA), hex (0x prefix optional)")
    sign.add_argument("--message", metavar="TEXT", help="a UTF-8 message")
    sign.add_argument("--message-hex", metavar="HEX", help="message bytes, hex (0x prefix optional)")
    sign.add_argument("--hash", choices=["sha256", "keccak256"], default=None,
                      help="ECDSA keys only: how --message / --message-hex is hashed to the digest (default sha256); "
                           "an error with --digest or an Ed25519 / BIP340 key, which sign the bytes themselves")
    sign.set_defaults(func=_sign)

    bench = sub.add_parser("bench", parents=[attached], help="measure signing latency and throughput on the cluster",
                           description="Sign N digests with C requests in flight against the running cluster and "
                                       "report throughput and latency percentiles, the key's pool depths, how many "
                                       "requests waited for presigning on demand, and errors by type "
                                       "(benchmarks/run_all.py runs the full suite from a checkout).")
    bench.add_argument("--key", default=None,
                       help="an existing key (default: make a new one and wait until its pools are full). Once "
                            "the pools run dry, each signature waits for a fresh presignature: N larger than the "
                            "pools measures the sustained rate")
    bench.add_argument("--scheme", choices=SCHEMES, default="ecdsa-secp256k1", help="for a new key")
    bench.add_argument("--n", "-n", type=int, default=200, help="signatures (default 200)")
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

    deploy = sub.add_parser(
        "deploy", parents=[cluster], help="deploy the committee on a Ray cluster of party nodes (idempotent)",
        description="From any driver: put each party's holder (and presign workers) on the node labelled "
                    "mpc-party=<i>, as a proxy to that node's vault (`mpc-ray node start`), start the coordinator on "
                    "the head, run aux-info and register the committee's admin and operator (kept in <state "
                    "dir>/credentials.json, reused when there). Run again, it finds what exists and leaves it. It "
                    "refuses a party without a labelled node, or whose vault does not answer.")
    deploy.add_argument("--address", required=True, metavar="HOST:PORT", help="the head's GCS address")
    deploy.add_argument("--parties", required=True, metavar="1,2,3", help="the parties, one labelled node each")
    _committee_options(deploy)
    deploy.add_argument("--workers", type=int, default=0,
                        help="presign workers per party (each host's `node start --workers`; default 0)")
    deploy.add_argument("--namespace", default="mpc-ray", help="Ray namespace of the committee (default mpc-ray)")
    deploy.add_argument("--vault-dir", default="/var/lib/mpc-ray", metavar="DIR",
                        help="the --state-dir every party host gave `mpc-ray node start` (default /var/lib/mpc-ray): "
                             "party i's vault listens on DIR/party-<i>.vault.sock")
    deploy.set_defaults(func=_deploy)

    node = sub.add_parser("node", parents=[common], help="on a party host: start or stop its vault and Ray node",
                          description="start: the party's vault (its store in DIR/party-<i>, as --vault-user), then "
                                      "`ray start --block --labels mpc-party=<i>,region=<r>` in its own session; "
                                      "with --head, Ray's head (no vault, no CPUs). Ray auth from the environment "
                                      "(RAY_AUTH_MODE, token when unset). The PIDs go to DIR/<name>.node.json. "
                                      "stop: exactly those processes, by PID (never `ray stop`).")
    node.add_argument("action", choices=["start", "stop"], help="start this host's node, or stop what start recorded")
    node.add_argument("--state-dir", required=True, metavar="DIR", help="the vault's stores, sockets, logs, PIDs")
    node.add_argument("--party", type=int, help="this host's party number (label mpc-party)")
    node.add_argument("--head", action="store_true", help="this host is the head (holds no party)")
    node.add_argument("--region", help="start: the region label of this host (its failure domain)")
    node.add_argument("--address", metavar="HOST:PORT", help="start: the head's GCS address (with --head: its port)")
    node.add_argument("--workers", type=int, default=0, help="start: presign worker vaults (default 0)")
    node.add_argument("--vault-user", metavar="USER", help="start: run the vault as this user (root starts it)")
    node.add_argument("--ray-user", metavar="USER", help="start: run Ray as this user")
    node.add_argument("--allow-root", action="store_true", help="start: let Ray run as root (throwaway hosts, CI)")
    secret = node.add_mutually_exclusive_group()
    secret.add_argument("--secret-file", metavar="F", help="start: the node secret, a file of the vault user (0600)")
    secret.add_argument("--secret-env", metavar="VAR", help="start: an environment variable with the secret (hex)")
    secret.add_argument("--secret-command", metavar="CMD", help="start: a command printing the secret (hex)")
    node.add_argument("--kdf", choices=["interactive", "min"], default="interactive",
                      help="start: Argon2id cost of the store key (min: tests only)")
    node.add_argument("--ray-args", default="", metavar="ARGS",
                      help="start: more `ray start` options, one string (ports, --temp-dir, --num-cpus)")
    node.add_argument("--timeout", type=float, default=120.0, help="start: seconds to wait for each process")
    node.set_defaults(func=_node)

    mcp = sub.add_parser("mcp", add_help=False, help="serve one agent's wallet tools over MCP (stdio or streamable "
                         "HTTP); `mpc-ray mcp --help` for its options")
    mcp.add_argument("rest", nargs=argparse.REMAINDER)  # main() hands `mcp ...` to mpc_ray.tools.mcp
    return ap


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _unwrap(exc: BaseException) -> BaseException:
    """The error inside Ray's wrappers (client/raycall.py's `unwrap`, the client's one way to read them)."""
    if "ray.exceptions" not in sys.modules:  # no Ray error can have reached here (and raycall would load Ray)
        return exc
    from .client.raycall import unwrap

    return unwrap(exc)


def _reported(exc: BaseException) -> bool:
    """Failures the command reports in one line: typed errors, timeouts, bad values, the OS, and whatever came
    through Ray (a remote bug included: -v shows its remote traceback). A local bug keeps its traceback."""
    from .errors import MpcError

    ray_exceptions = sys.modules.get("ray.exceptions")
    return isinstance(exc, (MpcError, TimeoutError, ValueError, OSError)) or (
        ray_exceptions is not None and isinstance(exc, ray_exceptions.RayError))


def _clean_message(exc: BaseException) -> str:
    """The error's own text without colour codes; one line for an error that is not ours (Ray's run on)."""
    from .errors import MpcError

    text = _ANSI.sub("", str(exc)).strip()
    if not isinstance(exc, MpcError):
        text = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return text or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["mcp"]:  # its own parser (argparse's REMAINDER would not take a leading --option)
        from .tools.mcp import main as mcp_main  # needs the [mcp] extra

        return mcp_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mpc-ray status | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # noqa: BLE001 - reported below, or re-raised as the bug it is
        err = _unwrap(exc)
        if not _reported(exc):
            raise
        if getattr(args, "verbose", False):
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        name, message = type(err).__name__, _clean_message(err)
        if getattr(args, "json", False):
            print(json.dumps({"error": name, "message": message}))
        else:
            print(f"error: {name}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
