"""An agent's EVM send end to end through two doors, in one run on the embedded 2-of-3 cluster (security "112"):

- **MCP**: the `send_evm_transaction` tool through the `mcp` SDK's own client (in process, one session): the
  tool reads nonce, gas estimate and fees from the chain, the agent's wallet signs through the committee (request
  signed with the agent key; every signer decodes it, applies the policy and audits), the tool broadcasts and
  waits for the receipt;
- **Python wallet**: `mpc.evm_wallet(key, agent=...)`, the caller reading nonce and fees with web3 itself
  (gas fixed at 21,000), `sign_transaction`, `send_raw_transaction`, `wait_for_transaction_receipt`.

Both send an EIP-1559 ETH transfer under the same policy to an in-process EVM (eth-tester + py-evm), alternating
door by door after two warm-up sends each, so both see the same pool and chain state.

    python benchmarks/bench_agent_doors.py [--n 10]

Writes a Markdown table to stdout and to benchmarks/results/agent-doors-<date>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import nacl.signing  # noqa: E402
from common import cpu_model, pct  # noqa: E402

import mpc_ray  # noqa: E402
from mpc_ray.client.signer import Agent  # noqa: E402
from mpc_ray.intents import TxType  # noqa: E402
from mpc_ray.node.policy import AssetLimit, Policy, native_asset  # noqa: E402
from mpc_ray.requests import Principal, PrincipalRegistry, Role, sign_request  # noqa: E402
from mpc_ray.tools import AgentTools  # noqa: E402
from mpc_ray.tools.mcp import build_server  # noqa: E402
from tests.support.chain import evm_tester, fund  # noqa: E402

ALICE = "0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10, help="sends per door (after 2 warm-up sends each)")
    n = ap.parse_args().n
    admin, agent_key = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    t_setup = time.perf_counter()
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=16) as mpc:
        key = mpc.create_key("ecdsa-secp256k1")
        mpc.bootstrap_principals(PrincipalRegistry(principals=(
            Principal.from_signing_key("root", Role.ADMIN, admin), Principal.from_signing_key("bot", Role.AGENT,
                                                                                              agent_key))))
        w3 = evm_tester()
        chain = f"eip155:{w3.eth.chain_id}"
        policy = Policy(key_id=key.key_id, principal_id="bot", allowed_chains=(chain,),
                        allowed_tx_types=(TxType.NATIVE_TRANSFER,), recipient_allowlist=(ALICE,),
                        asset_limits=(AssetLimit(asset=native_asset(chain), per_tx=10**17),))
        mpc.set_policy(sign_request(admin, principal_id="root", kind="set_policy", format="json",
                                    body=policy.to_bytes(), key_id=key.key_id, now=time.time()))
        tools = AgentTools(mpc.handle(agent=Agent("bot", agent_key)), evm_key_id=key.key_id,
                           evm_chains={w3.eth.chain_id: w3})
        wallet = mpc.evm_wallet(key.key_id, agent=Agent("bot", agent_key))
        fund(w3, wallet.address, 10**19)
        mpc.wait_for_pools(key.key_id, 8, timeout=600)
        setup_s = time.perf_counter() - t_setup

        def by_wallet() -> None:
            base = w3.eth.get_block("latest")["baseFeePerGas"]
            tx = {"type": 2, "chainId": w3.eth.chain_id, "to": ALICE, "value": 10**12, "gas": 21_000,
                  "nonce": w3.eth.get_transaction_count(wallet.address, "pending"),
                  "maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 10**9}
            receipt = w3.eth.wait_for_transaction_receipt(
                w3.eth.send_raw_transaction(wallet.sign_transaction(tx).raw_transaction))
            assert receipt["status"] == 1

        async def run() -> dict[str, list[float]]:
            from mcp import Client

            times: dict[str, list[float]] = {"mcp": [], "wallet": []}
            async with Client(build_server(tools)) as client:
                for i in range(n + 2):
                    t0 = time.perf_counter()
                    out = await client.call_tool("send_evm_transaction", {"chain_id": w3.eth.chain_id, "to": ALICE,
                                                                          "value_wei": 10**12})
                    t1 = time.perf_counter()
                    assert out.structured_content.get("status") == "success", out.structured_content
                    await asyncio.to_thread(by_wallet)
                    t2 = time.perf_counter()
                    if i >= 2:
                        times["mcp"].append(t1 - t0)
                        times["wallet"].append(t2 - t1)
            return times

        times = asyncio.run(run())
        pools = mpc.pool_depths()
    rows = [(door, statistics.median(v), pct(v, 90), min(v)) for door, v in
            (("MCP tool `send_evm_transaction` (SDK client, in process)", times["mcp"]),
             ("Python wallet + web3 by hand", times["wallet"]))]
    date = datetime.date.today().isoformat()
    lines = [f"# Agent doors: one EVM send end to end ({date})", "",
             f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}; embedded 2-of-3 "
             f"cluster, security 112; chain: eth-tester (py-evm, auto-mining); {n} sends per door, alternated, "
             f"after 2 warm-up sends each; setup {setup_s:.0f} s; pools at the end: {pools}.", "",
             "| door | median (s) | p90 (s) | min (s) |", "| --- | --- | --- | --- |"]
    lines += [f"| {door} | {med:.3f} | {p90:.3f} | {lo:.3f} |" for door, med, p90, lo in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "benchmarks" / "results" / f"agent-doors-{date}.md"
    out.write_text(text)


if __name__ == "__main__":
    main()
