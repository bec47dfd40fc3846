"""FROST on the runtime. In-process share holders driven as the coordinator drives them (fast, no Ray): DKG,
commit, sign and aggregate, nonce single use across restarts, bad input consuming nothing, culprit naming, nothing
secret at rest. Then one small module-scoped Ray cluster: Ed25519 and BIP340 keys end to end, with a node killed."""

from __future__ import annotations

import copy
import pickle

import coincurve
import pytest
from nacl.signing import VerifyKey

from mpc_ray.coordinator.frost_engine import combine, fast_verify
from mpc_ray.coordinator.sessions import new_sid
from mpc_ray.crypto.ed25519 import FIELD_P, EdPoint
from mpc_ray.crypto.frost_suites import get_suite
from mpc_ray.errors import InvalidInput, PolicyDenied, ProtocolAbort
from mpc_ray.node.frost_holder import nonce_kind
from mpc_ray.node.frost_records import (
    commitment_from_bytes,
    commitment_list_from_bytes,
    key_package_from_bytes,
    key_package_to_bytes,
    nonce_record_from_bytes,
    public_package_from_bytes,
    public_package_to_bytes,
    restore_nonces,
)
from mpc_ray.node.holder import BeginRequest, ShareHolder
from mpc_ray.node.store import AlreadyConsumed, SecretVault
from mpc_ray.protocols.frost import prepare, verify_signature_share
from tests.support.committee import Committee, InProcessHandle, get_in_process

SCHEMES = ["eddsa-ed25519", "schnorr-bip340"]
MSG = b"solana tx message bytes: transfer 5 SOL"


def independent_verify(scheme: str, pk: bytes, msg: bytes, sig: bytes) -> None:
    if scheme == "eddsa-ed25519":
        VerifyKey(pk).verify(msg, sig)
    else:
        assert coincurve.PublicKeyXOnly(pk).verify(sig, msg)


@pytest.fixture(scope="module")
def committee(tmp_path_factory):
    c = Committee(tmp_path_factory.mktemp("frost-holders"))
    c.dkg("ed", "eddsa-ed25519")
    c.dkg("tr", "schnorr-bip340")
    return c


KEY_OF = {"eddsa-ed25519": "ed", "schnorr-bip340": "tr"}


# records ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", SCHEMES)
def test_records_round_trip_and_nonces_are_not_picklable(committee, scheme):
    key_id = KEY_OF[scheme]
    h = committee.holders[2]
    kp = h.frost_signer.key_package(key_id)
    assert key_package_from_bytes(key_package_to_bytes(kp)) == kp
    pub = committee.keys[key_id].public_package
    assert public_package_from_bytes(public_package_to_bytes(pub)) == pub
    ((nid, entry),) = committee.principals.commit(h, key_id, 1)
    rec = nonce_record_from_bytes(h.store.get(SecretVault.entry_name(nonce_kind(key_id), nid)))
    assert "redacted" in repr(rec) and rec.commitment == entry
    nonces = restore_nonces(rec, trusted_points=False)  # the documented way back from bytes
    assert nonces.commitments == commitment_from_bytes(get_suite(scheme), entry)
    for attempt in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError):
            attempt(nonces)
    with pytest.raises(InvalidInput):
        key_package_from_bytes(b"\x93garbage")


def test_nonce_kind_fits_the_vault_rule():
    assert nonce_kind("key-0123456789abcdef") == "nonce-key-0123456789abcdef"
    long = nonce_kind("A" * 64)
    assert long.startswith("nonceh-") and len(long) == 32
    assert nonce_kind("Ab") != nonce_kind("ab")


# end to end in process -------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("signers", [(1, 2), (1, 3), (2, 3), (1, 2, 3)])
def test_dkg_commit_sign_aggregate(committee, scheme, signers):
    key_id = KEY_OF[scheme]
    key = committee.keys[key_id]
    assert len(key.public_key) == 32
    msgs = [MSG, b"", b"m" * 1000]
    sigs, got, lists, answers = committee.frost_sign_batch(key_id, signers, msgs)
    for m, sig in zip(msgs, sigs):
        independent_verify(scheme, key.public_key, m, sig)
    # the holders' split computation gives exactly the RFC session and shares
    suite = key.suite
    for n, m in enumerate(msgs):
        session = prepare(suite, key.public_package.group_key, commitment_list_from_bytes(suite, lists[n]), m)
        for p in signers:
            z, r = answers[p][n]
            assert r == suite.group.serialize_element(session.group_commitment)
            assert verify_signature_share(suite, p, key.public_package.verifying_shares[p], z, session,
                                          key.public_package.group_key, m)


def test_bip340_with_taproot_tweak(committee):
    key = committee.keys["tr"]
    for tweak in (b"", bytes(range(32))):
        (sig,), *_ = committee.frost_sign_batch("tr", (1, 3), [MSG], tap_tweak=tweak)
        output_key = key.verify_key(tweak)
        assert output_key != key.public_key
        assert coincurve.PublicKeyXOnly(output_key).verify(sig, MSG)
    with pytest.raises(InvalidInput):
        committee.frost_sign_batch("ed", (1, 2), [MSG], tap_tweak=b"")


def test_long_and_capitalised_key_ids(committee):
    key_id = "Treasury_Hot-Wallet-" + "x" * 40
    key = committee.dkg(key_id, "eddsa-ed25519")
    (sig,), *_ = committee.frost_sign_batch(key_id, (2, 3), [MSG])
    VerifyKey(key.public_key).verify(MSG, sig)


# single use and validation ----------------------------------------------------------------------------------
def test_nonce_single_use_across_holder_restart(committee):
    c = committee
    _, got, lists, _ = c.frost_sign_batch("ed", (1, 3), [MSG])
    nid = got[3][0][0]
    with pytest.raises(AlreadyConsumed):  # a fresh request for another message, with the spent nonce
        c.holders[3].frost_sign(c.raw("ed", [b"another message"]), [(0, nid, lists[0])])
    c.restart(3)  # consumption is durable: the restarted holder still refuses
    with pytest.raises(AlreadyConsumed):
        c.holders[3].frost_sign(c.raw("ed", [b"another message"]), [(0, nid, lists[0])])
    assert nid in c.holders[3].consumed_ids()
    # an unconsumed nonce survives the restart (it lives in the encrypted store)
    got, lists = c.commit("ed", (1, 3))
    c.restart(1)
    request = c.raw("ed", [MSG])
    shares = {p: c.holders[p].frost_sign(request, [(0, got[p][0][0], lists[0])])[0] for p in (1, 3)}
    sig, _ = combine(c.keys["ed"], MSG, lists[0], {p: s[0] for p, s in shares.items()})
    VerifyKey(c.keys["ed"].public_key).verify(MSG, sig)
    # the same nonce twice in one call: refused before anything is consumed
    got, lists = c.commit("ed", (1, 3))
    with pytest.raises(InvalidInput):
        c.holders[1].frost_sign(c.raw("ed", [MSG, b"x"]), [(0, got[1][0][0], lists[0]), (1, got[1][0][0], lists[0])])
    assert got[1][0][0] not in c.holders[1].consumed_ids()


def _operator_request(c: Committee, key_id: str, body: bytes):
    """A raw_batch request with a hand-made body, signed by the committee's operator."""
    import time

    from mpc_ray.client.credentials import RAW_CHAIN
    from mpc_ray.node.principals import RequestFormat, RequestKind, sign_request

    op_id, op_key = c.principals.creds.operator
    return sign_request(op_key, principal_id=op_id, kind=RequestKind.SIGN, format=RequestFormat.RAW_BATCH, body=body,
                        key_id=key_id, chain=RAW_CHAIN, now=time.time())


def _torsioned(enc: bytes) -> bytes:
    from nacl import bindings

    return bindings.crypto_core_ed25519_add(enc, (FIELD_P - 1).to_bytes(32, "little"))  # + a point of order 2


@pytest.mark.parametrize("scheme", SCHEMES)
def test_bad_input_consumes_nothing(committee, scheme):
    c = committee
    key_id = KEY_OF[scheme]
    g = get_suite(scheme).group
    es, ss = g.element_size, g.scalar_size
    got, lists = c.commit(key_id, (1, 2), 2)
    h = c.holders[1]
    nid, good = got[1][0][0], lists[0]
    other_nid, second_nid = got[2][0][0], got[1][1][0]
    size = ss + 2 * es
    own, peer = good[:size], good[size:]
    bad_point = _torsioned(peer[ss + es :]) if scheme == "eddsa-ed25519" else b"\x02" + b"\xff" * 32
    other_point = g.serialize_element(g.base_mul(12345))
    bad_items = [
        [("0", nid, good)],  # the index is not an int
        [(0, nid[:16], good)],
        [(0, other_nid, good)],  # someone else's nonce id
        [(0, nid, peer + own)],  # unsorted
        [(0, nid, peer)],  # own commitment missing (and below threshold)
        [(0, nid, own + own)],  # duplicate identifier
        [(0, nid, good[:-1])],  # truncated
        [(0, nid, own[:ss] + other_point + own[ss + es :] + peer)],  # own commitment changed
        [(0, nid, own + peer[: ss + es] + bad_point)],  # peer binding point invalid
        [(0, nid, own + peer[:ss] + bad_point + peer[ss + es :])],  # peer hiding point invalid
        [(0, nid, good, b"\x01" * 31)],  # a tweak is the request's, not the coordinator's
        [(0, nid, good), (1, second_nid, b"")],  # one bad item fails the whole call
        "not a list",
    ]
    ledger_before = len(h.consumed_ids())
    count_before = h.frost_signer.nonce_count(key_id)
    for items in bad_items:  # a fresh request each: an index a holder tried once is not signed again
        with pytest.raises((InvalidInput, AlreadyConsumed)):
            h.frost_sign(c.raw(key_id, [MSG, MSG]), items)
    bad_tweak = bytes([1, 31]) + b"\x01" * 31 + (1).to_bytes(4, "big") + len(MSG).to_bytes(4, "big") + MSG
    with pytest.raises(InvalidInput):  # a 31-byte tweak, signed by the operator: the holder decodes and refuses
        h.frost_sign(_operator_request(c, key_id, bad_tweak), [(0, nid, good)])
    assert len(h.consumed_ids()) == ledger_before and h.frost_signer.nonce_count(key_id) == count_before
    with pytest.raises(PolicyDenied):  # a key this holder has no share (and no policy) of
        h.frost_sign(c.principals.raw("no-such-key", [MSG]), [(0, nid, good)])
    # the nonce is still good
    request = c.raw(key_id, [MSG])
    shares = {p: c.holders[p].frost_sign(request, [(0, got[p][0][0], good)])[0] for p in (1, 2)}
    sig, _ = combine(c.keys[key_id], MSG, good, {p: s[0] for p, s in shares.items()}, {p: s[1] for p, s in shares.items()})
    independent_verify(scheme, c.keys[key_id].public_key, MSG, sig)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_tampered_share_names_the_culprit(committee, scheme):
    c = committee
    key_id = KEY_OF[scheme]
    key = c.keys[key_id]
    got, lists = c.commit(key_id, (2, 3))
    request = c.raw(key_id, [MSG])
    answers = {p: c.holders[p].frost_sign(request, [(0, got[p][0][0], lists[0])])[0] for p in (2, 3)}
    shares = {p: a[0] for p, a in answers.items()}
    rs = {p: a[1] for p, a in answers.items()}
    bad = dict(shares)
    bad[3] = (bad[3] + 1) % key.suite.group.order
    with pytest.raises(ProtocolAbort) as exc:
        combine(key, MSG, lists[0], bad, rs)
    assert exc.value.culprit == 3 and exc.value.check == "frost.sign.share"
    with pytest.raises(ProtocolAbort) as exc:
        combine(key, MSG, lists[0], {2: shares[2], 3: key.suite.group.order}, rs)
    assert exc.value.culprit == 3
    # a wrong R from a signer only costs the slow path; the signature is right and the liar is reported
    lied = dict(rs)
    lied[2] = key.suite.group.serialize_element(key.suite.group.base_mul(7))
    sig, liars = combine(key, MSG, lists[0], shares, lied)
    assert liars == [2] and fast_verify(key.suite, key.public_key, MSG, sig)


def test_workers_do_not_serve_frost(committee):
    worker = ShareHolder(1, str(committee.root / "party-1"), kdf="min", role="worker")
    with pytest.raises(InvalidInput):
        worker.frost_commit("ed", 1)
    with pytest.raises(InvalidInput):
        worker.frost_sign(committee.raw("ed", [MSG]), [(0, bytes(32), b"")])
    with pytest.raises(InvalidInput):
        worker.begin([BeginRequest("frost-dkg", new_sid("frost-dkg"), [1, 2, 3],
                                   committee.principals.keygen_params("w", 2, [1, 2, 3], "eddsa-ed25519"))])


def test_dkg_refuses_bad_params(committee):
    h, p = committee.holders[1], committee.principals  # approved: refused for the parameters, not the approval
    for params in (p.keygen_params("ed", 2, [1, 2, 3], "eddsa-ed25519"),  # exists
                   {**p.keygen_params("new", 2, [1, 2, 3], "eddsa-ed25519"), "scheme": "ecdsa-secp256k1"},
                   p.keygen_params("new", 4, [1, 2, 3], "eddsa-ed25519"),
                   {**p.keygen_params("new", 2, [1, 2, 3], "eddsa-ed25519"), "key_id": "bad id!"}):
        with pytest.raises(InvalidInput):
            h.begin([BeginRequest("frost-dkg", new_sid("frost-dkg"), [1, 2, 3], params)])


def test_no_nonce_or_share_at_rest_or_relayed(committee):
    c = committee
    c.commit("ed", (1, 2, 3), 3)
    c.commit("tr", (1, 2, 3), 3)
    secrets_: dict[str, bytes] = {}
    for i, h in c.holders.items():
        for key_id, kp in [(k, h.frost_signer.key_package(k)) for k in KEY_OF.values()]:
            g = kp.suite.group
            secrets_[f"share_{key_id}_{i}"] = g.serialize_scalar(kp.signing_share)
            for nid in h.vault.ids(nonce_kind(key_id)):
                rec = nonce_record_from_bytes(h.store.get(SecretVault.entry_name(nonce_kind(key_id), nid)))
                secrets_[f"d_{key_id}_{i}_{nid.hex()[:8]}"] = rec.hiding
                secrets_[f"e_{key_id}_{i}_{nid.hex()[:8]}"] = rec.binding
    assert sum(k.startswith("d_") for k in secrets_) >= 18
    disk = b"".join(p.read_bytes() for p in c.root.rglob("*") if p.is_file() and p.name != "node.secret")
    relayed = b"".join(c.relayed)
    assert len(relayed) > 5_000
    for name, value in secrets_.items():
        assert value not in disk, f"{name} found at rest"
        assert value not in relayed, f"{name} found in a relayed envelope"


def test_ed25519_mul_validation_matches_libsodium_rules():
    from mpc_ray.node.frost_holder import _ed25519_mul_validating

    p = EdPoint.base_mul(99)
    assert _ed25519_mul_validating(p.to_bytes(), 5) == p * 5
    for bad in (_torsioned(p.to_bytes()), (1).to_bytes(32, "little"), (1 + FIELD_P).to_bytes(32, "little"),
                b"\xff" * 32):
        with pytest.raises(ValueError):
            _ed25519_mul_validating(bad, 5)


# the coordinator's FROST logic over in-process holders (Ray calls replaced by direct calls) --------------------


@pytest.fixture
def coordinator(committee, monkeypatch):
    import ray

    from mpc_ray.coordinator.coordinator import Coordinator, CoordinatorConfig

    monkeypatch.setattr(ray, "get", get_in_process)
    handles = {p: InProcessHandle(h) for p, h in committee.holders.items()}
    coord = Coordinator(CoordinatorConfig(parties=[1, 2, 3], refill=False, pool_depth=8, quorum_wait_s=0.0,
                                          coordinator_seed=committee.principals.creds.coordinator_seed), "test",
                        holders=handles.__getitem__)
    coord.handles = handles
    coord.committee = committee  # its principals approve new keys and sign the operator's raw batches
    return coord


def _create_key(c, key_id: str, scheme: str) -> dict:
    """`create_key` with the admin approval a client adds, and the operator policy `sign_many` needs."""
    approval = c.committee.principals.keygen_params(key_id, 2, [1, 2, 3], scheme)["approval"]
    info = c.create_key(key_id, scheme, 2, approval)
    c.committee.allow_operator(key_id)
    return info


def _sign_many(c, key_id: str, msgs) -> list:
    return c.sign_many(key_id, c.committee.principals.raw(key_id, msgs))


def _verify_all(key_info, msgs, sigs):
    assert len(sigs) == len(msgs)
    for m, s in zip(msgs, sigs):
        independent_verify(key_info["scheme"], key_info["public_key"], m, s.to_bytes())


@pytest.mark.parametrize("scheme", SCHEMES)
def test_coordinator_creates_keys_fills_pools_and_signs(coordinator, scheme):
    c = coordinator
    info = _create_key(c, f"coord-{scheme[:5]}", scheme)
    assert len(info["public_key"]) == 32 and info["scheme"] == scheme
    assert c.frost.refill_once() == 3 * 8 and c.frost.refill_once() == 0
    assert c.pool_depths() == {f"{info['key_id']}:{p}": 8 for p in (1, 2, 3)}
    c.frost.chunk = 16
    msgs = [b"coordinated %d" % i for i in range(40)]  # > pool depth (topped up on demand), three chunks
    sigs = _sign_many(c, info["key_id"], msgs)
    _verify_all(info, msgs, sigs)
    assert all(s.scheme == scheme for s in sigs)
    assert c.status()["keys"][info["key_id"]]["scheme"] == scheme
    with pytest.raises(InvalidInput):
        c.create_key(info["key_id"], "ecdsa-secp256k1", 2)
    with pytest.raises(InvalidInput):  # not an operator's request, or a request for another key
        c.sign_many(info["key_id"], [b"text"])
    with pytest.raises(InvalidInput):
        c.sign_many(info["key_id"], c.committee.principals.raw("ed", [b"text"]))


def test_coordinator_fails_over_when_a_holder_dies_mid_batch(coordinator):
    c = coordinator
    info = _create_key(c, "coord-failover", "eddsa-ed25519")
    c.frost.refill_once()
    c.handles[1].dead = True  # the deepest-pool choice picks {1, 2}; 1 does not answer
    msgs = [b"failover %d" % i for i in range(20)]
    sigs = _sign_many(c, info["key_id"], msgs)
    _verify_all(info, msgs, sigs)
    assert not c.health.available(1)
    c.handles[1].dead = False


def test_coordinator_excludes_a_party_that_sends_bad_shares(coordinator):
    c = coordinator
    info = _create_key(c, "coord-culprit", "schnorr-bip340")
    order = get_suite("schnorr-bip340").group.order

    def tamper(fn):
        def bad(request, items):
            return [((z + 1) % order, r) for z, r in fn(request, items)]
        return bad

    c.handles[2].hooks["frost_sign"] = tamper
    msgs = [b"culprit %d" % i for i in range(5)]
    sigs = _sign_many(c, info["key_id"], msgs)
    _verify_all(info, msgs, sigs)
    assert c.status()["excluded"] == {2: "frost.sign.share"}


def test_coordinator_blames_a_party_that_hands_out_bad_commitments(coordinator):
    c = coordinator
    info = _create_key(c, "coord-badcom", "eddsa-ed25519")

    def bad_points(fn):
        def commit(key_id, count, grant=None):
            return [(nid, entry[:64] + _torsioned(entry[64:])) for nid, entry in fn(key_id, count, grant)]
        return commit

    c.handles[1].hooks["frost_commit"] = bad_points
    msgs = [b"bad commitment %d" % i for i in range(4)]
    sigs = _sign_many(c, info["key_id"], msgs)
    _verify_all(info, msgs, sigs)
    assert c.status()["excluded"] == {1: "frost.sign.commitment_point"} and c.health.available(2)


# on Ray: one small cluster for the module (kept short: ~30 s on 2 cores, most of it starting Ray) ------------
@pytest.fixture(scope="module")
def mpc():
    import mpc_ray

    # no presign workers: FROST needs none (and their store opening races the holders' first writes, see report)
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=16,
                               workers_per_node=0) as cluster:
        yield cluster


def _sign_retrying(mpc, key_id, msg, wait_s=60.0):
    import time

    from mpc_ray.errors import MpcError

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return mpc.sign(key_id, msg)
        except MpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_ray_ed25519_and_bip340_sign_and_survive_a_node_kill(mpc):
    ed = mpc.create_key("eddsa-ed25519")
    tr = mpc.create_key("schnorr-bip340")
    assert (ed.scheme, len(ed.public_key), ed.threshold, ed.parties) == ("eddsa-ed25519", 32, 2, 3)
    assert (tr.scheme, len(tr.public_key)) == ("schnorr-bip340", 32)
    msgs = [b"transfer %d lamports" % i for i in range(40)]
    for key in (ed, tr):
        sig = mpc.sign(key.key_id, MSG)
        assert sig.scheme == key.scheme and len(sig.to_bytes()) == 64
        independent_verify(key.scheme, key.public_key, MSG, sig.to_bytes())
        sigs = mpc.sign_many(key.key_id, msgs)  # more than the pool depth: topped up on demand
        for m, s in zip(msgs, sigs):
            independent_verify(key.scheme, key.public_key, m, s.to_bytes())
        assert len({s.to_bytes()[:32] for s in sigs}) == len(sigs)  # a fresh R every time
        with pytest.raises(AttributeError):
            sig.der()
    # BIP341 key-path signing: the output key from the x-only internal key (lift_x, then the TapTweak)
    from mpc_ray.crypto.secp256k1 import Point
    from mpc_ray.protocols.frost import public_key_bytes

    output_key = public_key_bytes("schnorr-bip340", Point.from_bytes(b"\x02" + tr.public_key), b"")
    sig = mpc.sign(tr.key_id, MSG, tap_tweak=b"")
    assert coincurve.PublicKeyXOnly(output_key).verify(sig.to_bytes(), MSG)
    with pytest.raises(InvalidInput):
        mpc.sign(ed.key_id, MSG, tap_tweak=b"")
    st = mpc.status()
    assert st["keys"][ed.key_id]["scheme"] == "eddsa-ed25519"
    mpc.wait_for_pools(ed.key_id, 8, timeout=60)
    assert {f"{ed.key_id}:{p}" for p in (1, 2, 3)} <= set(mpc.pool_depths())
    with pytest.raises(InvalidInput):
        mpc.create_key("eddsa-ed25519", key_id=ed.key_id)  # exists

    mpc.kill_node(3)
    for key in (ed, tr):
        for i in range(3):
            m = b"after the kill %d" % i
            independent_verify(key.scheme, key.public_key, m, _sign_retrying(mpc, key.key_id, m).to_bytes())
    # bring 3 back and take 1 away: only {2, 3} can sign, which needs party 3's reloaded holder and nonces
    mpc.restart_node(3)
    mpc.kill_node(1)
    for key in (ed, tr):
        m = b"signed by 2 and 3"
        independent_verify(key.scheme, key.public_key, m, _sign_retrying(mpc, key.key_id, m, 90).to_bytes())
