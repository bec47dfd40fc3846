"""EvmWallet against eth-account's own code: every signature kind recovers to the wallet's address, signed
transactions decode back to their fields, and a wrong signature from the signer is refused. Keys are `mpc_ray.sim`
keys behind `SimSigner`, so no Ray is needed; the Ray path is covered in test_async_client.py and test_gateway.py."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import rlp
from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction as LegacyTransaction
from eth_account.messages import (
    _hash_eip191_message,
    encode_defunct,
    encode_intended_validator,
    encode_typed_data,
)
from eth_account.typed_transactions import TypedTransaction
from eth_keys import keys as eth_keys
from eth_utils import keccak
from x402.mechanisms.evm.types import TypedDataDomain, TypedDataField

from mpc_ray import sim
from mpc_ray.client.evm import EvmWallet, evm_address
from mpc_ray.client.signer import Agent, BadSignature
from mpc_ray.client.simsigner import SimSigner
from mpc_ray.errors import InvalidInput
from mpc_ray.types import Signature
from tests.support.primes import fixture_paillier_key

ALICE = "0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1"
USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"

TXS = {
    "legacy": {"chainId": 1, "nonce": 7, "to": ALICE, "value": 10**15, "gas": 21000, "gasPrice": 3 * 10**9},
    "eip2930": {"type": 1, "chainId": 10, "nonce": 1, "to": ALICE, "value": 5, "gas": 30000, "gasPrice": 10**9,
                "accessList": [{"address": USDC, "storageKeys": ["0x" + "00" * 31 + "01"]}]},
    "eip1559": {"type": 2, "chainId": 8453, "nonce": 3, "to": USDC, "value": 0, "gas": 60000,
                "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**8,
                "data": "0xa9059cbb" + "00" * 12 + ALICE[2:].lower() + (1_000_000).to_bytes(32, "big").hex()},
    "contract_creation": {"type": 2, "chainId": 8453, "nonce": 4, "value": 0, "gas": 100000,
                          "maxFeePerGas": 10**9, "maxPriorityFeePerGas": 1, "data": "0x6080"},
}

MAIL = {
    "types": {
        "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                         {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                 {"name": "contents", "type": "string"}, {"name": "tag", "type": "bytes32"}],
    },
    "primaryType": "Mail",
    "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
               "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
    "message": {"from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                "contents": "Hello, Bob!", "tag": b"\x07" * 32},
}


@pytest.fixture(scope="module")
def keys():
    aux = sim.aux_info(3, "112", paillier_keys={i: fixture_paillier_key("112", i) for i in (1, 2, 3)})
    return {"evm": sim.keygen("ecdsa-secp256k1", parties=3, threshold=2, aux=aux),
            "other": sim.keygen("ecdsa-secp256k1", parties=3, threshold=2, aux=aux),
            "ed": sim.keygen("eddsa-ed25519", parties=3, threshold=2)}


@pytest.fixture(scope="module")
def wallet(keys) -> EvmWallet:
    return EvmWallet(SimSigner(keys), "evm")


@pytest.fixture(scope="module")
def agent_wallet(keys) -> EvmWallet:
    """Same key, but every payload first goes through the nodes' request decoding (principal-signed request)."""
    import nacl.signing

    return EvmWallet(SimSigner(keys, agent=Agent("bot", nacl.signing.SigningKey.generate())), "evm")


def test_address_is_eip55_of_the_threshold_key(wallet, keys):
    uncompressed = eth_keys.PublicKey.from_compressed_bytes(keys["evm"].public_key)
    assert wallet.address == uncompressed.to_checksum_address()
    assert evm_address(keys["evm"].public_key) == wallet.address


@pytest.mark.parametrize("kind", sorted(TXS))
def test_signed_transaction_decodes_and_its_sender_recovers(wallet, kind):
    tx = TXS[kind]
    signed = wallet.sign_transaction(tx)
    raw = bytes(signed.raw_transaction)
    assert Account.recover_transaction(raw) == wallet.address
    assert bytes(signed.hash) == keccak(raw)
    if kind == "legacy":
        decoded = rlp.decode(raw, LegacyTransaction)
        assert (decoded.nonce, decoded.gasPrice, decoded.value, decoded.to) == (7, 3 * 10**9, 10**15,
                                                                                bytes.fromhex(ALICE[2:]))
        assert decoded.v == signed.v and decoded.v in (37, 38)  # EIP-155: chainId 1
    else:
        fields = TypedTransaction.from_bytes(signed.raw_transaction).as_dict()
        assert fields["chainId"] == tx["chainId"] and fields["nonce"] == tx["nonce"]
        assert (fields["v"], fields["r"], fields["s"]) == (signed.v, signed.r, signed.s) and signed.v in (0, 1)
    # eth-account's own serializer with our (v, r, s) gives the very same bytes
    from eth_account._utils.signing import (
        encode_transaction,
        serializable_unsigned_transaction_from_dict,
    )

    assert encode_transaction(serializable_unsigned_transaction_from_dict(tx), (signed.v, signed.r, signed.s)) == raw


def test_sign_message_eip191_recovers(wallet):
    msg = encode_defunct(text="mpc-ray says hi")
    signed = wallet.sign_message(msg)
    assert Account.recover_message(msg, signature=signed.signature) == wallet.address
    assert bytes(signed.message_hash) == bytes(_hash_eip191_message(msg))
    assert wallet.sign_message(b"raw bytes").signature != signed.signature  # bytes are wrapped with encode_defunct
    validator = encode_intended_validator(ALICE, b"\x01\x02")  # version 0x00: signed as a digest
    assert Account.recover_message(validator, signature=wallet.sign_message(validator).signature) == wallet.address


def test_sign_typed_data_like_eth_account(wallet):
    types = {k: v for k, v in MAIL["types"].items() if k != "EIP712Domain"}
    signed = wallet.sign_typed_data(MAIL["domain"], types, MAIL["message"])
    expected = encode_typed_data(MAIL["domain"], types, MAIL["message"])
    assert Account.recover_message(expected, signature=signed.signature) == wallet.address
    full = wallet.sign_typed_data(full_message=MAIL)
    assert Account.recover_message(encode_typed_data(full_message=MAIL), signature=full.signature) == wallet.address
    assert bytes(full.message_hash) == bytes(signed.message_hash)


def test_sign_typed_data_like_x402_signer(wallet):
    """x402 calls (TypedDataDomain, {type: [TypedDataField]}, primary_type, message) and wants 65 bytes."""
    domain = TypedDataDomain(name="USD Coin", version="2", chain_id=8453, verifying_contract=USDC)
    fields = [("from", "address"), ("to", "address"), ("value", "uint256"), ("validAfter", "uint256"),
              ("validBefore", "uint256"), ("nonce", "bytes32")]
    types = {"TransferWithAuthorization": [TypedDataField(name=n, type=t) for n, t in fields]}
    message = {"from": wallet.address, "to": ALICE, "value": 10_000, "validAfter": 0, "validBefore": 2**40,
               "nonce": b"\x42" * 32}
    sig = wallet.x402_signer().sign_typed_data(domain, types, "TransferWithAuthorization", message)
    assert isinstance(sig, bytes) and len(sig) == 65 and sig[64] in (27, 28)
    expected = encode_typed_data({"name": "USD Coin", "version": "2", "chainId": 8453, "verifyingContract": USDC},
                                 {"TransferWithAuthorization": [{"name": n, "type": t} for n, t in fields]}, message)
    assert Account.recover_message(expected, signature=sig) == wallet.address


def test_agent_requests_decode_on_the_nodes_to_the_same_digest(agent_wallet):
    """With an agent, each payload is a principal-signed request; the node decoder must reach the wallet's digest."""
    for tx in (TXS["legacy"], TXS["eip1559"]):
        assert Account.recover_transaction(agent_wallet.sign_transaction(tx).raw_transaction) == agent_wallet.address
    msg = encode_defunct(text="agent")
    assert Account.recover_message(msg, signature=agent_wallet.sign_message(msg).signature) == agent_wallet.address
    signed = agent_wallet.sign_typed_data(full_message=MAIL)
    assert Account.recover_message(encode_typed_data(full_message=MAIL), signature=signed.signature) == \
        agent_wallet.address


def test_async_twins(wallet):
    async def both():
        return await asyncio.gather(wallet.sign_transaction_async(TXS["eip1559"]),
                                    wallet.sign_message_async(encode_defunct(text="async")))

    tx, msg = asyncio.run(both())
    assert Account.recover_transaction(tx.raw_transaction) == wallet.address
    assert Account.recover_message(encode_defunct(text="async"), signature=msg.signature) == wallet.address


@pytest.mark.parametrize(
    "tx,why",
    [
        ({k: v for k, v in TXS["legacy"].items() if k != "chainId"}, "chainId"),
        ({**TXS["eip1559"], "from": ALICE}, "from"),
        ({**TXS["eip1559"], "to": ALICE.lower()}, "invalid"),  # eth-account wants checksummed addresses
        ({**TXS["eip1559"], "type": 3, "maxFeePerBlobGas": 1, "blobVersionedHashes": ["0x01" + "00" * 31]}, "transaction"),
    ],
)
def test_refused_transactions(wallet, tx, why):
    with pytest.raises(InvalidInput, match=why):
        wallet.sign_transaction(tx)


class LyingSigner(SimSigner):
    """Returns a signature by another key, or over another digest: what a faulty coordinator or gateway could do."""

    def __init__(self, keys, mode: str) -> None:
        super().__init__(keys)
        self.mode = mode

    def sign_payload(self, payload):
        if self.mode == "other_key":
            return self.sign_digest("other", payload.message)
        if self.mode == "other_digest":
            return self.sign_digest("evm", keccak(payload.message))
        sig = self.sign_digest("evm", payload.message)  # "flipped_recovery": right r, s, wrong recovery id
        return Signature("ecdsa-secp256k1", sig.to_bytes(), 1 - sig.recovery_id)


@pytest.mark.parametrize("mode", ["other_key", "other_digest", "flipped_recovery"])
def test_wallet_refuses_a_signature_that_is_not_its_own(keys, mode):
    wallet = EvmWallet(LyingSigner(keys, mode), "evm")
    with pytest.raises(BadSignature):
        wallet.sign_message(encode_defunct(text="x"))


def test_wallet_needs_an_ecdsa_key(keys):
    with pytest.raises(InvalidInput, match="ecdsa"):
        EvmWallet(SimSigner(keys), "ed")
    with pytest.raises(InvalidInput, match="unknown key"):
        EvmWallet(SimSigner(keys), "nope")


def test_agent_credential_is_redacted():
    import nacl.signing

    sk = nacl.signing.SigningKey.generate()
    agent = Agent("bot", sk)
    assert bytes(sk).hex() not in repr(agent) and "redacted" in repr(agent)
    assert dataclasses.replace(agent, ttl_s=30).ttl_s == 30
    with pytest.raises(InvalidInput):
        Agent("bot", b"short")


def test_hd_child_wallet(keys, agent_wallet):
    """`path=` gives the BIP32 child's account: its address, and signatures that recover to it."""
    child = EvmWallet(SimSigner(keys), "evm", path="m/0/7")
    assert child.address == evm_address(keys["evm"].child_public_key("m/0/7")) != EvmWallet(SimSigner(keys), "evm").address
    assert Account.recover_transaction(child.sign_transaction(TXS["eip1559"]).raw_transaction) == child.address
    msg = encode_defunct(text="child")
    assert Account.recover_message(msg, signature=child.sign_message(msg).signature) == child.address
    assert "m/0/7" in repr(child)
    # an agent's request carries the path signed; the nodes' decoding is unchanged
    agent_child = EvmWallet(agent_wallet._signer, "evm", path="m/0/7")
    assert Account.recover_transaction(agent_child.sign_transaction(TXS["legacy"]).raw_transaction) == child.address
    with pytest.raises(InvalidInput):
        EvmWallet(SimSigner(keys), "evm", path="m/0'/1")  # hardened: no party holds the private key
