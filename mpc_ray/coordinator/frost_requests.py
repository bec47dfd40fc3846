"""Principal-signed requests on FROST keys: the coordinator's side (the holders' side is node/authorized.py).

One commitment per signer is taken from the pools, and each signer gets the request itself with its nonce id and
the commitment list; every holder decodes the request, checks its policy, and signs the message it decoded. The
coordinator decodes the request too, only to aggregate and verify. It checks no principal's signature (the holders
do), so it decodes only what a FROST key can sign (`_FROST_FORMATS`: raw 32-byte messages, Solana messages, PSBTs;
never JSON), with the holders' own decoders, which refuse anything they cannot read as InvalidInput (a native panic
included) and see no more than a request's body limit. Not retried on another signer set: the request's nonce is
spent where it was seen, so the agent signs a fresh request.

A ``btc_psbt`` request (a Taproot key-path PSBT, node/bitcoin_policy.py) needs one signature per input: one
commitment per signer *per input* is taken, every signer gets the request with its lists of nonce ids and commitment
lists (input order) and answers one (z_i, R) per input, after checking the whole PSBT and its policy once. Each
input's signature is combined and verified against the BIP341 output key Q with the signature hash this coordinator
computed itself from the PSBT. The answer is one `Signature` whose bytes are the inputs' 64-byte BIP340 signatures
concatenated in input order (SIGHASH_DEFAULT and SIGHASH_ALL inputs alike: the hash-type byte of a SIGHASH_ALL
witness is the wallet's to append), so it travels through every signer's existing request path unchanged;
`TaprootWallet` splits it, verifies each part again and finalises the PSBT.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

from ..errors import InvalidInput, MpcError, ProtocolAbort, Unauthorized
from ..intents import intent_from_request
from ..requests import RequestFormat, RequestKind, SignedRequest
from ..types import Signature
from .frost_engine import FrostKey, combine, fast_verify


class FrostSigning(Protocol):
    """What a request needs of the FROST engine (`FrostEngine`; tests pass in-process holders)."""

    @property
    def keys(self) -> Mapping[str, FrostKey]: ...
    def choose_signers(self, key: FrostKey) -> list[int]: ...
    def take(self, key: FrostKey, signers: list[int], count: int) -> dict[int, list[tuple[bytes, bytes]]]: ...
    def holder(self, party: int) -> Any: ...
    def answers(self, refs: dict[int, Any]) -> dict[int, Any]: ...
    def exclude(self, abort: ProtocolAbort) -> None: ...


# what each FROST suite signs for a principal (as node/authorized.py `_frost_intent` has it); checked before decoding
_FROST_FORMATS = {
    "eddsa-ed25519": (RequestFormat.RAW_DIGEST, RequestFormat.SOLANA_TX),
    "schnorr-bip340": (RequestFormat.RAW_DIGEST, RequestFormat.BTC_PSBT),
}


def frost_sign_request(engine: FrostSigning, request: SignedRequest) -> Signature:
    key = engine.keys.get(request.key_id)
    if key is None:
        raise InvalidInput(f"unknown key {request.key_id!r}")
    if request.kind is not RequestKind.SIGN:  # as the holders answer it, and nothing is spent
        raise Unauthorized("auth.wrong_kind", f"a {request.kind.value} request does not go to the sign path")
    if request.format not in _FROST_FORMATS.get(key.scheme, ()):
        fits = " or ".join(s for s, formats in _FROST_FORMATS.items() if request.format in formats)
        raise InvalidInput(f"format {request.format.value} cannot be signed with a {key.scheme} key"
                           + (f" (it needs a {fits} key)" if fits else ""))
    if request.format is RequestFormat.BTC_PSBT:
        return _sign_psbt(engine, key, request)
    msg = intent_from_request(request).digest  # the message bytes (Solana message, or a raw 32-byte message)
    hd_tweak = key.hd_tweak(request.derivation_path or None)
    signers = engine.choose_signers(key)
    taken = engine.take(key, signers, 1)
    clist = b"".join(taken[p][0][1] for p in signers)
    answers = engine.answers({p: engine.holder(p).frost_sign_request.remote(request, taken[p][0][0], clist)
                              for p in signers})
    try:
        sig, liars = combine(key, msg, clist, {p: a[0] for p, a in answers.items()},
                             {p: a[1] for p, a in answers.items()}, None, hd_tweak)
    except ProtocolAbort as exc:
        engine.exclude(exc)
        raise
    for p in liars:
        engine.exclude(ProtocolAbort(p, "frost.sign.group_commitment", "reported a wrong R"))
    return Signature(key.scheme, sig)


def _sign_psbt(engine: FrostSigning, key: FrostKey, request: SignedRequest) -> Signature:
    from ..intents.bitcoin import check_sender, split_sighashes

    if key.scheme != "schnorr-bip340":
        raise InvalidInput(f"a PSBT is signed with a schnorr-bip340 key, not {key.scheme}")
    hd_tweak = key.hd_tweak(request.derivation_path or None)
    output_key = key.verify_key(b"", hd_tweak)  # BIP341 output key of an empty script tree (BIP86)
    intent = intent_from_request(request)  # the same decoder as the holders: the count and the hashes to verify
    check_sender(intent, output_key)  # the holders refuse it too; refusing here spends no commitment
    sighashes = split_sighashes(intent.digest)
    n = len(sighashes)
    signers = engine.choose_signers(key)
    taken = engine.take(key, signers, n)
    lists = [b"".join(taken[p][k][1] for p in signers) for k in range(n)]
    answers = engine.answers({p: engine.holder(p).frost_sign_request.remote(
        request, [taken[p][k][0] for k in range(n)], lists) for p in signers})
    for p, a in answers.items():
        if not isinstance(a, list) or len(a) != n or not all(isinstance(x, tuple) and len(x) == 2 for x in a):
            exc = ProtocolAbort(p, "frost.sign.answer", f"expected {n} (share, R) pairs, one per input")
            engine.exclude(exc)
            raise exc
    sigs = []
    for k, sighash in enumerate(sighashes):
        shares = {p: answers[p][k] for p in signers}
        try:
            sig, liars = combine(key, sighash, lists[k], {p: a[0] for p, a in shares.items()},
                                 {p: a[1] for p, a in shares.items()}, b"", hd_tweak)
        except ProtocolAbort as exc:
            engine.exclude(exc)
            raise
        for p in liars:
            engine.exclude(ProtocolAbort(p, "frost.sign.group_commitment", "reported a wrong R"))
        if not fast_verify(key.suite, output_key, sighash, sig):  # never hand out what the network would refuse
            raise MpcError(f"input {k}: the combined signature does not verify under the output key")
        sigs.append(sig)
    return Signature(key.scheme, b"".join(sigs))

