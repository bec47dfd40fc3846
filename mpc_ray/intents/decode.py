"""`intent_from_request`: a ``sign`` request's body decoded by the decoder its signed format names."""

from __future__ import annotations

import dataclasses

from ..errors import InvalidInput, MpcError, PolicyDenied
from ..requests.signed import NOT_REFUSALS, RequestFormat, RequestKind, SignedRequest
from .base import Intent, TxType, raw_digest_intent
from .bitcoin import decode_psbt
from .evm import decode_evm_transaction, decode_personal_message, decode_typed_data
from .solana import decode_solana_message

__all__ = ["intent_from_request"]


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
        return decode_psbt(request.body, claimed)
    else:
        raise InvalidInput(f"format {fmt.value} cannot be signed")
    if claimed is not None and intent.chain is not None and claimed != intent.chain:
        raise PolicyDenied("policy.chain", "the transaction's chain does not match the request's chain")
    if intent.chain is None and claimed is not None and intent.type is TxType.TYPED_DATA:
        # typed data without a chainId in its domain is not bound to a chain; the claim is all there is
        return dataclasses.replace(intent, chain=claimed)
    return intent

