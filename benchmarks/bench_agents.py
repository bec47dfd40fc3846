"""Agent-facing clients on the embedded 2-of-3 cluster: what the handles, wallets and the HTTP gateway add.

    python benchmarks/bench_agents.py [--n 30] [--concurrent 500]

Measures in one run (security "112", warm pools):
- Ed25519 `sign` latency through `MpcClient.sign` and through `SignHandle.sign` (the handle's timeout and typed
  errors), sequential;
- Ed25519 signings in flight at once from one asyncio loop (`mpc.aio().sign`, one coroutine each), against one
  batched `sign_many` call of the same size;
- an agent's EVM wallet (`sign_transaction`: request signed with the agent key, nodes decode + policy + sign) on
  Ray, sequential and concurrent (asyncio);
- the same wallet over HTTP through the Serve gateway (`RemoteSigner`), sequential and concurrent.
Writes a Markdown table to stdout and to benchmarks/results/agents-<date>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import socket
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nacl.signing
import ray
from common import cpu_model, pct

import mpc_ray
from mpc_ray.client.remote import RemoteSigner
from mpc_ray.client.signer import Agent
from mpc_ray.gateway import deploy_gateway, shutdown_gateway
from mpc_ray.node.principals import Principal, PrincipalRegistry, sign_request
from tests.support.policies import ALICE, base_policy, eip1559, erc20_call


def usdc_tx(nonce: int) -> dict:
    return eip1559(data=erc20_call("a9059cbb", ALICE, 10_000), nonce=nonce)


def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1e3)
    return out


def concurrent(make, n: int) -> float:
    """Operations per second with `n` coroutines in flight on one loop."""
    async def run() -> float:
        t = time.perf_counter()
        await asyncio.gather(*(make(i) for i in range(n)))
        return n / (time.perf_counter() - t)

    return asyncio.run(run())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30, help="sequential samples per latency row")
    ap.add_argument("--concurrent", type=int, default=500, help="Ed25519 signings in flight at once")
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []
    admin, agent_key = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=64) as mpc:
        ed = mpc.create_key("eddsa-ed25519")
        evm = mpc.create_key("ecdsa-secp256k1")
        mpc.bootstrap_principals(PrincipalRegistry(principals=(Principal.from_signing_key("root", "admin", admin),
                                                                Principal.from_signing_key("bot", "agent", agent_key))))
        mpc.set_policy(sign_request(admin, principal_id="root", kind="set_policy", format="json",
                                    body=base_policy(key_id=evm.key_id, rate_limits=()).to_bytes(),
                                    key_id=evm.key_id, now=time.time()))
        mpc.wait_for_pools(evm.key_id, 24, timeout=600)
        handle = mpc.handle()
        mpc.sign(ed.key_id, b"warm up")

        plain = timed(lambda i: mpc.sign(ed.key_id, b"plain %d" % i), args.n)
        via_handle = timed(lambda i: handle.sign(ed.key_id, b"handle %d" % i), args.n)
        rows.append(("Ed25519 `MpcClient.sign`, p50 / p99", f"{pct(plain, 50):.2f} / {pct(plain, 99):.2f} ms"))
        rows.append(("Ed25519 `SignHandle.sign`, p50 / p99",
                     f"{pct(via_handle, 50):.2f} / {pct(via_handle, 99):.2f} ms"))
        aio = mpc.aio(timeout=300)
        k = args.concurrent
        coalesced, batched = [], []
        for r in range(3):  # alternate the two, so load changes on this shared machine hit both alike
            coalesced.append(concurrent(lambda i, r=r: aio.sign(ed.key_id, b"aio %d %d" % (r, i)), k))
            t = time.perf_counter()
            mpc.sign_many(ed.key_id, [b"batch %d %d" % (r, i) for i in range(k)])
            batched.append(k / (time.perf_counter() - t))
        rows.append((f"Ed25519, {k} `aio.sign` coroutines on one loop (median of 3)",
                     f"{statistics.median(coalesced):,.0f} signatures/s"))
        rows.append((f"Ed25519, one `sign_many` of {k} (reference, median of 3)",
                     f"{statistics.median(batched):,.0f} signatures/s"))

        wallet = mpc.evm_wallet(evm.key_id, agent=Agent("bot", agent_key))
        ray_tx = timed(lambda i: wallet.sign_transaction(usdc_tx(1000 + i)), args.n)
        rows.append(("agent EVM wallet on Ray, `sign_transaction` p50 / p99",
                     f"{pct(ray_tx, 50):.2f} / {pct(ray_tx, 99):.2f} ms"))
        rows.append((f"agent EVM wallet on Ray, {args.n} concurrent `sign_transaction_async`",
                     f"{concurrent(lambda i: wallet.sign_transaction_async(usdc_tx(2000 + i)), args.n):,.0f}/s"))

        url = deploy_gateway(port=free_port(), timeout_s=60)
        try:
            mpc.wait_for_pools(evm.key_id, 24, timeout=600)
            remote = RemoteSigner(url, Agent("bot", agent_key)).evm_wallet(evm.key_id)
            remote.sign_transaction(usdc_tx(2999))
            http_tx = timed(lambda i: remote.sign_transaction(usdc_tx(3000 + i)), args.n)
            rows.append(("agent EVM wallet over the HTTP gateway, p50 / p99",
                         f"{pct(http_tx, 50):.2f} / {pct(http_tx, 99):.2f} ms"))
            rows.append((f"agent EVM wallet over HTTP, {args.n} concurrent `sign_transaction_async`",
                         f"{concurrent(lambda i: remote.sign_transaction_async(usdc_tx(4000 + i)), args.n):,.0f}/s"))
            rows.append(("gateway overhead per signature (p50 HTTP - p50 Ray)",
                         f"{statistics.median(http_tx) - statistics.median(ray_tx):.2f} ms"))
        finally:
            shutdown_gateway()
    stamp = datetime.datetime.now(datetime.UTC)
    lines = [(f"Run of {stamp:%Y-%m-%d %H:%M} UTC, {cpu_model()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}, Ray {ray.__version__}, load {os.getloadavg()[0]:.1f} at the end."), "",
             "| measure | result |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(__file__).parent / "results" / f"agents-{stamp:%Y-%m-%d}.md"
    out.write_text("# Agent clients (benchmarks/bench_agents.py)\n\n" + text)


if __name__ == "__main__":
    main()
