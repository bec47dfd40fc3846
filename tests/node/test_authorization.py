"""Every holder entry point that uses a secret or changes state decides from a principal's signed request.

Played as an attacker who can call the holders directly (any Ray driver can): raw signing without a request, with
an agent's request, with an operator the key's policy does not allow; committee changes (new keys, refresh,
resharing, new members, aux info, backup, restore) without the admin quorum's approval or with an approval of
another action. Each is refused with a typed error, consumes nothing, and is audited where a principal was named.
"""

from __future__ import annotations

import hashlib

import nacl.signing
import pytest

from mpc_ray.errors import PolicyDenied, Unauthorized
from mpc_ray.node.audit import iter_records
from mpc_ray.node.holder import BeginRequest, ShareHolder
from mpc_ray.node.principals import Principal, PrincipalRegistry, RequestKind, sign_request
from tests.support.authz import TestPrincipals
from tests.support.committee import keyed_committee

DIGEST = hashlib.sha256(b"a 1,000,000 USDC transfer to an unlisted address").digest()


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    with keyed_committee(tmp_path_factory.mktemp("authz")) as c:
        yield c


def _records(c, party: int) -> list[dict]:
    return list(iter_records(c.holders[party].dir / "audit.jsonl"))


def test_raw_signing_needs_an_operator_request(c):
    """Finding 1: partial_sign and frost_sign signed any digest for any key with no request and no audit record."""
    presig = c.presign("k1", [1, 2])[0]
    before = c.holders[1].presignature_count("k1")
    for bogus in ("k1", None, b"raw", {"key_id": "k1"}):
        with pytest.raises(Unauthorized):
            c.holders[1].partial_sign(bogus, [(0, presig.presignature_id)])
    (nid, _), = c.principals.commit(c.holders[1], "f1", 1)
    with pytest.raises(Unauthorized):
        c.holders[1].frost_sign("f1", [(0, nid, b"")])
    assert c.holders[1].presignature_count("k1") == before  # nothing consumed
    assert not c.holders[1].ledger.contains(presig.presignature_id)


def test_no_policy_signs_nothing_and_is_audited(c):
    """Default deny: an operator the key's policy does not name signs nothing, and the refusal is on record."""
    presig = c.presign("k1", [1, 2])[0]
    request = c.principals.raw("k1", [DIGEST])  # no operator policy was ever set for k1 in this module
    with pytest.raises(PolicyDenied) as err:
        c.holders[1].partial_sign(request, [(0, presig.presignature_id)])
    assert err.value.rule == "policy.none"
    assert not c.holders[1].ledger.contains(presig.presignature_id)
    last = _records(c, 1)[-1]
    assert last["decision"] == "deny" and last["rule"] == "policy.none" and last["principal"] == "local-operator"


def test_an_agent_cannot_send_raw_batches_and_an_operator_no_transactions(c, tmp_path):
    agent = nacl.signing.SigningKey.generate()
    registry = PrincipalRegistry(principals=c.principals.creds.principals() + (
        Principal.from_signing_key("bot", "agent", agent),), admin_quorum=1, version=2)
    c.call(1, "set_principals", c.principals.creds.admin_request(RequestKind.SET_PRINCIPALS, body=registry.to_bytes()))
    from mpc_ray.node.raw_batch import encode_raw_batch

    request = sign_request(agent, principal_id="bot", kind="sign", format="raw_batch", body=encode_raw_batch([DIGEST]),
                           key_id="k1", chain="mpc-ray:raw", now=__import__("time").time())
    presig = c.presign("k1", [1, 2])[0]
    with pytest.raises(Unauthorized) as err:
        c.holders[1].partial_sign(request, [(0, presig.presignature_id)])
    assert err.value.rule == "auth.not_operator"
    assert not c.holders[1].ledger.contains(presig.presignature_id)


def test_each_message_of_a_batch_signs_a_bounded_number_of_times_per_holder(c):
    """A retry after a co-signer failed may sign a message again with a fresh presignature, a few times at most;
    every signing is audited with the presignature it consumed."""
    from mpc_ray.node.authorized import MAX_SIGNINGS_PER_MESSAGE

    c.allow_operator("k1")
    presigs = c.presign("k1", [1, 3], count=MAX_SIGNINGS_PER_MESSAGE + 1)
    request = c.principals.raw("k1", [DIGEST])
    for presig in presigs[:-1]:
        c.holders[1].partial_sign(request, [(0, presig.presignature_id)])
    with pytest.raises(Unauthorized) as err:  # once more, with a fresh presignature
        c.holders[1].partial_sign(request, [(0, presigs[-1].presignature_id)])
    assert err.value.rule == "auth.replayed"
    assert not c.holders[1].ledger.contains(presigs[-1].presignature_id)
    signed = [r for r in _records(c, 1) if r["decision"] == "allow" and (r.get("intent") or {}).get("type") == "raw_batch"]
    assert [r["intent"]["presignature_ids"] for r in signed[-MAX_SIGNINGS_PER_MESSAGE:]] == [
        [p.presignature_id.hex()] for p in presigs[:-1]]
    assert signed[-1]["intent"]["signed"] == [[0, hashlib.sha256(DIGEST).hexdigest()]]


def test_a_replaced_policy_stops_the_rest_of_a_batch(c):
    c.allow_operator("k1")
    presigs = c.presign("k1", [1, 2], count=2)
    request = c.principals.raw("k1", [DIGEST, DIGEST])
    c.holders[1].partial_sign(request, [(0, presigs[0].presignature_id)])
    from mpc_ray.node.policy import Policy, TxType

    stricter = Policy(key_id="k1", principal_id="local-operator", allowed_chains=("eip155:1",),
                      allowed_tx_types=(TxType.RAW_DIGEST,), version=__import__("time").time_ns() // 1000 + 1)
    c.holders[1].set_policy(c.principals.creds.admin_request(RequestKind.SET_POLICY, key_id="k1",
                                                             body=stricter.to_bytes()))
    with pytest.raises(PolicyDenied) as err:
        c.holders[1].partial_sign(request, [(1, presigs[1].presignature_id)])
    assert err.value.rule == "policy.changed"


def test_new_keys_need_the_admin_quorum(c):
    """Finding 2: create_key needed no admin request."""
    for params in ({"key_id": "k9", "threshold": 2, "approval": None},
                   {"key_id": "k9", "threshold": 2, "approval": c.principals.raw("k1", [DIGEST])}):
        for h in c.holders.values():
            with pytest.raises(Unauthorized):
                h.begin([BeginRequest("keygen", b"keygen:x" + bytes(8), [1, 2, 3], params)])
    other = c.principals.approval(RequestKind.CREATE_KEY, key_id="k9", scheme="ecdsa-secp256k1", threshold=1,
                                  parties=[1, 2, 3])
    with pytest.raises(PolicyDenied) as err:  # approved for threshold 1, asked for 2
        c.holders[1].begin([BeginRequest("keygen", b"keygen:y" + bytes(8), [1, 2, 3],
                                         {"key_id": "k9", "threshold": 2, "approval": other})])
    assert err.value.rule == "admin.params"
    intruder = TestPrincipals()  # a well-formed approval by admins this committee does not know
    with pytest.raises(Unauthorized):
        c.holders[1].begin([BeginRequest("keygen", b"keygen:z" + bytes(8), [1, 2, 3],
                                         intruder.keygen_params("k9", 2, [1, 2, 3]))])
    assert c.holders[1].store.get("key-k9") is None


def test_a_resharing_to_the_callers_holders_is_refused(c):
    """Finding 2: add_node(4, 5) then reshare_key(parties=[1..5], threshold=2) moved the key to the caller's holders.
    Without an approval naming that committee, no holder takes part, old or new."""
    c.add(4, 5)
    params = {"key_id": "k1", "epoch": c.holders[1].key_epoch("k1") + 1, "scheme": "ecdsa-secp256k1",
              "dealers": [1, 2], "new_parties": [1, 2, 3, 4, 5], "new_threshold": 2, "old_public": b""}
    approved_other = c.principals.approval(RequestKind.RESHARE_KEY, key_id="k1", parties=[1, 2, 3, 4, 5], threshold=3)
    for approval, error in ((None, Unauthorized), (approved_other, PolicyDenied)):
        for p in (1, 2, 4):
            with pytest.raises(error):
                c.holders[p].begin([BeginRequest("reshare", b"reshare:" + bytes(8), [1, 2, 3, 4, 5],
                                                 {**params, "approval": approval})])
    with pytest.raises(Unauthorized):  # a refresh as well
        c.holders[1].begin([BeginRequest("refresh", b"refresh:" + bytes(8), [1, 2, 3],
                                         {"key_id": "k1", "epoch": 1, "approval": None})])


def test_directory_changes_and_aux_info_need_the_admin_quorum(c, tmp_path):
    newcomer = ShareHolder(7, str(tmp_path / "party-7"), kdf="min").public_identity()
    before = dict(c.holders[1].directory)
    with pytest.raises(Unauthorized):
        c.holders[1].extend_directory(None, [newcomer])
    wrong = c.principals.directory_approval([ShareHolder(8, str(tmp_path / "p8"), kdf="min").public_identity()])
    with pytest.raises(PolicyDenied):  # approved another member
        c.holders[1].extend_directory(wrong, [newcomer])
    assert c.holders[1].directory == before
    with pytest.raises(Unauthorized):  # aux info is set up once; even the coordinator cannot replace it
        c.principals.begin(c.holders[1], [BeginRequest("aux", b"aux:" + bytes(8), [1, 2, 3], {"level": "112"})])


def test_backup_and_restore_need_the_admin_quorum(c):
    with pytest.raises(Unauthorized):
        c.holders[2].backup(None, "a long enough passphrase", "min")
    with pytest.raises(PolicyDenied):  # an approval for another party's holder
        c.holders[2].backup(c.principals.approval(RequestKind.BACKUP, party=3), "a long enough passphrase", "min")
    blob = c.holders[2].backup(c.principals.approval(RequestKind.BACKUP, party=2), "a long enough passphrase", "min")
    with pytest.raises(Unauthorized):
        c.holders[2].restore(None, blob, "a long enough passphrase")
    with pytest.raises(PolicyDenied):  # approved for another blob
        c.holders[2].restore(c.principals.approval(RequestKind.RESTORE, party=2, backup_sha256="00" * 32),
                             blob, "a long enough passphrase")
    kinds = [r["kind"] for r in _records(c, 2) if r["decision"] == "allow"]
    assert "backup" in kinds
