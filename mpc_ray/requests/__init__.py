"""The request layer every process shares: principals, signed requests, their formats and kinds, strict JSON and the
``raw_batch`` body. Pure: no Ray, no disk, no clock (checks that need the time take ``now``), so an agent's process,
the gateway, the coordinator and every holder read a request the same way.

The holder's side (the durable nonce ledger, `RequestVerifier`) is node/principals.py; what a ``sign`` request's body
means is `mpc_ray.intents`.
"""

from __future__ import annotations

from .admin import directory_params, restore_params
from .principals import MAX_SIGNATURES, Principal, PrincipalRegistry, Role
from .raw_batch import MAX_MESSAGE_BYTES, MAX_MESSAGES, RawBatch, decode_raw_batch, encode_raw_batch
from .signed import (
    ADMIN_KINDS,
    DEFAULT_MAX_TTL_S,
    NONCE_BYTES,
    NOT_REFUSALS,
    Authenticated,
    RequestFormat,
    RequestKind,
    SignedRequest,
    authenticate,
    cosign,
    sign_request,
)
from .strict_json import MAX_BODY_BYTES, MAX_JSON_DEPTH, check_json_bounds, parse_strict_json

__all__ = [
    "ADMIN_KINDS",
    "DEFAULT_MAX_TTL_S",
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_MESSAGES",
    "MAX_MESSAGE_BYTES",
    "MAX_SIGNATURES",
    "NONCE_BYTES",
    "NOT_REFUSALS",
    "Authenticated",
    "Principal",
    "PrincipalRegistry",
    "RawBatch",
    "RequestFormat",
    "RequestKind",
    "Role",
    "SignedRequest",
    "authenticate",
    "check_json_bounds",
    "cosign",
    "decode_raw_batch",
    "directory_params",
    "encode_raw_batch",
    "parse_strict_json",
    "restore_params",
    "sign_request",
]
