"""Master-key signatures are re-randomised too (CVE-2025-66017 class; protocols/ecdsa/sign.py).

The attack: a presignature's R is known before the digest is chosen (the coordinator pools and leases it). A plain
master-key signature (r, s) on m = m* + r t is, unchanged, a valid signature on m* under the child key Y + t G, so
an agent pinned to the master key with raw digests would sign for every child. Each test plays it and checks the
signature that comes back verifies under the master key, with r != x(R), and is no signature on m* for the child;
the plain construction is computed alongside to show the attack would have worked."""

from __future__ import annotations

import hashlib
import json
import time

import coincurve
import nacl.signing
import pytest

from mpc_ray import sim
from mpc_ray.coordinator.requests import combine_request
from mpc_ray.crypto import bip32
from mpc_ray.crypto.secp256k1 import Q, Point
from mpc_ray.errors import InvalidInput
from mpc_ray.node.hd import ecdsa_partial
from mpc_ray.node.policy import TxType
from mpc_ray.node.principals import Principal, PrincipalRegistry, RequestKind, sign_request
from mpc_ray.node.records import presignature_from_bytes, presignature_to_bytes
from mpc_ray.protocols.ecdsa.sign import combine, partial_sign
from tests.support.primes import fixture_paillier_key
from tests.support.committee import Committee
from tests.support.policies import BASE, base_policy

TARGET = hashlib.sha256(b"child m/0/7 pays 1000 USDC to the attacker").digest()  # m*, what the agent wants
PATH = "m/0/7"
ADMIN, AGENT = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()


def verifies(public_key: bytes, digest: bytes, r: int, s: int) -> bool:
    s = min(s, Q - s)
    der = coincurve.ecdsa.cdata_to_der(coincurve.ecdsa.deserialize_compact(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
    return coincurve.PublicKey(public_key).verify(der, digest, hasher=None)


def aimed_digest(R: Point, tweak: int) -> bytes:
    """m = m* + r t with r = x(R): the digest an attacker who knows R asks the master key to sign."""
    m = (int.from_bytes(TARGET, "big") + (R.x() % Q) * tweak) % Q
    return m.to_bytes(32, "big")


def assert_attack_fails(sig, R: Point, master: Point, child: Point, digest: bytes) -> None:
    assert verifies(master.to_bytes(), digest, sig.r, sig.s)  # a good master-key signature on what was asked
    assert sig.r != R.x() % Q  # with R' = rho R, not the presigned R
    assert not verifies(child.to_bytes(), TARGET, sig.r, sig.s)  # and no signature on m* for the child


@pytest.fixture(scope="module")
def aux():
    return sim.aux_info(3, "112", paillier_keys={i: fixture_paillier_key("112", i) for i in (1, 2, 3)})


# --- sim ------------------------------------------------------------------------------------------------------
def test_sim_master_signature_on_an_aimed_digest_is_not_a_child_signature(aux):
    key = sim.keygen(parties=3, threshold=2, aux=aux)
    pres = key.presign([1, 3])
    public = next(iter(pres.values())).public
    tweak = key.derive(PATH).tweak
    child = Point.from_bytes(key.child_public_key(PATH))
    digest = aimed_digest(public.R, tweak)
    # what the plain construction would have produced from the same presignature: the forgery works
    k = sum(p.secret_values()[0] for p in pres.values()) % Q
    chi = sum(p.secret_values()[1] for p in pres.values()) % Q
    plain_s = (k * int.from_bytes(digest, "big") + public.r * chi) % Q
    assert verifies(child.to_bytes(), TARGET, public.r, plain_s)
    sig = key.sign_with(pres, digest)
    assert_attack_fails(sig, public.R, key.public_point, child, digest)


def test_partial_sign_has_no_plain_partial(aux):
    """Without the re-randomised public values partial_sign refuses, before the presignature is consumed."""
    key = sim.keygen(parties=3, threshold=2, aux=aux)
    pres = key.presign([1, 2])
    for missing in (None, key.public_point):
        with pytest.raises(InvalidInput):
            partial_sign(pres[1], TARGET, missing)
    assert not pres[1].used
    sig = key.sign_with(pres, TARGET)
    assert verifies(key.public_key, TARGET, sig.r, sig.s) and sig.r != pres[1].public.r


# --- holders: node/hd.py (what every holder entry point signs with) and the policy path ----------------------------
def test_holder_partial_rerandomises_the_master_key(aux):
    """`ecdsa_partial` on stored records, as `ShareHolder.partial_sign` and `sign_request` call it, without a path."""
    key = sim.keygen(parties=3, threshold=2, aux=aux)
    pres = key.presign([2, 3])
    public = next(iter(pres.values())).public
    digest = aimed_digest(public.R, key.derive(PATH).tweak)
    recs = {i: presignature_from_bytes(presignature_to_bytes(p)) for i, p in pres.items()}
    partials = {i: ecdsa_partial(recs[i], key.shares[i], digest, None) for i in (2, 3)}
    sig = combine(public, key.public_point, digest, partials)
    assert_attack_fails(sig, public.R, key.public_point, Point.from_bytes(key.child_public_key(PATH)), digest)


@pytest.fixture(scope="module")
def committee(tmp_path_factory, aux):
    c = Committee(tmp_path_factory.mktemp("master"), aux=aux)
    # the committee's first admins (tests/support/authz.py) hand over to this module's admin and agent
    registry = PrincipalRegistry(principals=(Principal.from_signing_key("root", "admin", ADMIN),
                                             Principal.from_signing_key("bot", "agent", AGENT)), version=2)
    change = c.principals.creds.admin_request(RequestKind.SET_PRINCIPALS, body=registry.to_bytes())
    for h in c.holders.values():
        h.set_principals(change)
    params = {"key_id": "k1", "scheme": "ecdsa-secp256k1", "threshold": 2, "parties": [1, 2, 3]}
    approval = sign_request(ADMIN, principal_id="root", kind="create_key", format="json",
                            body=json.dumps(params).encode(), key_id="k1", now=time.time())
    out = next(iter(c.run("keygen", [1, 2, 3], {"key_id": "k1", "threshold": 2, "approval": approval}).values()))
    c.public_key = Point.from_bytes(out[1]["public_key"])
    c.chain_code = out[1]["chain_code"]
    # the agent is pinned to the master key (no derivation path) and may sign raw digests
    policy = base_policy(allowed_tx_types=(TxType.RAW_DIGEST,), asset_limits=())
    assert policy.derivation_paths is None
    req = sign_request(ADMIN, principal_id="root", kind="set_policy", format="json", body=policy.to_bytes(),
                       key_id="k1", now=time.time())
    for h in c.holders.values():
        h.set_policy(req)
    return c


def test_agent_pinned_to_the_master_key_cannot_sign_for_a_child(committee):
    c = committee
    (pub,) = c.presign("k1", [2, 3])  # a pooled presignature: R is public before the digest
    child = bip32.derive(c.public_key, c.chain_code, PATH)
    digest = aimed_digest(pub.R, child.tweak)
    req = sign_request(AGENT, principal_id="bot", kind="sign", format="raw_digest", body=digest, key_id="k1",
                       chain=BASE, now=time.time())
    answers = {i: c.holders[i].sign_request(req, pub.presignature_id) for i in (2, 3)}
    assert all(d == digest for _, d in answers.values())
    sig = combine_request(req, pub, c.public_key, answers)
    assert_attack_fails(sig, pub.R, c.public_key, Point.from_bytes(child.public_key_bytes), digest)
