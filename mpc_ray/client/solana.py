"""`SolanaWallet`: a Solana account whose Ed25519 key is a FROST threshold key; speaks solders' types.

    wallet = mpc.solana_wallet(key.key_id)      # an "eddsa-ed25519" key
    wallet.pubkey, wallet.address               # solders Pubkey, base58 string
    signed = wallet.sign_transaction(tx)        # solders Transaction / VersionedTransaction, our signature in place
    sig = wallet.sign_message(msg)              # solders Signature over a Message / MessageV0 or raw bytes

Every method has an ``*_async`` twin. FROST signs the serialized message itself (RFC 8032 Ed25519), so any Solana
verifier accepts the result; the wallet verifies it with libsodium before returning it (`BadSignature` otherwise).
A transaction message is sent to the nodes as ``solana_tx`` (the format they decode); an off-chain message (raw
bytes) has no node-side format and is signable only without an agent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nacl.exceptions
import nacl.signing
from solders.message import Message, MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature as SolSignature
from solders.transaction import Transaction, VersionedTransaction

from ..errors import InvalidInput
from ..requests import RequestFormat
from ..types import Signature
from .signer import BadSignature, Payload, Signer

__all__ = ["MAINNET", "SolanaWallet"]

MAINNET = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"  # CAIP-2: the genesis hash prefix of mainnet-beta


class SolanaWallet:
    """See the module docstring. `chain` (CAIP-2) is what a policy-enforced request names as its chain."""

    def __init__(self, signer: Signer, key_id: str, *, chain: str = MAINNET) -> None:
        info = signer.key_info(key_id)
        if info.scheme != "eddsa-ed25519":
            raise InvalidInput(f"key {key_id!r} is {info.scheme}; a Solana wallet needs an eddsa-ed25519 key")
        self._signer = signer
        self.key_id = key_id
        self.chain = chain
        self.public_key = info.public_key
        self.pubkey = Pubkey.from_bytes(info.public_key)
        self._verify_key = nacl.signing.VerifyKey(info.public_key)

    @property
    def address(self) -> str:
        """Base58 address (the public key)."""
        return str(self.pubkey)

    def __repr__(self) -> str:
        return f"SolanaWallet(key_id={self.key_id!r}, address={self.address})"

    # -------------------------------------------------------------------------------------------------------
    def _checked(self, payload: Payload, sig: Signature) -> SolSignature:
        if not isinstance(sig, Signature) or sig.scheme != "eddsa-ed25519":
            raise BadSignature("the signer returned no Ed25519 signature")
        try:
            self._verify_key.verify(payload.message, sig.to_bytes())
        except (nacl.exceptions.BadSignatureError, ValueError):
            raise BadSignature("the returned signature does not verify under this wallet's key") from None
        return SolSignature.from_bytes(sig.to_bytes())

    def _run(self, payload: Payload, finish: Callable[[SolSignature], Any]) -> Any:
        return finish(self._checked(payload, self._signer.sign_payload(payload)))

    async def _run_async(self, payload: Payload, finish: Callable[[SolSignature], Any]) -> Any:
        return finish(self._checked(payload, await self._signer.sign_payload_async(payload)))

    def _message_payload(self, message: Message | MessageV0 | bytes) -> Payload:
        if isinstance(message, (Message, MessageV0)):
            raw = bytes(to_bytes_versioned(message))
            return Payload(self.key_id, raw, RequestFormat.SOLANA_TX, raw, self.chain)
        if isinstance(message, (bytes, bytearray)):
            return Payload(self.key_id, bytes(message), None)
        raise InvalidInput("sign_message takes a solders Message / MessageV0 or raw bytes")

    # messages ----------------------------------------------------------------------------------------------
    def sign_message(self, message: Message | MessageV0 | bytes) -> SolSignature:
        """Ed25519 signature of a transaction message (its serialized bytes) or of raw off-chain bytes."""
        return self._run(self._message_payload(message), lambda s: s)

    async def sign_message_async(self, message: Message | MessageV0 | bytes) -> SolSignature:
        return await self._run_async(self._message_payload(message), lambda s: s)

    # transactions ------------------------------------------------------------------------------------------
    def _prepare_transaction(self, tx: Transaction | VersionedTransaction) -> tuple[Payload, Callable]:
        if not isinstance(tx, (Transaction, VersionedTransaction)):
            raise InvalidInput("sign_transaction takes a solders Transaction or VersionedTransaction")
        message = tx.message
        required = list(message.account_keys)[: message.header.num_required_signatures]
        if self.pubkey not in required:
            raise InvalidInput("this wallet is not a required signer of the transaction")
        slot = required.index(self.pubkey)
        existing = list(tx.signatures)
        if len(existing) != len(required):
            existing = [SolSignature.default()] * len(required)
        payload = self._message_payload(message)

        def finish(sig: SolSignature) -> Transaction | VersionedTransaction:
            signatures = existing[:slot] + [sig] + existing[slot + 1:]  # co-signers' signatures stay in place
            return type(tx).populate(message, signatures)

        return payload, finish

    def sign_transaction(self, tx: Transaction | VersionedTransaction) -> Transaction | VersionedTransaction:
        """A copy of `tx` with this wallet's signature in its signer slot (other signatures kept)."""
        return self._run(*self._prepare_transaction(tx))

    async def sign_transaction_async(self, tx: Transaction | VersionedTransaction) -> Transaction | VersionedTransaction:
        return await self._run_async(*self._prepare_transaction(tx))
