"""Key lifecycle in one process: proactive refresh and resharing of sim keys (tests, notebooks, benchmarks).

    from mpc_ray import sim
    key = sim.keygen("ecdsa-secp256k1", parties=3, threshold=2, security="112")
    key2 = sim.refresh(key)                                     # same public key, new shares and aux info
    key3 = sim.reshare(key2, parties=[1, 2, 3, 4, 5], threshold=3)   # 2-of-3 -> 3-of-5, same public key

Both return a new key object and leave the old one as it was, so tests can check that old and new shares do
not combine. ECDSA refresh is the CGGMP21 zero-sharing refresh with new aux info (`protocols.ecdsa.refresh`);
FROST refresh is a resharing onto the same committee (fresh polynomial, same key). ECDSA resharing also runs a
new aux-info setup among the new committee, whose Paillier keys must not be any of the old ones.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ..crypto.frost_suites import SECP256K1, get_suite
from ..crypto.paillier import PaillierSecretKey
from ..errors import InvalidInput
from ..protocols.ecdsa.refresh import RefreshParty
from ..protocols.reshare import OldCommittee, ReshareParty, ecdsa_key_share, frost_output
from .keys import SimEcdsaKey, SimFrostKey, _sid, aux_info
from .router import Tamper, run_parties

__all__ = ["refresh", "reshare"]

SimKey = SimEcdsaKey | SimFrostKey


def refresh(key: SimKey, *, epoch: int = 1, paillier_keys: Mapping[int, PaillierSecretKey] | None = None,
            tamper: Tamper | None = None) -> SimKey:
    """New shares (and, for ECDSA, new aux info) for the same committee and public key. Every party takes part.
    `paillier_keys` (ECDSA) are the new epoch's keys; without them every party makes fresh safe primes."""
    if isinstance(key, SimFrostKey):
        return reshare(key, parties=key.parties, threshold=key.threshold, epoch=epoch, tamper=tamper)
    keys = dict(paillier_keys or {})
    allow_test = any(k.test_only for k in keys.values())
    level = next(iter(key.aux.values())).level
    sid = _sid("refresh")
    machines = {i: RefreshParty(sid, key.shares[i], key.aux[i], level, keys.get(i), epoch=epoch,
                                allow_test_keys=allow_test) for i in key.parties}
    out = run_parties(machines, tamper)
    return SimEcdsaKey({i: o.key for i, o in out.items()}, {i: o.aux for i, o in out.items()})  # type: ignore[attr-defined]


def reshare(key: SimKey, *, parties: Sequence[int], threshold: int, dealers: Sequence[int] | None = None,
            epoch: int = 1, paillier_keys: Mapping[int, PaillierSecretKey] | None = None,
            tamper: Tamper | None = None, aux_tamper: Tamper | None = None) -> SimKey:
    """Move the key to committee `parties` with `threshold` signers; `dealers` (default: every old party) deal.
    ECDSA: `paillier_keys` are the new committee's aux-info keys (fresh safe primes without them)."""
    new_parties = sorted(parties)
    chosen = sorted(dealers) if dealers is not None else list(key.parties)
    if not set(chosen) <= set(key.parties):
        raise InvalidInput("dealers must hold shares of the key")
    if isinstance(key, SimFrostKey):
        group = get_suite(key.scheme).group
        pub = key.public_package
        old = OldCommittee(pub.group_key, key.threshold, dict(pub.verifying_shares))
        secret = {i: key.outputs[i].key_package.signing_share for i in chosen}
    else:
        group = SECP256K1
        any_share = next(iter(key.shares.values()))
        old = OldCommittee(key.public_point, key.threshold, dict(any_share.public_shares))
        secret = {i: key.shares[i].x for i in chosen}
    sid = _sid("reshare")
    machines = {
        i: ReshareParty(sid, i, group=group, old=old, dealers=chosen, new_parties=new_parties,
                        new_threshold=threshold, epoch=epoch, share=secret.get(i))
        for i in sorted(set(chosen) | set(new_parties))
    }
    out = run_parties(machines, tamper)
    if isinstance(key, SimFrostKey):
        return SimFrostKey(key.scheme, {k: frost_output(key.scheme, out[k], key.public_package) for k in new_parties})  # type: ignore[arg-type]
    template = next(iter(key.shares.values()))
    shares = {k: ecdsa_key_share(template, out[k]) for k in new_parties}  # type: ignore[arg-type]
    old_moduli = {int(a.n) for aux in key.aux.values() for a in aux.public.values()}
    new_keys = dict(paillier_keys or {})
    if any(int(k.public.n) in old_moduli for k in new_keys.values()):
        raise InvalidInput("the new committee's Paillier keys must not be the old committee's")
    level = next(iter(key.aux.values())).level
    return SimEcdsaKey(shares, aux_info(new_parties, level.name, paillier_keys=new_keys, tamper=aux_tamper))
