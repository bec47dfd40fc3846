"""What a ``sign`` request would do: every holder decodes the request body itself into an `Intent` (type, chain,
recipients, spends, and the digest it will sign) with the ecosystem's own decoders, per chain: evm.py (transactions,
EIP-712, EIP-191), solana.py, bitcoin.py (PSBTs). `intent_from_request` picks one by the request's signed format.

Pure: no Ray, no disk, no clock. The policy that judges intents, and the spend accounting, are node/policy.py's.
Bitcoin decoding needs the optional ``embit`` package and Solana decoding ``solders``, imported when first used.
"""

from __future__ import annotations

from .base import Intent, TxType, erc20_asset, native_asset, normalize_address, raw_digest_intent
from .decode import intent_from_request
from .evm import decode_evm_transaction, decode_personal_message, decode_typed_data
from .solana import decode_solana_message

__all__ = [
    "Intent",
    "TxType",
    "decode_evm_transaction",
    "decode_personal_message",
    "decode_solana_message",
    "decode_typed_data",
    "erc20_asset",
    "intent_from_request",
    "native_asset",
    "normalize_address",
    "raw_digest_intent",
]
