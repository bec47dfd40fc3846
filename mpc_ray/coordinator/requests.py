"""Principal-signed (agent) requests, one or many per call: `AgentRequests` routes each to its key's engine; the
ECDSA ones are combined here.

For an ECDSA key, every holder of a signer set gets the whole batch in one call and answers each request on its own ((sigma_i, the
digest it computed), or the error that refused it) after one durable write for all of its audit records
(node/authorized.py `sign_many`). `combine_request` combines with the digest the signers agree on and trusts it only
if the signature verifies under it; otherwise it decodes the request itself, so a party is only ever blamed against a
digest decoded here. The one-hop client (client/fastpath.py) combines the same way.

A request is never retried on another signer set: its nonce is spent at the holders that saw it, so the agent signs
a fresh request instead. A single `sign_request` is a batch of one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from ..errors import InvalidInput, MpcError, ProtocolAbort
from ..intents import intent_from_request
from ..node.authorized import MAX_BATCH
from ..protocols.ecdsa_protocols import protocol_of
from ..requests import NOT_REFUSALS, SignedRequest
from ..types import Signature
from .frost_requests import frost_sign_request

if TYPE_CHECKING:
    from .ecdsa_engine import EcdsaEngine
    from .frost_engine import FrostEngine

MAX_REQUESTS = MAX_BATCH  # per call: a chunk sent to the holders is never larger than a holder's batch


class AgentRequests:
    """Routes principal-signed requests to the engine of their key: `FrostEngine` signs each on its own nonce round
    (frost_requests.py), `EcdsaEngine` each key's requests in chunks (`EcdsaEngine.sign_requests`)."""

    def __init__(self, ecdsa: EcdsaEngine, frost: FrostEngine, known: Callable[[str], bool]) -> None:
        self.ecdsa, self.frost = ecdsa, frost
        self.known = known  # waits (bounded) for the key table's first rebuild after a restart (resync.py)

    def sign_request(self, request: SignedRequest) -> tuple[bytes, int] | Signature:
        self.known(getattr(request, "key_id", ""))
        if isinstance(request, SignedRequest) and request.key_id in self.frost.keys:
            return frost_sign_request(self.frost, request)
        (out,) = self.sign_requests([request])
        if isinstance(out, BaseException):
            raise out
        return out  # type: ignore[no-any-return]

    def sign_requests(self, requests: list[SignedRequest]) -> list[Any]:
        """For each request, in order: (64-byte r||s, recovery id) or a Signature (FROST), or the error that
        refused it."""
        if not isinstance(requests, (list, tuple)) or not 1 <= len(requests) <= MAX_REQUESTS:
            raise InvalidInput(f"expected a list of 1 to {MAX_REQUESTS} signed requests")
        out: list[Any] = [None] * len(requests)
        by_key: dict[str, list[int]] = {}
        for i, request in enumerate(requests):
            if isinstance(request, SignedRequest):
                by_key.setdefault(request.key_id, []).append(i)
            else:
                out[i] = InvalidInput("expected a SignedRequest (mpc_ray.requests.sign_request)")
        for key_id, idx in by_key.items():
            self.known(key_id)
            if key_id in self.frost.keys:  # FROST: each request runs its own nonce round
                for i in idx:
                    out[i] = _outcome(frost_sign_request, self.frost, requests[i])
                continue
            key = self.ecdsa.key(key_id)
            if key is None:
                for i in idx:
                    out[i] = InvalidInput(f"unknown key {key_id!r}")
                continue
            for i, result in zip(idx, self.ecdsa.sign_requests(key, [requests[i] for i in idx])):
                out[i] = result
        return out


def split_answers(answers: Mapping[int, Any]) -> tuple[dict[int, Any], bytes | None]:
    """The signers' (sigma_i, digest) answers as (partials, the digest all of them report, or None where they
    differ). A malformed answer is ProtocolAbort naming its sender; partial ranges are `combine`'s to check."""
    partials: dict[int, Any] = {}
    digests: set[bytes] = set()
    for p, answer in answers.items():
        if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[1], bytes)
                and len(answer[1]) == 32):
            raise ProtocolAbort(p, "sign_request.answer_shape", "expected (sigma_i, 32-byte digest)")
        partials[p], _ = answer
        digests.add(answer[1])
    return partials, (digests.pop() if len(digests) == 1 else None)


def combine_request(request: SignedRequest, presig: Any, public_key: Any, answers: Mapping[int, Any], *,
                    key: Any = None, digest: bytes | None = None) -> Signature:
    """The signature of an agent request from its signers' answers. The digest tried first is `digest` (a wallet
    that built the transaction) or the one every signer reported; it is trusted only if the combined signature
    verifies under it. Otherwise this decodes the request itself and combines again, so ProtocolAbort names a bad
    partial only against a digest computed here. `key` (the key's record) is needed for an HD child's path."""
    partials, agreed = split_answers(answers)

    def attempt(d: bytes) -> Signature:
        tweak = 0  # always re-randomised, the master key with tweak 0 (protocols/ecdsa/sign.py)
        if request.derivation_path:  # the signed BIP32 path: every holder derives the same tweak
            from .hd import ecdsa_tweak

            if key is None:
                raise InvalidInput("an HD request needs the key record to combine")
            tweak = ecdsa_tweak(key, request.derivation_path)[1]
        proto = protocol_of(presig)  # CGGMP21 (sigma_i) or DKLs23 (online shares): the presignature says which
        child = proto.rerandomize_for(presig, public_key, tweak, d)
        sig: Signature = proto.combine(presig, public_key, d, partials, child)
        return sig

    claimed = digest if isinstance(digest, bytes) and len(digest) == 32 else agreed
    if claimed is not None:
        try:
            return attempt(claimed)
        except ProtocolAbort:
            pass  # a wrong claim, or a bad partial: decide against our own decoding
    return attempt(intent_from_request(request).digest)


def _outcome(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), or the typed error that refused this one request: the rest of the batch goes on."""
    try:
        return fn(*args)
    except MpcError as exc:
        return exc
    except NOT_REFUSALS:
        raise
    except BaseException as exc:  # noqa: BLE001 - e.g. a native panic relayed from a holder: untyped, this one only
        return MpcError(f"request failed ({type(exc).__name__})")
