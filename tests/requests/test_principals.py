"""Principals and signed requests: every auth.* denial, the durable nonce ledger, admin quorums."""

from __future__ import annotations

import threading

import nacl.signing
import pytest

from mpc_ray.errors import InvalidInput, PolicyDenied
from mpc_ray.node.principals import (
    Principal,
    PrincipalRegistry,
    RequestVerifier,
    SignedRequest,
    cosign,
    registry_from_request,
    sign_request,
)
from mpc_ray.node.store import ConsumedLedger

NOW = 1_700_000_000.0


@pytest.fixture
def keys():
    return {name: nacl.signing.SigningKey.generate() for name in ("root", "ops", "audit", "bot", "mallory")}


@pytest.fixture
def registry(keys):
    return PrincipalRegistry(
        principals=(
            Principal.from_signing_key("root", "admin", keys["root"]),
            Principal.from_signing_key("ops", "admin", keys["ops"]),
            Principal.from_signing_key("audit", "admin", keys["audit"]),
            Principal.from_signing_key("bot", "agent", keys["bot"]),
        ),
        admin_quorum=1,
    )


@pytest.fixture
def ledger(tmp_path):
    with ConsumedLedger(tmp_path / "nonces.ledger") as led:
        yield led


def _sign(keys, who="bot", kind="sign", body=b"\x02\xc0", fmt="evm_tx", now=NOW, **kw):
    return sign_request(
        keys[who], principal_id=who, kind=kind, format=fmt, body=body, key_id="k1", chain="eip155:1", now=now, **kw
    )


def _denied(verifier, req, rule, now=NOW):
    with pytest.raises(PolicyDenied) as e:
        verifier.verify(req, now)
    assert e.value.rule == rule, e.value
    return e.value


def test_valid_agent_request_is_verified_and_nonce_consumed(keys, registry, ledger):
    v = RequestVerifier(registry, ledger)
    req = _sign(keys)
    out = v.verify(req, NOW)
    assert out.principal.id == "bot" and out.signers == ("bot",)
    assert out.request_digest == req.digest() and len(out.request_digest) == 32
    assert len(ledger) == 1
    # the ledger holds a domain-separated id, never the raw nonce (which could collide with a presignature id)
    assert not ledger.contains(req.nonce)


def test_unsigned_and_not_signed_by_submitter(keys, registry, ledger):
    v = RequestVerifier(registry, ledger)
    req = _sign(keys)
    _denied(v, req.model_copy(update={"signatures": ()}), "auth.unsigned")
    # signed only by someone else (a registered admin) under the bot's name
    other = cosign(req.model_copy(update={"signatures": ()}), "root", keys["root"])
    _denied(v, other, "auth.unsigned")
    assert len(ledger) == 0


def test_expired_and_too_far(keys, registry, ledger):
    v = RequestVerifier(registry, ledger, max_ttl_s=600)
    req = _sign(keys, ttl_s=60)
    _denied(v, req, "auth.expired", now=NOW + 60)
    _denied(v, req, "auth.expired", now=NOW + 10_000)
    far = _sign(keys, ttl_s=3600)
    _denied(v, far, "auth.expiry_too_far")
    assert len(ledger) == 0
    v.verify(req, NOW + 59)  # still valid a second before expiry


def test_replay_rejected_also_after_reopening_ledger(keys, registry, tmp_path):
    path = tmp_path / "n.ledger"
    req = _sign(keys)
    with ConsumedLedger(path) as led:
        v = RequestVerifier(registry, led)
        v.verify(req, NOW)
        _denied(v, req, "auth.replayed")
    with ConsumedLedger(path) as led:  # node restart
        v = RequestVerifier(registry, led)
        _denied(v, req, "auth.replayed")
        # same nonce, re-signed with other content: still a replay of the nonce
        again = _sign(keys, body=b"\x02\xc1\x80", nonce=req.nonce)
        _denied(v, again, "auth.replayed")


def test_concurrent_duplicates_exactly_one_wins(keys, registry, ledger):
    v = RequestVerifier(registry, ledger)
    req = _sign(keys)
    results = []

    def go():
        try:
            v.verify(req, NOW)
            results.append("ok")
        except PolicyDenied as e:
            results.append(e.rule)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["auth.replayed"] * 7 + ["ok"]


def test_forged_and_tampered_signatures(keys, registry, ledger):
    v = RequestVerifier(registry, ledger)
    forged = sign_request(
        keys["mallory"],
        principal_id="bot",
        kind="sign",
        format="evm_tx",
        body=b"\x02\xc0",
        key_id="k1",
        chain="eip155:1",
        now=NOW,
    )
    _denied(v, forged, "auth.bad_signature")
    good = _sign(keys)
    for field, value in [
        ("body", b"\x02\xc1\x80"),
        ("key_id", "k2"),
        ("chain", "eip155:8453"),
        ("expiry", good.expiry - 1),
        ("nonce", bytes(32)),
        ("format", "raw_digest"),
    ]:
        tampered = SignedRequest.model_validate({**good.model_dump(), field: value}, strict=False)
        _denied(v, tampered, "auth.bad_signature")
    bad_len = good.model_copy(update={"signatures": (("bot", good.signatures[0][1][:63]),)})
    _denied(v, bad_len, "auth.bad_signature")
    assert len(ledger) == 0
    v.verify(good, NOW)  # the untouched original still passes: failed checks burned no nonce


def test_failed_checks_do_not_burn_the_nonce(keys, registry, ledger):
    v = RequestVerifier(registry, ledger)
    expired = _sign(keys, now=NOW - 1000, ttl_s=60)
    _denied(v, expired, "auth.expired")
    fresh = _sign(keys, nonce=expired.nonce)
    v.verify(fresh, NOW)


def test_unknown_principal_and_unknown_cosigner(keys, registry, ledger):
    v = RequestVerifier(registry, ledger)
    stranger = sign_request(
        keys["mallory"], principal_id="mallory", kind="sign", format="evm_tx", body=b"x", key_id="k1", now=NOW
    )
    _denied(v, stranger, "auth.unknown_principal")
    withstranger = cosign(
        _sign(keys, who="root", kind="set_policy", fmt="json", body=b"{}"), "mallory", keys["mallory"]
    )
    _denied(v, withstranger, "auth.unknown_principal")
    assert len(ledger) == 0


def test_admin_only_kinds(keys, registry, ledger):
    v = RequestVerifier(registry, ledger)
    for kind in ("set_policy", "create_key", "set_principals"):
        _denied(v, _sign(keys, who="bot", kind=kind, fmt="json", body=b"{}"), "auth.not_admin")
    # an admin request co-signed by an agent is refused too
    req = cosign(_sign(keys, who="root", kind="set_policy", fmt="json", body=b"{}"), "bot", keys["bot"])
    _denied(v, req, "auth.not_admin")
    assert len(ledger) == 0
    out = v.verify(_sign(keys, who="root", kind="set_policy", fmt="json", body=b"{}"), NOW)
    assert out.signers == ("root",)


def test_admin_quorum(keys, registry, ledger):
    reg = registry.model_copy(update={"admin_quorum": 2})
    v = RequestVerifier(reg, ledger)
    one = _sign(keys, who="root", kind="set_policy", fmt="json", body=b"{}")
    _denied(v, one, "auth.admin_quorum")
    twice = cosign(one, "root", keys["root"])  # the same admin twice counts once
    _denied(v, twice, "auth.admin_quorum")
    assert len(ledger) == 0
    two = cosign(one, "ops", keys["ops"])
    out = v.verify(two, NOW)
    assert out.signers[0] == "root" and set(out.signers) == {"root", "ops"}
    # quorum does not apply to agents' sign requests
    v.verify(_sign(keys), NOW)


def test_registry_validation_and_set_principals(keys, registry, ledger):
    with pytest.raises(ValueError):
        PrincipalRegistry(principals=registry.principals, admin_quorum=4)  # only 3 admins: lock-out
    with pytest.raises(ValueError):
        PrincipalRegistry(principals=registry.principals + (registry.principals[0],))
    with pytest.raises(InvalidInput):
        RequestVerifier([registry.principals[3]], ledger)  # no admin for the default quorum 1
    assert PrincipalRegistry.from_bytes(registry.to_bytes()) == registry
    new = PrincipalRegistry(
        principals=registry.principals + (Principal.from_signing_key("bot2", "agent", keys["mallory"]),),
        admin_quorum=2,
    )
    v = RequestVerifier(registry, ledger)
    req = _sign(keys, who="root", kind="set_principals", fmt="json", body=new.to_bytes())
    out = v.verify(req, NOW)
    v.update_registry(registry_from_request(out))
    assert v.registry.admin_quorum == 2
    _denied(v, _sign(keys, who="root", kind="set_policy", fmt="json", body=b"{}"), "auth.admin_quorum")
    v.verify(
        sign_request(
            keys["mallory"], principal_id="bot2", kind="sign", format="raw_digest", body=bytes(32), key_id="k1", now=NOW
        ),
        NOW,
    )


def test_canonical_encoding_is_injective_and_json_round_trips(keys, registry, ledger):
    a = _sign(keys).model_copy(update={"signatures": ()})
    b = SignedRequest.model_validate({**a.model_dump(), "key_id": "k", "chain": "eip155:11"}, strict=False)
    c = SignedRequest.model_validate({**a.model_dump(), "key_id": "k1", "chain": "eip155:1"}, strict=False)
    assert a.signing_bytes() == c.signing_bytes() != b.signing_bytes()
    # moving bytes between adjacent fields changes the encoding
    d = SignedRequest.model_validate({**a.model_dump(), "body": a.body + b"\x00"}, strict=False)
    assert d.signing_bytes() != a.signing_bytes()
    req = _sign(keys)
    wire = req.model_dump_json()
    back = SignedRequest.model_validate_json(wire)
    assert back == req
    RequestVerifier(registry, ledger).verify(back, NOW)


def test_malformed_requests_rejected_at_the_boundary(keys):
    good = _sign(keys).model_dump()
    for field, value in [
        ("nonce", b"short"),
        ("principal_id", "Bad Id"),
        ("kind", "drain"),
        ("expiry", -1),
        ("body", "not bytes"),
        ("chain", "ethereum mainnet"),
    ]:
        with pytest.raises(ValueError):
            SignedRequest.model_validate({**good, field: value})
    with pytest.raises(InvalidInput):
        sign_request(keys["bot"], principal_id="bot", kind="sign", format="evm_tx", body=b"", now=NOW, ttl_s=0)


def test_unpickling_revalidates_every_field(keys):
    """A request crosses Ray pickled, from a relay the holder does not trust: unpickling runs full validation, so a
    field no constructor would accept (built with model_construct, or forged bytes) never reaches a holder."""
    import pickle

    import ray.cloudpickle

    good = _sign(keys, derivation_path="m/0/7")
    for dumps in (pickle.dumps, ray.cloudpickle.dumps):
        back = pickle.loads(dumps(good))
        assert back == good and back.signing_bytes() == good.signing_bytes()
    fields = dict(good.__dict__)
    for field, value in [
        ("key_id", "../../etc"),
        ("nonce", b"short"),
        ("principal_id", "Bad Id"),
        ("expiry", -1),
        ("derivation_path", "m/00/7"),
        ("signatures", (("bot", "not bytes"),)),
    ]:
        forged = SignedRequest.model_construct(**{**fields, field: value})
        with pytest.raises(InvalidInput, match=field):
            pickle.loads(pickle.dumps(forged))


def test_a_request_of_another_kind_is_refused_before_its_nonce_is_spent(keys, registry, ledger):
    """An entry point names the kinds it serves: a set_policy relayed to the sign path (or a sign request sent to an
    admin entry point) is auth.wrong_kind before anything else is checked, so the real one still verifies."""
    v = RequestVerifier(registry, ledger)
    admin = _sign(keys, who="root", kind="set_policy", fmt="json", body=b"{}")
    with pytest.raises(PolicyDenied) as e:
        v.verify(admin, NOW, kinds=("sign",))
    assert e.value.rule == "auth.wrong_kind" and len(ledger) == 0
    agent = _sign(keys)
    with pytest.raises(PolicyDenied) as e:
        v.verify(agent, NOW, kinds=("set_policy", "set_principals"))
    assert e.value.rule == "auth.wrong_kind" and len(ledger) == 0
    assert v.verify(admin, NOW, kinds=("set_policy",)).signers == ("root",)
    assert v.verify(agent, NOW, kinds=("sign",)).principal.id == "bot"
    assert len(ledger) == 2


def test_registry_json_is_bounded_before_parsing(keys, registry, ledger):
    from mpc_ray.node.principals import MAX_JSON_DEPTH, VerifiedRequest

    deep = b'{"principals":' + b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1) + b"}"
    with pytest.raises(InvalidInput, match="nested deeper"):
        PrincipalRegistry.from_bytes(deep)
    root = registry.get("root")
    for body in (deep, registry.to_bytes().replace(b'{"principals"', b'{"admin_quorum":1,"principals"', 1)):
        req = _sign(keys, who="root", kind="set_principals", fmt="json", body=body)
        with pytest.raises(InvalidInput):  # too deep; a duplicate key (admin_quorum twice)
            registry_from_request(VerifiedRequest(req, root, ("root",), req.digest(), bytes(32)))
