"""Signing policies: what a share holder decodes, decides and counts before it lends its share to a signature.

Every holder decodes the request body itself (`intent_from_request`), computes the digest it will sign from the
decoded transaction itself, and evaluates the policy itself. Nothing a coordinator or client says *about* a request
is trusted: not a summary, not an amount, not a digest (a caller-given digest is only ever signed as a
``raw_digest`` intent, which is off unless a policy allows it).

Decoding uses the ecosystem's own code, never a parser of ours: `rlp` with eth-account's transaction serializers
for EVM transactions (EIP-155 legacy, EIP-2930, EIP-1559; blob and EIP-7702 set-code transactions are refused),
eth-account's EIP-712 encoder for typed data (EIP-3009 ``TransferWithAuthorization`` / ``ReceiveWithAuthorization``
as used by x402 USDC payments are recognised; amounts and addresses are read back with `eth_abi.decode` from the very
bytes that are hashed, so the policy sees exactly what gets signed), `eth_abi.decode` for ERC-20 calldata.

Policies are attached to (key, agent) and set only by admin requests. A `Policy` names: allowed chains (CAIP-2,
e.g. ``eip155:8453``), allowed transaction types (`TxType`), a recipient allowlist and denylist, contract calls
allowed by (contract, selector), per-asset limits (a per-transaction cap and rolling-window caps, in base units),
rate limits, time windows (UTC) and a validity period. Denials are `PolicyDenied(rule, message)`; the message names
the rule and the asset of the agent's own request, never limit values or list contents (those go to the audit log
through `Decision.detail`). Rules, checked in this order:

``policy.time_window`` ``policy.chain`` ``policy.raw_digest`` ``policy.tx_type`` ``policy.contract_call``
``policy.recipient_denylist`` ``policy.recipient_allowlist`` ``policy.asset`` ``policy.per_tx_cap``
``policy.window_cap`` ``policy.rate_limit`` (and ``policy.none`` / ``policy.binding`` from `check_binding`, for the
holder's lookup of the policy; ``policy.derivation_path`` from `check_derivation_path`: the request's signed BIP32
path must be one that `Policy.derivation_paths` pins, or absent when that is None).

Spending: an intent's ``spends`` lists every asset it can debit, in base units. A native EVM spend is
``value + gas * maxFeePerGas`` (``gasPrice`` for legacy / EIP-2930): the worst-case debit, so fees cannot drain a
capped balance. An ERC-20 ``approve`` counts its full amount (the spender can move it without another signature).
An EIP-3009 authorization counts its value. A Bitcoin PSBT (``btc_psbt``, node/bitcoin_policy.py) counts what its
outputs pay to addresses other than the key's own plus the fee; each of its recipients meets the lists.

Caps across signer sets (the promise and how it is kept). A window cap or rate limit in a policy is a promise about
the whole committee: *whatever signer sets the coordinator picks, the total signed in any window stays within the
cap*. Each holder counts every intent it approves (it cannot see signatures it does not take part in) and enforces
a per-node budget ``B = floor(cap * (t - c) / (n - c))`` for a t-of-n key, where ``c = policy.compromised_holders``
(default 0). Why it holds: each signature needs t approvals, at least ``t - c`` of them from honest holders, and the
``n - c`` honest holders approve at most ``B`` each, so the total is at most ``(n - c) * B / (t - c) <= cap``. (The
simpler per-node cap C only bounds the total by ``C * n / t <= C * ceil(n / t)``: a 2-of-3 committee with C per
node signs 1.5 C through signer sets {1,2}, {2,3}, {1,3}.) The price: one fixed signer set can spend only
``B`` (two thirds of the cap for 2-of-3) per window. Approvals count even if the signature then fails elsewhere
(a holder cannot know), which errs on the safe side. The per-transaction cap needs no scaling: every signer checks
it. `Policy.validate_for_key(threshold, parties)` refuses, with `PolicyConfigError` (an `InvalidInput`), any
configuration whose promise cannot hold or that contradicts itself:

- a spending cap together with ``raw_digest``, generic ``typed_data`` or ``personal_message`` allowed (an opaque
  digest, an EIP-2612 permit or a Safe transaction hash signed as a personal message can move any asset uncounted);
- two networks of a family whose transactions do not commit to the network (``solana:*``, ``bip122:*``): a
  transfer signed under the test network's label is valid on mainnet (`check_chain_families`; the holder also
  checks all the policies of one key together);
- a contract-call rule that targets the contract of a capped ERC-20 asset (``transferFrom``, ``increaseAllowance``
  and friends would bypass the count);
- a window cap whose per-node budget is 0, or below the per-transaction cap (that transaction could never be
  signed); a rate limit whose per-node budget is below one request; ``compromised_holders >= threshold``;
- windows longer than `MAX_WINDOW_S` (92 days: the longest history `SpendState` keeps).

Spend state (`SpendState`) is per node and per (key, agent), persisted as bytes. Counters are kept in buckets of
1 s (windows up to 1 h), 1 min (up to 3 days) and 1 h (up to 92 days); a window sum counts every bucket that
overlaps the window, so it over-counts by at most one bucket, never under-counts, and history survives policy
changes. Size stays bounded (about 8,700 buckets per asset at most).

Integration (the holder, later): on ``set_policy``: `RequestVerifier.verify` -> `policy_from_request` ->
``policy.validate_for_key(key.threshold, key.parties)`` -> the version above the stored one's (``Policy.version``;
else PolicyDenied ``admin.stale_version``) -> store ``policy.to_bytes()`` under `policy_store_name`. On
``sign``: verify -> ``check_binding(stored policy of (key_id, principal) or None, verified)`` -> ``intent =
intent_from_request(verified.request)`` -> load `SpendState` from `spend_store_name` -> ``decision =
PolicyEngine(policy, state, threshold=t, parties=n).authorize(intent, now)`` (raises PolicyDenied; records spend
only if allowed) -> ``store.put(spend_store_name(...), state.to_bytes())`` BEFORE any presignature is consumed ->
sign ``intent.digest`` (never a digest from the coordinator) -> audit. Hold one lock per (key, agent) from loading
the state to persisting it (or keep one engine per (key, agent) in memory). The coordinator passes the
`SignedRequest` unchanged to every holder of the signer set, plus the presignature id.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

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
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import InvalidInput, MpcError, PolicyDenied
from .principals import (
    NOT_REFUSALS,
    RequestFormat,
    RequestKind,
    SignedRequest,
    VerifiedRequest,
    check_json_bounds,
    parse_strict_json,
)

__all__ = [
    "MAX_WINDOW_S",
    "AssetLimit",
    "ContractCallRule",
    "Decision",
    "Intent",
    "Policy",
    "PolicyConfigError",
    "PolicyEngine",
    "RateLimit",
    "SpendState",
    "TimeWindow",
    "TxType",
    "WindowCap",
    "check_binding",
    "check_chain_families",
    "decode_evm_transaction",
    "decode_personal_message",
    "decode_solana_message",
    "decode_typed_data",
    "erc20_asset",
    "intent_from_request",
    "native_asset",
    "node_budget",
    "normalize_address",
    "policy_from_request",
    "policy_store_name",
    "raw_digest_intent",
    "spend_store_name",
]


class PolicyConfigError(InvalidInput):
    """A policy that cannot be enforced as written (its promise cannot hold, or it contradicts itself)."""


class TxType(StrEnum):
    NATIVE_TRANSFER = "native_transfer"
    ERC20_TRANSFER = "erc20_transfer"
    ERC20_APPROVE = "erc20_approve"  # approve / increaseAllowance
    EIP3009_TRANSFER = "eip3009_transfer"  # EIP-3009 transfer/receiveWithAuthorization typed data (x402 "exact")
    CONTRACT_CALL = "contract_call"
    CONTRACT_DEPLOY = "contract_deploy"
    TYPED_DATA = "typed_data"  # any other EIP-712 message (permits included): opaque to spending caps
    PERSONAL_MESSAGE = "personal_message"  # EIP-191 personal_sign
    SOLANA_TRANSFER = "solana_transfer"
    BTC_TRANSFER = "btc_transfer"  # a Taproot key-path PSBT of the key's own output (node/bitcoin_policy.py)
    RAW_DIGEST = "raw_digest"  # a caller-given digest: opaque; off unless a policy allows it


# signed without the holders seeing an amount: never together with a spending cap. A personal message is opaque too:
# its bytes can be a Safe transaction hash or any protocol's off-chain order (and a 32-byte one is refused outright).
_OPAQUE_TYPES = frozenset({TxType.RAW_DIGEST, TxType.TYPED_DATA, TxType.PERSONAL_MESSAGE})
# chain families whose transactions do not commit to their network: a Solana message or a Bitcoin PSBT signed for a
# test network is just as valid on mainnet, so the request's chain label is all that tells them apart
_UNBOUND_FAMILIES = ("solana:", "bip122:")
_EVM_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_CHAIN_RE = re.compile(r"[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}")
_SELECTOR_RE = re.compile(r"0x[0-9a-f]{8}")
_HHMM_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")
_U256 = 2**256 - 1

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


def normalize_address(addr: str) -> str:
    """EVM addresses compare in lowercase; anything else (Solana base58) is case-sensitive and kept as is."""
    if _EVM_ADDRESS_RE.fullmatch(addr):
        return addr.lower()
    return addr


def native_asset(chain: str) -> str:
    """Asset id of a chain's native coin, e.g. ``eip155:1/native``."""
    return f"{chain}/native"


def erc20_asset(chain: str, contract: str) -> str:
    """Asset id of an ERC-20 token, e.g. ``eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913``."""
    return f"{chain}/erc20:{normalize_address(contract)}"


# ------------------------------------------------------------------------------------------------------------
# intents


@dataclass(frozen=True)
class Intent:
    """What a request would do, as this holder decoded it.

    ``digest`` is what the holder signs: the 32-byte hash for ECDSA (computed here from the decoded transaction or
    message), or the message bytes themselves for Ed25519 / FROST (Solana). ``spends`` lists (asset, amount) for
    every asset the signature can debit, fees included; ``details`` holds extra decoded fields for the audit log.
    """

    type: TxType
    chain: str | None
    digest: bytes
    asset: str | None = None
    recipient: str | None = None
    amount: int = 0
    selector: str | None = None
    contract: str | None = None
    spends: tuple[tuple[str, int], ...] = ()
    details: tuple[tuple[str, str], ...] = field(default=())
    # every recipient when a transaction pays several (a Bitcoin PSBT's outputs); `recipient` is then the first.
    # The allowlist and denylist apply to each of them.
    recipients: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-safe form for the audit log: amounts as decimal strings, bytes as hex."""
        out = {
            "type": self.type.value,
            "chain": self.chain,
            "digest": self.digest.hex() if len(self.digest) <= 64 else None,
            "digest_sha256": None if len(self.digest) <= 64 else hashlib.sha256(self.digest).hexdigest(),
            "asset": self.asset,
            "recipient": self.recipient,
            "amount": str(self.amount),
            "selector": self.selector,
            "contract": self.contract,
            "spends": [[a, str(v)] for a, v in self.spends],
            "details": {k: v for k, v in self.details},
        }
        if self.recipients:  # absent otherwise, so records of single-recipient intents keep their shape
            out["recipients"] = list(self.recipients)
        return out


def _merge_spends(items: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    out: dict[str, int] = {}
    for asset, amount in items:
        if amount:
            out[asset] = out.get(asset, 0) + amount
    return tuple(out.items())


def _as_bytes(data: object, what: str) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInput(f"{what} must be bytes")
    return bytes(data)


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
            spends=_merge_spends([native_spend]),
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
            spends=_merge_spends([native_spend]),
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
            spends=_merge_spends([(token, amount), native_spend]),
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
        spends=_merge_spends([native_spend]),
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
    raw = _as_bytes(raw, "transaction")
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
        spends=_merge_spends([(token, int(value))]),
        details=tuple(details.items()),
    )


def decode_personal_message(message: bytes, chain: str | None = None) -> Intent:
    """An EIP-191 personal_sign message; the digest is computed here with eth-account's `encode_defunct`.

    A message of exactly 32 bytes is refused (PolicyDenied ``policy.personal_message``): that is a hash (a Safe
    transaction hash is approved by signing it as a personal message), which only a ``raw_digest`` policy signs."""
    message = _as_bytes(message, "message")
    if len(message) == 32:
        raise PolicyDenied("policy.personal_message", "a 32-byte personal message is a hash: sign it as raw_digest")
    digest = bytes(_hash_eip191_message(encode_defunct(primitive=message)))
    return Intent(TxType.PERSONAL_MESSAGE, chain or None, digest, details=(("length", str(len(message))),))


def raw_digest_intent(digest: bytes, chain: str | None = None) -> Intent:
    """A caller-given 32-byte digest, signed as is only if a policy allows ``raw_digest``."""
    digest = _as_bytes(digest, "digest")
    if len(digest) != 32:
        raise InvalidInput("a raw digest is 32 bytes")
    return Intent(TxType.RAW_DIGEST, chain or None, digest)


_SOL_BASE_FEE = 5000  # lamports per signature
_SOL_DEFAULT_CU_PER_IX = 200_000
_SOL_MAX_CU = 1_400_000


def decode_solana_message(message: bytes, chain: str | None = None) -> Intent:
    """Decode a serialized Solana message (legacy or v0) that makes one System Program transfer.

    Needs the optional `solders` package (InvalidInput without it). Decoding is solders': `from_bytes_versioned`
    for the message, `system_program.decode_transfer` for the transfer; ComputeBudget unit limit / price
    instructions are read and then re-built with solders' own builders, which must give the same bytes. Accepted:
    one signer (the fee payer, which is the sender), one transfer, optional ComputeBudget instructions, no address
    lookup tables (the holder cannot resolve them offline). The spend counts lamports plus the worst-case fee
    (5000 per signature + unit price x unit limit). The "digest" is the message itself (Ed25519 / FROST signs it).
    The message carries no chain id, so the chain is the request's (``solana:<genesis hash prefix>``).
    """
    raw = _as_bytes(message, "Solana message")
    try:
        from solders import compute_budget, system_program
        from solders.instruction import AccountMeta, Instruction
        from solders.message import MessageV0, from_bytes_versioned, to_bytes_versioned
    except ImportError:
        raise InvalidInput("Solana decoding needs the optional 'solders' package") from None
    try:
        msg = from_bytes_versioned(raw)
        if bytes(to_bytes_versioned(msg)) != raw:
            raise InvalidInput("non-canonical Solana message encoding")
    except InvalidInput:
        raise
    except Exception as e:  # noqa: BLE001 - solders raises its own error types
        raise InvalidInput(f"malformed Solana message: {type(e).__name__}") from None
    if isinstance(msg, MessageV0) and msg.address_table_lookups:
        raise InvalidInput("Solana messages with address lookup tables are not supported")
    keys = list(msg.account_keys)
    if msg.header.num_required_signatures != 1 or not keys:
        raise InvalidInput("only single-signer Solana messages are supported")
    fee_payer = keys[0]
    transfers = []
    cu_limit: int | None = None
    cu_price = 0
    others = 0
    for cix in msg.instructions:
        if cix.program_id_index >= len(keys) or any(i >= len(keys) for i in bytes(cix.accounts)):
            raise InvalidInput("instruction refers to an unknown account")
        program = keys[cix.program_id_index]
        data = bytes(cix.data)
        if program == compute_budget.ID:
            if data[:1] == b"\x02" and len(data) == 5:
                value = int.from_bytes(data[1:], "little")
                ok = bytes(compute_budget.set_compute_unit_limit(value).data) == data
                cu_limit = value
            elif data[:1] == b"\x03" and len(data) == 9:
                value = int.from_bytes(data[1:], "little")
                ok = bytes(compute_budget.set_compute_unit_price(value).data) == data
                cu_price = value
            else:
                ok = False
            if not ok:
                raise InvalidInput("unsupported ComputeBudget instruction")
            continue
        others += 1
        if program != system_program.ID:
            raise InvalidInput("only System Program transfers are supported on Solana")
        metas = [AccountMeta(keys[i], is_signer=(i == 0), is_writable=True) for i in bytes(cix.accounts)]
        try:
            params = system_program.decode_transfer(Instruction(program, data, metas))
        except Exception:  # noqa: BLE001 - solders: not a transfer instruction
            raise InvalidInput("only System Program transfers are supported on Solana") from None
        transfers.append(params)
    if len(transfers) != 1:
        raise InvalidInput("a Solana message must make exactly one transfer")
    t = transfers[0]
    if t["from_pubkey"] != fee_payer:
        raise InvalidInput("the transfer must come from the fee payer (the signing key)")
    limit = cu_limit if cu_limit is not None else min(_SOL_MAX_CU, _SOL_DEFAULT_CU_PER_IX * max(others, 1))
    fee = _SOL_BASE_FEE + -(-cu_price * limit // 1_000_000)
    asset = native_asset(chain) if chain else "solana:unknown/native"
    details = {
        "fee_payer": str(fee_payer),
        "recent_blockhash": str(msg.recent_blockhash),
        "max_fee": str(fee),
        "version": "v0" if isinstance(msg, MessageV0) else "legacy",
    }
    return Intent(
        TxType.SOLANA_TRANSFER,
        chain or None,
        raw,
        asset=asset,
        recipient=str(t["to_pubkey"]),
        amount=int(t["lamports"]),
        spends=_merge_spends([(asset, int(t["lamports"]) + fee)]),
        details=tuple(details.items()),
    )


def intent_from_request(request: SignedRequest) -> Intent:
    """Decode a ``sign`` request's body according to its (signed) format.

    The chain decoded from a transaction / typed-data domain must equal the request's ``chain`` when both are set
    (else PolicyDenied ``policy.chain``); formats that carry no chain (raw digest, personal message, Solana) take the
    request's ``chain``.

    Whatever a decoder raises is a typed refusal of this request: an `MpcError` as it is, anything else InvalidInput,
    native panics included (solders' pyo3 ``PanicException`` derives from BaseException and passes ``except
    Exception``); only KeyboardInterrupt, SystemExit and GeneratorExit pass through.
    """
    try:
        return _intent_from_request(request)
    except (MpcError, *NOT_REFUSALS):
        raise
    except BaseException as exc:  # noqa: BLE001 - see the docstring: a decoder's failure is the request's refusal
        fmt = getattr(getattr(request, "format", None), "value", "?")
        raise InvalidInput(f"the {fmt} body could not be decoded ({type(exc).__name__})") from None


def _intent_from_request(request: SignedRequest) -> Intent:
    if not isinstance(request, SignedRequest):
        raise InvalidInput("expected a SignedRequest")
    if request.kind is not RequestKind.SIGN:
        raise InvalidInput("only sign requests carry an intent")
    fmt = request.format
    claimed = request.chain or None
    if fmt is RequestFormat.EVM_TX:
        intent = decode_evm_transaction(request.body)
    elif fmt is RequestFormat.EIP712:
        intent = decode_typed_data(request.body)
    elif fmt is RequestFormat.EIP191:
        return decode_personal_message(request.body, claimed)
    elif fmt is RequestFormat.RAW_DIGEST:
        return raw_digest_intent(request.body, claimed)
    elif fmt is RequestFormat.SOLANA_TX:
        return decode_solana_message(request.body, claimed)
    elif fmt is RequestFormat.BTC_PSBT:
        # lazy: embit is optional, and that module imports this one
        from .bitcoin_policy import decode_psbt

        return decode_psbt(request.body, claimed)
    else:
        raise InvalidInput(f"format {fmt.value} cannot be signed")
    if claimed is not None and intent.chain is not None and claimed != intent.chain:
        raise PolicyDenied("policy.chain", "the transaction's chain does not match the request's chain")
    if intent.chain is None and claimed is not None and intent.type is TxType.TYPED_DATA:
        # typed data without a chainId in its domain is not bound to a chain; the claim is all there is
        return dataclasses.replace(intent, chain=claimed)
    return intent


# ------------------------------------------------------------------------------------------------------------
# policy model

MAX_WINDOW_S = 92 * 86400
# (bucket granularity s, longest window this level serves): finest level first
_LEVELS: tuple[tuple[int, int], ...] = ((1, 3600), (60, 3 * 86400), (3600, MAX_WINDOW_S))

_Amount = Annotated[int, Field(ge=0, le=_U256)]
_Window = Annotated[int, Field(ge=1, le=MAX_WINDOW_S)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WindowCap(_Model):
    """At most `max_amount` (base units) over any rolling `window_s` seconds, across the committee."""

    window_s: _Window
    max_amount: _Amount


class AssetLimit(_Model):
    """Limits for one asset id (see `native_asset`, `erc20_asset`). No caps = allowed, uncapped."""

    asset: str
    per_tx: _Amount | None = None
    windows: tuple[WindowCap, ...] = ()

    @field_validator("asset")
    @classmethod
    def _norm_asset(cls, v: str) -> str:
        chain, sep, rest = v.partition("/")
        if not sep or not _CHAIN_RE.fullmatch(chain) or not rest:
            raise ValueError("asset must look like <caip2 chain>/native or <caip2 chain>/erc20:<address>")
        if rest.startswith("erc20:"):
            addr = rest[len("erc20:") :]
            if not _EVM_ADDRESS_RE.fullmatch(addr):
                raise ValueError("erc20 asset needs a 0x address")
            return erc20_asset(chain, addr)
        return v

    @property
    def capped(self) -> bool:
        return self.per_tx is not None or bool(self.windows)


class RateLimit(_Model):
    """At most `max_requests` approved requests over any rolling `window_s` seconds, across the committee."""

    window_s: _Window
    max_requests: Annotated[int, Field(ge=1, le=2**32)]


def _minutes(hhmm: str) -> int:
    if not _HHMM_RE.fullmatch(hhmm):
        raise ValueError("times are HH:MM (00:00 .. 24:00), UTC")
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class TimeWindow(_Model):
    """Signing allowed on `days` (0 = Monday, UTC) from `start` to `end` (HH:MM, UTC, end exclusive)."""

    days: tuple[Annotated[int, Field(ge=0, le=6)], ...] = (0, 1, 2, 3, 4, 5, 6)
    start: str = "00:00"
    end: str = "24:00"

    @model_validator(mode="after")
    def _order(self) -> TimeWindow:
        if _minutes(self.start) >= _minutes(self.end):
            raise ValueError("start must be before end (split overnight windows in two)")
        if not self.days:
            raise ValueError("days must not be empty")
        return self

    def contains(self, now: float) -> bool:
        t = _dt.datetime.fromtimestamp(now, tz=_dt.UTC)
        minute = t.hour * 60 + t.minute
        return t.weekday() in self.days and _minutes(self.start) <= minute < _minutes(self.end)


class ContractCallRule(_Model):
    """Contract calls allowed to `contract` with one of `selectors` (0x + 8 hex digits)."""

    contract: str
    selectors: Annotated[tuple[str, ...], Field(min_length=1)]

    @field_validator("contract")
    @classmethod
    def _addr(cls, v: str) -> str:
        if not _EVM_ADDRESS_RE.fullmatch(v):
            raise ValueError("contract must be a 0x address")
        return v.lower()

    @field_validator("selectors")
    @classmethod
    def _sels(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(s.lower() for s in v)
        if not all(_SELECTOR_RE.fullmatch(s) for s in out):
            raise ValueError("selectors are 0x followed by 8 hex digits")
        return out


class Policy(_Model):
    """The policy of one (key, agent). Default-deny: empty lists allow nothing; raw digests are off unless listed."""

    key_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    principal_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    allowed_chains: tuple[str, ...] = ()
    allowed_tx_types: tuple[TxType, ...] = ()
    recipient_allowlist: tuple[str, ...] | None = None  # None: any recipient not denylisted
    recipient_denylist: tuple[str, ...] = ()
    contract_calls: tuple[ContractCallRule, ...] = ()
    asset_limits: tuple[AssetLimit, ...] = ()
    allow_unlisted_assets: bool = False
    rate_limits: tuple[RateLimit, ...] = ()
    time_windows: tuple[TimeWindow, ...] | None = None  # None: any time
    # finite: JSON writes inf and NaN as null, so a stored not_before=1e400 ("never") would read back as "always"
    not_before: Annotated[float, Field(allow_inf_nan=False)] | None = None
    not_after: Annotated[float, Field(allow_inf_nan=False)] | None = None
    compromised_holders: Annotated[int, Field(ge=0, le=255)] = 0
    # HD: None = this agent signs only with the key itself (requests without a derivation path); a tuple = only
    # for exactly these BIP32 child paths ("m/0/7"; "m" = the key itself, re-randomised), never without a path.
    derivation_paths: tuple[str, ...] | None = None
    # True: any path, and the key itself (a back-office operator of a dev cluster); derivation_paths must be None
    any_derivation_path: bool = False
    # a holder accepts a set_policy for (key, agent) only with a version above the one it has (admin.stale_version):
    # an older signed policy held back and delivered late cannot undo a stricter one. 1: the first one.
    version: Annotated[int, Field(ge=1, le=2**64 - 1)] = 1

    @field_validator("derivation_paths")
    @classmethod
    def _paths(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return None
        from ..crypto.bip32 import format_path, parse_path

        out = tuple(format_path(parse_path(p)) if isinstance(p, str) else p for p in v)
        if any(not isinstance(p, str) for p in out) or len(set(out)) != len(out):
            raise ValueError("derivation_paths are distinct non-hardened paths like m/0/7")
        return out

    @field_validator("allowed_chains")
    @classmethod
    def _chains(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not all(_CHAIN_RE.fullmatch(c) for c in v):
            raise ValueError("chains are CAIP-2 ids such as eip155:1")
        return v

    @field_validator("recipient_allowlist", "recipient_denylist")
    @classmethod
    def _addrs(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if v is None else tuple(normalize_address(a) for a in v)

    @model_validator(mode="after")
    def _unique_assets(self) -> Policy:
        assets = [a.asset for a in self.asset_limits]
        if len(set(assets)) != len(assets):
            raise ValueError("each asset may appear once in asset_limits")
        return self

    # --------------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Policy:
        try:
            data = data.encode() if isinstance(data, str) else data
        except UnicodeEncodeError:  # lone surrogates: not text a JSON document can be
            raise PolicyConfigError("invalid policy: not valid UTF-8 text") from None
        check_json_bounds(data)
        try:
            return cls.model_validate_json(data)
        except ValidationError as e:
            first = e.errors()[0]
            raise PolicyConfigError(
                f"invalid policy: {'.'.join(str(x) for x in first['loc'])}: {first['msg']}"
            ) from None

    def limit_for(self, asset: str) -> AssetLimit | None:
        for lim in self.asset_limits:
            if lim.asset == asset:
                return lim
        return None

    def validate_for_key(self, threshold: int, parties: int) -> None:
        """Refuse (PolicyConfigError) a policy whose caps cannot hold for a `threshold`-of-`parties` key."""
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (threshold, parties)):
            raise InvalidInput("threshold and parties must be integers")
        if not 1 <= threshold <= parties:
            raise InvalidInput("need 1 <= threshold <= parties")
        c = self.compromised_holders
        if c >= threshold:
            raise PolicyConfigError(
                f"compromised_holders={c} >= threshold={threshold}: that many holders could sign alone, "
                "no holder-side cap can hold"
            )
        check_chain_families([self])
        capped = [lim for lim in self.asset_limits if lim.capped]
        opaque = sorted(t.value for t in _OPAQUE_TYPES if t in self.allowed_tx_types)
        if capped and opaque:
            raise PolicyConfigError(
                f"spending caps cannot hold while {', '.join(opaque)} is allowed: such signatures can move any "
                "asset without the holders seeing an amount; disallow it or remove the caps"
            )
        capped_tokens = {lim.asset.partition("/erc20:")[2] for lim in capped if "/erc20:" in lim.asset}
        for rule in self.contract_calls:
            if rule.contract in capped_tokens:
                raise PolicyConfigError(
                    f"contract calls to {rule.contract} would bypass the cap on that token (transferFrom, "
                    "increaseAllowance, ...); ERC-20 transfer and approve are their own transaction types"
                )
        for lim in capped:
            for w in lim.windows:
                budget = node_budget(w.max_amount, threshold, parties, c)
                if w.max_amount > 0 and budget == 0:
                    raise PolicyConfigError(
                        f"window cap {w.max_amount} on {lim.asset} over {w.window_s} s cannot be split across "
                        f"signer sets of {threshold} of {parties}: each holder's share would be 0"
                    )
                if lim.per_tx is not None and lim.per_tx > budget:
                    need = -(-lim.per_tx * (parties - c) // (threshold - c))
                    raise PolicyConfigError(
                        f"the window cap {w.max_amount} on {lim.asset} over {w.window_s} s holds across signer "
                        f"sets only if each holder approves at most {budget} ({threshold} of {parties} signing"
                        f"{f', {c} compromised' if c else ''}), below the per-transaction cap {lim.per_tx}: raise "
                        f"the window cap to at least {need} or lower the per-transaction cap"
                    )
        for r in self.rate_limits:
            if node_budget(r.max_requests, threshold, parties, c) < 1:
                need = -(-(parties - c) // (threshold - c))
                raise PolicyConfigError(
                    f"rate limit {r.max_requests} per {r.window_s} s cannot be split across signer sets of "
                    f"{threshold} of {parties}: allow at least {need} requests"
                )


def check_chain_families(policies: Iterable[Policy]) -> None:
    """PolicyConfigError if `policies` (one, or all those of one key) allow two networks of a family whose
    transactions do not commit to the network (``solana:*``, ``bip122:*``). A Solana message or a PSBT carries no
    chain id: what is signed for a test network is valid on mainnet too, so an agent allowed an uncapped test network
    could spend mainnet funds of the key by labelling them so. One network per family and key makes the label moot.
    EVM chains may be mixed: EIP-155 and typed transactions commit to their chain id."""
    chains = {c for p in policies for c in p.allowed_chains}
    for family in _UNBOUND_FAMILIES:
        mine = sorted(c for c in chains if c.startswith(family))
        if len(mine) > 1:
            raise PolicyConfigError(
                f"{family}* transactions do not commit to their network, so {', '.join(mine)} cannot be told apart "
                "on one key: allow one of them (use another key for another network)"
            )


def node_budget(cap: int, threshold: int, parties: int, compromised: int = 0) -> int:
    """What one holder may approve so that the committee total stays <= `cap` for any signer sets:
    floor(cap * (t - c) / (n - c))."""
    return cap * (threshold - compromised) // (parties - compromised)


def policy_store_name(key_id: str, principal_id: str) -> str:
    """EncryptedStore entry name of the policy of (key, agent)."""
    return f"policy.{key_id}.{principal_id}"


def spend_store_name(key_id: str, principal_id: str) -> str:
    """EncryptedStore entry name of the spend state of (key, agent)."""
    return f"spend.{key_id}.{principal_id}"


def check_binding(policy: Policy | None, verified: VerifiedRequest) -> Policy:
    """The policy the holder looked up for a ``sign`` request, checked to be the one of (its key, its principal).

    PolicyDenied ``policy.none`` if there is none (default deny), ``policy.binding`` if it belongs elsewhere.
    """
    if policy is None:
        raise PolicyDenied("policy.none", "no policy allows this principal to use this key")
    req = verified.request
    if policy.key_id != req.key_id or policy.principal_id != verified.principal.id:
        raise PolicyDenied("policy.binding", "the policy found does not belong to this key and principal")
    return policy


def check_derivation_path(policy: Policy, request: SignedRequest) -> None:
    """PolicyDenied ``policy.derivation_path`` unless the request's (signed) derivation path is one the policy of
    (key, agent) pins: none at all when `Policy.derivation_paths` is None, else one of those paths exactly."""
    path = request.derivation_path or None
    allowed = policy.derivation_paths
    if policy.any_derivation_path and allowed is None:
        return
    if (path is None and allowed is None) or (path is not None and allowed is not None and path in allowed):
        return
    raise PolicyDenied("policy.derivation_path", "this agent may not sign for that derivation path of the key")


def policy_from_request(verified: VerifiedRequest) -> Policy:
    """The `Policy` carried by a verified ``set_policy`` request; it must name the request's key."""
    req = verified.request
    if req.kind is not RequestKind.SET_POLICY or req.format is not RequestFormat.JSON:
        raise InvalidInput("not a set_policy request with a JSON body")
    parse_strict_json(req.body)  # duplicate keys etc. refused before pydantic sees the text
    policy = Policy.from_bytes(req.body)
    if policy.key_id != req.key_id:
        raise InvalidInput("the policy's key_id differs from the request's key_id")
    return policy


# ------------------------------------------------------------------------------------------------------------
# spend state


_REQUESTS = "requests"


def _asset_counter(asset: str) -> str:
    return "asset:" + asset


class SpendState:
    """Per-node counters of approved amounts and requests, bucketed at three granularities. Not thread-safe on its
    own; `PolicyEngine` serialises access. `to_bytes` / `from_bytes` for the holder's EncryptedStore."""

    _VERSION = 1

    def __init__(self) -> None:
        # counter -> one {bucket index: amount} per level
        self._counters: dict[str, list[dict[int, int]]] = {}

    @staticmethod
    def _level_for(window_s: int) -> int:
        for i, (_, longest) in enumerate(_LEVELS):
            if window_s <= longest:
                return i
        raise InvalidInput(f"windows longer than {MAX_WINDOW_S} s are not supported")

    def add(self, counter: str, amount: int, now: float) -> None:
        if amount < 0:
            raise InvalidInput("amounts are non-negative")
        levels = self._counters.setdefault(counter, [{} for _ in _LEVELS])
        for (gran, longest), buckets in zip(_LEVELS, levels):
            b = int(now // gran)
            buckets[b] = buckets.get(b, 0) + amount
            # drop buckets that no window this level serves can overlap any more
            cutoff = (now - longest) // gran  # buckets b with (b + 1) * gran <= now - longest
            if len(buckets) > 1:
                for old in [k for k in buckets if k + 1 <= cutoff]:
                    del buckets[old]

    def record(self, spends: Iterable[tuple[str, int]], now: float) -> None:
        """Count one approved request and its spends (asset, amount) at `now`."""
        for asset, amount in spends:
            self.add(_asset_counter(asset), amount, now)
        self.add(_REQUESTS, 1, now)

    def total(self, counter: str, window_s: int, now: float) -> int:
        """Sum over every bucket that overlaps (now - window_s, now] (and any from the future: clock steps)."""
        levels = self._counters.get(counter)
        if not levels:
            return 0
        i = self._level_for(window_s)
        gran = _LEVELS[i][0]
        start = now - window_s
        return sum(v for b, v in levels[i].items() if (b + 1) * gran > start)

    def to_bytes(self) -> bytes:
        doc = {
            "v": self._VERSION,
            "levels": [g for g, _ in _LEVELS],
            "counters": {
                name: [sorted([b, v] for b, v in buckets.items()) for buckets in levels]
                for name, levels in sorted(self._counters.items())
            },
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SpendState:
        obj: Any = parse_strict_json(_as_bytes(data, "spend state"), max_bytes=None)  # the node's own, any size
        state = cls()
        try:
            if obj["v"] != cls._VERSION or obj["levels"] != [g for g, _ in _LEVELS]:
                raise InvalidInput("unsupported spend state version")
            for name, levels in obj["counters"].items():
                if not isinstance(name, str) or not isinstance(levels, list) or len(levels) != len(_LEVELS):
                    raise InvalidInput("malformed spend state")
                parsed = []
                for buckets in levels:
                    d: dict[int, int] = {}
                    for b, v in buckets:
                        if type(b) is not int or type(v) is not int or v < 0 or b in d:
                            raise InvalidInput("malformed spend state")
                        d[b] = v
                    parsed.append(d)
                state._counters[name] = parsed
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InvalidInput("malformed spend state") from None
        return state

    def __repr__(self) -> str:
        return f"SpendState({len(self._counters)} counters)"


# ------------------------------------------------------------------------------------------------------------
# engine


@dataclass(frozen=True)
class Decision:
    """Outcome of `PolicyEngine.evaluate`. `message` is safe to show the agent; `detail` is for the audit log."""

    allowed: bool
    rule: str | None
    message: str
    intent: Intent
    detail: str = ""

    def raise_if_denied(self) -> None:
        if not self.allowed:
            raise PolicyDenied(self.rule or "policy", self.message)


class PolicyEngine:
    """Evaluates intents against one (key, agent) policy and counts what it approves in `spend_state`.

    `threshold` / `parties` are the key's (t-of-n); the policy is validated for them at construction
    (PolicyConfigError). Thread-safe: `authorize` evaluates and records under one lock.
    """

    def __init__(self, policy: Policy, spend_state: SpendState, *, threshold: int, parties: int) -> None:
        if not isinstance(policy, Policy) or not isinstance(spend_state, SpendState):
            raise InvalidInput("expected a Policy and a SpendState")
        policy.validate_for_key(threshold, parties)
        self._policy = policy
        self._state = spend_state
        self._t, self._n, self._c = threshold, parties, policy.compromised_holders
        self._lock = threading.Lock()

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def spend_state(self) -> SpendState:
        return self._state

    def budget(self, cap: int) -> int:
        """This holder's share of a committee-wide cap (see the module docstring)."""
        return node_budget(cap, self._t, self._n, self._c)

    def evaluate(self, intent: Intent, now: float) -> Decision:
        """Decide without changing any state."""
        with self._lock:
            return self._evaluate(intent, now)

    def record(self, intent: Intent, now: float) -> None:
        """Count an allowed intent (its spends and one request). Re-checks: PolicyDenied if it is not allowed."""
        self.authorize(intent, now)

    def authorize(self, intent: Intent, now: float) -> Decision:
        """Evaluate; if allowed, record it and return the decision; if denied, raise PolicyDenied (nothing recorded)."""
        with self._lock:
            decision = self._evaluate(intent, now)
            decision.raise_if_denied()
            self._state.record(intent.spends, now)
            return decision

    def _evaluate(self, intent: Intent, now: float) -> Decision:
        if not isinstance(intent, Intent):
            raise InvalidInput("expected an Intent")
        if not isinstance(now, (int, float)) or isinstance(now, bool) or not math.isfinite(now):
            raise InvalidInput("now must be unix seconds")
        p = self._policy

        def deny(rule: str, message: str, detail: str = "") -> Decision:
            return Decision(False, rule, message, intent, detail or message)

        # time
        if (p.not_before is not None and now < p.not_before) or (p.not_after is not None and now >= p.not_after):
            return deny("policy.time_window", "the policy is not in force at this time")
        if p.time_windows is not None and not any(w.contains(now) for w in p.time_windows):
            return deny("policy.time_window", "signing is not allowed at this time")
        # chain and type
        if intent.chain is None or intent.chain not in p.allowed_chains:
            return deny("policy.chain", f"chain {intent.chain or '(none)'} is not allowed")
        if intent.type not in p.allowed_tx_types:
            if intent.type is TxType.RAW_DIGEST:
                return deny("policy.raw_digest", "raw digest signing is not allowed")
            return deny("policy.tx_type", f"transaction type {intent.type.value} is not allowed")
        if intent.type is TxType.CONTRACT_CALL:
            ok = any(r.contract == intent.contract and intent.selector in r.selectors for r in p.contract_calls)
            if not ok:
                return deny(
                    "policy.contract_call",
                    "this contract call (contract, selector) is not allowed",
                    f"contract {intent.contract} selector {intent.selector} not in contract_calls",
                )
        # counterparties
        parties = {a for a in (intent.recipient, intent.contract, *intent.recipients) if a is not None}
        if any(normalize_address(a) in p.recipient_denylist for a in parties):
            return deny(
                "policy.recipient_denylist",
                "the recipient or contract is denylisted",
                f"denylisted counterparty among {sorted(parties)}",
            )
        # contract calls have their own allowlist (contract_calls)
        if p.recipient_allowlist is not None and intent.type is not TxType.CONTRACT_CALL:
            outside = [a for a in (intent.recipient, *intent.recipients)
                       if a is not None and normalize_address(a) not in p.recipient_allowlist]
            if outside:
                return deny(
                    "policy.recipient_allowlist",
                    "the recipient is not on the allowlist",
                    f"recipient {outside[0]} not allowlisted",
                )
        # amounts
        for asset, amount in intent.spends:
            lim = p.limit_for(asset)
            if lim is None:
                if p.allow_unlisted_assets:
                    continue
                return deny("policy.asset", f"asset {asset} is not allowed")
            if lim.per_tx is not None and amount > lim.per_tx:
                return deny(
                    "policy.per_tx_cap",
                    f"the amount exceeds the per-transaction cap for {asset}",
                    f"{asset}: {amount} > per_tx {lim.per_tx}",
                )
        for asset, amount in intent.spends:
            lim = p.limit_for(asset)
            if lim is None:
                continue
            for w in lim.windows:
                spent = self._state.total(_asset_counter(asset), w.window_s, now)
                budget = self.budget(w.max_amount)
                if spent + amount > budget:
                    return deny(
                        "policy.window_cap",
                        f"the amount would exceed a rolling spending cap for {asset}",
                        f"{asset}: {spent} + {amount} > node budget {budget} of cap {w.max_amount} per {w.window_s} s",
                    )
        for r in p.rate_limits:
            count = self._state.total(_REQUESTS, r.window_s, now)
            budget = self.budget(r.max_requests)
            if count + 1 > budget:
                return deny(
                    "policy.rate_limit",
                    "too many requests; try again later",
                    f"{count} + 1 > node budget {budget} of {r.max_requests} per {r.window_s} s",
                )
        return Decision(True, None, "allowed", intent, "allowed")
