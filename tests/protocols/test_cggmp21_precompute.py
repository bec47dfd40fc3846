"""CGGMP21 presigning with Paillier randomness made ahead of time (protocols/ecdsa/precompute.py): presignatures
made from a pool verify and pass every check, a nonce is used at most once and only for its modulus, a replaced
modulus's nonces are discarded, tampering is still caught with the culprit named, and the node's filler fills
only while idle and stops on close."""

from __future__ import annotations

import hashlib
import os
import pickle
import time

import coincurve
import pytest

from mpc_ray import sim
from mpc_ray.crypto.paillier import PaillierNonce, encrypt_nonce, nonce_pair
from mpc_ray.crypto.zk import pi_enc
from mpc_ray.errors import InvalidInput, ProtocolAbort
from mpc_ray.node.ecdsa_holder import RandomnessFiller, empty_in_forked_child
from mpc_ray.protocols.ecdsa import presign as presign_mod
from mpc_ray.crypto.zk.common import PrecomputedRange, range_commitments
from mpc_ray.protocols.ecdsa.precompute import PaillierRandomness, nonce_slot, presign_demand, x_bound, y_bound
from mpc_ray.protocols.ecdsa.presign import PresignParty
from mpc_ray.protocols.ecdsa.sign import combine, partial_sign, rerandomize_for
from mpc_ray.sim.router import run_parties
from tests.support.ecdsa import tamper_message, with_field
from tests.support.primes import fixture_paillier_key

DIGEST = hashlib.sha256(b"precomputed randomness").digest()
DIGEST_LC = hashlib.sha256(b"lifecycle").digest()  # tests/support/committee.py signs this


@pytest.fixture(scope="module")
def aux3():
    return sim.aux_info(3, "112", paillier_keys={i: fixture_paillier_key("112", i) for i in (1, 2, 3)})


@pytest.fixture(scope="module")
def key23(aux3):
    return sim.keygen(parties=3, threshold=2, aux=aux3)


def full_pools(key, signers, depth=1) -> dict[int, PaillierRandomness]:
    pools = {}
    for i in signers:
        pools[i] = PaillierRandomness(depth)
        pools[i].target([(key.aux[i], len(signers) - 1)])
        pools[i].fill()
    return pools


def presign(key, signers, pools, tamper=None):
    sid = os.urandom(16)
    machines = {i: PresignParty(sid, key.shares[i], key.aux[i], signers, attestor=key.attestors[i],
                                randomness=pools.get(i)) for i in signers}
    try:
        return run_parties(machines, tamper)
    finally:
        for m in machines.values():
            m.wipe()


def verify(key, presigs) -> None:
    public = next(iter(presigs.values())).public
    child = rerandomize_for(public, key.public_point, 0, DIGEST)
    sig = combine(public, key.public_point, DIGEST, {i: partial_sign(p, DIGEST, child) for i, p in presigs.items()},
                  child)
    assert coincurve.PublicKey(key.public_key).verify(sig.der(), DIGEST, hasher=None)


def test_presignature_from_full_pools_verifies_and_takes_exactly_its_demand(key23):
    signers = [1, 3]
    pools = full_pools(key23, signers)
    assert all(pools[i].size() == 9 + 2 * (4 + 5 + 2) for i in signers)
    verify(key23, presign(key23, signers, pools))
    for i in signers:
        aux, peer = key23.aux[i], 4 - i  # 1 <-> 3
        lv = aux.level
        # the run took every own-key nonce and every entry for the signing peer, none of the idle party 2's
        assert pools[i].size(aux.paillier) == 0 and pools[i].size(aux.paillier_pk(peer)) == 0
        assert pools[i].range_size(aux.rp(peer).params, x_bound(lv), lv) == 0
        assert pools[i].range_size(aux.rp(peer).params, y_bound(lv), lv) == 0
        assert pools[i].size(aux.paillier_pk(2)) == 4
        assert pools[i].range_size(aux.rp(2).params, x_bound(lv), lv) == 5
        assert pools[i].range_size(aux.rp(2).params, y_bound(lv), lv) == 2
        assert pools[i].size() == 11
    assert nonce_slot(key23.aux[1].paillier) in presign_demand(key23.aux[1], 1)


def test_partly_filled_and_empty_pools_fall_back_to_fresh_randomness(key23):
    signers = [1, 2]
    pools = full_pools(key23, signers)
    for _ in range(5):  # party 1: a few own-key nonces short
        assert pools[1].take(key23.aux[1].paillier) is not None
    pools[2] = PaillierRandomness(1)  # party 2: an empty pool
    verify(key23, presign(key23, signers, pools))
    assert pools[1].size() == 11  # only party 3's, which did not sign


def test_taking_drains_and_a_nonce_is_used_once(aux3):
    pk = aux3[1].paillier_pk(2)
    pool = PaillierRandomness(1)
    pool.target([(aux3[1], 1)])
    pool.fill()
    n = pool.size(pk)
    assert n == 4
    taken = [pool.take(pk) for _ in range(n)]
    assert pool.take(pk) is None and pool.size(pk) == 0  # drained: the pool never hands a nonce out twice
    pairs = [t.take(pk) for t in taken]
    assert len({int(r) for r, _ in pairs}) == n  # distinct r
    for r, rn in pairs:
        assert rn == pow(int(r), int(pk.n), int(pk.n2))
    with pytest.raises(InvalidInput, match="already used"):
        taken[0].take(pk)
    assert not pool.put(taken[0])  # a used nonce is not taken back
    # a nonce is bound to its modulus: another key's refuses it, and the pool files it under its own modulus
    nonce = PaillierNonce(aux3[1].paillier)
    with pytest.raises(InvalidInput, match="another modulus"):
        nonce.take(pk)
    with pytest.raises(InvalidInput, match="another modulus"):
        encrypt_nonce(pk, 5, nonce)
    assert pool.take(aux3[1].paillier) is not None  # room for one own-key nonce
    assert pool.put(nonce) and pool.take(pk) is None
    assert not pool.put(PaillierNonce(aux3[1].paillier))  # full again: bounded


def test_nonce_gives_the_same_encryption_and_proof(aux3):
    sk = aux3[1].paillier
    nonce = PaillierNonce(sk)
    c, r = encrypt_nonce(sk, 7, nonce)
    assert c == sk.encrypt_with(7, r) and sk.decrypt(c) == 7
    # own-key nonces (computed by CRT) and public-key nonces agree on r^N
    r2, rn2 = nonce_pair(sk.public, PaillierNonce(sk))
    assert rn2 == sk.public.r_pow_n(r2)
    # a pi_enc made with a nonce verifies like one without
    tr = sim_transcript()
    proof = pi_enc.prove(tr.fork(), prover_pk=sk.public, verifier_rp=aux3[1].rp(2).params, K=c, k=7, rho=r,
                         level=aux3[1].level, prover_sk=sk, nonce=PaillierNonce(sk))
    pi_enc.verify(tr.fork(), proof, prover_pk=sk.public, verifier_rp=aux3[2].rp(2), K=c, level=aux3[1].level)


def test_precomputed_range_is_bound_single_use_and_the_same_commitment(aux3):
    lv, rp = aux3[1].level, aux3[1].rp(2).params
    pre = PrecomputedRange(rp, x_bound(lv), lv)
    with pytest.raises(InvalidInput, match="other parameters"):
        pre.take(aux3[1].rp(3).params, x_bound(lv), lv)
    with pytest.raises(InvalidInput, match="other parameters"):
        pre.take(rp, y_bound(lv), lv)
    x = 123456789
    nonces, S, D = range_commitments(rp, x, x_bound(lv), lv, PrecomputedRange(rp, x_bound(lv), lv))
    assert S == rp.commit(x, nonces.mu) and D == rp.commit(nonces.alpha, nonces.gamma)
    assert abs(nonces.alpha) <= x_bound(lv) and abs(nonces.gamma) <= rp.n << (lv.ell + lv.eps)
    pre.take(rp, x_bound(lv), lv)
    with pytest.raises(InvalidInput, match="already used"):
        pre.take(rp, x_bound(lv), lv)
    with pytest.raises(InvalidInput, match="already used"):
        range_commitments(rp, x, x_bound(lv), lv, pre)
    pool = PaillierRandomness(1)
    pool.target([(aux3[1], 1)])
    assert not pool.put(pre)  # used
    assert pool.put(PrecomputedRange(rp, y_bound(lv), lv)) and pool.take_range(rp, x_bound(lv), lv) is None
    got = pool.take_range(rp, y_bound(lv), lv)
    assert got is not None and pool.take_range(rp, y_bound(lv), lv) is None
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(got)
    assert "redacted" in repr(got) and str(got._nonces.alpha) not in repr(got)


def sim_transcript():
    from mpc_ray.crypto.transcript import Transcript

    return Transcript("test/precompute")


def test_replaced_modulus_is_discarded(aux3):
    other = sim.aux_info(3, "112", paillier_keys={i: fixture_paillier_key("112", i + 3) for i in (1, 2, 3)})
    pool = PaillierRandomness(1)
    pool.target([(aux3[1], 1)])
    pool.fill()
    old_keys = [aux3[1].paillier, aux3[1].paillier_pk(2), aux3[1].paillier_pk(3)]
    assert all(pool.size(k) for k in old_keys)
    stale = PaillierNonce(aux3[1].paillier_pk(2))
    pool.target([(other[1], 1)])  # after an aux-info refresh every modulus changed
    assert all(pool.size(k) == 0 and pool.take(k) is None for k in old_keys)
    lv = aux3[1].level
    assert pool.take_range(aux3[1].rp(2).params, x_bound(lv), lv) is None
    assert not pool.put(stale)  # a nonce made for the old modulus is not kept
    assert pool.size() == 0
    pool.fill()
    assert pool.size(other[1].paillier) == 9 and pool.size(other[1].paillier_pk(3)) == 4
    # only one peer's key replaced: the others' nonces stay
    mixed = sim.aux_info(3, "112", paillier_keys={1: fixture_paillier_key("112", 4), 2: fixture_paillier_key("112", 5),
                                                 3: fixture_paillier_key("112", 3)})
    pool.target([(mixed[1], 1)])
    assert pool.size(other[1].paillier) == 9 and pool.size(other[1].paillier_pk(2)) == 4
    assert pool.size(other[1].paillier_pk(3)) == 0 and pool.size(mixed[1].paillier_pk(3)) == 0


def test_secrets_stay_in_memory(aux3):
    pool = PaillierRandomness(1)
    pool.target([(aux3[1], 1)])
    pool.fill(limit=3)
    nonce = PaillierNonce(aux3[1].paillier)
    r, rn = nonce._r, nonce._rn
    for obj in (pool, nonce):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(obj)
        assert "redacted" in repr(obj) and str(r) not in repr(obj) and str(rn) not in repr(obj)
    with pytest.raises(InvalidInput):
        PresignParty(b"s", sim.keygen(parties=3, threshold=2, aux=aux3).shares[1], aux3[1], [1, 2],
                     attestor=sim.attestors([1, 2])[1], randomness=object())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_forked_child_starts_with_an_empty_pool(aux3):
    pool = empty_in_forked_child(PaillierRandomness(1))
    pool.target([(aux3[1], 1)])
    pool.fill(limit=2)
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what it inherited, then leave without running pytest's teardown
        os.write(wr, str(pool.size()).encode())
        os._exit(0)
    os.close(wr)
    got = os.read(rd, 16)
    os.close(rd)
    os.waitpid(pid, 0)
    assert got == b"0" and pool.size() == 2


@pytest.mark.parametrize("target,check", [
    ("proof.z1", "pi_enc.range_z1"),
])
def test_tampered_pi_enc_with_pools_names_culprit(key23, target, check):
    signers = [1, 2]
    pools = full_pools(key23, signers)
    hook = tamper_message(1, 2, presign_mod.EncProof, lambda m: with_field(m, target, 1 << 2000))
    with pytest.raises(ProtocolAbort) as exc:
        presign(key23, signers, pools, hook)
    assert exc.value.culprit == 2 and exc.value.check == f"presign.{check}"


def test_tampered_mta_with_pools_names_culprit(key23):
    signers = [2, 3]
    pools = full_pools(key23, signers)
    hook = tamper_message(2, 3, presign_mod.Round2Direct, lambda m: with_field(m, "psi.w", m.psi.w + 1))
    with pytest.raises(ProtocolAbort) as exc:
        presign(key23, signers, pools, hook)
    assert exc.value.culprit == 3 and exc.value.check == "presign.pi_aff_g.equation_D"


def test_filler_fills_only_while_idle_and_stops(aux3):
    pool = PaillierRandomness(1)
    pool.target([(aux3[1], 1)])
    idle = [False]
    filler = RandomnessFiller(pool, lambda: idle[0], name="test-filler")
    filler.POLL_S = 0.01
    filler.start()
    try:
        time.sleep(0.2)
        assert pool.size() == 0  # a session is open: nothing made
        idle[0] = True
        deadline = time.monotonic() + 60
        while pool.need() is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pool.need() is None and pool.size() == 9 + 2 * (4 + 5 + 2)
    finally:
        filler.stop()
    assert not filler.running
    pool.take(aux3[1].paillier)
    time.sleep(0.1)
    assert pool.size() == 30  # stopped: nothing refilled


# --- on a holder: filled while idle, drawn by presigning, replaced with the key's aux info, stopped on close -----
def _wait(cond, seconds=120.0) -> bool:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_holder_fills_while_idle_and_drops_a_refreshed_keys_entries(tmp_path, monkeypatch):
    from mpc_ray.crypto.secp256k1 import Point
    from mpc_ray.node.ecdsa_holder import EcdsaHolder
    from mpc_ray.protocols.ecdsa import aux_info
    from tests.support.committee import Committee, FixturePrimes

    monkeypatch.setattr(aux_info, "generate_keypair", FixturePrimes())
    monkeypatch.setattr(EcdsaHolder, "PRECOMPUTE_DEPTH", 1)
    c = Committee(tmp_path)
    try:
        c.run("aux", [1, 2, 3], {"level": "112"})
        out = c.run("keygen", [1, 2, 3], {"key_id": "k1", "threshold": 2})
        public_key = Point.from_bytes(next(iter(out.values()))[1]["public_key"])
        pools = {p: c.holders[p].ecdsa.randomness for p in (1, 2, 3)}
        assert all(pool.size() == 0 for pool in pools.values())  # nothing made before the first presignature
        c.presign("k1", [1, 2])
        full = 9 + 2 * (4 + 5 + 2)
        assert _wait(lambda: pools[1].size() == full and pools[2].size() == full)
        old_own = c.holders[1].state.keys.key_aux("k1").paillier
        sig = c.sign("k1", public_key, [1, 2])  # presigns from the full pools
        assert coincurve.PublicKey(public_key.to_bytes()).verify(sig.der(), DIGEST_LC, hasher=None)
        c.lifecycle.refresh("k1", "ecdsa-secp256k1", [1, 2, 3])  # new Paillier keys for everyone
        c.presign("k1", [1, 3])
        new_aux = c.holders[1].state.keys.key_aux("k1")
        assert new_aux.paillier.public.n != old_own.public.n
        assert pools[1].size(old_own) == 0 and pools[1].take(old_own) is None  # old modulus discarded
        assert _wait(lambda: pools[1].size(new_aux.paillier) == 9)
        assert c.holders[1].ecdsa._filler is not None and c.holders[1].ecdsa._filler.running
        c.restart(1)  # close + reopen: the old holder's filler stops and its pool is emptied
        assert pools[1].size() == 0
        assert c.holders[1].ecdsa.randomness.size() == 0
    finally:
        for h in c.holders.values():
            h.close()
    assert all(h.ecdsa._filler is None for h in c.holders.values())
