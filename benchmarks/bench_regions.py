"""Online latency between regions, and what authorization and policy add to it.

    python benchmarks/bench_regions.py [--delays 0,20,60] [--n 60] [--base-tree DIR]

Regions are emulated with Ray's own latency injection: each delay runs a fresh embedded 2-of-3 cluster (level 112)
in a child process started with ``RAY_testing_asio_delay_us=CoreWorkerService.grpc_client.PushTask=D:D``, which adds
D microseconds to every actor call (driver to holder, coordinator to holder: one hop each). In each child, with
full pools (no presigning in the window):

- one-hop `mpc.sign` (an operator's signed request checked by each signer against the key's policy), p50 / p99;
- an agent's EVM wallet `sign_transaction` (agent-signed request: every signer decodes the transaction, checks the
  agent's policy, counts spend), p50 / p99.

`--base-tree` runs the one-hop row again on a tree from before operator authorization existed (for example
``git worktree add /tmp/base 2b25b6a``), alternating with this tree at each delay, so the difference is what
authorization adds end to end. Prints a Markdown table and writes benchmarks/results/regions-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def child(n: int) -> dict:
    """One cluster under the delay this process was started with; JSON on stdout."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    sys.path.insert(0, str(HERE))
    from common import pct

    import mpc_ray

    tree = Path(mpc_ray.__file__).resolve().parent.parent
    sys.path.insert(0, str(tree))  # the tree under test, its test fixtures
    out: dict = {"tree": str(tree)}
    depth = 2 * n + 24
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=depth,
                               pool_low_water=4) as mpc:
        key = mpc.create_key("ecdsa-secp256k1")
        wallet = _agent_wallet(mpc, key.key_id)
        mpc.wait_for_pools(key.key_id, depth, timeout=3600)
        for i in range(3):  # first calls pay imports and the lease fetch
            mpc.sign(key.key_id, hashlib.sha256(b"warm %d" % i).digest())
        lat = []
        for i in range(n):
            t = time.perf_counter()
            mpc.sign(key.key_id, hashlib.sha256(b"lat %d" % i).digest())
            lat.append(1e3 * (time.perf_counter() - t))
        out.update(one_hop_p50_ms=pct(lat, 50), one_hop_p99_ms=pct(lat, 99))
        if wallet is not None:
            from tests.support.policies import ALICE, eip1559, erc20_call

            wallet.sign_transaction(eip1559(data=erc20_call("a9059cbb", ALICE, 10_000), nonce=1))
            lat = []
            for i in range(n):
                tx = eip1559(data=erc20_call("a9059cbb", ALICE, 10_000), nonce=100 + i)
                t = time.perf_counter()
                wallet.sign_transaction(tx)
                lat.append(1e3 * (time.perf_counter() - t))
            out.update(agent_p50_ms=pct(lat, 50), agent_p99_ms=pct(lat, 99))
    return out


def _agent_wallet(mpc, key_id: str):
    """An agent wallet under an ERC-20 allowlist policy (tests/node/test_policy.py's), or None on a tree without the
    request layer: the base row measures one-hop signing only."""
    try:
        from mpc_ray.client.signer import Agent
        from mpc_ray.requests import Principal, PrincipalRegistry, Role, sign_request
        from tests.support.policies import base_policy
    except ImportError:
        return None
    import nacl.signing

    admin, agent_key = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    mpc.bootstrap_principals(PrincipalRegistry(principals=(Principal.from_signing_key("root", Role.ADMIN, admin),
                                                            Principal.from_signing_key("bot", Role.AGENT, agent_key))))
    mpc.set_policy(sign_request(admin, principal_id="root", kind="set_policy", format="json",
                                body=base_policy(key_id=key_id, rate_limits=()).to_bytes(), key_id=key_id,
                                now=time.time()))
    return mpc.evm_wallet(key_id, agent=Agent("bot", agent_key))


def run_child(delay_ms: int, n: int, tree: Path | None) -> dict:
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    if delay_ms:
        us = 1000 * delay_ms
        env["RAY_testing_asio_delay_us"] = f"CoreWorkerService.grpc_client.PushTask={us}:{us}"
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    # Ray's workers put the driver's working directory first on their path: run in the tree under test
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--n", str(n)], env=env, capture_output=True,
                          text=True, timeout=3600, cwd=tree or ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"child (delay {delay_ms} ms, tree {tree}) failed: {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--delays", default="0,20,60", help="ms added to each actor call, comma-separated")
    ap.add_argument("--n", type=int, default=60, help="samples per row")
    ap.add_argument("--base-tree", type=Path, help="a tree from before operator authorization, run alternately")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.n)))
        return
    sys.path.insert(0, str(HERE))
    from common import cpu_model

    delays = [int(d) for d in args.delays.split(",")]
    rows = []
    for d in delays:
        base = run_child(d, args.n, args.base_tree) if args.base_tree else None
        head = run_child(d, args.n, None)
        rows.append((d, head, base))
        print(f"delay {d} ms: {json.dumps(head)} base {json.dumps(base)}", file=sys.stderr)
    stamp = datetime.datetime.now(datetime.UTC)
    lines = [f"Run of {stamp:%Y-%m-%d %H:%M} UTC, {cpu_model()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}, load {os.getloadavg()[0]:.1f} at the end; n = {args.n} per row.", "",
             "| ms per hop | one-hop sign p50 / p99 | agent request p50 / p99 | base one-hop p50 / p99 | "
             "authorization adds (p50) |", "|---|---|---|---|---|"]
    for d, head, base in rows:
        b = f"{base['one_hop_p50_ms']:.1f} / {base['one_hop_p99_ms']:.1f} ms" if base else "-"
        add = (f"{head['one_hop_p50_ms'] - base['one_hop_p50_ms']:+.1f} ms "
               f"({(head['one_hop_p50_ms'] - base['one_hop_p50_ms']) / head['one_hop_p50_ms']:.0%})") if base else "-"
        agent = f"{head['agent_p50_ms']:.1f} / {head['agent_p99_ms']:.1f} ms" if "agent_p50_ms" in head else "-"
        lines.append(f"| {d} | {head['one_hop_p50_ms']:.1f} / {head['one_hop_p99_ms']:.1f} ms | {agent} | {b} | {add} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "results" / f"regions-{stamp:%Y-%m-%d}.md").write_text("# Latency between regions "
                                                                  "(benchmarks/bench_regions.py)\n\n" + text)


if __name__ == "__main__":
    main()
