"""Principal-signed requests on FROST keys: the coordinator's side (the holders' side is node/authorized.py).

One commitment per signer is taken from the pools, and each signer gets the request itself with its nonce id and
the commitment list; every holder decodes the request, checks its policy, and signs the message it decoded. The
coordinator decodes the request too, only to aggregate and verify. Not retried on another signer set: the request's
nonce is spent where it was seen, so the agent signs a fresh request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InvalidInput, ProtocolAbort
from ..node.policy import intent_from_request
from ..types import Signature
from .frost_pools import combine

if TYPE_CHECKING:
    from .frost_pools import FrostPools


def frost_sign_request(pools: FrostPools, request) -> Signature:
    c = pools.c
    key = pools.keys.get(request.key_id)
    if key is None:
        raise InvalidInput(f"unknown key {request.key_id!r}")
    msg = intent_from_request(request).digest  # the message bytes (Solana message, or a raw 32-byte message)
    hd_tweak = key.hd_tweak(request.derivation_path or None)
    signers = pools._choose_signers(key)
    taken = pools._take(key, signers, 1)
    clist = b"".join(taken[p][0][1] for p in signers)
    answers = c.answers({p: c.holder(p).frost_sign_request.remote(request, taken[p][0][0], clist) for p in signers})
    try:
        sig, liars = combine(key, msg, clist, {p: a[0] for p, a in answers.items()},
                             {p: a[1] for p, a in answers.items()}, None, hd_tweak)
    except ProtocolAbort as exc:
        c._exclude(exc)
        raise
    for p in liars:
        c._exclude(ProtocolAbort(p, "frost.sign.group_commitment", "reported a wrong R"))
    return Signature(key.scheme, sig)
