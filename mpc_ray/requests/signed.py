"""Signed requests: what a principal asks the committee for, signed so that no relay can change a byte of it.

Every request a holder acts on is a `SignedRequest`: the principal signs a canonical, tagged, length-prefixed encoding
of every field (never JSON: no key order, escape or number ambiguity), including a fresh 32-byte nonce and an expiry.
Admin requests may need ``admin_quorum`` distinct admin signatures over the same bytes (k of m).

`authenticate(registry, request, now)` makes the checks that need nothing but the registry and the time the caller
read, in this order, each an `Unauthorized` (a `PolicyDenied`) whose ``rule`` names it:

======================== ===========================================================================================
``auth.wrong_kind``      the request's kind is not one the entry point serves (checked first: nothing is spent)
``auth.unsigned``        no signatures, or none by the submitting principal
``auth.unknown_principal`` the submitter or a co-signer is not in the registry
``auth.expired``         ``now >= expiry``
``auth.expiry_too_far``  ``expiry - now > max_ttl_s`` (bounds how long a leaked signed request stays usable)
``auth.bad_signature``   a listed signature does not verify over `SignedRequest.signing_bytes`
``auth.not_admin``       an admin-only kind (create_key, set_policy, set_principals) from an agent, or co-signed by one
``auth.admin_quorum``    fewer than ``admin_quorum`` distinct admins signed an admin request
======================== ===========================================================================================

The holder then consumes the nonce durably (``auth.replayed``, node/principals.py `RequestVerifier`).

Client side: `sign_request` builds and signs a request, `cosign` adds another admin's signature.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import nacl.signing
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InvalidInput, Unauthorized
from .principals import MAX_SIGNATURES, PRINCIPAL_ID_RE, U64_MAX, Principal, PrincipalRegistry
from .strict_json import MAX_BODY_BYTES, parse_strict_json

__all__ = [
    "ADMIN_KINDS",
    "DEFAULT_MAX_TTL_S",
    "NONCE_BYTES",
    "NOT_REFUSALS",
    "Authenticated",
    "RequestFormat",
    "RequestKind",
    "SignedRequest",
    "authenticate",
    "cosign",
    "length_prefixed",
    "sign_request",
]

NONCE_BYTES = 32
# exceptions that are not a request's fault and must never be turned into its refusal (a decoder's native panic,
# pyo3's PanicException, is a BaseException too: everything else is caught and refused as InvalidInput)
NOT_REFUSALS: tuple[type[BaseException], ...] = (KeyboardInterrupt, SystemExit, GeneratorExit)
DEFAULT_MAX_TTL_S = 3600.0
DEFAULT_TTL_S = 300
_DOMAIN = b"mpc-ray/request/v1"  # separates request signatures from anything else a principal key signs
_KEY_ID_RE = r"^[A-Za-z0-9_-]{0,64}$"  # the holder's key ids; empty where the kind has no key (create_key)
_CHAIN_RE = r"^([-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32})?$"  # CAIP-2 (eip155:8453, solana:5eykt4..., bip122:0000..) or empty
_PATH_RE = r"^(m(/(0|[1-9][0-9]{0,9}))*)?$"  # a non-hardened BIP32 path ("m/0/7"), or empty: the key itself


class RequestKind(StrEnum):
    SIGN = "sign"
    CREATE_KEY = "create_key"
    SET_POLICY = "set_policy"
    SET_PRINCIPALS = "set_principals"
    REFRESH_KEY = "refresh_key"
    RESHARE_KEY = "reshare_key"
    EXTEND_DIRECTORY = "extend_directory"  # add parties to the committee directory
    BACKUP = "backup"
    RESTORE = "restore"
    DROP_POOLS = "drop_pools"
    SET_COORDINATOR = "set_coordinator"  # replace the coordinator's verify key (requests/grants.py) on the holders


ADMIN_KINDS = frozenset({
    RequestKind.CREATE_KEY, RequestKind.SET_POLICY, RequestKind.SET_PRINCIPALS, RequestKind.REFRESH_KEY,
    RequestKind.RESHARE_KEY, RequestKind.EXTEND_DIRECTORY, RequestKind.BACKUP, RequestKind.RESTORE,
    RequestKind.DROP_POOLS, RequestKind.SET_COORDINATOR,
})


class RequestFormat(StrEnum):
    """How the holder must read `SignedRequest.body`. Signed, so a relay cannot make the holder misread it."""

    EVM_TX = "evm_tx"  # unsigned EIP-155 legacy / EIP-2930 / EIP-1559 transaction bytes (the signing payload)
    EIP712 = "eip712"  # UTF-8 JSON of EIP-712 typed data {types, primaryType, domain, message}
    EIP191 = "eip191"  # message bytes for personal_sign ("\x19Ethereum Signed Message:\n" + len + message)
    RAW_DIGEST = "raw_digest"  # 32 bytes signed as is (only if a policy allows raw_digest)
    RAW_BATCH = "raw_batch"  # several opaque messages (4-byte length || bytes each): an operator's sign_many
    SOLANA_TX = "solana_tx"  # a serialized Solana message (legacy or v0)
    BTC_PSBT = "btc_psbt"  # a BIP174 v0 PSBT spending key-path inputs of the key's own Taproot output (bip122 chains)
    JSON = "json"  # UTF-8 JSON: create_key parameters, a Policy, a PrincipalRegistry


def length_prefixed(data: bytes) -> bytes:
    """8-byte big-endian length || data: the unit of every canonical encoding here."""
    return struct.pack(">Q", len(data)) + data


class SignedRequest(BaseModel):
    """A request as it crosses the boundary (client -> coordinator -> each holder). Bytes are base64 in JSON.

    `signing_bytes()` is what every signer signs: all fields but `signatures`, tagged and length-prefixed.
    `signatures` is a list of (principal id, 64-byte Ed25519 signature); the submitter's must be among them.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, ser_json_bytes="base64", val_json_bytes="base64"
    )

    principal_id: Annotated[str, Field(pattern=PRINCIPAL_ID_RE)]
    kind: RequestKind
    key_id: Annotated[str, Field(pattern=_KEY_ID_RE)] = ""
    chain: Annotated[str, Field(pattern=_CHAIN_RE)] = ""
    format: RequestFormat
    body: Annotated[bytes, Field(max_length=MAX_BODY_BYTES)]
    nonce: Annotated[bytes, Field(min_length=NONCE_BYTES, max_length=NONCE_BYTES)]
    expiry: Annotated[int, Field(ge=0, le=U64_MAX)]
    signatures: Annotated[
        tuple[tuple[Annotated[str, Field(pattern=PRINCIPAL_ID_RE)], bytes], ...], Field(max_length=MAX_SIGNATURES)
    ] = ()
    # HD: sign for this BIP32 child of the key (node/hd.py); part of the signed bytes, so no relay can change it
    derivation_path: Annotated[str, Field(pattern=_PATH_RE, max_length=2 + 11 * 255)] = ""

    @field_validator("derivation_path")
    @classmethod
    def _canonical_path(cls, v: str) -> str:
        if v:
            from ..crypto.bip32 import format_path, parse_path

            if format_path(parse_path(v)) != v:  # one spelling per path: the signed bytes name one key
                raise ValueError("derivation_path must be a canonical non-hardened path like m/0/7")
        return v

    def signing_bytes(self) -> bytes:
        """Canonical encoding: domain, then (1-byte tag || 8-byte length || value) for each field in a fixed order."""
        fields: list[tuple[int, bytes]] = [
            (1, self.principal_id.encode()),
            (2, self.kind.value.encode()),
            (3, self.key_id.encode()),
            (4, self.chain.encode()),
            (5, self.format.value.encode()),
            (6, self.body),
            (7, self.nonce),
            (8, struct.pack(">Q", self.expiry)),
        ]
        if self.derivation_path:  # absent when empty, so requests without one keep their bytes
            fields.append((9, self.derivation_path.encode()))
        return length_prefixed(_DOMAIN) + b"".join(bytes([tag]) + length_prefixed(value) for tag, value in fields)

    def digest(self) -> bytes:
        """SHA-256 of `signing_bytes()`: the request id every holder logs (the same on every node)."""
        return hashlib.sha256(self.signing_bytes()).digest()

    def body_json(self) -> object:
        """The body parsed as strict JSON (duplicate keys, NaN and non-UTF-8 refused)."""
        return parse_strict_json(self.body)

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        # A request reaches a holder pickled (Ray) from a relay it does not trust. pydantic's default unpickling
        # restores the fields unchecked, so rebuild through validation: bad fields fail before any code reads them.
        return _request_from_wire, (dict(self.__dict__),)

    def __repr__(self) -> str:
        return (
            f"SignedRequest(principal={self.principal_id!r}, kind={self.kind.value}, key={self.key_id!r}, "
            f"chain={self.chain!r}, format={self.format.value}, body={len(self.body)} bytes, "
            f"{f'path={self.derivation_path}, ' if self.derivation_path else ''}"
            f"nonce={self.nonce.hex()[:12]}.., expiry={self.expiry}, signers={[s for s, _ in self.signatures]})"
        )

    __str__ = __repr__


def _request_from_wire(fields: dict[str, Any]) -> SignedRequest:
    """Unpickle a `SignedRequest` through full validation (InvalidInput naming the first bad field)."""
    try:
        return SignedRequest.model_validate(fields)
    except ValidationError as e:
        where = ".".join(str(x) for x in e.errors()[0]["loc"]) or "request"
        raise InvalidInput(f"malformed signed request: {where}: {e.errors()[0]['msg']}") from None


# ------------------------------------------------------------------------------------------------------------
# checking a request against a registry


@dataclass(frozen=True)
class Authenticated:
    """What `authenticate` established: who asked, who signed (distinct, submitter first), and the request id."""

    principal: Principal
    signers: tuple[str, ...]
    request_digest: bytes  # SHA-256 of the signing bytes


def authenticate(
    registry: PrincipalRegistry,
    request: SignedRequest,
    now: float,
    *,
    max_ttl_s: float = DEFAULT_MAX_TTL_S,
    kinds: Iterable[RequestKind] | None = None,
) -> Authenticated:
    """Every check of the module docstring's table on `request` at time `now` (unix seconds, read by the caller),
    cheap ones first: Unauthorized(rule=auth.*). Consumes nothing: replay is the holder's ledger's to refuse.

    `kinds`: the request kinds the calling entry point serves. Another kind is ``auth.wrong_kind`` before anything
    else, so a relay that sends an admin's set_policy to the sign path burns no nonce."""
    if not isinstance(request, SignedRequest):
        raise Unauthorized("auth.unsigned", "expected a principal's signed request")
    if not isinstance(now, (int, float)) or isinstance(now, bool) or not math.isfinite(now):
        raise InvalidInput("now must be a number of unix seconds")
    if kinds is not None and request.kind not in set(kinds):
        raise Unauthorized("auth.wrong_kind", f"a {request.kind.value} request does not go to this entry point")
    if not request.signatures:
        raise Unauthorized("auth.unsigned", "the request carries no signature")
    principal = registry.get(request.principal_id)
    if principal is None:
        raise Unauthorized("auth.unknown_principal", "the requesting principal is not registered on this node")
    if not any(pid == request.principal_id for pid, _ in request.signatures):
        raise Unauthorized("auth.unsigned", "the requesting principal did not sign the request")
    cosigners: list[Principal] = []
    for pid, _ in request.signatures:
        p = registry.get(pid)
        if p is None:
            raise Unauthorized("auth.unknown_principal", "a co-signer is not registered on this node")
        cosigners.append(p)
    if now >= request.expiry:
        raise Unauthorized("auth.expired", "the request has expired")
    if request.expiry - now > max_ttl_s:
        raise Unauthorized("auth.expiry_too_far", f"expiry may be at most {int(max_ttl_s)} s ahead")
    data = request.signing_bytes()
    signers: list[str] = []
    for p, (_, sig) in zip(cosigners, request.signatures):
        if not p.verify(data, sig):
            raise Unauthorized("auth.bad_signature", "a request signature does not verify")
        if p.id not in signers:
            signers.append(p.id)
    signers.sort(key=lambda s: s != principal.id)  # submitter first
    if request.kind in ADMIN_KINDS:
        if not principal.is_admin or not all(p.is_admin for p in cosigners):
            raise Unauthorized("auth.not_admin", f"{request.kind.value} requests are for admins only")
        if len(signers) < registry.admin_quorum:
            raise Unauthorized(
                "auth.admin_quorum",
                f"{request.kind.value} needs {registry.admin_quorum} admin signatures, got {len(signers)}",
            )
    return Authenticated(principal, tuple(signers), hashlib.sha256(data).digest())


# ------------------------------------------------------------------------------------------------------------
# client side


def _signing_key(key: nacl.signing.SigningKey | bytes) -> nacl.signing.SigningKey:
    if isinstance(key, nacl.signing.SigningKey):
        return key
    if isinstance(key, (bytes, bytearray)) and len(key) == 32:
        return nacl.signing.SigningKey(bytes(key))
    raise InvalidInput("signing key must be a nacl SigningKey or a 32-byte seed")


def sign_request(
    signing_key: nacl.signing.SigningKey | bytes,
    *,
    principal_id: str,
    kind: RequestKind | Literal["sign", "create_key", "set_policy", "set_principals"],
    format: RequestFormat | str,
    body: bytes,
    key_id: str = "",
    chain: str = "",
    now: float,
    ttl_s: int = DEFAULT_TTL_S,
    nonce: bytes | None = None,
    derivation_path: str = "",
) -> SignedRequest:
    """Build a request and sign it as `principal_id` (fresh random nonce unless given; expiry = now + ttl_s)."""
    sk = _signing_key(signing_key)
    if not isinstance(ttl_s, int) or ttl_s <= 0:
        raise InvalidInput("ttl_s must be a positive integer")
    try:
        unsigned = SignedRequest(
            principal_id=principal_id,
            kind=RequestKind(kind),
            key_id=key_id,
            chain=chain,
            format=RequestFormat(format),
            body=bytes(body),
            nonce=secrets.token_bytes(NONCE_BYTES) if nonce is None else bytes(nonce),
            expiry=int(now) + ttl_s,
            derivation_path=derivation_path,
        )
    except (ValidationError, ValueError) as e:
        raise InvalidInput(f"invalid request: {e}") from None
    sig = sk.sign(unsigned.signing_bytes()).signature
    return unsigned.model_copy(update={"signatures": ((principal_id, sig),)})


def cosign(request: SignedRequest, principal_id: str, signing_key: nacl.signing.SigningKey | bytes) -> SignedRequest:
    """`request` with `principal_id`'s signature added (another admin approving the same bytes)."""
    sk = _signing_key(signing_key)
    sig = sk.sign(request.signing_bytes()).signature
    kept = tuple(s for s in request.signatures if s[0] != principal_id)
    return SignedRequest.model_validate(
        {**request.model_dump(), "signatures": kept + ((principal_id, sig),)}, strict=True
    )
