"""Principal-signed requests on ECDSA keys, one or many per call.

Every holder of a signer set gets the whole batch in one call and answers each request on its own (sigma_i, or the
error that refused it) after one durable write for all of its audit records (node/authorized.py `sign_many`). The
coordinator decodes each request itself only to combine and verify, and does that while the holders decide.

A request is never retried on another signer set: its nonce is spent at the holders that saw it, so the agent signs
a fresh request instead. A single `sign_request` is a batch of one.
"""

from __future__ import annotations

from typing import Any

from .. import telemetry as tm
from ..errors import InvalidInput, MpcError, ProtocolAbort
from ..node.authorized import MAX_BATCH
from ..node.policy import intent_from_request
from ..node.principals import SignedRequest
from ..protocols.ecdsa.sign import combine, rerandomize_for

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
            out[i] = InvalidInput("expected a SignedRequest (mpc_ray.node.principals.sign_request)")
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
    own = [_outcome(_combine_inputs, key, request, presig) for request, presig in items]  # while the holders work
    try:
        answers = coord.answers(refs)
    except MpcError as exc:  # a signer did not answer (PartyUnavailable) or refused the whole batch
        for i in where:
            out[i] = exc
        return
    for p, answer in answers.items():
        if not isinstance(answer, list) or len(answer) != len(items):
            abort = ProtocolAbort(p, "sign_requests.answer_shape", "not one answer per request")
            coord._exclude(abort)
            for i in where:
                out[i] = abort
            return
    for n, (i, (_, presig)) in enumerate(zip(where, items)):
        got = {p: answers[p][n] for p in signers}
        refusal = next((a for a in got.values() if isinstance(a, BaseException)), None)
        if refusal is not None:
            out[i] = refusal if isinstance(refusal, MpcError) else InvalidInput(type(refusal).__name__)
            continue
        if isinstance(own[n], MpcError):
            out[i] = own[n]
            continue
        digest, child = own[n]
        try:
            sig = combine(presig, key.public_key, digest, got, child)
        except ProtocolAbort as exc:
            coord._exclude(exc)
            out[i] = exc
            continue
        out[i] = (sig.to_bytes(), sig.recovery_id)


def _combine_inputs(key: Any, request: SignedRequest, presig: Any) -> tuple[bytes, Any]:
    """The digest this coordinator computes from the request, and the re-randomised presignature for an HD child."""
    digest = intent_from_request(request).digest
    if not request.derivation_path:
        return digest, None
    from .hd import ecdsa_tweak  # HD hook: the signed path; every holder derives the same tweak

    return digest, rerandomize_for(presig, key.public_key, ecdsa_tweak(key, request.derivation_path)[1], digest)


def _outcome(fn, *args) -> Any:
    try:
        return fn(*args)
    except MpcError as exc:
        return exc
