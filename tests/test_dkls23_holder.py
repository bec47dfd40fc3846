"""DKLs23 keys on share holders, driven in one process as the coordinator drives them: a key of the Feldman DKG made
for DKLs23 (no aux info), its setup kept in the encrypted store across a restart, presignatures stored and consumed
like CGGMP21's, the online shares of operator-authorized requests combined and checked with coincurve and
python-ecdsa; a used presignature and a presignature of the other protocol refused; a tampered message named; and a
DKLs23 and a CGGMP21 signature from the same DKG shares under one public key."""

from __future__ import annotations

import hashlib
import pickle
import time

import coincurve
import ecdsa
import pytest
from ecdsa.util import sigdecode_string

from mpc_ray.client.credentials import RAW_CHAIN
from mpc_ray.coordinator.sessions import new_sid
from mpc_ray.crypto import bip32
from mpc_ray.crypto.secp256k1 import Point
from mpc_ray.errors import HolderNotReady, InvalidInput, PolicyDenied, ProtocolAbort, ProtocolMismatch
from mpc_ray.node.dkls23_holder import extension_guard_id, presignature_id, setup_entry
from mpc_ray.node.records import DKLs23SetupRecord, presignature_protocol
from mpc_ray.node.store import AlreadyConsumed
from mpc_ray.protocols.base import Outbox
from mpc_ray.protocols.dkls23.setup import SetupOutput
from mpc_ray.crypto.ot.kos import ExtensionMessage
from mpc_ray.protocols.dkls23.rvole import RVOLERequest
from mpc_ray.protocols.dkls23.sign import (
    MulRequest,
    MulResponse,
    OnlineShare,
    PresignaturePublic,
    combine,
    rerandomize_for,
)
from mpc_ray.protocols.ecdsa.presign import PresignaturePublic as CggmpPublic
from mpc_ray.protocols.wire import decode
from mpc_ray.requests.signed import sign_request
from mpc_ray.protocols.ecdsa import aux_info
from mpc_ray.sim import SimEcdsaKey
from tests.lifecycle_helpers import Committee, FixturePrimes

DIGEST = hashlib.sha256(b"pay 5 USDC").digest()


@pytest.fixture(scope="module")
def committee(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aux_info, "generate_keypair", FixturePrimes())  # for the CGGMP21 key beside it, later
        yield _committee(tmp_path_factory.mktemp("dkls23-holders"))


def _committee(root):
    c = Committee(root)
    out = c.run("keygen", [1, 2, 3], c.principals.keygen_params("d1", 2, [1, 2, 3], protocol="dkls23"))
    # no aux info: DKLs23 needs no Paillier keys
    assert not any(h.has_aux() for h in c.holders.values())
    results = [next(iter(r.values())) for r in out.values()][0]
    assert all(r["protocol"] == "dkls23" for r in out[next(iter(out))].values())
    c.public_key = Point.from_bytes(results["public_key"])
    c.principals.allow_operator(c.holders.values(), "d1")
    setup = c.run("dkls23-setup", [1, 2, 3], {"key_id": "d1"})
    assert {r["epoch"] for r in next(iter(setup.values())).values()} == {0}
    return c


def presign(c, signers, count, key_id="d1"):
    out = c.run("dkls23-presign", signers, {"key_id": key_id}, count=count)
    return [decode(next(iter(r.values())), PresignaturePublic) for r in out.values()]


def verify_both(public_key: Point, digest: bytes, sig) -> None:
    assert coincurve.PublicKey(public_key.to_bytes()).verify(sig.der(), digest, hasher=None)
    vk = ecdsa.VerifyingKey.from_string(public_key.to_bytes(), curve=ecdsa.SECP256k1)
    assert vk.verify_digest(sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big"), digest, sigdecode=sigdecode_string)


def raw_sign(c, signers, pubs, digests, path=None):
    """Each signer's online shares for an operator's batch (message i with presignature i), combined."""
    request = c.principals.raw("d1", digests, path=path)
    answers = {i: c.holders[i].partial_sign(request, [(k, p.presignature_id) for k, p in enumerate(pubs)])
               for i in signers}
    assert all(isinstance(s, OnlineShare) for a in answers.values() for s in a)
    tweak = bip32.derive(c.public_key, c.holders[1].key("d1").chain_code, path).tweak if path else 0
    sigs = []
    for k, (pub, digest) in enumerate(zip(pubs, digests)):
        child = rerandomize_for(pub, c.public_key, tweak, digest)
        sigs.append(combine(pub, c.public_key, digest, {i: a[k] for i, a in answers.items()}, child))
        verify_both(child.public_key, digest, sigs[-1])
    return sigs


def test_key_protocol_is_recorded_and_public(committee):
    c = committee
    for h in c.holders.values():
        view = h.key_views()["d1"]
        assert view["protocol"] == "dkls23" and view["scheme"] == "ecdsa-secp256k1"
        assert h.dkls23.has_setup("d1")
        rec = decode(h.store.get(setup_entry("d1")), DKLs23SetupRecord)
        assert "redacted" in repr(rec) and rec.epoch == 0 and rec.parties == [1, 2, 3]
        with pytest.raises(TypeError):
            pickle.dumps(h.dkls23.setup("d1"))
        assert "redacted" in repr(h.dkls23.setup("d1"))


def test_setup_serialisation_round_trips():
    from mpc_ray.protocols.dkls23.setup import DKLs23Setup
    from mpc_ray.sim.router import run_parties

    out = run_parties({p: DKLs23Setup(b"sid", p, (1, 2, 3)) for p in (1, 2, 3)})
    for p, s in out.items():
        back = SetupOutput.from_secret_bytes(s.to_secret_bytes())
        assert back.to_secret_bytes() == s.to_secret_bytes() and set(back.pairs) == set(s.pairs)
        assert back.zero_seeds.share(b"x", (1, 2, 3)) == s.zero_seeds.share(b"x", (1, 2, 3))
        data = s.to_secret_bytes()
        for bad in (data[:-1], data + b"\x00", b"", data[:4] + b"\x00" * 10):
            with pytest.raises(InvalidInput):
                SetupOutput.from_secret_bytes(bad)


def test_single_and_batch_sign_across_a_restart(committee):
    c = committee
    pubs = presign(c, [1, 3], 4)
    assert all(presignature_protocol(c.holders[1].store.get(f"presig-d1.{p.presignature_id.hex()}")) == "dkls23"
               for p in pubs)
    c.restart(3)  # setup, key share and presignatures come back from the encrypted store
    c.restart(1)
    raw_sign(c, (1, 3), pubs[:1], [DIGEST])  # one message
    digests = [hashlib.sha256(b"batch %d" % k).digest() for k in range(3)]
    raw_sign(c, (1, 3), pubs[1:], digests, path="m/0/7")  # a batch, for an HD child
    with pytest.raises(AlreadyConsumed):  # a used presignature is refused, after a restart too
        c.holders[1].partial_sign(c.principals.raw("d1", [DIGEST]), [(0, pubs[0].presignature_id)])
    c.restart(1)
    with pytest.raises(AlreadyConsumed):
        c.holders[1].partial_sign(c.principals.raw("d1", [DIGEST]), [(0, pubs[0].presignature_id)])
    # presigning after the restart: the reloaded setup still works
    (pub,) = presign(c, [1, 2], 1)
    raw_sign(c, (1, 2), [pub], [DIGEST])


def test_principal_request_sign_path(committee):
    """`sign_request` (one request, one presignature) and `sign_requests` (a batch) answer online shares too."""
    c = committee
    op_id, op_key = c.principals.creds.operator

    def request(digest):
        return sign_request(op_key, principal_id=op_id, kind="sign", format="raw_digest", body=digest, key_id="d1",
                            chain=RAW_CHAIN, now=time.time())

    pubs = presign(c, [2, 3], 3)
    reqs = [request(hashlib.sha256(b"one %d" % k).digest()) for k in range(3)]
    single = {i: c.holders[i].sign_request(reqs[0], pubs[0].presignature_id) for i in (2, 3)}
    many = {i: c.holders[i].sign_requests([(r, p.presignature_id) for r, p in zip(reqs[1:], pubs[1:])])
            for i in (2, 3)}
    for k, pub in enumerate(pubs):
        got = {i: (single[i] if k == 0 else many[i][k - 1]) for i in (2, 3)}
        digest = got[2][1]
        sig = combine(pub, c.public_key, digest, {i: share for i, (share, _) in got.items()})
        verify_both(c.public_key, digest, sig)


def test_replayed_session_id_refused_durably(committee):
    """A presigning session id reused after a restart would reuse KOS extension ids with the reloaded setup: the
    holder's ledger refuses it before round 1 leaves."""
    c = committee
    from mpc_ray.node.holder import BeginRequest

    sid = new_sid("dkls23-presign")
    reqs = [BeginRequest("dkls23-presign", sid, [1, 2], {"key_id": "d1"})]
    c.holders[1].begin(reqs, c.principals.grant(reqs))
    assert extension_guard_id(presignature_id(sid)) in c.holders[1].consumed_ids()
    c.restart(1)
    with pytest.raises(AlreadyConsumed):
        c.holders[1].begin(reqs, c.principals.grant(reqs))
    c.holders[2].drop_sessions([sid])


def test_protocols_never_mix(committee, tmp_path):
    """A DKLs23 key runs no CGGMP21 presigning and the reverse; a presignature of the other protocol that reached a
    key's vault is refused at signing (typed), never computed with."""
    c = committee
    from mpc_ray.node.holder import BeginRequest

    with pytest.raises(ProtocolMismatch):
        reqs = [BeginRequest("presign", new_sid("presign"), [1, 2], {"key_id": "d1"})]
        c.holders[1].begin(reqs, c.principals.grant(reqs))
    c.run("aux", [1, 2, 3], {"level": "112"})
    out = c.run("keygen", [1, 2, 3], c.principals.keygen_params("c1", 2, [1, 2, 3]))
    assert next(iter(out[next(iter(out))].values()))["protocol"] == "cggmp21"
    c.principals.allow_operator(c.holders.values(), "c1")
    with pytest.raises(ProtocolMismatch):
        c.run("dkls23-setup", [1, 2, 3], {"key_id": "c1"})
    with pytest.raises(ProtocolMismatch):
        reqs = [BeginRequest("dkls23-presign", new_sid("dkls23-presign"), [1, 2], {"key_id": "c1"})]
        c.holders[1].begin(reqs, c.principals.grant(reqs))
    # a CGGMP21 presignature planted under the DKLs23 key, and a DKLs23 one under the CGGMP21 key
    out = c.run("presign", [1, 2], {"key_id": "c1"})
    cpub = decode(next(iter(next(iter(out.values())).values())), CggmpPublic)
    (dpub,) = presign(c, [1, 2], 1)
    h = c.holders[1]
    cdata = h.store.get(f"presig-c1.{cpub.presignature_id.hex()}")
    ddata = h.store.get(f"presig-d1.{dpub.presignature_id.hex()}")
    assert presignature_protocol(cdata) == "cggmp21" and presignature_protocol(ddata) == "dkls23"
    fake_c, fake_d = hashlib.sha256(b"planted c").digest(), hashlib.sha256(b"planted d").digest()
    h.vault.put("presig-d1", fake_c, cdata)
    h.vault.put("presig-c1", fake_d, ddata)
    with pytest.raises(ProtocolMismatch):
        h.partial_sign(c.principals.raw("d1", [DIGEST]), [(0, fake_c)])
    with pytest.raises(ProtocolMismatch):
        h.partial_sign(c.principals.raw("c1", [DIGEST]), [(0, fake_d)])


def _tampering(c, party: int, round_no: int, change):
    """Wrap `party`'s dkls23-presign part so that its machines pass round `round_no`'s outbox through `change`."""
    part = c.holders[party].protocols["dkls23-presign"]

    class Tampering:
        PROTOCOLS = part.PROTOCOLS

        def machine(self, req):
            m = part.machine(req)
            honest = getattr(m, f"round{round_no}")
            setattr(m, f"round{round_no}", lambda *inbox: change(honest(*inbox)))
            return m

        def finish(self, session):
            return part.finish(session)

    return part, Tampering()


def _presign_tampered(c, party, round_no, change, signers):
    part, bad = _tampering(c, party, round_no, change)
    c.holders[party].sessions_runner.protocols["dkls23-presign"] = bad
    try:
        with pytest.raises(ProtocolAbort) as e:
            presign(c, signers, 1)
    finally:
        c.holders[party].sessions_runner.protocols["dkls23-presign"] = part
        for i in signers:
            c.holders[i].drop_sessions(list(c.holders[i].sessions))
    return e.value


def test_bad_message_through_the_holder_names_the_culprit(committee):
    """Party 2's holder sends a Gamma^u that does not match its nonce: party 1's holder aborts its session with
    ``dkls23.sign.gamma_u`` naming party 2, and stores no presignature."""
    c = committee
    before = c.holders[1].presignature_count("d1")

    def bad_gamma(out):
        return Outbox(broadcast=out.broadcast, direct={
            j: MulResponse(r.response, r.gamma_u + Point.base_mul(1), r.gamma_v, r.psi) for j, r in out.direct.items()})

    err = _presign_tampered(c, 2, 2, bad_gamma, [1, 2])
    assert (err.check, err.culprit, err.reporter) == ("dkls23.sign.gamma_u", 2, 1)
    assert c.holders[1].presignature_count("d1") == before


def test_failed_ot_check_retires_the_pair_durably(committee):
    """Party 3's holder sends an OT-extension message that fails the KOS check: party 1 names it
    (``dkls23.ote.kos_check``) and retires its pair with 3 in the stored setup, so after a restart the key presigns
    without that pair until a new setup, which is then allowed for the same epoch."""
    c = committee

    def bad_kos(out):
        def flip(req):
            ext = req.request.extension
            t = bytes([ext.t_tilde[0] ^ 1]) + ext.t_tilde[1:]
            return MulRequest(RVOLERequest(ExtensionMessage(ext.u, ext.x_tilde, t)))

        return Outbox(broadcast=out.broadcast, direct={j: flip(r) for j, r in out.direct.items()})

    err = _presign_tampered(c, 3, 1, bad_kos, [1, 3])
    assert (err.check, err.culprit, err.reporter) == ("dkls23.ote.kos_check", 3, 1)
    assert decode(c.holders[1].store.get(setup_entry("d1")), DKLs23SetupRecord).retired == [3]
    c.restart(1)
    with pytest.raises(InvalidInput):  # no pair with 3 any more
        presign(c, [1, 3], 1)
    for i in (1, 3):
        c.holders[i].drop_sessions(list(c.holders[i].sessions))
    presign(c, [1, 2], 1)  # the other pairs still work
    with pytest.raises(InvalidInput):  # party 2 has no retired pair: it keeps its setup for this epoch
        c.run("dkls23-setup", [1, 2, 3], {"key_id": "d1"})
    for i in (1, 2, 3):
        c.holders[i].drop_sessions(list(c.holders[i].sessions))


def test_same_dkg_output_signs_with_both_protocols(committee):
    """The DKLs23 key's DKG shares, used with CGGMP21 (and the committee's aux info), sign the same digest to a
    signature that verifies under the same public key as the holders' DKLs23 signature."""
    c = committee
    if not c.holders[1].has_aux():
        c.run("aux", [1, 2, 3], {"level": "112"})
    shares = {i: h.key("d1") for i, h in c.holders.items()}
    cggmp = SimEcdsaKey(shares, {i: h.aux() for i, h in c.holders.items()}).sign(DIGEST, signers=[1, 2])
    verify_both(c.public_key, DIGEST, cggmp)
    (pub,) = presign(c, [1, 2], 1)
    (dkls,) = raw_sign(c, (1, 2), [pub], [DIGEST])
    assert (cggmp.r, cggmp.s) != (dkls.r, dkls.s)


def test_no_setup_no_presigning(committee):
    c = committee
    params = {**c.principals.keygen_params("d2", 2, [1, 2, 3]), "protocol": "dkls23"}
    with pytest.raises(PolicyDenied) as e:  # the approval names no protocol (a CGGMP21 key): refused
        c.run("keygen", [1, 2, 3], params)
    assert e.value.rule == "admin.params"
    c.run("keygen", [1, 2, 3], c.principals.keygen_params("d2", 2, [1, 2, 3], protocol="dkls23"))
    with pytest.raises(HolderNotReady):
        presign(c, [1, 2], 1, key_id="d2")


def test_refresh_needs_a_new_setup_and_keeps_the_public_key(committee):
    """A refresh (new shares, same key) destroys the pooled presignatures and moves the epoch: the old setup is refused
    (HolderNotReady) until a setup for the new epoch, after which the new shares sign under the same public key."""
    c = committee
    if not c.holders[1].has_aux():  # a refresh re-randomises with the committee's Paillier keys
        c.run("aux", [1, 2, 3], {"level": "112"})
    presign(c, [2, 3], 1)
    result = c.lifecycle.refresh("d1", "ecdsa-secp256k1", [1, 2, 3])
    assert result.epoch == 1 and c.holders[2].presignature_count("d1") == 0
    assert all(h.key_views()["d1"]["protocol"] == "dkls23" for h in c.holders.values())
    with pytest.raises(HolderNotReady):
        presign(c, [2, 3], 1)
    for i in (2, 3):
        c.holders[i].drop_sessions(list(c.holders[i].sessions))
    c.run("dkls23-setup", [1, 2, 3], {"key_id": "d1"})  # party 1's retired pair is gone with the old setup too
    (pub,) = presign(c, [1, 3], 1)
    raw_sign(c, (1, 3), [pub], [DIGEST])
