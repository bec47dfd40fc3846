"""What a request would do, as a holder decodes it: `Intent`, transaction types (`TxType`) and asset ids.

Every chain's decoder (evm.py, solana.py, bitcoin.py) builds an `Intent`; `mpc_ray.intents.decode.intent_from_request`
picks the decoder by the request's signed format. Policies (node/policy.py) judge intents, never request bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..errors import InvalidInput

__all__ = [
    "EVM_ADDRESS_RE",
    "Intent",
    "TxType",
    "as_bytes",
    "erc20_asset",
    "merge_spends",
    "native_asset",
    "normalize_address",
    "raw_digest_intent",
]

EVM_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


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
    BTC_TRANSFER = "btc_transfer"  # a Taproot key-path PSBT of the key's own output (intents/bitcoin.py)
    RAW_DIGEST = "raw_digest"  # a caller-given digest: opaque; off unless a policy allows it


def normalize_address(addr: str) -> str:
    """EVM addresses compare in lowercase; anything else (Solana base58) is case-sensitive and kept as is."""
    if EVM_ADDRESS_RE.fullmatch(addr):
        return addr.lower()
    return addr


def native_asset(chain: str) -> str:
    """Asset id of a chain's native coin, e.g. ``eip155:1/native``."""
    return f"{chain}/native"


def erc20_asset(chain: str, contract: str) -> str:
    """Asset id of an ERC-20 token, e.g. ``eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913``."""
    return f"{chain}/erc20:{normalize_address(contract)}"


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


def merge_spends(items: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """(asset, amount) pairs summed per asset, in first-seen order, zero amounts dropped."""
    out: dict[str, int] = {}
    for asset, amount in items:
        if amount:
            out[asset] = out.get(asset, 0) + amount
    return tuple(out.items())


def as_bytes(data: object, what: str) -> bytes:
    """`data` as bytes, or InvalidInput naming `what`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInput(f"{what} must be bytes")
    return bytes(data)


def raw_digest_intent(digest: bytes, chain: str | None = None) -> Intent:
    """A caller-given 32-byte digest, signed as is only if a policy allows ``raw_digest``."""
    digest = as_bytes(digest, "digest")
    if len(digest) != 32:
        raise InvalidInput("a raw digest is 32 bytes")
    return Intent(TxType.RAW_DIGEST, chain or None, digest)
