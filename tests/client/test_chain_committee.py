"""An agent moves funds on in-process chains through a 2-of-3 Ray committee under its policy, through every door:
the Python wallets, the MCP tools (the SDK's own client, in process) and LangChain tools (invoked directly, no LLM).

Chains: an EVM (eth-tester + py-evm through web3's EthereumTesterProvider) with a token deployed from bytecode kept in
tests/support/chain.py, and a Solana runtime (solders.litesvm). The threshold keys' addresses are funded; the agent
sends an EIP-1559 ETH transfer, a legacy transaction, an ERC-20 transfer and a Solana system transfer; receipts and
balances are the chain's. A transfer the policy forbids is refused by the nodes with its rule, every node asked
audits the refusal, and nothing reaches the chain. One embedded cluster for the module.
"""

from __future__ import annotations

import asyncio
import json
import time

import nacl.signing
import pytest
from eth_utils import to_checksum_address
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

import mpc_ray
from mpc_ray.client.signer import Agent
from mpc_ray.errors import PolicyDenied
from mpc_ray.intents import TxType
from mpc_ray.node.audit import iter_records
from mpc_ray.node.policy import AssetLimit, Policy, erc20_asset, native_asset
from mpc_ray.requests import Principal, PrincipalRegistry, Role, sign_request
from mpc_ray.tools import AgentTools
from mpc_ray.tools.langchain import langchain_tools
from mpc_ray.tools.mcp import build_server
from tests.support.chain import LiteSvmChain, deploy_token, evm_tester, fund

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ADMIN, AGENT = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
ALICE = "0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1"
BOB = "0xB0B0b0B0B0B0B0b0B0B0B0b0b0b0b0B0b0b0B0B0"
EVE = to_checksum_address("0x" + "ee" * 20)
SOL_CHAIN = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"  # devnet's CAIP-2 id; the runtime is LiteSVM
SOL_FRIEND = Pubkey.from_string("9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin")
SOL_EVE = Pubkey.from_string("4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T")
ETH_CAP, TOKEN_CAP, SOL_CAP = 10**17, 500_000, 10**8


@pytest.fixture(scope="module")
def mpc():
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=4) as cluster:
        yield cluster


def set_policy(mpc, policy: Policy) -> None:
    mpc.set_policy(sign_request(ADMIN, principal_id="root", kind="set_policy", format="json",
                                body=policy.to_bytes(), key_id=policy.key_id, now=time.time()))


@pytest.fixture(scope="module")
def world(mpc):
    evm, ed = mpc.create_key("ecdsa-secp256k1"), mpc.create_key("eddsa-ed25519")
    mpc.bootstrap_principals(PrincipalRegistry(principals=(Principal.from_signing_key("root", Role.ADMIN, ADMIN),
                                                            Principal.from_signing_key("bot", Role.AGENT, AGENT))))
    w3, svm = evm_tester(), LiteSVM()
    chain = f"eip155:{w3.eth.chain_id}"
    token = deploy_token(w3)
    set_policy(mpc, Policy(key_id=evm.key_id, principal_id="bot", allowed_chains=(chain,),
                           allowed_tx_types=(TxType.NATIVE_TRANSFER, TxType.ERC20_TRANSFER),
                           recipient_allowlist=(ALICE, BOB),
                           asset_limits=(AssetLimit(asset=native_asset(chain), per_tx=ETH_CAP),  # value + max fee
                                         AssetLimit(asset=erc20_asset(chain, token.address), per_tx=TOKEN_CAP))))
    set_policy(mpc, Policy(key_id=ed.key_id, principal_id="bot", allowed_chains=(SOL_CHAIN,),
                           allowed_tx_types=(TxType.SOLANA_TRANSFER,), recipient_allowlist=(str(SOL_FRIEND),),
                           asset_limits=(AssetLimit(asset=native_asset(SOL_CHAIN), per_tx=SOL_CAP),)))
    handle = mpc.handle(agent=Agent("bot", AGENT))
    tools = AgentTools(handle, evm_key_id=evm.key_id, solana_key_id=ed.key_id, solana_chain=SOL_CHAIN,
                       evm_chains={w3.eth.chain_id: w3}, solana=LiteSvmChain(svm), credentials=mpc.credentials)
    me = tools.evm_wallet().address
    fund(w3, me, 10**18)
    token.functions.transfer(me, 2_000_000).transact({"from": w3.eth.accounts[0]})
    svm.airdrop(tools.solana_wallet().pubkey, 10 * 10**9)
    return {"evm": evm, "ed": ed, "w3": w3, "svm": svm, "token": token, "tools": tools, "me": me,
            "wallet": mpc.evm_wallet(evm.key_id, agent=Agent("bot", AGENT)),
            "sol": mpc.handle(agent=Agent("bot", AGENT)).solana_wallet(ed.key_id, chain=SOL_CHAIN)}


def mcp_calls(tools, calls):
    """[(name, arguments)] through one MCP session; [(structured result, seconds)]."""
    from mcp import Client

    async def run():
        out = []
        async with Client(build_server(tools)) as client:
            for name, arguments in calls:
                t0 = time.perf_counter()
                r = await client.call_tool(name, arguments)
                out.append((r.structured_content, time.perf_counter() - t0))
                assert r.is_error == ("error" in r.structured_content)
        return out

    return asyncio.run(run())


def fees_1559(w3) -> dict:
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    return {"type": 2, "maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 10**9}


def test_python_wallets_send_on_chain(world):
    """The wallets alone (eth-account / solders results), sent by the test: each transaction executes."""
    w3, wallet, me, token = world["w3"], world["wallet"], world["me"], world["token"]
    alice, bob = w3.eth.get_balance(ALICE), w3.eth.get_balance(BOB)
    nonce = w3.eth.get_transaction_count(me)
    txs = [{"chainId": w3.eth.chain_id, "nonce": nonce, "to": ALICE, "value": 10**15, "gas": 21_000, **fees_1559(w3)},
           {"chainId": w3.eth.chain_id, "nonce": nonce + 1, "to": BOB, "value": 7, "gas": 21_000,
            "gasPrice": w3.eth.gas_price},
           {"chainId": w3.eth.chain_id, "nonce": nonce + 2, "to": token.address, "value": 0, "gas": 60_000,
            "data": token.functions.transfer(ALICE, 1_000)._encode_transaction_data(), **fees_1559(w3)}]
    t0 = time.perf_counter()
    receipts = [w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(
        wallet.sign_transaction(tx).raw_transaction)) for tx in txs]
    elapsed = time.perf_counter() - t0
    assert [r["status"] for r in receipts] == [1, 1, 1]
    assert [w3.eth.get_transaction(r["transactionHash"])["type"] for r in receipts] == [2, 0, 2]
    assert w3.eth.get_balance(ALICE) == alice + 10**15 and w3.eth.get_balance(BOB) == bob + 7
    assert token.functions.balanceOf(ALICE).call() == 1_000
    svm, sol = world["svm"], world["sol"]
    ix = transfer(TransferParams(from_pubkey=sol.pubkey, to_pubkey=SOL_FRIEND, lamports=3_000_000))
    signed = sol.sign_transaction(Transaction.new_unsigned(Message.new_with_blockhash([ix], sol.pubkey,
                                                                                       svm.latest_blockhash())))
    assert not hasattr(svm.send_transaction(signed), "err")  # TransactionMetadata, not FailedTransactionMetadata
    assert svm.get_balance(SOL_FRIEND) == 3_000_000
    print(f"python wallet: 3 EVM sends in {elapsed:.2f} s ({elapsed / 3:.2f} s each, sign + send + receipt)")


def test_mcp_tools_send_on_chain(world):
    w3, svm, me, token = world["w3"], world["svm"], world["me"], world["token"]
    cid = w3.eth.chain_id
    alice, bob, tok = w3.eth.get_balance(ALICE), w3.eth.get_balance(BOB), token.functions.balanceOf(BOB).call()
    friend = svm.get_balance(SOL_FRIEND) or 0
    out = mcp_calls(world["tools"], [
        ("get_addresses", {}),
        ("send_evm_transaction", {"chain_id": cid, "to": ALICE, "value_wei": 2 * 10**15}),
        ("send_evm_transaction", {"chain_id": cid, "to": BOB, "value_wei": 9, "tx_type": "legacy"}),
        ("transfer_erc20", {"chain_id": cid, "token": token.address, "to": BOB, "amount": 400_000}),
        ("transfer_sol", {"to": str(SOL_FRIEND), "lamports": 5_000_000}),
    ])
    (addresses, _), (eth, t_eth), (legacy, _), (erc20, _), (sol, _) = out
    assert addresses["evm"]["address"] == me and addresses["solana"]["chain"] == SOL_CHAIN
    assert [r.get("status") for r in (eth, legacy, erc20)] == ["success"] * 3, out
    assert sol["status"] == "processed", sol
    assert w3.eth.get_transaction(legacy["tx_hash"])["type"] == 0
    assert w3.eth.get_balance(ALICE) == alice + 2 * 10**15 and w3.eth.get_balance(BOB) == bob + 9
    assert token.functions.balanceOf(BOB).call() == tok + 400_000
    assert svm.get_balance(SOL_FRIEND) == friend + 5_000_000
    print(f"MCP send_evm_transaction (EIP-1559): {t_eth:.2f} s, sign + send + receipt")


def test_langchain_tools_move_funds(world):
    w3, token, svm = world["w3"], world["token"], world["svm"]
    tools = {t.name: t for t in langchain_tools(world["tools"])}
    before, friend = token.functions.balanceOf(ALICE).call(), svm.get_balance(SOL_FRIEND)
    out = tools["transfer_erc20"].invoke({"chain_id": w3.eth.chain_id, "token": token.address, "to": ALICE,
                                          "amount": 123})
    assert out["status"] == "success", out
    assert token.functions.balanceOf(ALICE).call() == before + 123
    assert tools["transfer_sol"].invoke({"to": str(SOL_FRIEND), "lamports": 1_000})["status"] == "processed"
    assert svm.get_balance(SOL_FRIEND) == friend + 1_000


def _denials(mpc, key_id: str, rule: str) -> dict[int, int]:
    out = {}
    for party in (1, 2, 3):
        path = mpc.state_dir(party) / "audit.jsonl"
        records = list(iter_records(path)) if path.exists() else []
        out[party] = sum(1 for r in records if r["decision"] == "deny" and r["rule"] == rule
                         and r["principal"] == "bot" and r["key_id"] == key_id)
    return out


@pytest.mark.parametrize("name,arguments,rule", [
    ("send_evm_transaction", {"to": ALICE, "value_wei": ETH_CAP}, "policy.per_tx_cap"),  # plus the fee: over
    ("send_evm_transaction", {"to": EVE, "value_wei": 1}, "policy.recipient_allowlist"),
    ("transfer_erc20", {"to": BOB, "amount": TOKEN_CAP + 1}, "policy.per_tx_cap"),
    ("transfer_sol", {"to": str(SOL_FRIEND), "lamports": SOL_CAP + 1}, "policy.per_tx_cap"),
    ("transfer_sol", {"to": str(SOL_EVE), "lamports": 1_000_000}, "policy.recipient_allowlist"),
])
def test_forbidden_transfer_never_reaches_the_chain(mpc, world, name, arguments, rule):
    w3, svm, token, me = world["w3"], world["svm"], world["token"], world["me"]
    if name == "transfer_erc20":
        arguments = {**arguments, "token": token.address}
    if name != "transfer_sol":
        arguments = {**arguments, "chain_id": w3.eth.chain_id}
    key_id = (world["ed"] if name == "transfer_sol" else world["evm"]).key_id
    sol_me = world["tools"].solana_wallet().pubkey
    state = lambda: (w3.eth.block_number, w3.eth.get_transaction_count(me), w3.eth.get_balance(me),  # noqa: E731
                     token.functions.balanceOf(me).call(), svm.get_balance(sol_me), svm.get_balance(SOL_EVE),
                     len(world["tools"].solana_chain().sent))
    before, audited = state(), _denials(mpc, key_id, rule)
    ((out, _),) = mcp_calls(world["tools"], [(name, arguments)])
    assert out["error"] == "PolicyDenied" and out["rule"] == rule, out
    assert state() == before  # no block, no nonce, no balance moved, nothing sent to the Solana runtime
    after = _denials(mpc, key_id, rule)
    asked = [p for p in after if after[p] > audited[p]]
    assert len(asked) >= 2 and all(after[p] == audited[p] + 1 for p in asked), (audited, after)
    # the same refusal through the Python wallet: the typed error, the same rule
    if name == "send_evm_transaction":
        tx = {"chainId": w3.eth.chain_id, "nonce": before[1], "to": arguments["to"], "value": int(arguments["value_wei"]),
              "gas": 21_000, **fees_1559(w3)}
        with pytest.raises(PolicyDenied) as e:
            world["wallet"].sign_transaction(tx)
        assert e.value.rule == rule


def test_every_node_audited_the_agent(mpc, world):
    """Each node's log holds the agent's allowed and refused sends, and never its secret."""
    for party in (1, 2, 3):
        mine = [r for r in iter_records(mpc.state_dir(party) / "audit.jsonl")
                if r["principal"] == "bot" and r["kind"] == "sign"]
        assert {r["decision"] for r in mine} == {"allow", "deny"}, party
        assert bytes(AGENT).hex() not in json.dumps(mine)
