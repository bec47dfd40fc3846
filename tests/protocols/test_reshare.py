"""Resharing to a new committee (protocols/reshare.py, sim.reshare): ECDSA and both FROST suites keep their public
key, sign under the new committee, old and new shares do not combine, a removed party is out, and every check
names the culprit when a dealer or receiver cheats."""

from __future__ import annotations

import dataclasses
import hashlib

import coincurve
import pytest

from mpc_ray import sim
from mpc_ray.crypto.frost_suites import ED25519, SECP256K1, get_suite
from mpc_ray.crypto.secp256k1 import Q, Point
from mpc_ray.crypto.vss import lagrange_coefficient
from mpc_ray.errors import InvalidInput, ProofError, ProtocolAbort
from mpc_ray.protocols import reshare as rs
from mpc_ray.protocols.base import Outbox
from mpc_ray.protocols.common import hash_commit
from mpc_ray.protocols.frost import aggregate, commit, sign, verify_signature
from mpc_ray.sim import run_keygen
from mpc_ray.sim.lifecycle import refresh, reshare
from mpc_ray.sim.router import run_parties
from tests.support.ecdsa import tamper_message, with_field
from tests.support.primes import fixture_paillier_key

DIGEST = hashlib.sha256(b"move the treasury key").digest()
FROST = ("eddsa-ed25519", "schnorr-bip340")


def assert_abort(excinfo, culprit: int, check: str) -> None:
    err = excinfo.value
    assert (err.culprit, err.check) == (culprit, check), f"blamed {err.culprit} for {err.check}"


@pytest.fixture(scope="module")
def shares23():
    """A 2-of-3 ECDSA key without aux info: the resharing itself needs none."""
    return run_keygen([1, 2, 3], 2)


def old_committee(shares) -> rs.OldCommittee:
    s = next(iter(shares.values()))
    return rs.OldCommittee(s.public_key, s.threshold, dict(s.public_shares))


def machines(shares, new_parties, new_threshold, *, dealers=None, epoch=1, cls=None, sid=b"reshare:test", **bad):
    """ReshareParty for every participant; `cls` (with `bad` keyword arguments) replaces party 2's machine."""
    dealers = sorted(dealers or shares)
    old = old_committee(shares)
    out = {}
    for i in sorted(set(dealers) | set(new_parties)):
        kind = cls if (cls is not None and i == 2) else rs.ReshareParty
        extra = bad if kind is not rs.ReshareParty else {}
        out[i] = kind(sid, i, group=SECP256K1, old=old, dealers=dealers, new_parties=new_parties,
                      new_threshold=new_threshold, epoch=epoch, share=shares[i].x if i in dealers else None, **extra)
    return out


def interpolate(order: int, points: dict[int, int]) -> int:
    ids = sorted(points)
    return sum(points[i] * lagrange_coefficient(i, ids, order=order) for i in ids) % order


# ECDSA end to end (sim) -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ecdsa_moved():
    old = sim.keygen(parties=3, threshold=2, security="112",
                     paillier_keys={i: fixture_paillier_key("112", i) for i in (1, 2, 3)})
    new = reshare(old, parties=[1, 2, 3, 4, 5], threshold=3,
                      paillier_keys={i: fixture_paillier_key("112", 4 + i) for i in (1, 2, 3, 4, 5)})
    return old, new


def test_ecdsa_2_of_3_to_3_of_5_keeps_the_key_and_signs(ecdsa_moved):
    old, new = ecdsa_moved
    assert new.public_key == old.public_key and (new.threshold, new.parties) == (3, (1, 2, 3, 4, 5))
    for signers in ([1, 2, 3], [3, 4, 5], [1, 4, 5]):
        sig = new.sign(DIGEST, signers=signers)
        assert coincurve.PublicKey(new.public_key).verify(sig.der(), DIGEST, hasher=None)
    # the chain code (public) travels with the key; new parties' aux info covers the new committee only
    assert {getattr(s, "chain_code", None) for s in new.shares.values()} == {getattr(old.shares[1], "chain_code", None)}
    assert new.aux[4].parties == (1, 2, 3, 4, 5)
    assert not {a.n for a in new.aux[1].public.values()} & {a.n for a in old.aux[1].public.values()}


def test_ecdsa_old_and_new_shares_do_not_combine(ecdsa_moved):
    old, new = ecdsa_moved
    y = old.public_point
    assert Point.base_mul(interpolate(Q, {1: old.shares[1].x, 2: old.shares[2].x})) == y
    assert Point.base_mul(interpolate(Q, {k: new.shares[k].x for k in (3, 4, 5)})) == y
    assert Point.base_mul(interpolate(Q, {1: old.shares[1].x, 2: old.shares[2].x, 4: new.shares[4].x})) != y
    assert Point.base_mul(interpolate(Q, {1: old.shares[1].x, 3: new.shares[3].x})) != y
    assert Point.base_mul(interpolate(Q, {2: new.shares[2].x, 3: new.shares[3].x})) != y  # below the new threshold


def test_removed_party_cannot_sign(shares23):
    out = run_parties(machines(shares23, [1, 3, 4], 2))
    y = shares23[1].public_key
    assert {o.party for o in out.values() if o.share is not None} == {1, 3, 4}
    assert out[2].share is None and out[2].public_shares.keys() == {1, 3, 4}  # party 2 only saw the confirmation
    assert Point.base_mul(interpolate(Q, {1: out[1].share, 4: out[4].share})) == y
    # party 2 kept its old share: with any new share it interpolates to something else
    for k in (1, 3, 4):
        assert Point.base_mul(interpolate(Q, {2: shares23[2].x, k: out[k].share})) != y


def test_dealer_subset_suffices(shares23):
    out = run_parties(machines(shares23, [1, 2, 3], 2, dealers=[2, 3]))
    assert Point.base_mul(interpolate(Q, {1: out[1].share, 2: out[2].share})) == shares23[1].public_key
    assert out[1].share != shares23[1].x


def test_local_inputs_are_refused(shares23):
    with pytest.raises(InvalidInput):
        machines(shares23, [1, 2, 3], 2, dealers=[1])  # below the old threshold
    with pytest.raises(InvalidInput):
        machines(shares23, [1, 2], 3)
    old = old_committee(shares23)
    with pytest.raises(InvalidInput):  # a dealer handed someone else's share
        rs.ReshareParty(b"s", 1, group=SECP256K1, old=old, dealers=[1, 2], new_parties=[1, 2], new_threshold=2,
                        epoch=1, share=shares23[2].x)
    forged = rs.OldCommittee(old.public_key, 2, {**old.public_shares, 3: old.public_shares[1]})
    with pytest.raises(InvalidInput):  # the old package does not interpolate to the key
        rs.ReshareParty(b"s", 1, group=SECP256K1, old=forged, dealers=[1, 3], new_parties=[1, 3], new_threshold=2,
                        epoch=1, share=shares23[1].x)


# FROST, both suites ---------------------------------------------------------------------------------------------
def frost_sign(key, message: bytes, signers) -> bytes:
    """RFC 9591 signing with the round functions (any identifiers, not only 1..n)."""
    suite = get_suite(key.scheme)
    kps = {i: key.outputs[i].key_package for i in signers}
    nonces = {i: commit(suite, i, kps[i].signing_share) for i in signers}
    coms = sorted((n.commitments for n in nonces.values()), key=lambda c: c.identifier)
    y = key.public_package.group_key
    shares = {i: sign(suite, kps[i], nonces[i], message, coms) for i in signers}
    sig = aggregate(suite, coms, message, y, shares, key.public_package.verifying_shares).to_bytes()
    assert verify_signature(suite, y, message, sig)
    return sig


@pytest.mark.parametrize("scheme", FROST)
def test_frost_2_of_3_to_3_of_5_and_removal(scheme):
    old = sim.keygen(scheme, parties=3, threshold=2)
    new = reshare(old, parties=[1, 2, 3, 4, 5], threshold=3)
    assert new.public_key == old.public_key and new.threshold == 3
    new.sign(b"pay 1 SOL", signers=[2, 4, 5])  # SignParty verifies the aggregate before returning it
    smaller = reshare(new, parties=[1, 3, 4], threshold=2, dealers=[1, 3, 5])
    assert smaller.public_key == old.public_key
    frost_sign(smaller, b"pay 2 SOL", [3, 4])
    refreshed = refresh(smaller)
    assert refreshed.public_key == old.public_key
    frost_sign(refreshed, b"pay 3 SOL", [1, 4])
    g = get_suite(scheme).group
    y = old.public_package.group_key
    share = {k: refreshed.outputs[k].key_package.signing_share for k in (1, 3, 4)}
    assert g.base_mul(interpolate(g.order, {1: share[1], 4: share[4]})) == y
    before = {k: smaller.outputs[k].key_package.signing_share for k in (1, 3, 4)}
    assert before[1] != share[1]
    assert g.base_mul(interpolate(g.order, {1: before[1], 4: share[4]})) != y  # epochs do not mix
    removed = old.outputs[2].key_package.signing_share
    assert g.base_mul(interpolate(g.order, {2: removed, 3: share[3]})) != y


def test_ed25519_group_works_with_the_generic_checks():
    key = sim.keygen("eddsa-ed25519", parties=3, threshold=2)
    pub = key.public_package
    old = rs.OldCommittee(pub.group_key, 2, dict(pub.verifying_shares))
    rs.check_old_committee(ED25519, old, [1, 3])
    rs.check_dealer_commitment(ED25519, old, [1, 3], 3, pub.verifying_shares[3] * lagrange_coefficient(3, [1, 3], order=ED25519.order))
    with pytest.raises(ProofError) as e:
        rs.check_dealer_commitment(ED25519, old, [1, 3], 3, pub.verifying_shares[3])
    assert e.value.check == "dealer_commitment"


# named checks on bad values -------------------------------------------------------------------------------------
def test_check_functions_reject_bad_values(shares23):
    old = old_committee(shares23)
    lam = {j: lagrange_coefficient(j, [1, 2]) for j in (1, 2)}
    good = {j: old.public_shares[j] * lam[j] for j in (1, 2)}
    rs.check_constant_sum(SECP256K1, old, good)
    with pytest.raises(ProofError) as e:
        rs.check_constant_sum(SECP256K1, old, {1: good[1], 2: good[2] + SECP256K1.generator()})
    assert e.value.check == "constant_sum"
    with pytest.raises(ProofError) as e:
        rs.check_subshare(SECP256K1, [SECP256K1.base_mul(5), SECP256K1.base_mul(7)], 2, 5 + 7 * 2 + 1)
    assert e.value.check == "subshare"
    rs.check_subshare(SECP256K1, [SECP256K1.base_mul(5), SECP256K1.base_mul(7)], 2, 5 + 7 * 2)


class ShiftingDealer(rs.ReshareParty):
    """Deals (its weighted share + delta), committed consistently: the CVE-2025-66017 kind of dealer."""

    def __init__(self, *args, delta: int = 1, count: int | None = None, **kw):
        super().__init__(*args, **kw)
        self.delta, self.count = delta, count

    def round1(self) -> Outbox:
        super().round1()
        g = self.group
        coeffs = list(self._poly.coefficients)
        coeffs[0] = (coeffs[0] + self.delta) % g.order
        if self.count is not None:
            coeffs = (coeffs + [3] * self.count)[: self.count]
        self._poly = rs.Polynomial(coeffs, g.order)
        self._reveal = rs.DealerReveal([g.serialize_element(c) for c in self._poly.commitments(g)], self._reveal.u)
        self._commits[self.party] = rs.Commit(hash_commit(rs.TAG, self.ssid, self.party, self._reveal))
        return Outbox(broadcast=self._commits[self.party])


def test_dealer_shifting_its_constant_is_named(shares23):
    with pytest.raises(ProtocolAbort) as e:
        run_parties(machines(shares23, [1, 2, 3, 4, 5], 3, cls=ShiftingDealer, delta=1))
    assert_abort(e, 2, "reshare.dealer_commitment")


def test_dealer_with_wrong_commitment_count_is_named(shares23):
    with pytest.raises(ProtocolAbort) as e:
        run_parties(machines(shares23, [1, 2, 3, 4, 5], 3, cls=ShiftingDealer, delta=0, count=2))
    assert_abort(e, 2, "reshare.commitment_count")


@pytest.mark.parametrize(
    "round_no, msg_type, path, value, check",
    [
        (1, rs.Commit, "v", b"\x00" * 31, "reshare.commit_shape"),
        (2, rs.Reveal, "echo", b"\x01" * 32, "reshare.echo"),
        (2, rs.Reveal, "reveal.u", b"\x02" * 32, "reshare.decommitment"),
        (3, rs.Confirm, "digest", b"\x03" * 32, "reshare.confirm_digest"),
        (3, rs.Confirm, "pok_z", b"\x00" * 31 + b"\x05", "reshare.confirm_pok"),
        (3, rs.Confirm, "public_share", SECP256K1.serialize_element(SECP256K1.generator()),
         "reshare.confirm_public_share"),
    ],
)
def test_tampered_broadcasts_are_named(shares23, round_no, msg_type, path, value, check):
    hook = tamper_message(round_no, 2, msg_type, lambda m: with_field(m, path, value))
    with pytest.raises(ProtocolAbort) as e:
        run_parties(machines(shares23, [1, 2, 3, 4], 2), hook)
    assert_abort(e, 2, check)


def test_bad_subshare_is_named(shares23):
    def bump(m):
        v = int.from_bytes(m.share, "big")
        return rs.SubShare(((v + 1) % SECP256K1.order).to_bytes(32, "big"))

    with pytest.raises(ProtocolAbort) as e:
        run_parties(machines(shares23, [1, 2, 3, 4], 2), tamper_message(2, 2, rs.SubShare, bump, recipient=4))
    assert_abort(e, 2, "reshare.subshare")


def test_non_dealer_cannot_inject_shares_or_reveals(shares23):
    # party 4 is a receiver only: any sub-share or polynomial from it is refused
    ms = machines(shares23, [1, 2, 3, 4], 2)
    hook = tamper_message(2, 4, rs.SubShare, lambda m: rs.SubShare(b"\x00" * 31 + b"\x07"), recipient=1)
    with pytest.raises(ProtocolAbort) as e:
        run_parties(ms, hook)
    assert (e.value.culprit, e.value.check) == (4, "reshare.unexpected_subshare")
    fake = rs.DealerReveal([SECP256K1.serialize_element(SECP256K1.generator())], b"\x00" * 32)
    hook = tamper_message(2, 4, rs.Reveal, lambda m: dataclasses.replace(m, reveal=fake))
    with pytest.raises(ProtocolAbort) as e:
        run_parties(machines(shares23, [1, 2, 3, 4], 2), hook)
    assert (e.value.culprit, e.value.check) == (4, "reshare.unexpected_reveal")


def test_epoch_and_committee_are_bound_into_the_session(shares23):
    ms = machines(shares23, [1, 2, 3, 4], 2, epoch=1)
    ms[4] = machines(shares23, [1, 2, 3, 4], 2, epoch=2)[4]  # party 4 believes it is another epoch
    with pytest.raises(ProtocolAbort) as e:
        run_parties(ms)
    assert e.value.check == "reshare.echo" and e.value.culprit == 4
