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
from mpc_ray.coordinator.sessions import finished, route
from mpc_ray.crypto.ot import kos
from mpc_ray.node.holder import BeginRequest, ShareHolder
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
from tests.support.committee import Committee, FixturePrimes

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
    assert extension_guard_id(presignature_id(sid, {1: "holder", 2: "holder"})) in c.holders[1].consumed_ids()
    c.restart(1)
    with pytest.raises(AlreadyConsumed):
        c.holders[1].begin(reqs, c.principals.grant(reqs))
    c.holders[2].drop_sessions([sid])


# presign workers ---------------------------------------------------------------------------------------------------


def open_worker(c, party: int, index: int = 0) -> ShareHolder:
    return ShareHolder(party, str(c.holders[party].dir), kdf="min", role="worker", worker=index)


def run_on(c, executors: dict, sids: list[bytes], params: dict, protocol="dkls23-presign"):
    """Drive sessions `sids` on `executors` ({party: holder or worker}) as the coordinator does."""
    parties = sorted(executors)
    reqs = [BeginRequest(protocol, s, parties, params) for s in sids]
    res = {i: executors[i].begin(reqs, c.principals.grant(reqs)) for i in parties}
    while (done := finished(parties, sids, res)) is None:
        inputs = route(parties, sids, res)
        res = {i: executors[i].step(inputs[i]) for i in parties}
    return [decode(next(iter(r.values())), PresignaturePublic) for r in done.values()]


def test_setup_parse_kept_per_record_bytes_and_a_workers_retirement_seen_at_once(committee, monkeypatch):
    """The holder reads the setup record for every session but parses it again only when its bytes changed; each
    session still gets its own in-memory record of used extension ids; a pair retired by a worker of the same node
    (in the shared store) is refused by the holder's very next session."""
    c = committee
    part = c.holders[1].dkls23
    stored = c.holders[1].store.get(setup_entry("d1"))
    assert decode(stored, DKLs23SetupRecord).retired == []
    parses, parse = [], SetupOutput.from_secret_bytes
    monkeypatch.setattr(SetupOutput, "from_secret_bytes", classmethod(lambda cls, data: parses.append(1) or parse(data)))
    a, b = part.setup("d1"), part.setup("d1")
    presign(c, [1, 3], 2)
    assert len(parses) <= 1  # nothing changed the record: parsed once at most (none if an earlier test did)
    ext = b"e" * 32
    a.pairs[3].ote_receiver.extend(ext, 8)
    with pytest.raises(InvalidInput, match="already used"):
        a.pairs[3].ote_receiver.extend(ext, 8)
    b.pairs[3].ote_receiver.extend(ext, 8)  # another session's copy: its own record (the durable one is the ledger)
    worker = open_worker(c, 1)
    try:
        worker.dkls23.retire("d1", 3)
    finally:
        worker.close()
    with pytest.raises(InvalidInput, match="no pairwise setup"):
        presign(c, [1, 3], 1)
    assert len(parses) <= 2 and 3 not in part.setup("d1").pairs
    for h in c.holders.values():
        h.drop_sessions(list(h.sessions))
    c.holders[1].store.put(setup_entry("d1"), stored)  # as it was, for the tests below
    presign(c, [1, 3], 1)


def test_worker_presigns_and_the_holder_signs(committee):
    """Presign worker 0 of nodes 1 and 3 makes DKLs23 presignatures into the store its holder reads; the holders sign
    with them (coincurve and python-ecdsa) and consume them. A session not declared for worker 0 is refused there."""
    c = committee
    workers = {i: open_worker(c, i) for i in (1, 3)}
    try:
        pubs = run_on(c, workers, [new_sid("dkls23-presign") for _ in range(2)],
                      {"key_id": "d1", "executor": "worker-0"})
        assert all(pub.presignature_id in c.holders[1].vault.ids("presig-d1") for pub in pubs)
        raw_sign(c, (1, 3), pubs, [DIGEST, hashlib.sha256(b"second").digest()])
        with pytest.raises(AlreadyConsumed):
            c.holders[3].partial_sign(c.principals.raw("d1", [DIGEST]), [(0, pubs[0].presignature_id)])
        for params in ({"key_id": "d1"}, {"key_id": "d1", "executor": "worker-1"}, {"key_id": "d1", "executor": 0}):
            reqs = [BeginRequest("dkls23-presign", new_sid("dkls23-presign"), [1, 3], params)]
            with pytest.raises(InvalidInput):
                workers[1].begin(reqs, c.principals.grant(reqs))
        reqs = [BeginRequest("dkls23-setup", new_sid("dkls23-setup"), [1, 2, 3], {"key_id": "d1"})]
        with pytest.raises(InvalidInput):  # the setup is the holder's
            workers[1].begin(reqs, c.principals.grant(reqs))
    finally:
        for w in workers.values():
            w.close()


def test_replayed_session_id_refused_on_a_worker_after_its_restart(committee):
    """A worker consumes the session's guard id in its own ledger before round 1 leaves: the same session id on the
    same worker is refused, also by a restarted worker process; the holder's ledger is not the worker's."""
    c = committee
    sid = new_sid("dkls23-presign")
    reqs = [BeginRequest("dkls23-presign", sid, [1, 2], {"key_id": "d1", "executor": "worker-0"})]
    worker = open_worker(c, 1)
    worker.begin(reqs, c.principals.grant(reqs))
    worker.close()  # as a dying process releases its ledger
    worker = open_worker(c, 1)
    try:
        with pytest.raises(AlreadyConsumed):
            worker.begin(reqs, c.principals.grant(reqs))
        assert (c.holders[1].dir / "worker-0.ledger").exists()
        guard = extension_guard_id(presignature_id(sid, {1: "worker-0", 2: "worker-0"}))
        assert guard in worker.state.executor_ledger() and guard not in c.holders[1].consumed_ids()
        with pytest.raises(Exception, match="open elsewhere"):  # one writer: a second worker 0 cannot open it
            open_worker(c, 1).state.executor_ledger()
    finally:
        worker.close()


def test_one_session_id_on_the_holder_and_two_workers_uses_distinct_extension_ids(committee, monkeypatch):
    """The coordinator sends one session id to the holders, to workers 0 and to workers 1: every run completes, and
    no OT-extension id is used twice with one setup and direction on any node (they share the stored setup)."""
    c = committee
    used: list[tuple] = []
    for cls in (kos.OTESenderSetup, kos.OTEReceiverSetup):
        honest = cls.extend

        def extend(self, ext_id, *args, _honest=honest, _cls=cls):
            used.append((_cls.__name__, self.setup_id, self.me, self.peer, bytes(ext_id)))
            return _honest(self, ext_id, *args)

        monkeypatch.setattr(cls, "extend", extend)
    sid = new_sid("dkls23-presign")
    workers = [{i: open_worker(c, i, k) for i in (1, 2)} for k in (0, 1)]
    try:
        pubs = run_on(c, {i: c.holders[i] for i in (1, 2)}, [sid], {"key_id": "d1"})
        for k, ws in enumerate(workers):
            pubs += run_on(c, ws, [sid], {"key_id": "d1", "executor": f"worker-{k}"})
    finally:
        for ws in workers:
            for w in ws.values():
                w.close()
    assert len(used) == 3 * 4 and len(set(used)) == len(used)  # 3 runs x 2 parties x (sender, receiver)
    assert len({p.presignature_id for p in pubs}) == 3
    raw_sign(c, (1, 2), pubs, [hashlib.sha256(b"run %d" % k).digest() for k in range(3)])


def test_backups_carry_no_setup_and_a_restore_keeps_the_nodes_own(committee, monkeypatch):
    """A backup leaves the DKLs23 setup out (the workers' ledgers, and the holder's ids used after the backup, are not
    in it), and a restore ignores one that an older backup carries: the node's own setup stays as it is, and a node
    without one gets none from the backup."""
    from mpc_ray.node import backup as backup_mod
    from mpc_ray.node.backup import open_backup, restore_params
    from mpc_ray.node.principals import RequestKind

    c, pw, h = committee, "correct horse battery", committee.holders[2]

    def export():
        return h.backup(c.principals.approval(RequestKind.BACKUP, party=2), pw, "min")

    def restore(blob):
        h.restore(c.principals.approval(RequestKind.RESTORE, **restore_params(2, blob)), blob, pw)

    names = {e.name for e in open_backup(export(), pw).entries}
    assert "key-d1" in names and setup_entry("d1") not in names
    with monkeypatch.context() as m:  # an older backup, which carried the setup
        m.setattr(backup_mod, "_exported", lambda name: not backup_mod._VAULT_ENTRY.fullmatch(name))
        old = export()
    assert setup_entry("d1") in {e.name for e in open_backup(old, pw).entries}
    mine = h.store.get(setup_entry("d1"))
    restore(old)
    assert h.store.get(setup_entry("d1")) == mine
    h.store.delete(setup_entry("d1"))
    try:
        restore(old)
        assert h.store.get(setup_entry("d1")) is None and not h.dkls23.has_setup("d1")
    finally:
        h.store.put(setup_entry("d1"), mine)


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


def _tampering(c, party: int, round_no: int, change, executor=None):
    """Wrap `party`'s dkls23-presign part (its holder's, or `executor`'s) so that its machines pass round
    `round_no`'s outbox through `change`."""
    part = (executor or c.holders[party]).protocols["dkls23-presign"]

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


def _bad_kos(out):
    """Round 1's outbox with an OT-extension message that fails the KOS check (t~ changed)."""
    def flip(req):
        ext = req.request.extension
        t = bytes([ext.t_tilde[0] ^ 1]) + ext.t_tilde[1:]
        return MulRequest(RVOLERequest(ExtensionMessage(ext.u, ext.x_tilde, t)))

    return Outbox(broadcast=out.broadcast, direct={j: flip(r) for j, r in out.direct.items()})


def test_failed_ot_check_retires_the_pair_durably(committee):
    """Party 3's holder sends an OT-extension message that fails the KOS check: party 1 names it
    (``dkls23.ote.kos_check``) and retires its pair with 3 in the stored setup, so after a restart the key presigns
    without that pair until a new setup, which is then allowed for the same epoch."""
    c = committee
    err = _presign_tampered(c, 3, 1, _bad_kos, [1, 3])
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


def test_workers_honour_a_retired_pair(committee):
    """The pair 1-3 that party 1's holder retired (above) is retired for its presign workers too: they read the setup
    record from the store for every session. Its other pairs still presign on the worker."""
    c = committee
    assert decode(c.holders[1].store.get(setup_entry("d1")), DKLs23SetupRecord).retired == [3]
    workers = {i: open_worker(c, i) for i in (1, 2, 3)}
    try:
        reqs = [BeginRequest("dkls23-presign", new_sid("dkls23-presign"), [1, 3],
                             {"key_id": "d1", "executor": "worker-0"})]
        with pytest.raises(InvalidInput, match="no pairwise setup"):
            workers[1].begin(reqs, c.principals.grant(reqs))
        workers[3].drop_sessions([reqs[0].sid])
        (pub,) = run_on(c, {i: workers[i] for i in (1, 2)}, [new_sid("dkls23-presign")],
                        {"key_id": "d1", "executor": "worker-0"})
        raw_sign(c, (1, 2), [pub], [DIGEST])
    finally:
        for w in workers.values():
            w.close()


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


def test_reshared_key_keeps_its_protocol_for_new_members(committee):
    """A resharing to a committee with a new member carries the key's protocol to it (the dealers' view, bound in the
    session context): the new member records "dkls23", takes part in the new committee's setup, presigns (on its
    presign worker too) and signs under the same public key; the removed member is gone from the setup."""
    c = committee
    if not c.holders[1].has_aux():
        c.run("aux", [1, 2, 3], {"level": "112"})
    c.add(4)
    moved = c.lifecycle.reshare("d1", "ecdsa-secp256k1", [1, 2, 3], [2, 3, 4], 2)
    assert moved.parties == [2, 3, 4]
    assert c.holders[4].key_views()["d1"]["protocol"] == "dkls23"
    assert c.holders[4].key("d1").public_key == c.public_key
    c.allow_operator("d1")
    with pytest.raises(HolderNotReady):  # the old setup is of the old epoch
        presign(c, [2, 4], 1)
    for i in (2, 4):
        c.holders[i].drop_sessions(list(c.holders[i].sessions))
    c.run("dkls23-setup", [2, 3, 4], {"key_id": "d1"})  # the coordinator runs it after the commit
    (pub,) = presign(c, [2, 4], 1)
    workers = {i: open_worker(c, i) for i in (3, 4)}
    try:
        pubs = [pub, *run_on(c, workers, [new_sid("dkls23-presign")], {"key_id": "d1", "executor": "worker-0"})]
    finally:
        for w in workers.values():
            w.close()
    raw_sign(c, (2, 4), pubs[:1], [DIGEST])
    raw_sign(c, (3, 4), pubs[1:], [DIGEST])


def test_a_reshare_declaring_another_protocol_is_refused(committee):
    """A coordinator that declares CGGMP21 (no protocol param) for the DKLs23 key is refused by its holders."""
    c = committee
    old_call = c.lifecycle.call

    def call(party, method, *args):
        out = old_call(party, method, *args)
        return {**out, "protocol": "cggmp21"} if method == "lifecycle_public" else out

    c.lifecycle.call = call
    try:
        with pytest.raises(ProtocolMismatch):
            c.lifecycle.reshare("d1", "ecdsa-secp256k1", [2, 3, 4], [2, 3, 4], 2)
    finally:
        c.lifecycle.call = old_call
    for h in c.holders.values():
        h.drop_sessions(list(h.sessions))


def test_a_worker_that_sees_a_failed_ot_check_retires_the_pair_for_its_node(committee):
    """Party 4's worker sends an OT-extension message that fails the KOS check: party 3's worker names it and retires
    the pair 3-4 in the node's stored setup (its holder and other workers share the pair's OT secrets), so party 3's
    holder refuses to presign with 4 from then on."""
    c = committee
    workers = {i: open_worker(c, i) for i in (3, 4)}
    part, bad = _tampering(c, 4, 1, _bad_kos, executor=workers[4])
    workers[4].sessions_runner.protocols["dkls23-presign"] = bad
    try:
        with pytest.raises(ProtocolAbort) as e:
            run_on(c, workers, [new_sid("dkls23-presign")], {"key_id": "d1", "executor": "worker-0"})
    finally:
        for w in workers.values():
            w.close()
    assert (e.value.check, e.value.culprit, e.value.reporter) == ("dkls23.ote.kos_check", 4, 3)
    assert decode(c.holders[3].store.get(setup_entry("d1")), DKLs23SetupRecord).retired == [4]
    with pytest.raises(InvalidInput, match="no pairwise setup"):
        presign(c, [3, 4], 1)
    for h in c.holders.values():
        h.drop_sessions(list(h.sessions))
