"""Share holders driven in one process exactly as the coordinator drives them: durability, single use, and no
secret at rest or in what the coordinator relays."""

from __future__ import annotations

import hashlib

import pytest

from mpc_ray.coordinator.sessions import new_sid
from mpc_ray.crypto.secp256k1 import Point
from mpc_ray.errors import InvalidInput
from mpc_ray.node.holder import BeginRequest, ShareHolder
from mpc_ray.node.store import AlreadyConsumed
from mpc_ray.protocols.ecdsa.sign import combine, rerandomize_for
from tests.support.committee import Committee

DIGEST = hashlib.sha256(b"settle 10 USDT").digest()


@pytest.fixture(scope="module")
def committee(tmp_path_factory):
    c = Committee(tmp_path_factory.mktemp("holders"))
    c.run("aux", [1, 2, 3], {"level": "112"})
    out = c.run("keygen", [1, 2, 3], c.principals.keygen_params("k1", 2, [1, 2, 3]))
    c.public_key = Point.from_bytes(next(iter(out.values()))[1]["public_key"])
    c.principals.allow_operator(c.holders.values(), "k1")
    return c


def test_sign_survives_holder_restart_and_refuses_reuse(committee):
    c = committee
    pubs = c.presign("k1", [1, 3], 2)
    c.restart(3)  # the holder process dies; its shares and presignatures come back from its encrypted store
    assert c.holders[3].presignature_count("k1") >= 2
    request = c.principals.raw("k1", [DIGEST, DIGEST])
    partials = {i: c.holders[i].partial_sign(request, [(0, pubs[0].presignature_id)]) for i in (1, 3)}
    child = rerandomize_for(pubs[0], c.public_key, 0, DIGEST)
    sig = combine(pubs[0], c.public_key, DIGEST, {i: p[0] for i, p in partials.items()}, child)
    assert sig.s > 0
    with pytest.raises(AlreadyConsumed):  # the batch's second message, with the spent presignature
        c.holders[1].partial_sign(request, [(1, pubs[0].presignature_id)])
    c.restart(1)  # consumption is durable: a restart does not revive it
    with pytest.raises(AlreadyConsumed):
        c.holders[1].partial_sign(c.principals.raw("k1", [DIGEST]), [(0, pubs[0].presignature_id)])
    assert pubs[0].presignature_id in c.holders[1].consumed_ids()


def test_bad_digest_consumes_nothing(committee):
    c = committee
    pubs = c.presign("k1", [1, 2], 1)
    before = c.holders[1].presignature_count("k1")
    pid = pubs[0].presignature_id
    request = c.principals.raw("k1", [bytes(32), bytes(32)])
    for items in ([(0, b"short")], [(0, pid), (1,)], [(0, pid), 5], [(0, str(pid))], [(0, pid), (0, pid)],
                  [(-1, pid)], [(True, pid)], [(0, pid, 7)], [], "not a list", None):
        with pytest.raises(InvalidInput):  # a good first item is never consumed for a bad second one
            c.holders[1].partial_sign(request, items)
    with pytest.raises(InvalidInput):  # an index outside the batch
        c.holders[1].partial_sign(request, [(2, pid)])
    assert c.holders[1].presignature_count("k1") == before


def test_directory_is_trust_on_first_use(committee):
    other = ShareHolder(9, str(committee.root / "stranger"), kdf="min")
    forged = [h.public_identity() for h in committee.holders.values() if h.party != 2] + [other.public_identity()]
    with pytest.raises(InvalidInput):
        committee.holders[1].set_directory(forged)


def _secret_byte_strings(c) -> dict[str, bytes]:
    out = {}
    for i, h in c.holders.items():
        out[f"x_{i}"] = h.key("k1").x.to_bytes(32, "big")
        aux = h.aux()
        for name in ("p", "q"):
            v = int(getattr(aux.paillier, name))
            out[f"{name}_{i}"] = v.to_bytes((v.bit_length() + 7) // 8, "big")
        lam = int(aux.ring_pedersen.lam)
        out[f"lambda_{i}"] = lam.to_bytes((lam.bit_length() + 7) // 8, "big")
        from mpc_ray.node.records import presignature_from_bytes

        for pid in h.vault.ids("presig-k1"):
            rec = presignature_from_bytes(h.store.get(f"presig-k1.{pid.hex()}"))
            k, chi = rec.k, rec.chi
            out[f"k_{i}_{pid.hex()[:8]}"] = k.to_bytes(32, "big")
            out[f"chi_{i}_{pid.hex()[:8]}"] = chi.to_bytes(32, "big")
        out[f"identity_{i}"] = h.identity.to_secret_bytes()[1:33]
    return out


def test_no_secret_at_rest_or_in_what_the_coordinator_relays(committee):
    c = committee
    c.presign("k1", [2, 3], 2)
    secrets_ = _secret_byte_strings(c)
    assert len(secrets_) > 12
    disk = b"".join(p.read_bytes() for p in c.root.rglob("*") if p.is_file() and p.name != "node.secret")
    relayed = b"".join(c.relayed)
    assert len(relayed) > 100_000
    for name, value in secrets_.items():
        assert value not in disk, f"{name} found at rest"
        assert value not in relayed, f"{name} found in a relayed envelope"


def test_malformed_session_requests_from_the_coordinator_are_refused_typed(committee):
    """A BeginRequest (or a step) arrives unpickled from the coordinator, so no constructor checked it: each bad
    shape is InvalidInput before the holder keys a session on it or starts a protocol, and nothing is left open."""
    import dataclasses

    h = committee.holders[1]
    good = BeginRequest("presign", new_sid("presign"), [1, 2], {"key_id": "k1"})
    bad = [
        dataclasses.replace(good, sid=[1, 2]),  # unhashable: would have been a TypeError
        dataclasses.replace(good, sid=b""),
        dataclasses.replace(good, sid=b"x" * 129),
        dataclasses.replace(good, protocol=7),
        dataclasses.replace(good, parties=[1, 1]),
        dataclasses.replace(good, parties=[1, True]),
        dataclasses.replace(good, parties=[0, 1]),
        dataclasses.replace(good, parties="12"),
        dataclasses.replace(good, params={1: "k1"}),
        "not a request",
    ]
    before = set(h.sessions)
    for req in bad:
        with pytest.raises(InvalidInput):
            h.begin([req])
    for sid, envs in (([1], []), (b"", []), (good.sid, "not a list")):
        with pytest.raises(InvalidInput):
            h.step([(sid, envs)])
    assert set(h.sessions) == before
