"""HD (BIP32) signing: child keys of one threshold key sign with re-randomised presignatures (ECDSA) or tweaked
shares (BIP340). Child signatures verify and recover the child address; a tampered re-randomiser, a wrong or
equivocated path, an unsigned path change and a reused presignature all fail, with the culprit named."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import time

import coincurve
import nacl.signing
import pytest
from bip_utils import Bip32ChainCode, Bip32KeyData, Bip32Secp256k1
from eth_account import Account
from eth_keys import keys as eth_keys

from mpc_ray import sim
from mpc_ray.coordinator.frost_engine import FrostKey, combine as frost_combine
from mpc_ray.crypto import bip32
from mpc_ray.crypto.secp256k1 import Q, Point
from mpc_ray.errors import InvalidInput, PolicyDenied, ProtocolAbort
from mpc_ray.node.frost_records import public_package_from_bytes
from mpc_ray.node.principals import Principal, PrincipalRegistry, RequestKind, sign_request
from mpc_ray.node.records import key_from_bytes, presignature_from_bytes
from mpc_ray.node.store import AlreadyConsumed
from mpc_ray.protocols.ecdsa.presign import PresignatureUsed
from mpc_ray.protocols.ecdsa.sign import (
    Partial,
    SignParty,
    child_sigma,
    combine,
    partial_sign,
    rerandomize_for,
)
from mpc_ray.protocols.frost import SUITES, DkgParty, public_key_bytes
from mpc_ray.protocols.frost.messages import DkgEchoMsg
from mpc_ray.protocols.wire import decode, encode
from mpc_ray.sim.router import run_parties
from tests.support.ecdsa import tamper_message
from tests.support.primes import fixture_paillier_key
from tests.support.policies import ALICE, BASE, base_policy, usdc_transfer
from tests.support.committee import Committee

DIGEST = hashlib.sha256(b"agent 7 pays 1 USDC").digest()
PATHS = ["m", "m/0", "m/0/7", "m/44/60/0/0/3"]


def eth_address(public_key: bytes) -> str:
    return eth_keys.PublicKey(coincurve.PublicKey(public_key).format(compressed=False)[1:]).to_checksum_address()


def recovered_address(sig, digest: bytes) -> str:
    return Account._recover_hash(digest, vrs=(27 + sig.recovery_id, sig.r, sig.s))


@pytest.fixture(scope="module")
def aux():
    return sim.aux_info(3, "112", paillier_keys={i: fixture_paillier_key("112", i) for i in (1, 2, 3)})


@pytest.fixture(scope="module")
def key(aux):
    return sim.keygen(parties=3, threshold=2, aux=aux)


# --- sim: ECDSA ------------------------------------------------------------------------------------------
def test_chain_code_is_joint_and_public(key, aux):
    assert len(key.chain_code) == 32
    assert {s.chain_code for s in key.shares.values()} == {key.chain_code}  # every party holds the same one
    assert key.info().chain_code == key.chain_code
    other = sim.keygen(parties=3, threshold=2, aux=aux)
    assert other.chain_code != key.chain_code


@pytest.mark.parametrize("path", PATHS)
def test_child_signatures_verify_and_recover_the_child_address(key, path):
    child_pk = key.child_public_key(path)
    ref = Bip32Secp256k1.FromPublicKey(key.public_key, Bip32KeyData(chain_code=Bip32ChainCode(key.chain_code)))
    assert child_pk == ref.DerivePath(path).PublicKey().RawCompressed().ToBytes()
    sig = key.sign(DIGEST, signers=[1, 3], path=path)
    assert coincurve.PublicKey(child_pk).verify(sig.der(), DIGEST, hasher=None)
    assert recovered_address(sig, DIGEST) == eth_address(child_pk)
    if path != "m":
        assert recovered_address(sig, DIGEST) != eth_address(key.public_key)


def test_every_agent_gets_its_own_address(key):
    addrs = {eth_address(key.child_public_key(f"m/0/{i}")) for i in range(8)}
    assert len(addrs) == 8 and eth_address(key.public_key) not in addrs


def test_rerandomisation_is_the_groth_shoup_construction(key):
    """R' = rho R with rho bound to the request: changing the digest or the path changes the nonce."""
    pres = key.presign([1, 2])
    public = next(iter(pres.values())).public
    t7, t8 = key.derive("m/0/7").tweak, key.derive("m/0/8").tweak
    a = rerandomize_for(public, key.public_point, t7, DIGEST)
    assert a.R == public.R * a.rho and a.public_key == Point.from_bytes(key.child_public_key("m/0/7"))
    other_digest = rerandomize_for(public, key.public_point, t7, hashlib.sha256(b"x").digest())
    other_path = rerandomize_for(public, key.public_point, t8, DIGEST)
    assert len({a.rho, other_digest.rho, other_path.rho}) == 3
    assert len({a.R, other_digest.R, other_path.R, public.R}) == 4


def test_tampered_rho_gives_no_signature_and_names_the_party(key):
    pres = key.presign([1, 3])
    public = next(iter(pres.values())).public
    tweak = key.derive("m/0/7").tweak
    child = rerandomize_for(public, key.public_point, tweak, DIGEST)
    partials = {1: partial_sign(pres[1], DIGEST, child)}
    k, chi = pres[3].take()
    forged = dataclasses.replace(child, rho=(child.rho + 1) % Q)  # party 3 uses a rho of its own choosing
    partials[3] = child_sigma(k, chi, int.from_bytes(DIGEST, "big") % Q, forged)
    with pytest.raises(ProtocolAbort) as e:
        combine(public, key.public_point, DIGEST, partials, child)
    assert (e.value.culprit, e.value.check) == (3, "sign.partial_signature")


def test_signer_skipping_the_rerandomisation_is_named(key):
    pres = key.presign([2, 3])
    public = next(iter(pres.values())).public
    child = rerandomize_for(public, key.public_point, key.derive("m/5").tweak, DIGEST)
    k, chi = pres[3].take()
    plain = (k * int.from_bytes(DIGEST, "big") + public.r * chi) % Q  # 3: a plain, not re-randomised, partial
    partials = {2: partial_sign(pres[2], DIGEST, child), 3: plain}
    with pytest.raises(ProtocolAbort) as e:
        combine(public, key.public_point, DIGEST, partials, child)
    assert e.value.culprit == 3


def test_equivocated_path_gets_no_valid_signature(key):
    """A coordinator that hands two signers different paths gets no signature for either child."""
    pres = key.presign([1, 2])
    public = next(iter(pres.values())).public
    c7 = rerandomize_for(public, key.public_point, key.derive("m/0/7").tweak, DIGEST)
    c8 = rerandomize_for(public, key.public_point, key.derive("m/0/8").tweak, DIGEST)
    partials = {1: partial_sign(pres[1], DIGEST, c7), 2: partial_sign(pres[2], DIGEST, c8)}
    for child, culprit in ((c7, 2), (c8, 1)):
        with pytest.raises(ProtocolAbort) as e:
            combine(public, key.public_point, DIGEST, partials, child)
        assert e.value.culprit == culprit
    # nor does the sum verify under any key the coordinator could name: not the master, not either child
    s = sum(partials.values()) % Q
    for pk, R in ((key.public_point, public.R), (c7.public_key, c7.R), (c8.public_key, c8.R)):
        r = R.x() % Q
        der = coincurve.ecdsa.cdata_to_der(coincurve.ecdsa.deserialize_compact(
            r.to_bytes(32, "big") + min(s, Q - s).to_bytes(32, "big")))
        assert not coincurve.PublicKey(pk.to_bytes()).verify(der, DIGEST, hasher=None)


def test_one_presignature_cannot_serve_two_paths(key):
    pres = key.presign([1, 2])
    public = next(iter(pres.values())).public
    child = rerandomize_for(public, key.public_point, key.derive("m/1").tweak, DIGEST)
    for i in (1, 2):
        partial_sign(pres[i], DIGEST, child)
    other = rerandomize_for(public, key.public_point, key.derive("m/2").tweak, DIGEST)
    with pytest.raises(PresignatureUsed):
        partial_sign(pres[1], DIGEST, other)


def test_sign_party_state_machine_names_a_bad_partial(key):
    pres = key.presign([1, 3])
    tweak = key.derive("m/9").tweak
    machines = {i: SignParty(b"sid-hd", pres[i], key.public_point, DIGEST, tweak) for i in (1, 3)}
    hook = tamper_message(1, 3, Partial, lambda m: Partial((m.sigma + 1) % Q))
    with pytest.raises(ProtocolAbort) as e:
        run_parties(machines, hook)
    assert e.value.culprit == 3
    pres = key.presign([1, 3])
    machines = {i: SignParty(b"sid-hd2", pres[i], key.public_point, DIGEST, tweak) for i in (1, 3)}
    sig = run_parties(machines)[1]
    assert coincurve.PublicKey(key.child_public_key("m/9")).verify(sig.der(), DIGEST, hasher=None)


def test_bad_paths_refused_before_a_presignature_is_made(key):
    for bad in ("m/0'", "m/01", "0/1", "m/2147483648"):
        with pytest.raises(InvalidInput):
            key.sign(DIGEST, path=bad)


# --- sim: BIP340 -------------------------------------------------------------------------------------------
def test_bip340_child_signatures_verify():
    seen = set()
    for _ in range(3):
        fk = sim.keygen("schnorr-bip340", parties=3, threshold=2)
        seen.add(fk.public_package.group_key.has_odd_y())
        assert len(fk.chain_code) == 32 and fk.info().chain_code == fk.chain_code
        for path in ("m/0/7", "m/3"):
            child = fk.child_public_key(path)
            ref = Bip32Secp256k1.FromPublicKey(b"\x02" + fk.public_key, Bip32KeyData(
                chain_code=Bip32ChainCode(fk.chain_code))).DerivePath(path).PublicKey().RawCompressed().ToBytes()
            assert child == ref[1:]
            sig = fk.sign(b"taproot spend", signers=[1, 3], path=path)
            assert coincurve.PublicKeyXOnly(child).verify(sig.to_bytes(), b"taproot spend")
            assert not coincurve.PublicKeyXOnly(fk.public_key).verify(sig.to_bytes(), b"taproot spend")


def test_bip340_child_with_taptweak_and_named_tamper():
    from mpc_ray.protocols.frost import SignParty as FrostSign

    fk = sim.keygen("schnorr-bip340", parties=3, threshold=2)
    tweak = fk.derive("m/1/2").tweak
    suite, pub = fk.suite, fk.public_package
    out_key = public_key_bytes(suite, pub.group_key, b"", tweak)
    # BIP341 output key of the child's x-only key, computed independently with coincurve
    from mpc_ray.crypto.frost_suites import tagged_hash

    t = tagged_hash("TapTweak", fk.child_public_key("m/1/2"))
    expect = coincurve.PublicKey(b"\x02" + fk.child_public_key("m/1/2")).add(t).format()[1:]
    assert out_key == expect
    parties = {i: FrostSign(suite, fk.outputs[i].key_package, pub, b"m", b"s1", [1, 2], tap_tweak=b"", hd_tweak=tweak)
               for i in (1, 2)}
    sig = run_parties(parties)[1].to_bytes()
    assert coincurve.PublicKeyXOnly(out_key).verify(sig, b"m")
    # a signer given another path is named (its signing context differs)
    other = fk.derive("m/1/3").tweak
    parties = {1: FrostSign(suite, fk.outputs[1].key_package, pub, b"m", b"s2", [1, 2], hd_tweak=tweak),
               2: FrostSign(suite, fk.outputs[2].key_package, pub, b"m", b"s2", [1, 2], hd_tweak=other)}
    with pytest.raises(ProtocolAbort) as e:
        run_parties(parties)
    assert e.value.check == "frost.sign.message"


def test_frost_dkg_chain_code_reveal_is_checked():
    ids = [1, 2, 3]

    def wrong_seed(env):
        if env.round == 2 and env.sender == 2 and env.recipient is None:
            msg = decode(env.payload, DkgEchoMsg)
            return dataclasses.replace(env, payload=encode(DkgEchoMsg(msg.echo, bytes(32))))
        return env

    machines = {i: DkgParty(SUITES["schnorr-bip340"], b"dkg-hd", i, ids, 2) for i in ids}
    with pytest.raises(ProtocolAbort) as e:
        run_parties(machines, wrong_seed)
    assert (e.value.culprit, e.value.check) == (2, "frost.dkg.chain_code")


def test_ed25519_has_no_derivation():
    ed = sim.keygen("eddsa-ed25519", parties=3, threshold=2)
    with pytest.raises(InvalidInput):
        ed.derive("m/0")
    assert ed.info().chain_code == b""


# --- in-process holders (as the coordinator drives them) ---------------------------------------------------
ADMIN, AGENT = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()


@pytest.fixture(scope="module")
def committee(tmp_path_factory, aux):
    c = Committee(tmp_path_factory.mktemp("hd"), aux=aux)
    out = next(iter(c.run("keygen", [1, 2, 3], c.principals.keygen_params("k1", 2, [1, 2, 3])).values()))
    assert len({r["chain_code"] for r in out.values()}) == 1
    c.public_key = Point.from_bytes(out[1]["public_key"])
    c.chain_code = out[1]["chain_code"]
    # the committee's admins add this module's admin and agent (a higher registry version, as a client would)
    registry = PrincipalRegistry(principals=c.principals.creds.principals() + (
        Principal.from_signing_key("root", "admin", ADMIN), Principal.from_signing_key("bot", "agent", AGENT)),
        version=2)
    change = c.principals.creds.admin_request(RequestKind.SET_PRINCIPALS, body=registry.to_bytes())
    policy = base_policy().model_copy(update={"derivation_paths": ("m/0/7",)})
    req = sign_request(ADMIN, principal_id="root", kind="set_policy", format="json", body=policy.to_bytes(),
                       key_id="k1", now=time.time())
    for h in c.holders.values():
        h.set_principals(change)
        h.set_policy(req)
    c.principals.allow_operator(c.holders.values(), "k1")  # the operator's raw batches, any path
    return c


def test_holders_sign_for_a_child_and_store_the_chain_code(committee):
    c = committee
    assert c.holders[2].key("k1").chain_code == c.chain_code
    assert key_from_bytes(c.holders[2].store.get("key-k1")).chain_code == c.chain_code
    pubs = c.presign("k1", [1, 3], 2)
    child = bip32.derive(c.public_key, c.chain_code, "m/0/7")
    request = c.principals.raw("k1", [DIGEST, DIGEST], path="m/0/7")
    items = [(n, p.presignature_id) for n, p in enumerate(pubs)]
    partials = {i: c.holders[i].partial_sign(request, items) for i in (1, 3)}
    for n, pub in enumerate(pubs):
        rr = rerandomize_for(pub, c.public_key, child.tweak, DIGEST)
        sig = combine(pub, c.public_key, DIGEST, {i: partials[i][n] for i in (1, 3)}, rr)
        assert recovered_address(sig, DIGEST) == eth_address(child.public_key_bytes)
    # the same presignature for another path: refused, consumed for good
    with pytest.raises(AlreadyConsumed):
        c.holders[1].partial_sign(c.principals.raw("k1", [DIGEST], path="m/0/8"), [(0, pubs[0].presignature_id)])


def test_holder_computes_rho_itself(committee):
    """A coordinator that combines for a rho (or path) other than the holders' gets no valid signature."""
    c = committee
    (pub,) = c.presign("k1", [1, 2])
    request = c.principals.raw("k1", [DIGEST], path="m/0/7")
    partials = {i: c.holders[i].partial_sign(request, [(0, pub.presignature_id)])[0] for i in (1, 2)}
    wrong = rerandomize_for(pub, c.public_key, bip32.derive(c.public_key, c.chain_code, "m/0/8").tweak, DIGEST)
    with pytest.raises(ProtocolAbort):
        combine(pub, c.public_key, DIGEST, partials, wrong)


def test_bad_path_consumes_nothing(committee):
    c = committee
    (pub,) = c.presign("k1", [2, 3])
    before = c.holders[2].presignature_count("k1")
    for bad in ("m/0'", "m/1/", 7):  # the path is the operator's signed choice: no request names a bad one
        with pytest.raises(InvalidInput):
            c.principals.raw("k1", [DIGEST], path=bad)
    good = c.principals.raw("k1", [DIGEST], path="m/0/7")
    for bad in ("m/0'", "m/1/", "m/0/8"):  # a relay rewrites the path of a signed request
        forged = good.model_copy(update={"derivation_path": bad})
        if bad != "m/0/8":
            with pytest.raises(InvalidInput):  # as it reaches a holder actor (pickled): validated again
                pickle.loads(pickle.dumps(forged))
        with pytest.raises(PolicyDenied) as e:  # in process: the operator's signature does not cover it
            c.holders[2].partial_sign(forged, [(0, pub.presignature_id)])
        assert e.value.rule.startswith("auth.")
    assert c.holders[2].presignature_count("k1") == before
    rec = presignature_from_bytes(c.holders[2].store.get(f"presig-k1.{pub.presignature_id.hex()}"))
    assert rec.R == pub.R and rec.signers == [2, 3]


def agent_request(path: str, body: bytes | None = None):
    return sign_request(AGENT, principal_id="bot", kind="sign", format="evm_tx",
                        body=body or usdc_transfer(to=ALICE, amount=1_000), key_id="k1", chain=BASE,
                        now=time.time(), derivation_path=path)


def test_policy_pins_the_path_and_the_path_is_signed(committee):
    from mpc_ray.node.policy import decode_evm_transaction

    c = committee
    (pub,) = c.presign("k1", [1, 2])
    before = {i: c.holders[i].presignature_count("k1") for i in (1, 2)}
    for path, rule in (("m/0/8", "policy.derivation_path"), ("", "policy.derivation_path")):
        req = agent_request(path)
        for i in (1, 2):
            with pytest.raises(PolicyDenied) as e:
                c.holders[i].sign_request(req, pub.presignature_id)
            assert e.value.rule == rule
    # a relay that rewrites the path breaks the agent's signature
    forged = agent_request("m/0/7").model_copy(update={"derivation_path": "m/0/8"})
    with pytest.raises(PolicyDenied) as e:
        c.holders[1].sign_request(forged, pub.presignature_id)
    assert e.value.rule == "auth.bad_signature"
    assert {i: c.holders[i].presignature_count("k1") for i in (1, 2)} == before  # nothing consumed
    body = usdc_transfer(to=ALICE, amount=2_000)
    req = agent_request("m/0/7", body)
    partials = {i: c.holders[i].sign_request(req, pub.presignature_id)[0] for i in (1, 2)}
    digest = decode_evm_transaction(body).digest
    child = bip32.derive(c.public_key, c.chain_code, "m/0/7")
    sig = combine(pub, c.public_key, digest, partials, rerandomize_for(pub, c.public_key, child.tweak, digest))
    assert recovered_address(sig, digest) == eth_address(child.public_key_bytes)


def test_frost_holders_sign_for_a_child(committee):
    c = committee
    out = next(iter(c.run("frost-dkg", [1, 2, 3], c.principals.keygen_params("f1", 2, [1, 2, 3],
                                                                          "schnorr-bip340")).values()))
    c.principals.allow_operator(c.holders.values(), "f1")
    pub = public_package_from_bytes(out[1]["public_package"])
    assert out[1]["chain_code"] == pub.chain_code and len(pub.chain_code) == 32
    suite = SUITES["schnorr-bip340"]
    key = FrostKey("f1", "schnorr-bip340", suite, pub, out[1]["public_key"], 2, [1, 2, 3])
    commits = {i: c.principals.commit(c.holders[i], "f1", 1)[0] for i in (1, 3)}
    clist = b"".join(commits[i][1] for i in (1, 3))
    request = c.principals.raw("f1", [b"spend"], path="m/0/7")
    answers = {i: c.holders[i].frost_sign(request, [(0, commits[i][0], clist)])[0] for i in (1, 3)}
    hd_tweak = key.hd_tweak("m/0/7")
    sig, liars = frost_combine(key, b"spend", clist, {i: a[0] for i, a in answers.items()},
                               {i: a[1] for i, a in answers.items()}, None, hd_tweak)
    child = bip32.derive_bip340(out[1]["public_key"], pub.chain_code, "m/0/7").xonly
    assert not liars and coincurve.PublicKeyXOnly(child).verify(sig, b"spend")
    # a hardened path is refused before the nonce is spent: the same nonce then signs for a valid path
    commits = {i: c.principals.commit(c.holders[i], "f1", 1)[0] for i in (1, 3)}
    clist = b"".join(commits[i][1] for i in (1, 3))

    before = c.holders[1].frost_signer.nonce_count("f1")
    with pytest.raises(InvalidInput, match="derivation_path"):
        c.principals.raw("f1", [b"x"], path="m/0'")
    request = c.principals.raw("f1", [b"x"], path="m/1")
    with pytest.raises(PolicyDenied) as e:  # a relay's hardened path breaks the operator's signature
        c.holders[1].frost_sign(request.model_copy(update={"derivation_path": "m/0'"}), [(0, commits[1][0], clist)])
    assert e.value.rule.startswith("auth.")
    assert c.holders[1].frost_signer.nonce_count("f1") == before
    answers = {i: c.holders[i].frost_sign(request, [(0, commits[i][0], clist)])[0] for i in (1, 3)}
    sig, _ = frost_combine(key, b"x", clist, {i: a[0] for i, a in answers.items()},
                           {i: a[1] for i, a in answers.items()}, None, key.hd_tweak("m/1"))
    assert coincurve.PublicKeyXOnly(bip32.derive_bip340(out[1]["public_key"], pub.chain_code, "m/1").xonly).verify(
        sig, b"x")


def test_request_and_policy_paths_are_canonical_non_hardened():
    from mpc_ray.node.policy import Policy, PolicyConfigError

    for bad in ("m/07", "m/0'", "m/2147483648", "0/7", "m/"):
        with pytest.raises(InvalidInput):
            agent_request(bad)
    with_path, without = agent_request("m/0/7"), agent_request("")
    assert b"m/0/7" in with_path.signing_bytes() and b"m/0/7" not in without.signing_bytes()
    ok = Policy.from_bytes(base_policy().model_copy(update={"derivation_paths": ("m/0/7", "m")}).to_bytes())
    assert ok.derivation_paths == ("m/0/7", "m")
    for bad in (("m/0'",), ("m/1", "m/1"), ("x",)):
        raw = base_policy().model_dump(mode="json") | {"derivation_paths": list(bad)}
        with pytest.raises(PolicyConfigError):
            Policy.from_bytes(__import__("json").dumps(raw).encode())


def test_records_from_before_hd_still_load(key):
    """Key shares, presignatures and FROST packages stored before HD support decode (no chain code, no R); such a
    presignature (no stored R) is refused: every signature is re-randomised, the master key's too."""
    from mpc_ray.node import frost_records as fr
    from mpc_ray.node import records as rc
    from mpc_ray.node.hd import ecdsa_partial

    share = key.shares[1]
    old_key = encode(rc._KeyRecordV1(1, share.threshold, list(share.parties), share.x, share.public_key,
                                     [rc._PublicShare(j, p) for j, p in sorted(share.public_shares.items())]))
    assert rc.key_from_bytes(old_key).chain_code == b""
    pres = key.presign([1, 2])
    k, chi = pres[1].secret_values()
    old_pre = rc.presignature_from_bytes(encode(rc._PresignatureRecordV1(1, pres[1].public.presignature_id,
                                                                         pres[1].public.r, k, chi)))
    assert old_pre.R is None
    for tweak in (5, 0, None):
        with pytest.raises(InvalidInput, match="predates"):
            ecdsa_partial(old_pre, share, DIGEST, tweak)
    fk = sim.keygen("schnorr-bip340", parties=3, threshold=2)
    kp, g = fk.outputs[1].key_package, fk.suite.group
    old_kp = encode(fr._KeyPackageRecordV1(kp.suite_key, 1, g.serialize_scalar(kp.signing_share),
                                           g.serialize_element(kp.verifying_share), g.serialize_element(kp.group_key),
                                           kp.threshold))
    assert fr.key_package_from_bytes(old_kp).chain_code == b""
    assert fr.key_package_from_bytes(fr.key_package_to_bytes(kp)).chain_code == fk.chain_code
    assert fr.public_package_from_bytes(fr.public_package_to_bytes(fk.public_package)).chain_code == fk.chain_code


def test_coordinator_derive_info_and_tweak(key):
    """The coordinator's public side (coordinator/hd.py): child infos as `mpc.derive` returns them."""
    from mpc_ray.coordinator.ecdsa_engine import EcdsaKey
    from mpc_ray.coordinator.hd import derive_info, ecdsa_tweak
    from mpc_ray.types import ChildKeyInfo

    fk = sim.keygen("schnorr-bip340", parties=3, threshold=2)
    ed = sim.keygen("eddsa-ed25519", parties=3, threshold=2)
    frost = {
        "t1": FrostKey("t1", "schnorr-bip340", fk.suite, fk.public_package, fk.public_key, 2, [1, 2, 3]),
        "e1": FrostKey("e1", "eddsa-ed25519", ed.suite, ed.public_package, ed.public_key, 2, [1, 2, 3]),
    }
    ecdsa = EcdsaKey("k1", "ecdsa-secp256k1", key.public_point, 2, [1, 2, 3], key.chain_code)
    keys = {"k1": ecdsa}

    def derive(key_id, path):
        return derive_info(key_id, keys.get(key_id), frost.get(key_id), path)

    info = ChildKeyInfo(**derive("k1", "m/0/7"))
    ref = Bip32Secp256k1.FromPublicKey(key.public_key, Bip32KeyData(chain_code=Bip32ChainCode(key.chain_code)))
    assert info.public_key == key.child_public_key("m/0/7") and info.depth == 2
    assert info.xpub == ref.DerivePath("m/0/7").PublicKey().ToExtended()
    assert ecdsa_tweak(ecdsa, "m/0/7") == ("m/0/7", key.derive("m/0/7").tweak)
    tinfo = ChildKeyInfo(**derive("t1", "m/4"))
    assert tinfo.public_key == fk.child_public_key("m/4") and frost["t1"].hd_tweak("m/4") == fk.derive("m/4").tweak
    for key_id, path in (("e1", "m/1"), ("nope", "m/1"), ("k1", "m/1'"), ("k1", 5)):
        with pytest.raises(InvalidInput):
            derive(key_id, path)
    with pytest.raises(InvalidInput):
        ecdsa_tweak(EcdsaKey("k0", "ecdsa-secp256k1", key.public_point, 2, [1, 2, 3]), "m/1")  # no chain code
