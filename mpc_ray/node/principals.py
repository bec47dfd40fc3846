"""Principals and signed requests: who may ask a share holder for what.

A *principal* is an Ed25519 key with an id and a role: ``admin`` (creates keys, sets policies, changes the principal
registry) or ``agent`` (asks for signatures under a policy). Every request a holder acts on is a `SignedRequest`:
the principal signs a canonical, tagged, length-prefixed encoding of every field (never JSON: no key order, escape
or number ambiguity), including a fresh 32-byte nonce and an expiry. Admin requests may need ``admin_quorum``
distinct admin signatures over the same bytes (k of m).

Each holder checks every request itself with `RequestVerifier.verify(request, now)`; the coordinator only relays the
request unchanged. The checks, in order, each an `Unauthorized` (a `PolicyDenied`) whose ``rule`` names it:

======================== ===========================================================================================
``auth.wrong_kind``      the request's kind is not one the entry point serves (checked first: nothing is spent)
``auth.unsigned``        no signatures, or none by the submitting principal
``auth.unknown_principal`` the submitter or a co-signer is not in the registry
``auth.expired``         ``now >= expiry``
``auth.expiry_too_far``  ``expiry - now > max_ttl_s`` (bounds how long a leaked signed request stays usable)
``auth.bad_signature``   a listed signature does not verify over `SignedRequest.signing_bytes`
``auth.not_admin``       an admin-only kind (create_key, set_policy, set_principals) from an agent, or co-signed by one
``auth.admin_quorum``    fewer than ``admin_quorum`` distinct admins signed an admin request
``auth.replayed``        the nonce was consumed before (on this node, ever: the ledger survives restarts)
======================== ===========================================================================================

The nonce is consumed durably (fsync'd `ConsumedLedger`) only after every other check has passed, so a forged or
expired request never burns a nonce; concurrent duplicates race inside the ledger and exactly one wins. A nonce is
consumed once whatever happens next: a request later denied by policy must be re-signed with a fresh nonce. The
ledger id is ``BLAKE2b(person="mpcray-req-nonce", principal_id || nonce)``, never the raw nonce, so a request
nonce can never collide with (and burn) a presignature id even when the holder shares one ledger for both; a
separate ledger file (e.g. ``<node dir>/request-nonces.ledger``) is still the recommended layout. Ids are kept for
ever (the ledger never prunes), 32 bytes and a checksum each on disk.

Integration (the holder, later): keep a `PrincipalRegistry` in the node's `EncryptedStore` (``to_bytes`` /
``from_bytes``; bootstrap admins come from the deploy step), build ``RequestVerifier.from_registry(registry,
ledger)``, and call ``verify(request, time.time(), kinds=...)`` first thing on every sign / create_key / set_policy
/ set_principals entry point, before decoding the body. Use ``VerifiedRequest.request_digest`` as the request id in
the audit log: every holder computes the same one. A ``set_principals`` request carries a `PrincipalRegistry` as
its body (`registry_from_request`); it is checked against the *current* registry's quorum and must carry a higher
`PrincipalRegistry.version` than the current one, then swapped in with `RequestVerifier.update_registry`.

JSON from outside (request bodies, the gateway's envelopes) goes through `check_json_bounds` (size, and nesting depth
counted by a linear scan of the bytes) before any parser sees it; `parse_strict_json` does so itself.

Client side: `sign_request` builds and signs a request, `cosign` adds another admin's signature. No Ray imports.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import secrets
import struct
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.signing
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import InvalidInput, PolicyDenied, Unauthorized
from .store import AlreadyConsumed, ConsumedLedger

__all__ = [
    "ADMIN_KINDS",
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "NOT_REFUSALS",
    "NONCE_BYTES",
    "Principal",
    "PrincipalRegistry",
    "RequestFormat",
    "RequestKind",
    "RequestVerifier",
    "Role",
    "SignedRequest",
    "VerifiedRequest",
    "check_json_bounds",
    "cosign",
    "parse_strict_json",
    "registry_from_request",
    "sign_request",
]

NONCE_BYTES = 32
SIGNATURE_BYTES = 64
MAX_BODY_BYTES = 256 * 1024  # a transaction, typed data or a policy; far more than any of them needs
MAX_SIGNATURES = 32
# JSON from outside (request bodies, gateway envelopes) is scanned for its nesting depth before any parser sees it:
# json.loads recurses in C once per level, and py_ecc (imported by eth-account) lifts the recursion limit to 100,000,
# so 70,000 nested "[" (140 KB) overflow the C stack and kill the process. No document here nests beyond a dozen.
MAX_JSON_DEPTH = 64
# exceptions that are not a request's fault and must never be turned into its refusal (a decoder's native panic,
# pyo3's PanicException, is a BaseException too: everything else is caught and refused as InvalidInput)
NOT_REFUSALS: tuple[type[BaseException], ...] = (KeyboardInterrupt, SystemExit, GeneratorExit)
DEFAULT_MAX_TTL_S = 3600.0
DEFAULT_TTL_S = 300
_DOMAIN = b"mpc-ray/request/v1"  # separates request signatures from anything else a principal key signs
_NONCE_PERSON = b"mpcray-req-nonce"
_PRINCIPAL_ID_RE = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # fits store names like policy.<key>.<principal>
_KEY_ID_RE = r"^[A-Za-z0-9_-]{0,64}$"  # the holder's key ids; empty where the kind has no key (create_key)
_CHAIN_RE = r"^([-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32})?$"  # CAIP-2 (eip155:8453, solana:5eykt4..., bip122:0000..) or empty
_PATH_RE = r"^(m(/(0|[1-9][0-9]{0,9}))*)?$"  # a non-hardened BIP32 path ("m/0/7"), or empty: the key itself
_U64_MAX = 2**64 - 1


class Role(StrEnum):
    ADMIN = "admin"  # committee changes, keys, policies, principals: needs the registry's admin quorum
    OPERATOR = "operator"  # back-office signing of digests / messages its policy allows (mpc.sign, sign_many)
    AGENT = "agent"  # transactions under its policy


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


ADMIN_KINDS = frozenset({
    RequestKind.CREATE_KEY, RequestKind.SET_POLICY, RequestKind.SET_PRINCIPALS, RequestKind.REFRESH_KEY,
    RequestKind.RESHARE_KEY, RequestKind.EXTEND_DIRECTORY, RequestKind.BACKUP, RequestKind.RESTORE,
    RequestKind.DROP_POOLS,
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


# ------------------------------------------------------------------------------------------------------------
# principals


def _load_verify_key(value: bytes) -> nacl.signing.VerifyKey:
    try:
        return nacl.signing.VerifyKey(value)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise ValueError("not a valid Ed25519 public key") from None


class Principal(BaseModel):
    """An admin or agent: id, role and Ed25519 public key (32 bytes; hex in JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="hex", val_json_bytes="hex")

    id: Annotated[str, Field(pattern=_PRINCIPAL_ID_RE)]
    role: Role
    verify_key: Annotated[bytes, Field(min_length=32, max_length=32)]

    @field_validator("verify_key")
    @classmethod
    def _valid_point(cls, v: bytes) -> bytes:
        _load_verify_key(v)
        return v

    @classmethod
    def from_signing_key(cls, id: str, role: Role | str, signing_key: nacl.signing.SigningKey) -> Principal:
        return cls(id=id, role=Role(role), verify_key=bytes(signing_key.verify_key))

    def verify(self, data: bytes, signature: bytes) -> bool:
        """True iff `signature` is this principal's Ed25519 signature of `data`."""
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
            return False
        try:
            nacl.signing.VerifyKey(self.verify_key).verify(bytes(data), signature)
        except nacl.exceptions.BadSignatureError:
            return False
        return True

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class PrincipalRegistry(BaseModel):
    """The principals a holder knows, and how many admin signatures an admin request needs.

    Stored in the node's EncryptedStore (`to_bytes`), and the body of a ``set_principals`` request.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="hex", val_json_bytes="hex")

    principals: tuple[Principal, ...]
    admin_quorum: Annotated[int, Field(ge=1, le=MAX_SIGNATURES)] = 1
    # a holder accepts a set_principals registry only with a version above the one it has (admin.stale_version): an
    # older signed registry held back and delivered late cannot bring a revoked principal back. 1: the first one.
    version: Annotated[int, Field(ge=1, le=_U64_MAX)] = 1

    @model_validator(mode="after")
    def _consistent(self) -> PrincipalRegistry:
        ids = [p.id for p in self.principals]
        if len(set(ids)) != len(ids):
            raise ValueError("principal ids must be unique")
        keys = [p.verify_key for p in self.principals]
        if len(set(keys)) != len(keys):
            raise ValueError("one public key cannot belong to two principals")
        admins = sum(1 for p in self.principals if p.is_admin)
        if admins < self.admin_quorum:
            # a quorum that can never be met locks every admin out for good
            raise ValueError(f"admin_quorum {self.admin_quorum} exceeds the number of admins ({admins})")
        return self

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PrincipalRegistry:
        check_json_bounds(data)  # pydantic's parser has a depth limit of its own; this one is ours
        try:
            return cls.model_validate_json(data)
        except ValidationError as e:
            raise InvalidInput(f"malformed principal registry: {e.error_count()} error(s)") from None

    def get(self, principal_id: str) -> Principal | None:
        for p in self.principals:
            if p.id == principal_id:
                return p
        return None


# ------------------------------------------------------------------------------------------------------------
# requests


def _lp(data: bytes) -> bytes:
    return struct.pack(">Q", len(data)) + data


class SignedRequest(BaseModel):
    """A request as it crosses the boundary (client -> coordinator -> each holder). Bytes are base64 in JSON.

    `signing_bytes()` is what every signer signs: all fields but `signatures`, tagged and length-prefixed.
    `signatures` is a list of (principal id, 64-byte Ed25519 signature); the submitter's must be among them.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, ser_json_bytes="base64", val_json_bytes="base64"
    )

    principal_id: Annotated[str, Field(pattern=_PRINCIPAL_ID_RE)]
    kind: RequestKind
    key_id: Annotated[str, Field(pattern=_KEY_ID_RE)] = ""
    chain: Annotated[str, Field(pattern=_CHAIN_RE)] = ""
    format: RequestFormat
    body: Annotated[bytes, Field(max_length=MAX_BODY_BYTES)]
    nonce: Annotated[bytes, Field(min_length=NONCE_BYTES, max_length=NONCE_BYTES)]
    expiry: Annotated[int, Field(ge=0, le=_U64_MAX)]
    signatures: Annotated[
        tuple[tuple[Annotated[str, Field(pattern=_PRINCIPAL_ID_RE)], bytes], ...], Field(max_length=MAX_SIGNATURES)
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
        return _lp(_DOMAIN) + b"".join(bytes([tag]) + _lp(value) for tag, value in fields)

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


_JSON_ESCAPE = re.compile(rb"\\.", re.S)  # a backslash and the byte after it
_JSON_STRING = re.compile(rb'"[^"]*+"')  # a string, once no escaped quote is left in it
_JSON_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_JSON_STEP = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]


def check_json_bounds(data: bytes, *, max_bytes: int | None = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH) -> None:
    """InvalidInput unless `data` is at most `max_bytes` long (None: any length) and nests arrays and objects at most
    `max_depth` deep. A scan of the bytes in linear time, without recursion, for before any JSON parser sees them.

    Depth counts ``[`` and ``{`` outside strings, as a parser meets them. Escapes (a backslash and the next byte) are
    dropped first: inside a string every backslash starts one, and outside a string a backslash is a syntax error at
    which every parser stops, so nothing after it is ever parsed. Then strings are dropped (no escaped quote is
    left in them). An unterminated string leaves its brackets counted: that over-counts only a document that does not
    parse anyway; a stray closing bracket under-counts only what follows it, where parsers stop too."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInput("JSON must be bytes")
    raw = bytes(data)
    if max_bytes is not None and len(raw) > max_bytes:
        raise InvalidInput(f"JSON document larger than {max_bytes} bytes")
    brackets = _JSON_STRING.sub(b"", _JSON_ESCAPE.sub(b"", raw)).translate(None, _JSON_NOT_BRACKET)
    if max(itertools.accumulate(map(_JSON_STEP.__getitem__, brackets)), default=0) > max_depth:
        raise InvalidInput(f"JSON nested deeper than {max_depth} levels")


def parse_strict_json(data: bytes, *, max_bytes: int | None = MAX_BODY_BYTES) -> object:
    """json.loads that refuses duplicate keys, NaN/Infinity and invalid UTF-8 (InvalidInput), after
    `check_json_bounds` (size and nesting depth, checked before the parser sees a byte)."""
    import json

    check_json_bounds(data, max_bytes=max_bytes)

    def no_dupes(pairs: list[tuple[str, object]]) -> dict[str, object]:
        out: dict[str, object] = {}
        for k, v in pairs:
            if k in out:
                raise InvalidInput(f"duplicate JSON key {k[:40]!r}")
            out[k] = v
        return out

    def no_constants(name: str) -> object:
        raise InvalidInput(f"JSON constant {name} is not allowed")

    try:
        text = bytes(data).decode("utf-8")
        return json.loads(text, object_pairs_hook=no_dupes, parse_constant=no_constants)
    except InvalidInput:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, an integer of over 4,300 digits
        raise InvalidInput(f"body is not valid JSON: {type(e).__name__}") from None


@dataclass(frozen=True)
class VerifiedRequest:
    """A request that passed every `RequestVerifier` check; its nonce is consumed on this node."""

    request: SignedRequest
    principal: Principal
    signers: tuple[str, ...]  # distinct principals whose signatures verified, submitter first
    request_digest: bytes  # SHA-256 of the signing bytes
    nonce_id: bytes  # the id under which the nonce is consumed in the ledger (`nonce_ledger_id`)

    @property
    def kind(self) -> RequestKind:
        return self.request.kind


def nonce_ledger_id(principal_id: str, nonce: bytes) -> bytes:
    return nacl.hash.blake2b(
        _lp(principal_id.encode()) + nonce, digest_size=32, person=_NONCE_PERSON, encoder=nacl.encoding.RawEncoder
    )


class RequestVerifier:
    """Checks requests against a principal registry and consumes their nonces in `nonce_ledger`.

    ``principals`` is a `PrincipalRegistry`, or principals (iterable or id -> Principal mapping) with
    ``admin_quorum`` given separately. Thread-safe.
    """

    def __init__(
        self,
        principals: PrincipalRegistry | Iterable[Principal] | Mapping[str, Principal],
        nonce_ledger: ConsumedLedger,
        *,
        admin_quorum: int | None = None,
        max_ttl_s: float = DEFAULT_MAX_TTL_S,
    ) -> None:
        if not isinstance(nonce_ledger, ConsumedLedger):
            raise InvalidInput("nonce_ledger must be a ConsumedLedger")
        if not isinstance(max_ttl_s, (int, float)) or not max_ttl_s > 0:
            raise InvalidInput("max_ttl_s must be positive")
        self._ledger = nonce_ledger
        self._max_ttl_s = float(max_ttl_s)
        self._lock = threading.Lock()
        self._registry = self._to_registry(principals, admin_quorum)

    @classmethod
    def from_registry(
        cls, registry: PrincipalRegistry, nonce_ledger: ConsumedLedger, *, max_ttl_s: float = DEFAULT_MAX_TTL_S
    ) -> RequestVerifier:
        return cls(registry, nonce_ledger, max_ttl_s=max_ttl_s)

    @staticmethod
    def _to_registry(
        principals: PrincipalRegistry | Iterable[Principal] | Mapping[str, Principal], admin_quorum: int | None
    ) -> PrincipalRegistry:
        if isinstance(principals, PrincipalRegistry):
            if admin_quorum is not None and admin_quorum != principals.admin_quorum:
                raise InvalidInput("admin_quorum is set by the registry; do not pass a different one")
            return principals
        items = list(principals.values()) if isinstance(principals, Mapping) else list(principals)
        if isinstance(principals, Mapping) and any(k != p.id for k, p in principals.items()):
            raise InvalidInput("principal mapping keys must equal the principals' ids")
        try:
            return PrincipalRegistry(principals=tuple(items), admin_quorum=1 if admin_quorum is None else admin_quorum)
        except ValidationError as e:
            raise InvalidInput(f"invalid principals: {e.errors()[0]['msg']}") from None

    @property
    def registry(self) -> PrincipalRegistry:
        return self._registry

    def update_registry(self, registry: PrincipalRegistry) -> None:
        """Swap in a new registry (after a verified, quorum-approved ``set_principals``)."""
        if not isinstance(registry, PrincipalRegistry):
            raise InvalidInput("expected a PrincipalRegistry")
        with self._lock:
            self._registry = registry

    def verify(self, request: SignedRequest, now: float, *, durable: bool = True,
               kinds: Iterable[RequestKind] | None = None) -> VerifiedRequest:
        """Check `request` at time `now` (unix seconds); consume its nonce last. Unauthorized(rule=auth.*).

        `kinds`: the request kinds the calling entry point serves (every entry point should pass them). Another kind
        is ``auth.wrong_kind`` before anything else, so a relay that sends an admin's set_policy to the sign path
        (or any request to another entry point) burns no nonce: the real one is still accepted where it belongs.

        durable=False consumes the nonce in memory only (see `ConsumedLedger.consume_many`): for a holder that
        journals ``VerifiedRequest.nonce_id`` in its audit record before answering and replays it after a crash."""
        if not isinstance(request, SignedRequest):
            raise Unauthorized("auth.unsigned", "expected a principal's signed request")
        if not isinstance(now, (int, float)) or isinstance(now, bool) or not math.isfinite(now):
            raise InvalidInput("now must be a number of unix seconds")
        if kinds is not None and request.kind not in set(kinds):
            raise Unauthorized("auth.wrong_kind", f"a {request.kind.value} request does not go to this entry point")
        with self._lock:
            registry = self._registry
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
        if request.expiry - now > self._max_ttl_s:
            raise Unauthorized("auth.expiry_too_far", f"expiry may be at most {int(self._max_ttl_s)} s ahead")
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
        # every other check passed: consume the nonce (durable, atomic against concurrent duplicates)
        nonce_id = nonce_ledger_id(principal.id, request.nonce)
        try:
            self._ledger.consume_many([nonce_id], durable=durable)
        except AlreadyConsumed:
            raise Unauthorized("auth.replayed", "this request nonce was used before") from None
        return VerifiedRequest(request, principal, tuple(signers), hashlib.sha256(data).digest(), nonce_id)


def registry_from_request(verified: VerifiedRequest) -> PrincipalRegistry:
    """The new `PrincipalRegistry` carried by a verified ``set_principals`` request (JSON body)."""
    req = verified.request
    if req.kind is not RequestKind.SET_PRINCIPALS or req.format is not RequestFormat.JSON:
        raise InvalidInput("not a set_principals request with a JSON body")
    parse_strict_json(req.body)  # bounded, and duplicate keys refused before pydantic sees the text
    return PrincipalRegistry.from_bytes(req.body)


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
