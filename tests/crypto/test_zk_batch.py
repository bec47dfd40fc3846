"""Batched Paillier equations (crypto/zk/batch.py): honest sets pass, one bad equation fails the batch, two bad ones
that cancel under fixed weights do not cancel under random ones, and presigning still names the culprit and the
exact check when a batched proof is bad.

Keys are TEST ONLY fixture primes at level 112.
"""

from __future__ import annotations

import secrets

import gmpy2
import pytest
from gmpy2 import mpz

from mpc_ray import sim
from mpc_ray.crypto.paillier import sample_unit
from mpc_ray.crypto.params import LEVEL_112
from mpc_ray.crypto.ring_pedersen import generate_ring_pedersen
from mpc_ray.crypto.secp256k1 import Point
from mpc_ray.crypto.transcript import Transcript
from mpc_ray.crypto.zk import batch as batch_mod
from mpc_ray.crypto.zk import pi_aff_g, pi_log_star
from mpc_ray.crypto.zk.batch import PaillierBatch
from mpc_ray.errors import ProofError, ProtocolAbort
from mpc_ray.protocols.ecdsa import presign as presign_mod
from tests.support.ecdsa import tamper_message, with_field
from tests.support.primes import fixture_paillier_key

SK = fixture_paillier_key("112", 1)
PK = SK.public
N, N2 = PK.n, PK.n2


def signed(bits: int) -> mpz:
    return mpz(secrets.randbits(bits)) * (1 if secrets.randbits(1) else -1)


def equation(c=None):
    """An honest (c, x, y, w, A, D, e) with C^x (1+N)^y w^N = A D^e mod N^2: A solved for."""
    x, y, e = signed(768), signed(1792), signed(256)
    w, d = sample_unit(N), PK.encrypt(signed(300))[0]
    lhs = PK.encrypt_with(y, w) * (1 if c is None else gmpy2.powmod(c, x, N2)) % N2
    a = lhs * gmpy2.powmod(d, -e, N2) % N2
    return [c, x if c is not None else 0, y, w, a, d, e]


def batch_of(eqs, key=PK) -> PaillierBatch:
    b = PaillierBatch()
    for eq in eqs:
        b.add(key, *eq)
    return b


def test_honest_equations_pass_public_and_own_key():
    c = PK.encrypt(5)[0]
    eqs = [equation(), equation(c), equation(c), equation()]
    assert batch_of(eqs).holds()
    assert batch_of(eqs, SK).holds()  # the owner computes by CRT: same answer
    assert len(batch_of(eqs)) == 4


@pytest.mark.parametrize("bad", [0, 1, 2])
@pytest.mark.parametrize("what", ["y", "w", "a"])
def test_one_bad_equation_fails_the_batch(bad, what):
    eqs = [equation(), equation(PK.encrypt(7)[0]), equation()]
    if what == "y":
        eqs[bad][2] += 1  # plaintext part off by one
    elif what == "w":
        eqs[bad][3] = eqs[bad][3] * 2 % N  # randomness part off by 2^N
    else:
        eqs[bad][4] = eqs[bad][4] * (1 + N) % N2  # commitment off by Enc(1)
    assert not batch_of(eqs).holds()


def _cancelling_pair(part: str):
    """Two equations wrong by inverse factors: (1+N)^d and (1+N)^-d (plaintext part) or v^N and v^-N (randomness
    part). Their product holds, so all-one weights would accept."""
    eqs = [equation(), equation(), equation()]
    if part == "plaintext":
        d = signed(200)
        eqs[0][4] = eqs[0][4] * PK.one_plus_n_pow(d) % N2
        eqs[2][4] = eqs[2][4] * PK.one_plus_n_pow(-d) % N2
    else:
        v = sample_unit(N)
        eqs[0][3] = eqs[0][3] * v % N
        eqs[2][3] = eqs[2][3] * gmpy2.invert(v, N) % N
    return eqs


@pytest.mark.parametrize("part", ["plaintext", "randomness"])
def test_errors_that_cancel_under_fixed_weights_are_caught(part, monkeypatch):
    eqs = _cancelling_pair(part)
    monkeypatch.setattr(batch_mod, "weight", lambda: 1)
    assert batch_of(eqs).holds(), "fixed weights let the two errors cancel (what the random weights are for)"
    monkeypatch.undo()
    assert not batch_of(eqs).holds()


def _transcript() -> Transcript:
    return Transcript("mpc-ray/test/batch").append_bytes("sid", b"s")


def test_pi_aff_g_defers_its_equations_and_the_plain_check_names_them():
    sk0, sk1 = fixture_paillier_key("112", 0), SK
    rp0 = generate_ring_pedersen(sk0)  # the verifier's, on its own N0 as in the protocol
    x, y = 12345, -(1 << 1200)
    C = sk0.public.encrypt(777)[0]
    rho, rho_y = sample_unit(sk0.public.n), sample_unit(N)
    D = sk0.public.mul(C, x) * sk0.public.encrypt_with(y, rho) % sk0.public.n2
    Y = PK.encrypt_with(y, rho_y)
    X = Point.base_mul(x)
    kw = dict(pk0=sk0.public, pk1=PK, verifier_rp=rp0, C=C, D=D, Y=Y, X=X, level=LEVEL_112)
    proof = pi_aff_g.prove(_transcript(), pk0=sk0.public, pk1=sk1, verifier_rp=rp0.params, C=C, D=D, Y=Y, X=X, x=x,
                           y=y, rho=rho, rho_y=rho_y, level=LEVEL_112)
    b = PaillierBatch()
    pi_aff_g.verify(_transcript(), proof, batch=b, **kw)
    assert len(b) == 2 and b.holds()
    bad = with_field(proof, "w_y", proof.w_y * 3 % N)
    b = PaillierBatch()
    pi_aff_g.verify(_transcript(), bad, batch=b, **kw)  # deferred: no equation checked yet
    assert not b.holds()
    with pytest.raises(ProofError) as e:
        pi_aff_g.verify(_transcript(), bad, **kw)
    assert e.value.check == "pi_aff_g.equation_Y"


def test_pi_log_star_defers_its_equation_and_the_plain_check_names_it():
    rp0 = generate_ring_pedersen(fixture_paillier_key("112", 0))
    x = 424242
    C, rho = PK.encrypt(x)
    X = Point.base_mul(x)
    kw = dict(prover_pk=PK, verifier_rp=rp0, C=C, X=X, base=Point.generator(), level=LEVEL_112)
    proof = pi_log_star.prove(_transcript(), prover_pk=PK, verifier_rp=rp0.params, C=C, X=X, base=Point.generator(),
                              x=x, rho=rho, level=LEVEL_112, prover_sk=SK)
    bad = with_field(proof, "z2", proof.z2 * 5 % N)
    b = PaillierBatch()
    pi_log_star.verify(_transcript(), bad, batch=b, **kw)
    assert len(b) == 1 and not b.holds()
    with pytest.raises(ProofError) as e:
        pi_log_star.verify(_transcript(), bad, **kw)
    assert e.value.check == "pi_log_star.equation_enc"


# --- presigning: the batch of one peer's round-2 proofs ------------------------------------------------------
@pytest.fixture(scope="module")
def key33():
    aux = sim.aux_info(3, "112", paillier_keys={i: fixture_paillier_key("112", i) for i in (1, 2, 3)})
    return sim.keygen(parties=3, threshold=3, aux=aux)


def _abort(key, tamper) -> ProtocolAbort:
    with pytest.raises(ProtocolAbort) as e:
        key.presign([1, 2, 3], tamper=tamper)
    return e.value


@pytest.mark.parametrize(
    "field,check",
    [
        ("psi.w_y", "presign.pi_aff_g.equation_Y"),  # peer-key group (N_2), first of three
        ("psi_hat.w_y", "presign.pi_aff_g.equation_Y"),  # peer-key group, second
        ("psi_log.z2", "presign.pi_log_star.equation_enc"),  # peer-key group, third
        ("psi_hat.w", "presign.pi_aff_g.equation_D"),  # own-key group (the recipient's N)
    ],
)
def test_presign_one_bad_batched_proof_names_culprit_and_check(key33, field, check):
    head, _, attr = field.partition(".")
    tamper = tamper_message(2, 2, presign_mod.Round2Direct,
                            lambda m: with_field(m, field, getattr(getattr(m, head), attr) + 1))
    err = _abort(key33, tamper)
    assert (err.culprit, err.check) == (2, check)


def test_presign_two_bad_proofs_that_cancel_under_fixed_weights_are_named(key33):
    """Peer 2 multiplies psi's w_y by v and pi_log*'s z2 by v^-1 (both under N_2): with all-one weights the two
    errors cancel in the batch; with random ones the batch fails and the per-proof checks name the first."""
    n2 = fixture_paillier_key("112", 2).public.n
    v = sample_unit(n2)

    def change(m):
        m = with_field(m, "psi.w_y", m.psi.w_y * v % n2)
        return with_field(m, "psi_log.z2", m.psi_log.z2 * gmpy2.invert(v, n2) % n2)

    err = _abort(key33, tamper_message(2, 2, presign_mod.Round2Direct, change))
    assert (err.culprit, err.check) == (2, "presign.pi_aff_g.equation_Y")


def test_presign_honest_run_passes_on_the_batch(key33, monkeypatch):
    """The batch is what an honest run checks (no fallback): one batch per peer per party, every one holding."""
    seen = []
    holds = PaillierBatch.holds

    def recording(self):
        seen.append((len(self), holds(self)))
        return seen[-1][1]

    monkeypatch.setattr(PaillierBatch, "holds", recording)
    shares = key33.presign([1, 2, 3])
    assert len(shares) == 3
    assert seen == [(5, True)] * 6  # 3 parties x 2 peers; 2 D-equations (own N) + 3 under the peer's N


def test_a_value_the_batch_cannot_invert_is_a_failure_not_a_crash():
    eqs = [equation(), equation()]
    eqs[1][5] = SK.p  # D sharing a factor with N, with e < 0 below: no inverse mod N^2
    eqs[1][6] = -abs(eqs[1][6]) or -1
    assert not batch_of(eqs).holds()
