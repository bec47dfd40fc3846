"""The policy-enforced signing path on real share holders (in process): each node verifies the principal, decodes
the transaction, checks its policy, and only then consumes a presignature; every decision is audited."""

from __future__ import annotations

import json
import time
from pathlib import Path

import coincurve
import nacl.signing
import pytest

from mpc_ray.errors import InvalidInput, PolicyDenied
from mpc_ray.node.audit import verify_chain
from mpc_ray.node.backup import restore_params
from mpc_ray.node.policy import decode_evm_transaction
from mpc_ray.client.credentials import Credentials
from mpc_ray.node.principals import Principal, PrincipalRegistry, RequestKind, sign_request
from mpc_ray.protocols.ecdsa.sign import combine
from tests.support.committee import Committee
from tests.support.policies import (
    ALICE,
    BASE,
    BOB,
    EVE,
    base_policy,
    eip1559,
    erc20_call,
    unsigned_bytes,
    usdc_transfer,
)

ADMIN, AGENT, MALLORY = (nacl.signing.SigningKey.generate() for _ in range(3))
ROOT = Credentials(admins=(("root", ADMIN),))  # this module's admin, as a client holds it: approvals


@pytest.fixture(scope="module")
def committee(tmp_path_factory):
    c = Committee(tmp_path_factory.mktemp("authorized"))
    c.run("aux", [1, 2, 3], {"level": "112"})
    from mpc_ray.crypto.secp256k1 import Point

    out = c.run("keygen", [1, 2, 3], c.principals.keygen_params("k1", 2, [1, 2, 3]))
    c.public_key = Point.from_bytes(next(iter(out.values()))[1]["public_key"])
    # the committee's first admins hand over to this module's admin and agent (registry version 2)
    registry = PrincipalRegistry(principals=(Principal.from_signing_key("root", "admin", ADMIN),
                                             Principal.from_signing_key("bot", "agent", AGENT)), version=2)
    change = c.principals.creds.admin_request(RequestKind.SET_PRINCIPALS, body=registry.to_bytes())
    for h in c.holders.values():
        h.set_principals(change)
    set_policy = sign_request(ADMIN, principal_id="root", kind="set_policy", format="json",
                              body=base_policy().to_bytes(), key_id="k1", now=time.time())
    for h in c.holders.values():
        h.set_policy(set_policy)
    return c


def agent_request(body: bytes, key=AGENT, principal="bot", **kw):
    return sign_request(key, principal_id=principal, kind="sign", format="evm_tx", body=body, key_id="k1",
                        chain=BASE, now=time.time(), **kw)


def counts(c, signers):
    return {i: c.holders[i].presignature_count("k1") for i in signers}


def test_allowed_request_signs_the_digest_each_node_computed(committee):
    c = committee
    (pub,) = c.presign("k1", [1, 2], 1)
    body = usdc_transfer(to=ALICE, amount=1_000_000)
    req = agent_request(body)
    answers = {i: c.holders[i].sign_request(req, pub.presignature_id) for i in (1, 2)}
    digest = decode_evm_transaction(body).digest
    assert all(d == digest for _, d in answers.values())  # each node reports the digest it computed and signed
    sig = combine(pub, c.public_key, digest, {i: sigma for i, (sigma, _) in answers.items()})
    assert coincurve.PublicKey(c.public_key.to_bytes()).verify(sig.der(), digest, hasher=None)


@pytest.mark.parametrize(
    "make,rule",
    [
        (lambda: agent_request(usdc_transfer(to=ALICE, amount=50_000_000)), "policy.per_tx_cap"),
        (lambda: agent_request(usdc_transfer(to=EVE, amount=1_000)), "policy.recipient_denylist"),
        (lambda: agent_request(usdc_transfer(to=ALICE, amount=1_000), key=MALLORY), "auth.bad_signature"),
        (lambda: agent_request(usdc_transfer(to=ALICE, amount=1_000), key=MALLORY, principal="eve"),
         "auth.unknown_principal"),
        # wrong chain: a mainnet transaction (and a request claiming a chain the transaction is not on)
        (lambda: sign_request(AGENT, principal_id="bot", kind="sign", format="evm_tx",
                              body=usdc_transfer(to=ALICE, amount=1_000, chain=1), key_id="k1", chain="eip155:1",
                              now=time.time()), "policy.chain"),
        (lambda: agent_request(usdc_transfer(to=ALICE, amount=1_000, chain=1)), "policy.chain"),
        # wrong type: an ERC-20 approve where the policy allows transfers only
        (lambda: agent_request(unsigned_bytes(eip1559(data=erc20_call("095ea7b3", ALICE, 1_000)))), "policy.tx_type"),
        # expired: signed an hour ago with a one-minute lifetime
        (lambda: sign_request(AGENT, principal_id="bot", kind="sign", format="evm_tx",
                              body=usdc_transfer(to=ALICE, amount=1_000), key_id="k1", chain=BASE,
                              now=time.time() - 3600, ttl_s=60), "auth.expired"),
    ],
)
def test_denied_by_every_node_and_nothing_consumed(committee, make, rule):
    c = committee
    (pub,) = c.presign("k1", [1, 2], 1)
    before = counts(c, (1, 2))
    req = make()
    for i in (1, 2):
        with pytest.raises(PolicyDenied) as e:
            c.holders[i].sign_request(req, pub.presignature_id)
        assert e.value.rule == rule
    assert counts(c, (1, 2)) == before  # no presignature consumed
    for i in (1, 2):  # and each node logged the refusal, with the rule, as its latest record
        last = json.loads((Path(c.holders[i].dir) / "audit.jsonl").read_text().splitlines()[-1])
        assert last["decision"] == "deny" and last["rule"] == rule and last["presignature_id"] is None


def test_replay_denied_and_audit_chain_verifies(committee):
    c = committee
    pubs = c.presign("k1", [2, 3], 2)
    req = agent_request(usdc_transfer(to=ALICE, amount=2_000))
    for i in (2, 3):
        c.holders[i].sign_request(req, pubs[0].presignature_id)
    for i in (2, 3):
        with pytest.raises(PolicyDenied) as e:
            c.holders[i].sign_request(req, pubs[1].presignature_id)
        assert e.value.rule == "auth.replayed"
    for i, h in c.holders.items():
        report = verify_chain(Path(h.dir) / "audit.jsonl", h.identity.public().verify_key)
        assert report.ok and report.records >= 1, report


def test_audit_verify_cli_finds_the_tampered_record(committee, tmp_path, capsys):
    from mpc_ray.cli import main

    h = committee.holders[1]
    src = Path(h.dir) / "audit.jsonl"
    key = h.identity.public().verify_key.hex()
    assert main(["audit", "verify", str(src), "--verify-key", key]) == 0
    assert "OK" in capsys.readouterr().out
    copy = tmp_path / "audit.jsonl"
    lines = src.read_bytes().split(b"\n")
    assert len([x for x in lines if x]) >= 2
    lines[1] = lines[1].replace(b'"decision"', b'"decisioN"', 1)  # one byte of record 1
    copy.write_bytes(b"\n".join(lines))
    head = Path(str(src) + ".head")
    if head.exists():
        Path(str(copy) + ".head").write_bytes(head.read_bytes())
    assert main(["audit", "verify", str(copy), "--verify-key", key]) == 1
    assert "BROKEN at record 1" in capsys.readouterr().out
    assert main(["audit", "export", str(src), "--verify-key", key, "--out", str(tmp_path / "export.jsonl")]) == 0
    assert (tmp_path / "export.jsonl").read_text().count("\n") >= 2


def test_a_crash_right_after_the_audit_record_loses_nothing(committee):
    """The request nonce is written before the body is decoded; then the audit record is the journal of the decision.
    Kill the holder after it answered but before its background flush wrote the presignature ledger or the spend
    snapshot: on restart the replay still refuses the replayed request, keeps the presignature consumed and counts
    the spend against the cap."""
    from mpc_ray.node.authorized import SNAPSHOT_ENTRY
    from mpc_ray.node.holder import ShareHolder
    from mpc_ray.node.policy import spend_store_name

    c = committee
    (pub, spare) = c.presign("k1", [1, 2], 2)
    h = c.holders[1]
    h.restart()  # flush and snapshot, so the files below are a clean starting point
    auth = h.authorization.signing
    auth.flusher.stop()  # from here on nothing reaches the ledgers or the snapshot: as if the process died
    paths = [h.ledger.path, auth.nonces.path]
    on_disk = {p: p.read_bytes() for p in paths}
    snapshot = h.store.get(SNAPSHOT_ENTRY)
    req = agent_request(usdc_transfer(to=ALICE, amount=1_234_567))
    h.sign_request(req, pub.presignature_id)
    assert h.ledger.path.read_bytes() == on_disk[h.ledger.path]  # the presignature waits for the flush
    assert auth.nonces.path.read_bytes() != on_disk[auth.nonces.path]  # the nonce was written before decoding
    assert h.store.get(SNAPSHOT_ENTRY) == snapshot
    name = spend_store_name("k1", "bot")
    spent = auth.spend[name].to_bytes()
    # the crash: release the files without flushing, and put back what a dead process leaves
    for owner in (h.ledger, auth.nonces):
        owner._pending = []
        owner.close()
    auth.audit.close()
    h.ledger.path.write_bytes(on_disk[h.ledger.path])

    c.holders[1] = h = ShareHolder(1, str(c.root / "party-1"), kdf="min")
    # the public views of the ledger replay the journal first: a reopened holder never shows it as unused
    assert pub.presignature_id in h.consumed_ids()
    auth = h.authorization.signing
    assert pub.presignature_id in h.ledger and pub.presignature_id not in h.vault.ids("presig-k1")
    assert auth.spend[name].to_bytes() == spent
    with pytest.raises(PolicyDenied) as e:
        h.sign_request(req, spare.presignature_id)
    assert e.value.rule == "auth.replayed"
    assert spare.presignature_id in h.vault.ids("presig-k1")  # a denied request consumes nothing
    report = verify_chain(Path(h.dir) / "audit.jsonl", h.identity.public().verify_key)
    assert report.ok, report


def test_a_lying_coordinator_gets_no_signature(committee):
    """The coordinator only relays. Each holder reads the transaction from the agent-signed request and computes the
    digest itself, so a coordinator that alters the transaction, substitutes a request of its own, or wants the
    partials over the agent's transaction to sign something else gets nothing usable, and nothing is consumed."""
    from mpc_ray.crypto.secp256k1 import Q
    from mpc_ray.errors import ProtocolAbort
    from mpc_ray.protocols.ecdsa.sign import verify_ecdsa

    c = committee
    (pub,) = c.presign("k1", [1, 3], 1)
    before = counts(c, (1, 3))
    honest = agent_request(usdc_transfer(to=ALICE, amount=3_000))
    bigger = usdc_transfer(to=ALICE, amount=4_999_999)  # still within policy: only the agent's signature stops it
    lies = [
        honest.model_copy(update={"body": bigger}),  # same signature, other transaction
        honest.model_copy(update={"chain": "eip155:1"}),  # same transaction, other chain binding
        agent_request(bigger, key=MALLORY),  # the coordinator's own key under the agent's name
    ]
    for lie in lies:
        for i in (1, 3):
            with pytest.raises(PolicyDenied) as e:
                c.holders[i].sign_request(lie, pub.presignature_id)
            assert e.value.rule == "auth.bad_signature"
    assert counts(c, (1, 3)) == before
    # partials over the agent's transaction do not make a signature over another digest
    partials = {i: c.holders[i].sign_request(honest, pub.presignature_id)[0] for i in (1, 3)}
    other = decode_evm_transaction(bigger).digest
    with pytest.raises(ProtocolAbort):
        combine(pub, c.public_key, other, partials)
    r, s = pub.R.x() % Q, sum(partials.values()) % Q
    assert not verify_ecdsa(c.public_key, other, r, min(s, Q - s))
    assert combine(pub, c.public_key, decode_evm_transaction(honest.body).digest, partials).s > 0


def test_principals_change_only_with_the_admin_quorum(committee):
    """set_principals is checked against the current registry: an agent, or fewer admins than admin_quorum, is
    refused by every node (audited); a quorum-signed registry takes effect on every node and is audited. Versions
    only go up: a registry signed earlier and held back (bot2 still in it) is refused once bot2 is revoked."""
    from mpc_ray.node.principals import cosign

    c = committee
    ops, bot2 = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    root, bot = Principal.from_signing_key("root", "admin", ADMIN), Principal.from_signing_key("bot", "agent", AGENT)
    two_admins = PrincipalRegistry(principals=(root, bot, Principal.from_signing_key("ops", "admin", ops),
                                               Principal.from_signing_key("bot2", "agent", bot2)), admin_quorum=2,
                                   version=3)  # the fixture installed version 2

    def change(registry, key, principal):
        return sign_request(key, principal_id=principal, kind="set_principals", format="json",
                            body=registry.to_bytes(), now=time.time())

    for h in c.holders.values():  # an agent cannot change principals
        with pytest.raises(PolicyDenied) as e:
            h.set_principals(change(two_admins, AGENT, "bot"))
        assert e.value.rule == "auth.not_admin"
    held_back = change(two_admins, ADMIN, "root")  # valid, signed now, delivered after bot2's revocation
    for h in c.holders.values():  # quorum 1 today: root alone may install the two-admin registry
        h.set_principals(change(two_admins, ADMIN, "root"))
    (pub,) = c.presign("k1", [1, 2], 1)
    req = agent_request(usdc_transfer(to=ALICE, amount=1_000), key=bot2, principal="bot2")
    for i in (1, 2):  # bot2 is known now, but has no policy on k1
        with pytest.raises(PolicyDenied) as e:
            c.holders[i].sign_request(req, pub.presignature_id)
        assert e.value.rule != "auth.unknown_principal"
    original = PrincipalRegistry(principals=(root, bot), version=4)  # bot2 and ops revoked
    for h in c.holders.values():  # from now on one admin is not enough
        with pytest.raises(PolicyDenied) as e:
            h.set_principals(change(original, ADMIN, "root"))
        assert e.value.rule == "auth.admin_quorum"
    both = cosign(change(original, ADMIN, "root"), "ops", ops)
    for h in c.holders.values():
        h.set_principals(both)
    for h in c.holders.values():  # the held-back registry (quorum 1 again, so root alone could) would bring bot2 back
        with pytest.raises(PolicyDenied) as e:
            h.set_principals(held_back)
        assert e.value.rule == "admin.stale_version"
        with pytest.raises(PolicyDenied) as e:  # an equal version is no newer either
            h.set_principals(change(original.model_copy(update={"admin_quorum": 1}), ADMIN, "root"))
        assert e.value.rule == "admin.stale_version"
    (pub,) = c.presign("k1", [1, 2], 1)
    for i in (1, 2):
        with pytest.raises(PolicyDenied) as e:
            c.holders[i].sign_request(agent_request(usdc_transfer(to=ALICE, amount=1_000), key=bot2, principal="bot2"),
                                      pub.presignature_id)
        assert e.value.rule == "auth.unknown_principal"
    for h in c.holders.values():
        records = [json.loads(line) for line in (Path(h.dir) / "audit.jsonl").read_text().splitlines()]
        mine = [r for r in records if r["kind"] == "set_principals"]
        # the fixture's hand-over, then this test's
        assert [r["decision"] for r in mine] == ["allow", "deny", "allow", "deny", "allow", "deny", "deny"]
        assert [r["rule"] for r in mine[-2:]] == ["admin.stale_version"] * 2 and mine[-1]["nonce_id"]
        assert mine[-3]["intent"]["signers"] == ["root", "ops"] and mine[-3]["intent"]["admin_quorum"] == 1
        assert verify_chain(Path(h.dir) / "audit.jsonl", h.identity.public().verify_key).ok


def test_replay_after_a_holder_restart_and_policy_change_by_an_agent_are_refused(committee):
    """The nonce ledger survives a restart (journal replay included); set_policy is for admins only."""
    c = committee
    pubs = c.presign("k1", [2, 3], 2)
    req = agent_request(usdc_transfer(to=ALICE, amount=2_500))
    for i in (2, 3):
        c.holders[i].sign_request(req, pubs[0].presignature_id)
    c.restart(2)
    c.restart(3)
    before = counts(c, (2, 3))
    for i in (2, 3):
        with pytest.raises(PolicyDenied) as e:
            c.holders[i].sign_request(req, pubs[1].presignature_id)
        assert e.value.rule == "auth.replayed"
    assert counts(c, (2, 3)) == before
    loose = base_policy(asset_limits=())
    for i in (1, 2, 3):
        with pytest.raises(PolicyDenied) as e:
            c.holders[i].set_policy(sign_request(AGENT, principal_id="bot", kind="set_policy", format="json",
                                                 body=loose.to_bytes(), key_id="k1", now=time.time()))
        assert e.value.rule == "auth.not_admin"
        last = json.loads((Path(c.holders[i].dir) / "audit.jsonl").read_text().splitlines()[-1])
        assert last["kind"] == "set_policy" and last["rule"] == "auth.not_admin"
    # the old policy still holds: over the cap is still refused
    with pytest.raises(PolicyDenied) as e:
        c.holders[2].sign_request(agent_request(usdc_transfer(to=ALICE, amount=50_000_000)), pubs[1].presignature_id)
    assert e.value.rule == "policy.per_tx_cap"


def test_a_batch_is_decided_in_order_with_one_audit_write(committee, monkeypatch):
    """`sign_many`: each request answered on its own (sigma_i or its refusal); later requests see the spends and the
    nonces of earlier ones; refused requests consume no presignature; all records go out in one durable write."""
    from mpc_ray.crypto.secp256k1 import Point
    from mpc_ray.node.audit import AuditLog
    from mpc_ray.protocols.ecdsa.presign import PresignaturePublic
    from mpc_ray.protocols.wire import decode

    c = committee
    approval = ROOT.admin_request(RequestKind.CREATE_KEY, {"key_id": "k2", "scheme": "ecdsa-secp256k1",
                                                           "threshold": 2, "parties": [1, 2, 3]})
    # its own key: the caps start from zero
    out = c.run("keygen", [1, 2, 3], {"key_id": "k2", "threshold": 2, "approval": approval})
    public_key = Point.from_bytes(next(iter(out.values()))[1]["public_key"])
    set_policy = sign_request(ADMIN, principal_id="root", kind="set_policy", format="json",
                              body=base_policy(key_id="k2").to_bytes(), key_id="k2", now=time.time())
    for h in c.holders.values():
        h.set_policy(set_policy)
    made = c.run("presign", [1, 2], {"key_id": "k2"}, count=6)
    pubs = [decode(next(iter(r.values())), PresignaturePublic) for r in made.values()]

    def req(body):
        return sign_request(AGENT, principal_id="bot", kind="sign", format="evm_tx", body=body, key_id="k2",
                            chain=BASE, now=time.time())

    first = req(usdc_transfer(to=ALICE, amount=4_900_000))
    bodies = [usdc_transfer(to=ALICE, amount=4_900_000), usdc_transfer(to=BOB, amount=4_900_000),
              usdc_transfer(to=ALICE, amount=4_900_000)]
    # each node's budget of the 15.0 daily cap is 15.0 * t / n = 10.0 (any 2 of 3 must both agree): two of 4.9 fit
    batch = [first, req(usdc_transfer(to=EVE, amount=1)), first, *[req(b) for b in bodies]]
    expected = [None, "policy.recipient_denylist", "auth.replayed", None, "policy.window_cap", "policy.window_cap"]
    writes = []
    real_append_many = AuditLog.append_many

    def counting(self, entries, **kw):
        writes.append(len(entries))
        return real_append_many(self, entries, **kw)

    monkeypatch.setattr(AuditLog, "append_many", counting)
    before = {i: c.holders[i].presignature_count("k2") for i in (1, 2)}
    answers = {i: c.holders[i].sign_requests([(r, p.presignature_id) for r, p in zip(batch, pubs)]) for i in (1, 2)}
    assert writes == [6, 6]  # one write (one fsync) per holder for the whole batch
    for i in (1, 2):
        got = [None if isinstance(a, tuple) else a.rule for a in answers[i]]
        assert got == expected
    assert {i: c.holders[i].presignature_count("k2") for i in (1, 2)} == {i: before[i] - 2 for i in (1, 2)}
    for n, r in enumerate(batch):
        if expected[n] is None:
            digest = decode_evm_transaction(r.body).digest
            assert all(answers[i][n][1] == digest for i in (1, 2))
            sig = combine(pubs[n], public_key, digest, {i: answers[i][n][0] for i in (1, 2)})
            assert coincurve.PublicKey(public_key.to_bytes()).verify(sig.der(), digest, hasher=None)
    for i in (1, 2):  # the records are in the log in batch order, and the chain verifies
        tail = [json.loads(line) for line in (Path(c.holders[i].dir) / "audit.jsonl").read_text().splitlines()[-6:]]
        assert [rec.get("rule") if rec["decision"] != "allow" else None for rec in tail] == expected
        h = c.holders[i]
        assert verify_chain(Path(h.dir) / "audit.jsonl", h.identity.public().verify_key).ok
    for bad in ([], [(first, b"short")], [(first,)]):  # a malformed batch is refused whole, before any nonce is spent
        with pytest.raises(InvalidInput):
            c.holders[1].sign_requests(bad)


def test_combiner_trusts_a_reported_digest_only_if_the_signature_verifies(committee):
    """The signers report the digest they signed so a combiner need not decode again (coordinator/requests.py
    `combine_request`, used by the coordinator and the one-hop client). A signer that reports another digest, or a
    wallet that passes a wrong one, costs a decode, never a wrong signature; a bad partial is blamed against the
    digest the combiner decoded itself, whatever digest was claimed."""
    from mpc_ray.coordinator.requests import combine_request
    from mpc_ray.crypto.secp256k1 import Q
    from mpc_ray.errors import ProtocolAbort

    c = committee
    pubs = c.presign("k1", [1, 2], 3)
    body = usdc_transfer(to=ALICE, amount=7_000)
    digest = decode_evm_transaction(body).digest
    other = decode_evm_transaction(usdc_transfer(to=ALICE, amount=7_001)).digest
    verify = coincurve.PublicKey(c.public_key.to_bytes()).verify
    for pub, lie in zip(pubs[:2], ("signer", "wallet")):
        req = agent_request(body)
        answers = {i: c.holders[i].sign_request(req, pub.presignature_id) for i in (1, 2)}
        if lie == "signer":  # holder 2 claims another digest: no agreement, so the combiner decodes
            answers[2] = (answers[2][0], other)
        sig = combine_request(req, pub, c.public_key, answers, digest=other if lie == "wallet" else None)
        assert verify(sig.der(), digest, hasher=None)
    req = agent_request(body)
    answers = {i: c.holders[i].sign_request(req, pubs[2].presignature_id) for i in (1, 2)}
    bad = {1: answers[1], 2: ((answers[2][0] + 1) % Q, other)}
    with pytest.raises(ProtocolAbort) as e:  # both claim nothing useful; blamed against the decoded digest
        combine_request(req, pubs[2], c.public_key, bad, digest=other)
    assert e.value.culprit == 2 and e.value.check == "sign.partial_signature"
    for shape in ((answers[2][0],), (answers[2][0], b"short"), answers[2][0]):
        with pytest.raises(ProtocolAbort) as e:
            combine_request(req, pubs[2], c.public_key, {1: answers[1], 2: shape})
        assert e.value.culprit == 2 and e.value.check == "sign_request.answer_shape"


# ------------------------------------------------------------------------------------------------------------
# hostile requests: nested JSON, native panics, requests relayed to the wrong entry point, stale admin changes

PASS = "correct horse battery staple"


def last_record(h) -> dict:
    return json.loads((Path(h.dir) / "audit.jsonl").read_text().splitlines()[-1])


def policy_version(c) -> int:
    return c.holders[1].authorization.signing.policy("policy.k1.bot").version


def set_policy_request(policy):
    return sign_request(ADMIN, principal_id="root", kind="set_policy", format="json", body=policy.to_bytes(),
                        key_id=policy.key_id, now=time.time())


def test_nested_json_is_refused_before_it_is_parsed_and_audited(committee):
    """Typed data nested one level deeper than any JSON here may go is InvalidInput on every signer, audited with its
    spent nonce, with no presignature consumed; sent again it is a replay. (The lethal 70,000 levels run in a child
    process: tests/requests/test_hostile_input.py.)"""
    from mpc_ray.node.principals import MAX_JSON_DEPTH

    c = committee
    (pub,) = c.presign("k1", [1, 2], 1)
    before = counts(c, (1, 2))
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    body = b'{"types":{"EIP712Domain":[]},"primaryType":"EIP712Domain","domain":{},"message":' + deep + b"}"
    req = sign_request(AGENT, principal_id="bot", kind="sign", format="eip712", body=body, key_id="k1", chain=BASE,
                       now=time.time())
    for i in (1, 2):
        with pytest.raises(InvalidInput, match="nested deeper"):
            c.holders[i].sign_request(req, pub.presignature_id)
        rec = last_record(c.holders[i])
        assert rec["decision"] == "error" and rec["rule"] == "InvalidInput" and rec["nonce_id"]
        with pytest.raises(PolicyDenied) as e:
            c.holders[i].sign_request(req, pub.presignature_id)
        assert e.value.rule == "auth.replayed"
    assert counts(c, (1, 2)) == before


def test_a_body_that_kills_the_decoder_cannot_kill_the_restarted_holder(committee, monkeypatch):
    """The request nonce is on disk before the body is decoded. A decoder that takes the process down (a C-stack
    overflow or a native abort; here an exception nothing catches, then the files as a dead process leaves them)
    meets the same request after the restart only as a replay, refused before anything is decoded."""
    from mpc_ray.node import authorized
    from mpc_ray.node.holder import ShareHolder

    c = committee
    (pub,) = c.presign("k1", [1, 2], 1)
    h = c.holders[1]
    h.restart()
    auth = h.authorization.signing
    auth.flusher.stop()  # nothing reaches the disk in the background: only what the decision path writes itself
    req = agent_request(usdc_transfer(to=ALICE, amount=1_111))
    real = authorized.intent_from_request

    def dies(request):
        raise SystemExit("the decoder took the process down")

    monkeypatch.setattr(authorized, "intent_from_request", dies)
    with pytest.raises(SystemExit):
        h.sign_request(req, pub.presignature_id)
    for owner in (h.ledger, auth.nonces):  # the process is gone: whatever was only in memory is lost
        owner._pending = []
        owner.close()
    auth.audit.close()

    c.holders[1] = h = ShareHolder(1, str(c.root / "party-1"), kdf="min")
    decoded = []
    monkeypatch.setattr(authorized, "intent_from_request", lambda r: decoded.append(r) or real(r))
    with pytest.raises(PolicyDenied) as e:
        h.sign_request(req, pub.presignature_id)
    assert e.value.rule == "auth.replayed" and decoded == []
    assert pub.presignature_id in h.vault.ids("presig-k1")


def test_a_native_panic_refuses_its_own_request_only(committee, monkeypatch):
    """solders panics (pyo3's PanicException, a BaseException that passes `except Exception`) on a Solana transfer
    listing one account. In a batch that is the one request's InvalidInput, audited with its spent nonce, and the
    requests around it are signed; a raw BaseException from the holder's own decoding step is refused the same way."""
    from mpc_ray.node import authorized
    from tests.support.policies import solana_panic_message
    from tests.support.policies import SOLANA

    c = committee
    pubs = c.presign("k1", [1, 2], 4)
    panic = sign_request(AGENT, principal_id="bot", kind="sign", format="solana_tx", body=solana_panic_message(),
                         key_id="k1", chain=SOLANA, now=time.time())
    batch = [agent_request(usdc_transfer(to=ALICE, amount=1_201)), panic,
             agent_request(usdc_transfer(to=ALICE, amount=1_202))]
    answers = {i: c.holders[i].sign_requests([(r, p.presignature_id) for r, p in zip(batch, pubs)]) for i in (1, 2)}
    for i in (1, 2):
        assert isinstance(answers[i][1], InvalidInput) and "PanicException" in str(answers[i][1])
        tail = [json.loads(x) for x in (Path(c.holders[i].dir) / "audit.jsonl").read_text().splitlines()[-3:]]
        assert [r["decision"] for r in tail] == ["allow", "error", "allow"] and tail[1]["nonce_id"]
        assert pubs[1].presignature_id in c.holders[i].vault.ids("presig-k1")  # the refused one consumed nothing
    for n in (0, 2):
        digest = decode_evm_transaction(batch[n].body).digest
        sig = combine(pubs[n], c.public_key, digest, {i: answers[i][n][0] for i in (1, 2)})
        assert coincurve.PublicKey(c.public_key.to_bytes()).verify(sig.der(), digest, hasher=None)

    class Panic(BaseException):
        pass

    def panics(request):
        raise Panic("index out of bounds")

    monkeypatch.setattr(authorized, "intent_from_request", panics)
    with pytest.raises(InvalidInput, match="Panic"):
        c.holders[1].sign_request(agent_request(usdc_transfer(to=ALICE, amount=1_203)), pubs[3].presignature_id)
    assert pubs[3].presignature_id in c.holders[1].vault.ids("presig-k1")
    assert last_record(c.holders[1])["decision"] == "error"


def test_a_request_relayed_to_the_wrong_entry_point_burns_nothing(committee):
    """A relay sends an admin's set_policy to one holder's sign path first (hoping it burns the nonce there, so that
    holder refuses the real one and the holders diverge): refused as auth.wrong_kind before the nonce is spent,
    and the set_policy then takes effect on every holder. The same for a sign request sent to set_policy."""
    c = committee
    (pub,) = c.presign("k1", [1, 2], 1)
    admin = set_policy_request(base_policy(version=policy_version(c) + 1))
    with pytest.raises(PolicyDenied) as e:
        c.holders[1].sign_request(admin, pub.presignature_id)
    assert e.value.rule == "auth.wrong_kind"
    (answer,) = c.holders[1].sign_requests([(admin, pub.presignature_id)])
    assert isinstance(answer, PolicyDenied) and answer.rule == "auth.wrong_kind"
    rec = last_record(c.holders[1])
    assert rec["rule"] == "auth.wrong_kind" and rec["nonce_id"] is None  # audited, nothing spent
    for h in c.holders.values():
        h.set_policy(admin)
    assert {h.authorization.signing.policy("policy.k1.bot").version for h in c.holders.values()} == {policy_version(c)}
    agent = agent_request(usdc_transfer(to=ALICE, amount=1_401))
    for i in (1, 2):
        with pytest.raises(PolicyDenied) as e:
            c.holders[i].set_policy(agent)
        assert e.value.rule == "auth.wrong_kind"
    answers = {i: c.holders[i].sign_request(agent, pub.presignature_id) for i in (1, 2)}
    digest = decode_evm_transaction(agent.body).digest
    combine(pub, c.public_key, digest, {i: sigma for i, (sigma, _) in answers.items()})


def test_a_held_back_older_policy_cannot_undo_a_newer_one(committee):
    """Policy versions only go up on each holder: a looser policy signed earlier and delivered after a stricter one
    (within its validity) is refused as admin.stale_version, audited, and so is another policy of the same version."""
    c = committee
    v = policy_version(c) + 1
    looser = set_policy_request(base_policy(version=v))  # held back by a relay
    stricter = set_policy_request(base_policy(version=v + 1, recipient_allowlist=(ALICE,)))
    same = set_policy_request(base_policy(version=v + 1))
    for h in c.holders.values():
        h.set_policy(stricter)
    for h in c.holders.values():
        for late in (looser, same):
            with pytest.raises(PolicyDenied) as e:
                h.set_policy(late)
            assert e.value.rule == "admin.stale_version"
            rec = last_record(h)
            assert rec["kind"] == "set_policy" and rec["rule"] == "admin.stale_version" and rec["nonce_id"]
    (pub,) = c.presign("k1", [1, 2], 1)
    for i in (1, 2):
        with pytest.raises(PolicyDenied) as e:
            c.holders[i].sign_request(agent_request(usdc_transfer(to=BOB, amount=1_000)), pub.presignature_id)
        assert e.value.rule == "policy.recipient_allowlist"
    for h in c.holders.values():  # the fixture's policy again, as a newer version, for the tests after this one
        h.set_policy(set_policy_request(base_policy(version=v + 2)))


def test_restoring_an_older_backup_keeps_the_newer_policy_and_registry(committee):
    """A restore never lowers a version (keep-current): after a backup, an agent is revoked and the allowlist
    tightened; restoring the backup on that holder keeps the newer registry and policy, so the revoked agent stays
    out and the stricter allowlist holds there."""
    c = committee
    bot3 = nacl.signing.SigningKey.generate()
    h = c.holders[3]
    reg = h.authorization.signing.verifier.registry
    with_bot3 = reg.model_copy(update={"principals": (*reg.principals, Principal.from_signing_key(
        "bot3", "agent", bot3)), "version": reg.version + 1})
    without_bot3 = reg.model_copy(update={"version": reg.version + 2})

    def set_principals(registry):
        return sign_request(ADMIN, principal_id="root", kind="set_principals", format="json",
                            body=registry.to_bytes(), now=time.time())

    for holder in c.holders.values():
        holder.set_principals(set_principals(with_bot3))
    v = policy_version(c)
    blob = h.backup(ROOT.admin_request(RequestKind.BACKUP, {"party": 3}), PASS, "min")
    stricter = set_policy_request(base_policy(version=v + 1, recipient_allowlist=(ALICE,)))
    for holder in c.holders.values():
        holder.set_principals(set_principals(without_bot3))
        holder.set_policy(stricter)
    out = h.restore(ROOT.admin_request(RequestKind.RESTORE, restore_params(3, blob)), blob, PASS)
    assert out["kept_current"] >= 2
    auth = h.authorization.signing
    assert auth.verifier.registry.version == reg.version + 2 and auth.verifier.registry.get("bot3") is None
    assert auth.policy("policy.k1.bot").version == v + 1
    (pub,) = c.presign("k1", [2, 3], 1)
    with pytest.raises(PolicyDenied) as e:
        h.sign_request(agent_request(usdc_transfer(to=ALICE, amount=1_000), key=bot3, principal="bot3"),
                       pub.presignature_id)
    assert e.value.rule == "auth.unknown_principal"
    with pytest.raises(PolicyDenied) as e:
        h.sign_request(agent_request(usdc_transfer(to=BOB, amount=1_000)), pub.presignature_id)
    assert e.value.rule == "policy.recipient_allowlist"
    for holder in c.holders.values():
        holder.set_policy(set_policy_request(base_policy(version=v + 2)))
