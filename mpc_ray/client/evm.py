"""`EvmWallet`: an eth-account-shaped account whose key is a threshold ECDSA key.

    wallet = mpc.evm_wallet(key.key_id)           # or handle.evm_wallet / remote.evm_wallet / SimSigner
    wallet.address                                # EIP-55
    wallet.sign_transaction(tx)                   # eth-account SignedTransaction (raw_transaction, hash, r, s, v)
    wallet.sign_message(encode_defunct(text=...)) # eth-account SignedMessage (EIP-191)
    wallet.sign_typed_data(domain, types, data)   # eth-account SignedMessage (EIP-712), as LocalAccount takes it
    wallet.x402_signer()                          # x402's ClientEvmSigner: sign_typed_data(..., primary_type, ...)
                                                  # returns the 65 signature bytes
    mpc.evm_wallet(key.key_id, path="m/0/7")      # the BIP32 child's account (one key, an address per agent)

Every method has an ``*_async`` twin. Encoding is eth-account's own: the unsigned transaction comes from its
serializers, the digest from the same decoder every node runs (`node.policy.decode_evm_transaction` /
`decode_typed_data`), so what the wallet expects and what the nodes sign cannot drift apart. With an agent the
request carries the transaction / typed data / message itself and the nodes compute the digest; without one the
digest is signed directly. Either way the wallet recovers the signer from the returned signature and refuses
(`BadSignature`) one that is not its own key over its own digest before it builds the result.

Accepted transactions: EIP-155 legacy (``chainId`` required: a pre-EIP-155 transaction replays on every chain),
EIP-2930 and EIP-1559. Blob (type 3) and EIP-7702 (type 4) transactions are refused, as the nodes refuse them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

import coincurve
import rlp
from eth_account._utils.signing import (
    encode_transaction,
    serializable_unsigned_transaction_from_dict,
)
from eth_account._utils.transaction_utils import transaction_rpc_to_rlp_structure
from eth_account.datastructures import SignedMessage, SignedTransaction
from eth_account.messages import SignableMessage, _hash_eip191_message, encode_defunct
from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from ..errors import InvalidInput
from ..intents.evm import decode_evm_transaction, decode_typed_data
from ..requests import RequestFormat
from ..types import Signature
from .signer import BadSignature, Payload, Signer

__all__ = ["EvmWallet", "X402Signer", "evm_address"]

_DOMAIN_FIELDS = (  # EIP-712 domain fields in the order the standard lists them
    ("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address"),
    ("salt", "bytes32"),
)
_X402_DOMAIN_NAMES = {"name": "name", "version": "version", "chain_id": "chainId",
                      "verifying_contract": "verifyingContract", "salt": "salt"}


def evm_address(public_key: bytes) -> str:
    """EIP-55 address of a SEC1 secp256k1 public key (compressed or not)."""
    point = coincurve.PublicKey(bytes(public_key)).format(compressed=False)
    return to_checksum_address(keccak(point[1:])[-20:])


def _unsigned_payload(tx: Mapping[str, Any]) -> bytes:
    """The unsigned signing payload of `tx`, built with eth-account's serializers (what the nodes decode)."""
    try:
        unsigned = serializable_unsigned_transaction_from_dict(dict(tx))
        if isinstance(unsigned, TypedTransaction):
            inner = unsigned.transaction
            fields = transaction_rpc_to_rlp_structure({k: v for k, v in inner.dictionary.items()
                                                       if k not in ("v", "r", "s")})
            body = bytes([unsigned.transaction_type]) + rlp.encode(
                inner._unsigned_transaction_serializer.from_dict(fields))
        else:
            body = rlp.encode(unsigned)
    except InvalidInput:
        raise
    except Exception as e:  # noqa: BLE001 - eth-account raises TypeError / ValueError / its own on bad fields
        raise InvalidInput(f"invalid transaction: {type(e).__name__}: {e}") from None
    if bytes(unsigned.hash()) != keccak(body):
        raise InvalidInput("transaction serialization disagrees with eth-account's hash")
    return body


def _to_json(value: Any) -> Any:
    """Typed-data values as JSON: bytes as 0x-hex (eth-account reads them back as the same bytes)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    raise InvalidInput(f"typed data value of type {type(value).__name__} is not supported")


def _domain_dict(domain: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(domain) and not isinstance(domain, type):  # x402's TypedDataDomain
        raw = {f.name: getattr(domain, f.name) for f in dataclasses.fields(domain)}
        return {_X402_DOMAIN_NAMES.get(k, k): v for k, v in raw.items() if v is not None}
    if isinstance(domain, Mapping):
        return dict(domain)
    raise InvalidInput("the EIP-712 domain must be a mapping or x402's TypedDataDomain")


def _type_fields(fields: Any) -> list[dict[str, str]]:
    out = []
    for f in fields:
        if isinstance(f, Mapping):
            out.append({"name": f["name"], "type": f["type"]})
        elif dataclasses.is_dataclass(f):  # x402's TypedDataField
            out.append({"name": f.name, "type": f.type})
        else:
            raise InvalidInput("EIP-712 type fields are {name, type} mappings")
    return out


def typed_data_json(domain: Any, types: Mapping[str, Any], message: Mapping[str, Any],
                    primary_type: str | None = None) -> bytes:
    """One canonical JSON document ({types, primaryType?, domain, message}) for the nodes to decode."""
    dom = _domain_dict(domain)
    if not isinstance(types, Mapping) or not isinstance(message, Mapping):
        raise InvalidInput("EIP-712 types and message must be mappings")
    all_types = {str(name): _type_fields(fields) for name, fields in types.items()}
    if "EIP712Domain" not in all_types:
        unknown = set(dom) - {n for n, _ in _DOMAIN_FIELDS}
        if unknown:
            raise InvalidInput(f"unknown EIP-712 domain fields {sorted(unknown)}; pass an EIP712Domain type")
        all_types["EIP712Domain"] = [{"name": n, "type": t} for n, t in _DOMAIN_FIELDS if n in dom]
    doc: dict[str, Any] = {"types": all_types, "domain": _to_json(dom), "message": _to_json(message)}
    if primary_type is not None:
        doc["primaryType"] = primary_type
    return json.dumps(doc, separators=(",", ":")).encode()


class EvmWallet:
    """An EVM account on a threshold key; see the module docstring. Thread- and task-safe (no mutable state)."""

    def __init__(self, signer: Signer, key_id: str, *, path: str | None = None) -> None:
        info = signer.key_info(key_id, path)  # with `path`: the BIP32 child's public key
        if info.scheme != "ecdsa-secp256k1":
            raise InvalidInput(f"key {key_id!r} is {info.scheme}; an EVM wallet needs an ecdsa-secp256k1 key")
        self._signer = signer
        self.key_id = key_id
        self.path = path
        self.public_key = info.public_key
        self._point = coincurve.PublicKey(info.public_key)
        self._address = evm_address(info.public_key)

    @property
    def address(self) -> str:
        """The EIP-55 checksummed address."""
        return self._address

    def __repr__(self) -> str:
        child = f", path={self.path!r}" if self.path else ""
        return f"EvmWallet(key_id={self.key_id!r}{child}, address={self._address})"

    # the signature every result is built from -------------------------------------------------------------
    def _checked(self, payload: Payload, sig: Signature) -> Signature:
        """The signature, if it is this key's over `payload.message` with the right recovery id."""
        if not isinstance(sig, Signature) or sig.scheme != "ecdsa-secp256k1" or sig.recovery_id not in (0, 1):
            raise BadSignature("the signer returned no ECDSA signature")
        try:
            recovered = coincurve.PublicKey.from_signature_and_message(
                sig.to_bytes() + bytes([sig.recovery_id]), payload.message, hasher=None)
        except Exception:  # noqa: BLE001 - coincurve: not a valid signature at all
            raise BadSignature("the returned signature does not recover") from None
        if recovered.format() != self._point.format():
            raise BadSignature("the returned signature is not this wallet's key over the expected digest")
        return sig

    def _run(self, payload: Payload, finish: Callable[[Signature], Any]) -> Any:
        return finish(self._checked(payload, self._signer.sign_payload(payload)))

    async def _run_async(self, payload: Payload, finish: Callable[[Signature], Any]) -> Any:
        return finish(self._checked(payload, await self._signer.sign_payload_async(payload)))

    # transactions -----------------------------------------------------------------------------------------
    def _prepare_transaction(self, transaction_dict: Mapping[str, Any]) -> tuple[Payload, Callable]:
        if not isinstance(transaction_dict, Mapping):
            raise InvalidInput("transaction_dict must be a mapping (as eth-account takes it)")
        tx = dict(transaction_dict)
        sender = tx.pop("from", None)
        if sender is not None and str(sender).lower() != self._address.lower():
            raise InvalidInput("transaction 'from' is not this wallet's address")
        if "chainId" not in tx:
            raise InvalidInput("chainId is required: pre-EIP-155 transactions replay on every chain")
        body = _unsigned_payload(tx)
        intent = decode_evm_transaction(body)  # exactly what every node will compute
        unsigned = serializable_unsigned_transaction_from_dict(tx)
        typed = isinstance(unsigned, TypedTransaction)
        chain_id = int(intent.chain.split(":")[1])  # type: ignore[union-attr]
        payload = Payload(self.key_id, intent.digest, RequestFormat.EVM_TX, body, intent.chain or "",
                          path=self.path)

        def finish(sig: Signature) -> SignedTransaction:
            v = sig.recovery_id if typed else 35 + 2 * chain_id + sig.recovery_id  # type: ignore[operator]
            raw = encode_transaction(unsigned, vrs=(v, sig.r, sig.s))
            return SignedTransaction(raw_transaction=HexBytes(raw), hash=HexBytes(keccak(raw)), r=sig.r, s=sig.s, v=v)

        return payload, finish

    def sign_transaction(self, transaction_dict: Mapping[str, Any]) -> SignedTransaction:
        """Sign like `LocalAccount.sign_transaction`; the result is eth-account's `SignedTransaction`."""
        return self._run(*self._prepare_transaction(transaction_dict))

    async def sign_transaction_async(self, transaction_dict: Mapping[str, Any]) -> SignedTransaction:
        return await self._run_async(*self._prepare_transaction(transaction_dict))

    # EIP-191 ----------------------------------------------------------------------------------------------
    def _prepare_message(self, signable_message: SignableMessage | bytes | str) -> tuple[Payload, Callable]:
        if isinstance(signable_message, (bytes, bytearray)):
            signable_message = encode_defunct(primitive=bytes(signable_message))
        elif isinstance(signable_message, str):
            signable_message = encode_defunct(text=signable_message)
        if not isinstance(signable_message, SignableMessage):
            raise InvalidInput("sign_message takes an eth-account SignableMessage (or bytes / text for EIP-191)")
        digest = bytes(_hash_eip191_message(signable_message))
        if signable_message.version == b"E":  # personal_sign: the nodes see the message itself
            payload = Payload(self.key_id, digest, RequestFormat.EIP191, bytes(signable_message.body), path=self.path)
        else:  # 0x00 / 0x01 versions carry no body the nodes can decode: only a raw-digest policy signs them
            payload = Payload(self.key_id, digest, RequestFormat.RAW_DIGEST, digest, path=self.path)
        return payload, lambda sig: _signed_message(digest, sig)

    def sign_message(self, signable_message: SignableMessage | bytes | str) -> SignedMessage:
        """Sign like `LocalAccount.sign_message` (EIP-191); bytes / str are wrapped with `encode_defunct`."""
        return self._run(*self._prepare_message(signable_message))

    async def sign_message_async(self, signable_message: SignableMessage | bytes | str) -> SignedMessage:
        return await self._run_async(*self._prepare_message(signable_message))

    # EIP-712 ----------------------------------------------------------------------------------------------
    def _typed_data_payload(self, body: bytes) -> tuple[Payload, bytes]:
        intent = decode_typed_data(body)  # eth-account's digest, as every node computes it
        return Payload(self.key_id, intent.digest, RequestFormat.EIP712, body, intent.chain or "",
                       path=self.path), intent.digest

    def _prepare_typed_data(self, domain_data: Any, message_types: Any, message_data: Any, full_message: Any,
                            extra: tuple, unexpected: dict) -> tuple[Payload, Callable]:
        if extra or isinstance(message_data, str) or {"domain", "types", "primary_type", "message"} & set(unexpected):
            raise InvalidInput("sign_typed_data(domain, types, primary_type, message) is x402's signer call: pass "
                               "wallet.x402_signer() to the x402 SDK (it returns the 65 signature bytes)")
        if full_message is not None:
            if any(v is not None for v in (domain_data, message_types, message_data)) or \
                    not isinstance(full_message, Mapping):
                raise InvalidInput("pass full_message alone, or domain_data, message_types and message_data")
            body = typed_data_json(full_message.get("domain", {}), full_message.get("types", {}),
                                   full_message.get("message", {}), full_message.get("primaryType"))
        elif unexpected or any(v is None for v in (domain_data, message_types, message_data)):
            raise InvalidInput("sign_typed_data(domain_data, message_types, message_data) or full_message=")
        else:
            body = typed_data_json(domain_data, message_types, message_data)
        payload, digest = self._typed_data_payload(body)
        return payload, lambda sig: _signed_message(digest, sig)

    def sign_typed_data(self, domain_data: Mapping[str, Any] | None = None,
                        message_types: Mapping[str, Any] | None = None,
                        message_data: Mapping[str, Any] | None = None,
                        full_message: Mapping[str, Any] | None = None, *extra: Any,
                        **unexpected: Any) -> SignedMessage:
        """EIP-712, as eth-account's `LocalAccount.sign_typed_data`: ``(domain_data, message_types, message_data)``
        or ``full_message=``; returns eth-account's `SignedMessage`. x402's signer call shape is `x402_signer()`'s."""
        return self._run(*self._prepare_typed_data(domain_data, message_types, message_data, full_message, extra,
                                                   unexpected))

    async def sign_typed_data_async(self, domain_data: Mapping[str, Any] | None = None,
                                    message_types: Mapping[str, Any] | None = None,
                                    message_data: Mapping[str, Any] | None = None,
                                    full_message: Mapping[str, Any] | None = None, *extra: Any,
                                    **unexpected: Any) -> SignedMessage:
        return await self._run_async(*self._prepare_typed_data(domain_data, message_types, message_data,
                                                               full_message, extra, unexpected))

    def x402_signer(self) -> X402Signer:
        """This account as x402's `ClientEvmSigner`:
        ``register_exact_evm_client(x402Client(), wallet.x402_signer())``."""
        return X402Signer(self)


class X402Signer:
    """x402's `ClientEvmSigner` on an `EvmWallet`: `address` and ``sign_typed_data(domain, types, primary_type,
    message)`` returning the 65-byte r || s || v signature, as the x402 SDK calls it (its `TypedDataDomain` and
    `TypedDataField` dataclasses or plain mappings). The wallet builds, sends and checks the request as for any
    EIP-712 signature: with an agent the nodes decode the typed data and apply the policy (EIP-3009 authorizations)."""

    def __init__(self, wallet: EvmWallet) -> None:
        if not isinstance(wallet, EvmWallet):
            raise InvalidInput("X402Signer wraps an EvmWallet")
        self.wallet = wallet

    @property
    def address(self) -> str:
        return self.wallet.address

    def __repr__(self) -> str:
        return f"X402Signer({self.wallet!r})"

    def _prepare(self, domain: Any, types: Mapping[str, Any], primary_type: str,
                 message: Mapping[str, Any]) -> tuple[Payload, Callable]:
        if not isinstance(primary_type, str):
            raise InvalidInput("sign_typed_data(domain, types, primary_type: str, message)")
        payload, _ = self.wallet._typed_data_payload(typed_data_json(domain, types, message, primary_type))
        return payload, lambda sig: sig.to_bytes() + bytes([27 + sig.recovery_id])  # type: ignore[operator]

    def sign_typed_data(self, domain: Any, types: Mapping[str, Any], primary_type: str,
                        message: Mapping[str, Any]) -> bytes:
        """The 65-byte EIP-712 signature (v = 27 or 28) of `message` under `domain`."""
        return self.wallet._run(*self._prepare(domain, types, primary_type, message))

    async def sign_typed_data_async(self, domain: Any, types: Mapping[str, Any], primary_type: str,
                                    message: Mapping[str, Any]) -> bytes:
        return await self.wallet._run_async(*self._prepare(domain, types, primary_type, message))


def _signed_message(digest: bytes, sig: Signature) -> SignedMessage:
    v = 27 + sig.recovery_id  # type: ignore[operator]
    return SignedMessage(message_hash=HexBytes(digest), r=sig.r, s=sig.s, v=v,
                         signature=HexBytes(sig.to_bytes() + bytes([v])))
