"""What the wallets sign executes on real chain VMs, not only verifies: an in-process EVM (eth-tester + py-evm through
web3's EthereumTesterProvider) and an in-process Solana runtime (solders.litesvm, signature verification on).

Through the MCP tools (the SDK's own client, in process): an EIP-1559 ETH transfer, a legacy transaction, an ERC-20
transfer of a token deployed from bytecode (tests/support/chain.py), a Solana system transfer and a prepared Solana
transaction; receipts and balances are the chain's. The x402 payment runs against the SDK's own facilitator check
offline (tests/client/test_x402.py); Bitcoin has no in-process chain here, so the PSBT's BIP341 signatures are checked
against embit's signature hashes. Keys: `mpc_ray.sim` behind `SimSigner` with an agent (the nodes' decoding of every
request is checked; the committee, its policy and audit are tests/client/test_chain_committee.py's).
"""

from __future__ import annotations

import asyncio
import base64

import coincurve
import httpx
import nacl.signing
import pytest
from solders.hash import Hash
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from mpc_ray import sim
from mpc_ray.client.signer import Agent
from mpc_ray.client.simsigner import SimSigner
from mpc_ray.tools import AgentTools, SolanaRpc
from mpc_ray.tools.mcp import build_server
from tests.support.chain import TOKEN_SUPPLY, LiteSvmChain, deploy_token, evm_tester, fund, litesvm_rpc
from tests.support.primes import fixture_paillier_key

ALICE = "0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1"
BOB = "0xB0B0b0B0B0B0B0b0B0B0B0b0b0b0b0B0b0b0B0B0"
SOL_FRIEND = Pubkey.from_string("9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin")


@pytest.fixture(scope="module")
def keys():
    aux = sim.aux_info(3, "112", paillier_keys={i: fixture_paillier_key("112", i) for i in (1, 2, 3)})
    return {"evm": sim.keygen("ecdsa-secp256k1", parties=3, threshold=2, aux=aux),
            "sol": sim.keygen("eddsa-ed25519", parties=3, threshold=2),
            "btc": sim.keygen("schnorr-bip340", parties=3, threshold=2)}


@pytest.fixture(scope="module")
def world(keys):
    w3 = evm_tester()
    svm = LiteSVM()
    tools = AgentTools(SimSigner(keys, agent=Agent("bot", nacl.signing.SigningKey.generate())), evm_key_id="evm",
                       solana_key_id="sol", bitcoin_key_id="btc", bitcoin_network="regtest",
                       evm_chains={w3.eth.chain_id: w3}, solana=LiteSvmChain(svm))
    me = tools.evm_wallet().address
    fund(w3, me, 10**18)
    token = deploy_token(w3)
    token.functions.transfer(me, 1_000_000).transact({"from": w3.eth.accounts[0]})
    svm.airdrop(tools.solana_wallet().pubkey, 5 * 10**9)
    return {"w3": w3, "svm": svm, "tools": tools, "token": token, "me": me}


def mcp_call(tools, name, arguments):
    from mcp import Client

    async def run():
        async with Client(build_server(tools)) as client:
            return await client.call_tool(name, arguments)

    out = asyncio.run(run())
    assert out.is_error == ("error" in out.structured_content)
    return out.structured_content


def test_eip1559_eth_transfer_executes(world):
    w3, me = world["w3"], world["me"]
    before, alice = w3.eth.get_balance(me), w3.eth.get_balance(ALICE)
    out = mcp_call(world["tools"], "send_evm_transaction",
                   {"chain_id": w3.eth.chain_id, "to": ALICE, "value_wei": str(10**15)})
    assert out["status"] == "success" and out["from"] == me, out
    tx = w3.eth.get_transaction(out["tx_hash"])
    assert tx["type"] == 2 and tx["from"] == me and tx["chainId"] == w3.eth.chain_id
    assert w3.eth.get_balance(ALICE) == alice + 10**15
    assert w3.eth.get_balance(me) == before - 10**15 - out["gas_used"] * out["effective_gas_price"]


def test_legacy_transaction_executes(world):
    w3 = world["w3"]
    out = mcp_call(world["tools"], "send_evm_transaction",
                   {"chain_id": w3.eth.chain_id, "to": BOB, "value_wei": 12345, "tx_type": "legacy"})
    assert out["status"] == "success", out
    tx = w3.eth.get_transaction(out["tx_hash"])
    assert tx["type"] == 0 and tx["v"] in (35 + 2 * w3.eth.chain_id, 36 + 2 * w3.eth.chain_id)  # EIP-155
    assert w3.eth.get_balance(BOB) == 12345


def test_erc20_transfer_executes_and_emits_its_event(world):
    w3, token, me = world["w3"], world["token"], world["me"]
    out = mcp_call(world["tools"], "transfer_erc20",
                   {"chain_id": w3.eth.chain_id, "token": token.address, "to": ALICE, "amount": 250_000})
    assert out["status"] == "success", out
    receipt = w3.eth.get_transaction_receipt(out["tx_hash"])
    (event,) = token.events.Transfer().process_receipt(receipt)
    assert (event.args["from"], event.args["to"], event.args["value"]) == (me, ALICE, 250_000)
    assert token.functions.balanceOf(ALICE).call() == 250_000
    assert token.functions.balanceOf(me).call() == 750_000
    assert token.functions.balanceOf(w3.eth.accounts[0]).call() == TOKEN_SUPPLY - 1_000_000


def test_a_reverting_call_is_a_chain_error_before_anything_is_sent(world):
    w3, token, me = world["w3"], world["token"], world["me"]
    nonce = w3.eth.get_transaction_count(me)
    out = mcp_call(world["tools"], "transfer_erc20",
                   {"chain_id": w3.eth.chain_id, "token": token.address, "to": ALICE, "amount": 10**9})
    assert out["error"] == "ChainError"  # the gas estimate reverts: more than the balance
    assert w3.eth.get_transaction_count(me) == nonce


def test_solana_transfer_executes_on_litesvm(world):
    svm, tools = world["svm"], world["tools"]
    me = tools.solana_wallet().pubkey
    before = svm.get_balance(me)
    out = mcp_call(tools, "transfer_sol", {"to": str(SOL_FRIEND), "lamports": 1_000_000})
    assert out["status"] == "processed" and out["from"] == str(me), out
    assert svm.get_balance(SOL_FRIEND) == 1_000_000
    assert svm.get_balance(me) == before - 1_000_000 - 5000  # one signature's fee
    assert svm.get_transaction(__import__("solders.signature", fromlist=["Signature"]).Signature.from_string(
        out["signature"])) is not None


def test_prepared_solana_transaction_and_json_rpc(world, keys):
    """A base64 transaction prepared elsewhere, sent through `SolanaRpc` (the JSON-RPC client the CLI uses), here
    answered by LiteSVM."""
    svm = world["svm"]
    rpc = SolanaRpc("http://solana.test", transport=litesvm_rpc(svm))
    tools = AgentTools(world["tools"].signer, solana_key_id="sol", solana=rpc)
    me = tools.solana_wallet().pubkey
    friend = Pubkey.from_string("4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T")
    ix = transfer(TransferParams(from_pubkey=me, to_pubkey=friend, lamports=2_000_000))  # above rent exemption: the runtime checks it
    unsigned = Transaction.new_unsigned(Message.new_with_blockhash([ix], me, rpc.latest_blockhash()))
    out = tools.call("send_solana_transaction", {"transaction_base64": base64.b64encode(bytes(unsigned)).decode()})
    assert out.get("status") == "confirmed", out
    assert svm.get_balance(friend) == 2_000_000
    # a stale blockhash: the runtime refuses it, the RPC says so, the tool answers a ChainError
    stale = Transaction.new_unsigned(Message.new_with_blockhash([ix], me, Hash.new_unique()))
    out = tools.call("send_solana_transaction", {"transaction_base64": base64.b64encode(bytes(stale)).decode()})
    assert out["error"] == "ChainError" and svm.get_balance(friend) == 2_000_000


def test_pay_x402_resource(world):
    """The x402 tool: 402, the wallet's EIP-3009 authorization, verified by the SDK's facilitator, 200."""
    from x402.http.constants import PAYMENT_REQUIRED_HEADER, PAYMENT_SIGNATURE_HEADER
    from x402.http.utils import decode_payment_signature_header, encode_payment_required_header
    from x402.schemas import PaymentRequired

    from tests.support.x402 import facilitator_verify, requirements

    req, verdicts = requirements(), []

    def resource(request: httpx.Request) -> httpx.Response:
        header = request.headers.get(PAYMENT_SIGNATURE_HEADER)
        if header is None:
            return httpx.Response(402, headers={PAYMENT_REQUIRED_HEADER: encode_payment_required_header(
                PaymentRequired(accepts=[req]))}, json={})
        result, _ = facilitator_verify(decode_payment_signature_header(header), req)
        verdicts.append((result.is_valid, result.payer))
        return httpx.Response(200, json={"weather": "sunny"})

    base = world["tools"]
    tools = AgentTools(base.signer, evm_key_id="evm", x402_transport=httpx.MockTransport(resource))
    out = tools.call("pay_x402", {"url": "https://api.example/weather"})
    assert out["status_code"] == 200 and out["paid"] and '"sunny"' in out["body"], out
    assert verdicts == [(True, tools.evm_wallet().address)]


def test_sign_psbt_gives_valid_bip341_key_path_witnesses(world):
    from embit.psbt import PSBT
    from embit.script import Script, address_to_scriptpubkey
    from embit.transaction import Transaction as BtcTx
    from embit.transaction import TransactionInput, TransactionOutput

    tools = world["tools"]
    btc = tools.taproot_wallet()
    own = Script(btc.script_pubkey)
    friend = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
    psbt = PSBT(BtcTx(vin=[TransactionInput(bytes.fromhex("11" * 32), 0), TransactionInput(bytes.fromhex("22" * 32), 1)],
                      vout=[TransactionOutput(50_000, address_to_scriptpubkey(friend)), TransactionOutput(29_000, own)]))
    psbt.inputs[0].witness_utxo = TransactionOutput(60_000, own)
    psbt.inputs[1].witness_utxo = TransactionOutput(20_000, own)
    hashes = [bytes(psbt.sighash(i, sighash=0)) for i in range(2)]
    out = tools.call("sign_psbt", {"psbt_base64": psbt.to_string()})
    assert out["inputs_signed"] == 2 and out["address"] == btc.address, out
    signed = BtcTx.parse(bytes.fromhex(out["transaction_hex"]))
    for i, h in enumerate(hashes):
        (sig,) = signed.vin[i].witness.items
        assert coincurve.PublicKeyXOnly(btc.output_key).verify(sig, h)
    assert signed.txid().hex() == out["txid"]
    assert tools.call("sign_psbt", {"psbt_base64": "bm90IGEgcHNidA=="})["error"] == "InvalidInput"
