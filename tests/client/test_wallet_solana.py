"""SolanaWallet against solders: signed legacy and v0 transactions verify with solders' own verifier, a co-signer's
signature stays in its slot, messages verify with libsodium, and the nodes' decoder reads the same message bytes."""

from __future__ import annotations

import asyncio

import nacl.signing
import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message, MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature as SolSignature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from mpc_ray import sim
from mpc_ray.client.signer import Agent, BadSignature
from mpc_ray.client.simsigner import SimSigner
from mpc_ray.client.solana import SolanaWallet
from mpc_ray.errors import InvalidInput
from mpc_ray.node.policy import decode_solana_message

BLOCKHASH = Hash.from_string("EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG")
RECIPIENT = Pubkey.from_string("9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin")


@pytest.fixture(scope="module")
def keys():
    return {"sol": sim.keygen("eddsa-ed25519", parties=3, threshold=2),
            "other": sim.keygen("eddsa-ed25519", parties=3, threshold=2),
            "btc": sim.keygen("schnorr-bip340", parties=3, threshold=2)}


@pytest.fixture(scope="module")
def wallet(keys) -> SolanaWallet:
    return SolanaWallet(SimSigner(keys), "sol")


def pay(wallet: SolanaWallet, lamports: int = 5000):
    return transfer(TransferParams(from_pubkey=wallet.pubkey, to_pubkey=RECIPIENT, lamports=lamports))


def test_address_is_the_base58_public_key(wallet, keys):
    assert bytes(wallet.pubkey) == keys["sol"].public_key
    assert Pubkey.from_string(wallet.address) == wallet.pubkey


def test_legacy_transaction_verifies_with_solders(wallet):
    tx = Transaction.new_unsigned(Message.new_with_blockhash([pay(wallet)], wallet.pubkey, BLOCKHASH))
    signed = wallet.sign_transaction(tx)
    signed.verify()  # raises if any signature is wrong
    assert signed.is_signed() and signed.signatures[0] != SolSignature.default()
    assert signed.signatures[0].verify(wallet.pubkey, bytes(signed.message))


def test_v0_transaction_verifies_with_solders(wallet):
    msg = MessageV0.try_compile(wallet.pubkey, [pay(wallet, 7)], [], BLOCKHASH)
    signed = wallet.sign_transaction(VersionedTransaction.populate(msg, [SolSignature.default()]))
    assert signed.verify_with_results() == [True]
    # what the wallet sent the nodes is exactly what they decode as a transfer
    intent = decode_solana_message(bytes(to_bytes_versioned(msg)))
    assert (intent.recipient, intent.amount) == (str(RECIPIENT), 7)


def test_co_signer_signature_stays_in_place(wallet):
    fee_payer = Keypair()
    ix = pay(wallet)
    msg = Message.new_with_blockhash([ix], fee_payer.pubkey(), BLOCKHASH)  # two signers: fee payer first
    tx = Transaction.new_unsigned(msg)
    tx.partial_sign([fee_payer], BLOCKHASH)
    signed = wallet.sign_transaction(tx)
    signed.verify()
    assert signed.signatures[0] == tx.signatures[0]


def test_sign_message_bytes_and_message(wallet):
    sig = wallet.sign_message(b"log in to example.com")
    nacl.signing.VerifyKey(bytes(wallet.pubkey)).verify(b"log in to example.com", bytes(sig))
    msg = Message.new_with_blockhash([pay(wallet)], wallet.pubkey, BLOCKHASH)
    assert wallet.sign_message(msg).verify(wallet.pubkey, bytes(msg))


def test_async_twins(wallet):
    async def many():
        return await asyncio.gather(*(wallet.sign_message_async(b"m%d" % i) for i in range(5)))

    for i, sig in enumerate(asyncio.run(many())):
        assert sig.verify(wallet.pubkey, b"m%d" % i)


def test_refusals(wallet, keys):
    stranger = Keypair()
    foreign = Transaction.new_unsigned(Message.new_with_blockhash(
        [transfer(TransferParams(from_pubkey=stranger.pubkey(), to_pubkey=RECIPIENT, lamports=1))],
        stranger.pubkey(), BLOCKHASH))
    with pytest.raises(InvalidInput, match="not a required signer"):
        wallet.sign_transaction(foreign)
    with pytest.raises(InvalidInput, match="eddsa-ed25519"):
        SolanaWallet(SimSigner(keys), "btc")
    with pytest.raises(InvalidInput):
        wallet.sign_message("text is ambiguous")  # type: ignore[arg-type]


def test_off_chain_bytes_have_no_node_format(keys):
    """An agent's request must be decodable by the nodes: raw off-chain bytes are not."""
    agent_wallet = SolanaWallet(SimSigner(keys, agent=Agent("bot", nacl.signing.SigningKey.generate())), "sol")
    with pytest.raises(InvalidInput, match="request format"):
        agent_wallet.sign_message(b"off-chain")


class OtherKeySigner(SimSigner):
    def sign_payload(self, payload):
        return self.sign_message("other", payload.message)


def test_wallet_refuses_another_keys_signature(keys):
    with pytest.raises(BadSignature):
        SolanaWallet(OtherKeySigner(keys), "sol").sign_message(b"x")


def test_wallet_constructors_on_the_signer(keys):
    """Every signer offers the wallet constructors; `chain` is what a policy-enforced request would name."""
    signer = SimSigner(keys)
    assert signer.solana_wallet("sol").chain == "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"  # mainnet-beta
    devnet = signer.solana_wallet("sol", chain="solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1")
    assert devnet.chain.endswith("EtWTRABZaYq6iMfeYKouRu166VU2xqa1") and devnet.address == signer.solana_wallet(
        "sol").address
