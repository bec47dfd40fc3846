"""Solana decoding: a serialized message (legacy or v0) making one System Program transfer, into an `Intent`."""

from __future__ import annotations

from ..errors import InvalidInput
from .base import Intent, TxType, as_bytes, merge_spends, native_asset

__all__ = ["decode_solana_message"]

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
    raw = as_bytes(message, "Solana message")
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
        spends=merge_spends([(asset, int(t["lamports"]) + fee)]),
        details=tuple(details.items()),
    )

