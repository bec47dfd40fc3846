"""The holder's side of principal-signed requests: checking them and consuming their nonces for good.

Principals, the registry and signed requests themselves (pure data, shared with clients and the gateway) live in
`mpc_ray.requests`; the names below are re-exported from there so that old import paths keep working.

Each holder checks every request itself with `RequestVerifier.verify(request, now)`; the coordinator only relays the
request unchanged. The checks are `mpc_ray.requests.signed.authenticate`'s (``auth.wrong_kind``, ``auth.unsigned``,
``auth.unknown_principal``, ``auth.expired``, ``auth.expiry_too_far``, ``auth.bad_signature``, ``auth.not_admin``,
``auth.admin_quorum``), then one more, here:

======================== ===========================================================================================
``auth.replayed``        the nonce was consumed before (on this node, ever: the ledger survives restarts)
======================== ===========================================================================================

The nonce is consumed durably (fsync'd `ConsumedLedger`) only after every other check has passed, so a forged or
expired request never burns a nonce; concurrent duplicates race inside the ledger and exactly one wins. A nonce is
consumed once whatever happens next: a request later denied by policy must be re-signed with a fresh nonce. The
ledger id is ``BLAKE2b(person="mpcray-req-nonce", principal_id || nonce)``, never the raw nonce, so a request
nonce can never collide with (and burn) a presignature id even when the holder shares one ledger for both; a
separate ledger file (e.g. ``<node dir>/request-nonces.ledger``) is still the recommended layout. Ids are kept for
ever (the ledger never prunes), 32 bytes and a checksum each on disk.

The holder keeps its `PrincipalRegistry` in its `EncryptedStore` and calls ``verify(request, time.time(), kinds=...)``
first thing on every entry point, before decoding the body (node/authorized.py). ``VerifiedRequest.request_digest``
is the request id in the audit log: every holder computes the same one. A ``set_principals`` request carries a
`PrincipalRegistry` as its body (`registry_from_request`); it is checked against the *current* registry's quorum and
must carry a higher `PrincipalRegistry.version` than the current one, then swapped in with
`RequestVerifier.update_registry`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import nacl.encoding
import nacl.hash
from pydantic import ValidationError

from ..errors import InvalidInput, Unauthorized
# the shared request layer (mpc_ray.requests), re-exported under its old import path
from ..requests.principals import MAX_SIGNATURES, Principal, PrincipalRegistry, Role  # noqa: F401
from ..requests.signed import (  # noqa: F401
    ADMIN_KINDS,
    DEFAULT_MAX_TTL_S,
    DEFAULT_TTL_S,
    NONCE_BYTES,
    NOT_REFUSALS,
    RequestFormat,
    RequestKind,
    SignedRequest,
    _request_from_wire,
    authenticate,
    cosign,
    length_prefixed,
    sign_request,
)
from ..requests.strict_json import MAX_BODY_BYTES, MAX_JSON_DEPTH, check_json_bounds, parse_strict_json  # noqa: F401
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

_NONCE_PERSON = b"mpcray-req-nonce"


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
    return nacl.hash.blake2b(length_prefixed(principal_id.encode()) + nonce, digest_size=32, person=_NONCE_PERSON,
                             encoder=nacl.encoding.RawEncoder)


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
        with self._lock:
            registry = self._registry
        auth = authenticate(registry, request, now, max_ttl_s=self._max_ttl_s, kinds=kinds)
        # every other check passed: consume the nonce (durable, atomic against concurrent duplicates)
        nonce_id = nonce_ledger_id(auth.principal.id, request.nonce)
        try:
            self._ledger.consume_many([nonce_id], durable=durable)
        except AlreadyConsumed:
            raise Unauthorized("auth.replayed", "this request nonce was used before") from None
        return VerifiedRequest(request, auth.principal, auth.signers, auth.request_digest, nonce_id)


def registry_from_request(verified: VerifiedRequest) -> PrincipalRegistry:
    """The new `PrincipalRegistry` carried by a verified ``set_principals`` request (JSON body)."""
    req = verified.request
    if req.kind is not RequestKind.SET_PRINCIPALS or req.format is not RequestFormat.JSON:
        raise InvalidInput("not a set_principals request with a JSON body")
    parse_strict_json(req.body)  # bounded, and duplicate keys refused before pydantic sees the text
    return PrincipalRegistry.from_bytes(req.body)
