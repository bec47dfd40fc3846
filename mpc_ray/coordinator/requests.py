"""Principal-signed requests on ECDSA keys, one or many per call.

Every holder of a signer set gets the whole batch in one call and answers each request on its own ((sigma_i, the
digest it computed), or the error that refused it) after one durable write for all of its audit records
(node/authorized.py `sign_many`). `combine_request` combines with the digest the signers agree on and trusts it only
if the signature verifies under it; otherwise it decodes the request itself, so a party is only ever blamed against a
digest decoded here. The one-hop client (client/fastpath.py) combines the same way.

A request is never retried on another signer set: its nonce is spent at the holders that saw it, so the agent signs
a fresh request instead. A single `sign_request` is a batch of one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import telemetry as tm
from ..errors import InvalidInput, MpcError, ProtocolAbort
from ..intents import intent_from_request
from ..node.authorized import MAX_BATCH
from ..protocols.ecdsa_protocols import protocol_of
from ..requests import NOT_REFUSALS, SignedRequest
from ..types import Signature

MAX_REQUESTS = MAX_BATCH  # per call: a chunk sent to the holders is never larger than a holder's batch


def sign_requests(coord: Any, requests: list[SignedRequest]) -> list[tuple[bytes, int] | MpcError]:
    """For each request, in order: (64-byte r||s, recovery id), or the error that refused it."""
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
        coord._known(key_id)  # restart hook
        if key_id in coord.frost.keys:  # FROST: each request runs its own nonce round (frost_requests.py)
            from .frost_requests import frost_sign_request

            for i in idx:
                out[i] = _outcome(frost_sign_request, coord.frost, requests[i])
            continue
        with coord.lock:
            key = coord.keys.get(key_id)
        if key is None:
            for i in idx:
                out[i] = InvalidInput(f"unknown key {key_id!r}")
            continue
        tm.annotate(key_id=key.key_id, scheme=key.scheme)  # ops hook
        while idx:
            try:
                signers, presigs = coord._take_presignatures(key, len(idx))
            except MpcError as exc:
                for i in idx:
                    out[i] = exc
                break
            chunk, idx = idx[: len(presigs)], idx[len(presigs):]
            _sign_chunk(coord, key, signers, [(requests[i], p) for i, p in zip(chunk, presigs)], chunk, out)
    return out


def _sign_chunk(coord: Any, key: Any, signers: tuple[int, ...], items: list, where: list[int], out: list) -> None:
    """One holder call per signer for these (request, presignature) pairs; results go to out[where[n]]."""
    batch = [(request, presig.presignature_id) for request, presig in items]
    refs = {p: coord.holder(p).sign_requests.remote(batch) for p in signers}
    try:
        answers = coord.answers(refs)
    except MpcError as exc:  # a signer did not answer (PartyUnavailable) or refused the whole batch
        for i in where:
            out[i] = exc
        return
    except NOT_REFUSALS:
        raise
    except BaseException as exc:  # noqa: BLE001 - a signer failed untyped: these requests fail, typed, others go on
        for i in where:
            out[i] = MpcError(f"a signer failed ({type(exc).__name__})")
        return
    for p, answer in answers.items():
        if not isinstance(answer, list) or len(answer) != len(items):
            abort = ProtocolAbort(p, "sign_requests.answer_shape", "not one answer per request")
            coord._exclude(abort)
            for i in where:
                out[i] = abort
            return
    for n, (i, (request, presig)) in enumerate(zip(where, items)):
        got = {p: answers[p][n] for p in signers}
        refusal = next((a for a in got.values() if isinstance(a, BaseException)), None)
        if refusal is not None:
            out[i] = refusal if isinstance(refusal, MpcError) else InvalidInput(type(refusal).__name__)
            continue
        try:
            sig = combine_request(request, presig, key.public_key, got, key=key)
        except ProtocolAbort as exc:
            coord._exclude(exc)
            out[i] = exc
            continue
        except MpcError as exc:  # the signers accepted a request this coordinator cannot decode
            out[i] = exc
            continue
        out[i] = (sig.to_bytes(), sig.recovery_id)


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
        if request.derivation_path:  # HD hook: the signed path; every holder derives the same tweak
            from .hd import ecdsa_tweak

            if key is None:
                raise InvalidInput("an HD request needs the key record to combine")
            tweak = ecdsa_tweak(key, request.derivation_path)[1]
        proto = protocol_of(presig)  # CGGMP21 (sigma_i) or DKLs23 (online shares): the presignature says which
        child = proto.rerandomize_for(presig, public_key, tweak, d)
        return proto.combine(presig, public_key, d, partials, child)

    claimed = digest if isinstance(digest, bytes) and len(digest) == 32 else agreed
    if claimed is not None:
        try:
            return attempt(claimed)
        except ProtocolAbort:
            pass  # a wrong claim, or a bad partial: decide against our own decoding
    return attempt(intent_from_request(request).digest)


def _outcome(fn, *args) -> Any:
    """fn(*args), or the typed error that refused this one request: the rest of the batch goes on."""
    try:
        return fn(*args)
    except MpcError as exc:
        return exc
    except NOT_REFUSALS:
        raise
    except BaseException as exc:  # noqa: BLE001 - e.g. a native panic relayed from a holder: untyped, this one only
        return MpcError(f"request failed ({type(exc).__name__})")
