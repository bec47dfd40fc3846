"""Shared request bodies and policies of the policy tests (and the tests, benchmarks and fuzz harnesses that sign
under a policy): EVM transactions built with eth-account's serializers, a base policy, Solana and Bitcoin bodies."""

from __future__ import annotations

import hashlib
import struct

import rlp
from embit.psbt import PSBT
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account._utils.legacy_transactions import (
    serializable_unsigned_transaction_from_dict,
)
from eth_account._utils.transaction_utils import transaction_rpc_to_rlp_structure
from eth_account.typed_transactions import TypedTransaction
from eth_utils import to_checksum_address
from eth_utils.toolz import dissoc

from mpc_ray.node.bitcoin_policy import BTC_MAINNET
from mpc_ray.node.policy import AssetLimit, Policy, RateLimit, TxType, WindowCap, erc20_asset, native_asset

# EVM ---------------------------------------------------------------------------------------------------------
NOW = 1_700_000_000.0  # a Tuesday, 22:13 UTC
ACCT = Account.from_key(bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"))
ALICE = to_checksum_address("0x" + "a1" * 20)
BOB = to_checksum_address("0x" + "b0" * 20)
EVE = to_checksum_address("0x" + "ee" * 20)
USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
BASE = "eip155:8453"
USDC_ASSET = erc20_asset(BASE, USDC)
ETH_ASSET = native_asset(BASE)


def unsigned_bytes(tx: dict) -> bytes:
    """The signing payload of `tx`, built with eth-account's serializers (what a client sends)."""
    u = serializable_unsigned_transaction_from_dict(tx)
    if isinstance(u, TypedTransaction):
        t = u.transaction
        fields = transaction_rpc_to_rlp_structure(dissoc(t.dictionary, "v", "r", "s"))
        return bytes([u.transaction_type]) + rlp.encode(t._unsigned_transaction_serializer.from_dict(fields))
    return rlp.encode(u)


def eip1559(to=USDC, value=0, data=b"", chain=8453, gas=60_000, max_fee=10**9, **extra):
    tx = {
        "type": 2,
        "chainId": chain,
        "nonce": 7,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": 10**8,
        "gas": gas,
        "value": value,
        "data": data,
        **extra,
    }
    if to is not None:
        tx["to"] = to
    return tx


def erc20_call(selector: str, who: str, amount: int) -> bytes:
    return bytes.fromhex(selector) + abi_encode(["address", "uint256"], [who, amount])


def usdc_transfer(to=ALICE, amount=1_000_000, **kw) -> bytes:
    return unsigned_bytes(eip1559(data=erc20_call("a9059cbb", to, amount), **kw))


def eip3009(to=ALICE, value=10_000, chain=8453, contract=USDC, **overrides) -> dict:
    fields = [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ]
    td = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "TransferWithAuthorization": fields,
        },
        "primaryType": "TransferWithAuthorization",
        "domain": {"name": "USD Coin", "version": "2", "chainId": chain, "verifyingContract": contract},
        "message": {
            "from": ACCT.address,
            "to": to,
            "value": str(value),
            "validAfter": "0",
            "validBefore": str(int(NOW) + 600),
            "nonce": "0x" + "5a" * 32,
        },
    }
    td.update(overrides)
    return td


def base_policy(**overrides) -> Policy:
    usdc_day = WindowCap(window_s=86_400, max_amount=15_000_000)
    fields = {
        "key_id": "k1",
        "principal_id": "bot",
        "allowed_chains": (BASE,),
        "allowed_tx_types": (TxType.ERC20_TRANSFER, TxType.EIP3009_TRANSFER, TxType.NATIVE_TRANSFER),
        "recipient_allowlist": (ALICE, BOB),
        "recipient_denylist": (EVE,),
        "asset_limits": (
            AssetLimit(asset=USDC_ASSET, per_tx=5_000_000, windows=(usdc_day,)),
            AssetLimit(asset=ETH_ASSET),  # fees: allowed, uncapped
        ),
        "rate_limits": (RateLimit(window_s=60, max_requests=30),),
    }
    fields.update(overrides)
    return Policy(**fields)


# Solana ------------------------------------------------------------------------------------------------------
SOLANA = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"


def solana_transfer(sender, to, lamports: int) -> bytes:
    """A legacy message with one System Program transfer (solders)."""
    from solders.hash import Hash
    from solders.message import Message
    from solders.system_program import TransferParams, transfer

    return bytes(Message.new_with_blockhash(
        [transfer(TransferParams(from_pubkey=sender, to_pubkey=to, lamports=lamports))], sender, Hash.new_unique()))


TRANSFER_5 = struct.pack("<IQ", 2, 5)  # System Program transfer of 5 lamports


def solana_panic_message() -> bytes:
    """A Solana message whose System Program transfer lists one account: solders' decode_transfer panics on it."""
    from solders import system_program
    from solders.hash import Hash
    from solders.instruction import CompiledInstruction
    from solders.message import Message
    from solders.pubkey import Pubkey

    return bytes(Message.new_with_compiled_instructions(
        1, 0, 1, [Pubkey.new_unique(), system_program.ID], Hash.new_unique(),
        [CompiledInstruction(1, TRANSFER_5, bytes([0]))]))

# Bitcoin -----------------------------------------------------------------------------------------------------
BTC = native_asset(BTC_MAINNET)
FRIEND = Script(b"\x00\x14" + bytes(range(20)))  # P2WPKH, bech32
PER_TX = 100_000
FEE = 1_000


def addr(script: Script) -> str:
    return script.address()  # mainnet


def psbt_bytes(spk: Script, amounts=(60_000,), pays=((FRIEND, 50_000),), fee=FEE, *, edit=None) -> bytes:
    """A PSBT spending `amounts` from `spk`, paying `pays`, the rest (less `fee`) back to `spk` as change."""
    vin = [TransactionInput(hashlib.sha256(b"prev %d %d" % (i, a)).digest(), i) for i, a in enumerate(amounts)]
    change = sum(amounts) - sum(v for _, v in pays) - fee
    vout = [TransactionOutput(v, s) for s, v in pays] + ([TransactionOutput(change, spk)] if change > 0 else [])
    psbt = PSBT(Transaction(vin=vin, vout=vout))
    for inp, a in zip(psbt.inputs, amounts):
        inp.witness_utxo = TransactionOutput(a, spk)
    if edit is not None:
        edit(psbt)
    return psbt.serialize()
