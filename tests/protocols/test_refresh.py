"""Proactive refresh of a threshold ECDSA key with new aux info (protocols/ecdsa/refresh.py, sim.refresh): same
public key, new shares and Paillier keys, signatures verify, old and new shares do not combine, and every check
of the zero-sharing and of the new aux info names the culprit."""

from __future__ import annotations

import dataclasses
import hashlib

import coincurve
import pytest

from mpc_ray import sim
from mpc_ray.crypto.params import LEVEL_112
from mpc_ray.crypto.secp256k1 import Q, Point
from mpc_ray.crypto.vss import lagrange_coefficient
from mpc_ray.errors import InvalidInput, ProofError, ProtocolAbort
from mpc_ray.protocols.base import Outbox
from mpc_ray.protocols.common import hash_commit
from mpc_ray.protocols.ecdsa import refresh as rf
from mpc_ray.sim.lifecycle import refresh
from mpc_ray.sim.router import run_parties
from tests.support.ecdsa import tamper_message, with_field
from tests.support.primes import fixture_paillier_key

DIGEST = hashlib.sha256(b"rotate, do not rekey").digest()


def keys(offset: int) -> dict:
    return {i: fixture_paillier_key("112", offset + i) for i in (1, 2, 3)}


@pytest.fixture(scope="module")
def key():
    return sim.keygen(parties=3, threshold=2, security="112", paillier_keys=keys(-1))  # fixture keys 0..2


@pytest.fixture(scope="module")
def refreshed(key):
    return refresh(key, paillier_keys=keys(2))  # fixture keys 3..5


def machines(key, *, epoch=1, offset=5, cls=None, sid=b"refresh:test", **bad):
    """RefreshParty for parties 1..3 (fixture keys offset+1..offset+3); `cls` replaces party 2's machine."""
    out = {}
    for i in key.parties:
        kind = cls if (cls is not None and i == 2) else rf.RefreshParty
        out[i] = kind(sid, key.shares[i], key.aux[i], LEVEL_112, fixture_paillier_key("112", offset + i),
                      epoch=epoch, allow_test_keys=True, **(bad if kind is not rf.RefreshParty else {}))
    return out


def assert_abort(excinfo, culprit: int, check: str) -> None:
    err = excinfo.value
    assert (err.culprit, err.check) == (culprit, check), f"blamed {err.culprit} for {err.check}"


def test_refresh_keeps_the_key_and_signs(key, refreshed):
    assert refreshed.public_key == key.public_key
    assert refreshed.parties == key.parties and refreshed.threshold == 2
    for i in key.parties:
        assert refreshed.shares[i].x != key.shares[i].x
        assert refreshed.shares[i].public_shares[i] == Point.base_mul(refreshed.shares[i].x)
        assert getattr(refreshed.shares[i], "chain_code", None) == getattr(key.shares[i], "chain_code", None)
    old_n = {a.n for a in key.aux[1].public.values()}
    assert not old_n & {a.n for a in refreshed.aux[1].public.values()}  # new Paillier keys for everyone
    for signers in ([1, 2], [2, 3], [1, 3]):
        sig = refreshed.sign(DIGEST, signers=signers)
        assert coincurve.PublicKey(key.public_key).verify(sig.der(), DIGEST, hasher=None)


def test_old_and_new_shares_do_not_combine(key, refreshed):
    y = key.public_point

    def combine(xs: dict[int, int]) -> Point:
        ids = sorted(xs)
        return Point.base_mul(sum(xs[i] * lagrange_coefficient(i, ids) for i in ids) % Q)

    assert combine({1: refreshed.shares[1].x, 3: refreshed.shares[3].x}) == y
    assert combine({1: key.shares[1].x, 3: refreshed.shares[3].x}) != y
    assert combine({2: refreshed.shares[2].x, 3: key.shares[3].x}) != y
    # an old-epoch presignature share cannot be mixed into a new-epoch signature either: the aux info changed,
    # so presigning with one old and one new party fails its proofs
    with pytest.raises(ProtocolAbort):
        mixed = sim.SimEcdsaKey({1: key.shares[1], 2: refreshed.shares[2]}, {1: key.aux[1], 2: refreshed.aux[2]})
        mixed.presign([1, 2])


def test_check_functions_reject_bad_values(key):
    g = Point.generator()
    with pytest.raises(ProofError) as e:
        rf.check_zero_constant([g, g])
    assert e.value.check == "zero_constant"
    rf.check_zero_constant([Point.identity(), g])
    with pytest.raises(ProofError) as e:
        rf.check_zero_sum({1: [Point.identity(), g], 2: [g, g]})
    assert e.value.check == "zero_sum"
    rf.check_zero_sum({1: [Point.identity(), g], 2: [Point.identity(), g]})
    share = key.shares[1]
    with pytest.raises(ProofError) as e:
        rf.check_public_key_unchanged(share, {**share.public_shares, 1: share.public_shares[1] + g})
    assert e.value.check == "public_key_changed"
    rf.check_public_key_unchanged(share, share.public_shares)


def test_local_inputs_are_refused(key):
    with pytest.raises(InvalidInput):  # reusing an old Paillier key is no refresh
        rf.RefreshParty(b"s", key.shares[1], key.aux[1], LEVEL_112, fixture_paillier_key("112", 0), epoch=1,
                        allow_test_keys=True)
    with pytest.raises(InvalidInput):
        rf.RefreshParty(b"s", key.shares[1], key.aux[1], LEVEL_112, fixture_paillier_key("112", 9), epoch=0,
                        allow_test_keys=True)


class BadDealer(rf.RefreshParty):
    """Commits consistently to a zero-sharing that is not one (constant `constant`) or has the wrong length."""

    def __init__(self, *args, constant: int = 0, count: int | None = None, **kw):
        super().__init__(*args, **kw)
        self.constant, self.count = constant, count

    def round1(self) -> Outbox:
        out = super().round1()
        coeffs = list(self._poly.coefficients)
        coeffs[0] = self.constant
        if self.count is not None:
            coeffs = (coeffs + [3] * self.count)[: self.count]
        self._poly = rf.Polynomial(coeffs)
        self._reveal = dataclasses.replace(self._reveal, coefficients=self._poly.commitments())
        self._commits[self.party] = rf.Commitment(out.broadcast.aux,
                                                  hash_commit(rf.TAG, self.ssid, self.party, self._reveal))
        return Outbox(broadcast=self._commits[self.party])


def test_nonzero_sharing_is_named(key):
    with pytest.raises(ProtocolAbort) as e:
        run_parties(machines(key, cls=BadDealer, constant=1))
    assert_abort(e, 2, "refresh.zero_constant")


def test_wrong_commitment_count_is_named(key):
    with pytest.raises(ProtocolAbort) as e:
        run_parties(machines(key, cls=BadDealer, count=3))
    assert_abort(e, 2, "refresh.commitment_count")


def test_party_keeping_its_old_paillier_key_is_named(key):
    ms = machines(key)
    old_key_2 = fixture_paillier_key("112", 1)  # party 2's key of the old epoch
    ms[2] = rf.RefreshParty(b"refresh:test", key.shares[2], None, LEVEL_112, old_key_2, epoch=1,
                            allow_test_keys=True)
    with pytest.raises(ProtocolAbort) as e:
        run_parties(ms)
    assert_abort(e, 2, "refresh.stale_modulus")


@pytest.mark.parametrize(
    "round_no, msg_type, path, value, check",
    [
        (2, rf.Decommitment, "echo", b"\x01" * 32, "refresh.echo"),
        (2, rf.Decommitment, "reveal.u", b"\x02" * 32, "refresh.decommitment"),
        (2, rf.Decommitment, "aux.reveal.u", b"\x02" * 32, "aux.decommitment"),
    ],
)
def test_tampered_early_rounds_are_named(key, round_no, msg_type, path, value, check):
    hook = tamper_message(round_no, 2, msg_type, lambda m: with_field(m, path, value))
    with pytest.raises(ProtocolAbort) as e:
        run_parties(machines(key), hook)
    assert_abort(e, 2, check)


def test_tampered_last_round_is_named(key):
    """One full run per check would be slow: each tamper below is run, and named, in turn."""
    cases = [
        (rf.Direct, lambda m: dataclasses.replace(m, share=(m.share + 1) % Q), 3, "refresh.share"),
        (rf.Proofs, lambda m: dataclasses.replace(m, schnorr=[dataclasses.replace(m.schnorr[0], z=(m.schnorr[0].z + 1) % Q)]),
         None, "refresh.schnorr.equation"),
        (rf.Proofs, lambda m: dataclasses.replace(m, schnorr=[dataclasses.replace(m.schnorr[0], a=Point.generator())]),
         None, "refresh.schnorr.commitment_mismatch"),
        (rf.Direct, lambda m: with_field(m, "fac.proof.z1", m.fac.proof.z1 + 1), 1, None),
    ]
    for msg_type, change, recipient, check in cases:
        hook = tamper_message(3, 2, msg_type, change, recipient=recipient if recipient else "any")
        with pytest.raises(ProtocolAbort) as e:
            run_parties(machines(key), hook)
        assert e.value.culprit == 2
        if check is None:
            assert e.value.check.startswith("aux.pi_fac"), e.value.check
        else:
            assert e.value.check == check


def test_epoch_is_bound_into_the_session(key):
    ms = machines(key, epoch=1)
    ms[3] = machines(key, epoch=2)[3]
    with pytest.raises(ProtocolAbort) as e:
        run_parties(ms)
    assert (e.value.culprit, e.value.check) == (3, "refresh.echo")
