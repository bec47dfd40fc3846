"""EVM decoding: unsigned transactions, EIP-712 typed data and EIP-191 personal messages into `Intent`s.

Decoding uses the ecosystem's own code, never a parser of ours: `rlp` with eth-account's transaction serializers
for EVM transactions (EIP-155 legacy, EIP-2930, EIP-1559; blob and EIP-7702 set-code transactions are refused),
eth-account's EIP-712 encoder for typed data (EIP-3009 ``TransferWithAuthorization`` / ``ReceiveWithAuthorization``
as used by x402 USDC payments are recognised; amounts and addresses are read back with `eth_abi.decode` from the very
bytes that are hashed, so the policy sees exactly what gets signed), `eth_abi.decode` for ERC-20 calldata. The digest
to sign is computed here from the decoded fields, never taken from anyone.

Spending: a native spend is ``value + gas * maxFeePerGas`` (``gasPrice`` for legacy / EIP-2930): the worst-case
debit, so fees cannot drain a capped balance. An ERC-20 ``approve`` counts its full amount (the spender can move it
without another signature). An EIP-3009 authorization counts its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import eth_abi
import eth_abi.exceptions
import rlp
from eth_account._utils.encode_typed_data.encoding_and_hashing import (
    encode_data,
    encode_field,
    get_primary_type,
)
from eth_account._utils.legacy_transactions import Transaction as _LegacyChainAwareTx
from eth_account.messages import _hash_eip191_message, encode_defunct, encode_typed_data
from eth_account.typed_transactions.access_list_transaction import AccessListTransaction
from eth_account.typed_transactions.dynamic_fee_transaction import DynamicFeeTransaction
from eth_utils import keccak

from ..errors import InvalidInput, PolicyDenied
from ..requests.strict_json import parse_strict_json
from .base import Intent, TxType, as_bytes, erc20_asset, merge_spends, native_asset

__all__ = [
    "SEL_APPROVE",
    "SEL_INCREASE_ALLOWANCE",
    "SEL_TRANSFER",
    "decode_evm_transaction",
    "decode_personal_message",
    "decode_typed_data",
]

SEL_TRANSFER = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
SEL_APPROVE = bytes.fromhex("095ea7b3")  # approve(address,uint256)
SEL_INCREASE_ALLOWANCE = bytes.fromhex("39509351")  # increaseAllowance(address,uint256)
_ERC20_SELECTORS = {
    SEL_TRANSFER: TxType.ERC20_TRANSFER,
    SEL_APPROVE: TxType.ERC20_APPROVE,
    SEL_INCREASE_ALLOWANCE: TxType.ERC20_APPROVE,
}
_EIP3009_PRIMARY = ("TransferWithAuthorization", "ReceiveWithAuthorization")
_EIP3009_FIELDS = [
    ("from", "address"),
    ("to", "address"),
    ("value", "uint256"),
    ("validAfter", "uint256"),
    ("validBefore", "uint256"),
    ("nonce", "bytes32"),
]


def _decode_erc20_args(data: bytes) -> tuple[str, int]:
    # exactly selector + two words: a token would ignore trailing bytes, but a well-formed call never has them
    if len(data) != 4 + 64:
        raise InvalidInput("malformed ERC-20 calldata (expected selector and two 32-byte arguments)")
    try:
        addr, amount = eth_abi.decode(["address", "uint256"], data[4:], strict=True)
    except eth_abi.exceptions.DecodingError:
        raise InvalidInput("malformed ERC-20 calldata") from None
    return addr.lower(), int(amount)


def _classify_evm(
    chain: str, to: bytes, value: int, data: bytes, max_fee: int, digest: bytes, details: dict[str, str]
) -> Intent:
    native = native_asset(chain)
    native_spend = (native, value + max_fee)
    detail_items = tuple(details.items())
    if not to:
        return Intent(
            TxType.CONTRACT_DEPLOY,
            chain,
            digest,
            asset=native,
            amount=value,
            spends=merge_spends([native_spend]),
            details=detail_items,
        )
    to_addr = "0x" + to.hex()
    if not data:
        return Intent(
            TxType.NATIVE_TRANSFER,
            chain,
            digest,
            asset=native,
            recipient=to_addr,
            amount=value,
            spends=merge_spends([native_spend]),
            details=detail_items,
        )
    selector = data[:4]
    kind = _ERC20_SELECTORS.get(selector) if len(data) >= 4 else None
    if kind is not None:
        recipient, amount = _decode_erc20_args(data)
        token = erc20_asset(chain, to_addr)
        return Intent(
            kind,
            chain,
            digest,
            asset=token,
            recipient=recipient,
            amount=amount,
            selector="0x" + selector.hex(),
            contract=to_addr,
            spends=merge_spends([(token, amount), native_spend]),
            details=detail_items,
        )
    return Intent(
        TxType.CONTRACT_CALL,
        chain,
        digest,
        asset=native,
        recipient=to_addr,
        amount=value,
        selector="0x" + selector.hex() if len(data) >= 4 else None,
        contract=to_addr,
        spends=merge_spends([native_spend]),
        details=detail_items,
    )


_TYPED_TX: dict[int, Any] = {
    AccessListTransaction.transaction_type: AccessListTransaction,
    DynamicFeeTransaction.transaction_type: DynamicFeeTransaction,
}


def decode_evm_transaction(raw: bytes) -> Intent:
    """Decode an unsigned EVM transaction (its signing payload) and compute the digest to sign from it.

    Accepts EIP-155 legacy ``rlp([nonce, gasPrice, gas, to, value, data, chainId, 0, 0])``, EIP-2930 ``0x01 ||
    rlp([...])`` and EIP-1559 ``0x02 || rlp([...])``, each in canonical encoding (re-encoding must give the same
    bytes). The digest comes from eth-account's own serializer for the decoded fields. Refused (InvalidInput):
    pre-EIP-155 legacy (replayable on every chain), blob (type 3) and EIP-7702 set-code (type 4: delegates the whole
    account) transactions, signed encodings, anything malformed.

    The fields are decoded with eth-account's own RLP sedes and re-encoded; equal bytes mean the payload is exactly
    eth-account's serialisation of those fields, so its signing hash is keccak of the payload (what eth-account's
    ``hash()`` computes from the same fields, without the detour through its dict formatters: a third of the cost).
    """
    raw = as_bytes(raw, "transaction")
    if not raw:
        raise InvalidInput("empty transaction")
    first = raw[0]
    try:
        if first >= 0xC0:
            items = rlp.decode(raw, strict=True)
            if not isinstance(items, list) or len(items) != 9:
                raise InvalidInput(
                    "legacy transactions must be EIP-155 signing payloads (9 fields with chainId, 0, 0); "
                    "pre-EIP-155 transactions are replayable on every chain and are refused"
                )
            tx = rlp.decode(raw, _LegacyChainAwareTx, strict=True)
            if tx.r != 0 or tx.s != 0 or tx.v < 1:
                raise InvalidInput("not an unsigned EIP-155 payload (expected chainId, 0, 0)")
            if rlp.encode(tx) != raw:
                raise InvalidInput("non-canonical transaction encoding")
            chain_id = tx.v
            to, value, data, max_fee = tx.to, tx.value, tx.data, tx.gas * tx.gasPrice
            details = {"tx_type": "legacy", "nonce": str(tx.nonce), "gas": str(tx.gas), "gas_price": str(tx.gasPrice)}
        elif first in _TYPED_TX:
            cls = _TYPED_TX[first]
            obj = rlp.decode(raw[1:], cls._unsigned_transaction_serializer, strict=True)
            if bytes([first]) + rlp.encode(obj) != raw:
                raise InvalidInput("non-canonical transaction encoding")
            chain_id, to, value, data = obj.chainId, obj.to, obj.value, obj.data
            if first == DynamicFeeTransaction.transaction_type:
                max_fee = obj.gas * obj.maxFeePerGas
                details = {
                    "tx_type": "eip1559",
                    "nonce": str(obj.nonce),
                    "gas": str(obj.gas),
                    "max_fee_per_gas": str(obj.maxFeePerGas),
                    "max_priority_fee_per_gas": str(obj.maxPriorityFeePerGas),
                }
            else:
                max_fee = obj.gas * obj.gasPrice
                details = {
                    "tx_type": "eip2930",
                    "nonce": str(obj.nonce),
                    "gas": str(obj.gas),
                    "gas_price": str(obj.gasPrice),
                }
            if chain_id < 1:
                raise InvalidInput("chainId must be positive")
        elif first in (3, 4):
            raise InvalidInput(f"transaction type {first} is not supported (blob / EIP-7702 set-code)")
        else:
            raise InvalidInput(f"unknown transaction type {first}")
    except InvalidInput:
        raise
    except (rlp.exceptions.RLPException, ValueError, TypeError, KeyError, AttributeError) as e:
        raise InvalidInput(f"malformed EVM transaction: {type(e).__name__}") from None
    digest = keccak(raw)
    return _classify_evm(f"eip155:{chain_id}", bytes(to), int(value), bytes(data), int(max_fee), digest, details)


def _encoded_scalar(types: dict[str, Any], name: str, type_: str, value: Any) -> Any:
    """A domain/message scalar exactly as eth-account encodes it into the hashed bytes, read back with eth_abi."""
    enc_type, enc_value = encode_field(types, name, type_, value)
    return eth_abi.decode([enc_type], eth_abi.encode([enc_type], [enc_value]))[0]


def decode_typed_data(data: bytes | str | Mapping[str, Any]) -> Intent:
    """Decode EIP-712 typed data ({types, primaryType?, domain, message}) and compute its digest with eth-account.

    EIP-3009 ``TransferWithAuthorization`` / ``ReceiveWithAuthorization`` (the x402 "exact" EVM scheme, e.g. USDC)
    with the standard field list, a ``chainId`` and a ``verifyingContract`` becomes an ``eip3009_transfer`` intent
    (asset = the verifying token, recipient = ``to``, amount = ``value``, read back from the encoded struct). Any
    other typed data is a ``typed_data`` intent, which policies treat as opaque.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        obj = parse_strict_json(bytes(data))
    elif isinstance(data, str):
        obj = parse_strict_json(data.encode())
    elif isinstance(data, Mapping):
        obj = dict(data)
    else:
        raise InvalidInput("typed data must be JSON bytes/str or a mapping")
    if (
        not isinstance(obj, dict)
        or not {"types", "domain", "message"} <= obj.keys()
        or not obj.keys() <= {"types", "domain", "message", "primaryType"}
    ):
        raise InvalidInput("typed data must have exactly types, domain, message and optionally primaryType")
    types_all, domain, message = obj["types"], obj["domain"], obj["message"]
    if not isinstance(types_all, dict) or not isinstance(domain, dict) or not isinstance(message, dict):
        raise InvalidInput("types, domain and message must be objects")
    try:
        signable = encode_typed_data(full_message=obj)
        digest = bytes(_hash_eip191_message(signable))
        types = {k: v for k, v in types_all.items() if k != "EIP712Domain"}
        primary = get_primary_type(types)
        chain_id = _encoded_scalar({}, "chainId", "uint256", domain["chainId"]) if "chainId" in domain else None
        verifying = (
            _encoded_scalar({}, "verifyingContract", "address", domain["verifyingContract"]).lower()
            if "verifyingContract" in domain
            else None
        )
    except InvalidInput:
        raise
    except Exception as e:  # noqa: BLE001 - eth-account raises a zoo of types on bad input
        raise InvalidInput(f"malformed typed data: {type(e).__name__}") from None
    chain = f"eip155:{chain_id}" if chain_id is not None and chain_id >= 1 else None
    details = {"primary_type": primary, "domain_name": str(domain.get("name", ""))[:64]}
    fields = types.get(primary)
    is_3009 = (
        primary in _EIP3009_PRIMARY
        and len(types) == 1
        and isinstance(fields, list)
        and all(isinstance(f, dict) and set(f) == {"name", "type"} for f in fields)
        and [(f["name"], f["type"]) for f in fields] == _EIP3009_FIELDS
        and chain is not None
        and verifying is not None
    )
    if not is_3009:
        return Intent(TxType.TYPED_DATA, chain, digest, contract=verifying, details=tuple(details.items()))
    try:
        encoded = encode_data(primary, types, message)
        if keccak(encoded) != signable.body:
            raise InvalidInput("typed data message does not hash as expected")
        _, frm, to, value, valid_after, valid_before, nonce = eth_abi.decode(
            ["bytes32", "address", "address", "uint256", "uint256", "uint256", "bytes32"], encoded, strict=True
        )
    except InvalidInput:
        raise
    except Exception as e:  # noqa: BLE001 - as above
        raise InvalidInput(f"malformed EIP-3009 message: {type(e).__name__}") from None
    token = erc20_asset(chain, verifying)  # type: ignore[arg-type]
    details.update(
        {
            "from": frm.lower(),
            "valid_after": str(valid_after),
            "valid_before": str(valid_before),
            "authorization_nonce": bytes(nonce).hex(),
        }
    )
    return Intent(
        TxType.EIP3009_TRANSFER,
        chain,
        digest,
        asset=token,
        recipient=to.lower(),
        amount=int(value),
        contract=verifying,
        spends=merge_spends([(token, int(value))]),
        details=tuple(details.items()),
    )


def decode_personal_message(message: bytes, chain: str | None = None) -> Intent:
    """An EIP-191 personal_sign message; the digest is computed here with eth-account's `encode_defunct`.

    A message of exactly 32 bytes is refused (PolicyDenied ``policy.personal_message``): that is a hash (a Safe
    transaction hash is approved by signing it as a personal message), which only a ``raw_digest`` policy signs."""
    message = as_bytes(message, "message")
    if len(message) == 32:
        raise PolicyDenied("policy.personal_message", "a 32-byte personal message is a hash: sign it as raw_digest")
    digest = bytes(_hash_eip191_message(encode_defunct(primitive=message)))
    return Intent(TxType.PERSONAL_MESSAGE, chain or None, digest, details=(("length", str(len(message))),))

