"""The runtime on a real multi-node Ray cluster on this machine: holders pinned by label, killed and restarted.

One cluster for the whole module (starting Ray costs ~20 s on 2 cores).
"""

from __future__ import annotations

import hashlib
import threading
import time

import coincurve
import nacl.signing
import pytest
import ray

import mpc_ray
from mpc_ray.errors import InvalidInput, MpcError, PolicyDenied, Unauthorized
from mpc_ray.node.principals import sign_request
from mpc_ray.node.store import AlreadyConsumed
from tests.support.cluster import call_holder

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


ADMIN_KEY, AGENT_KEY = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()


def digest(i: int) -> bytes:
    return hashlib.sha256(b"payment %d" % i).digest()


@pytest.fixture(scope="module")
def mpc():
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=8) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def key(mpc):
    return mpc.create_key("ecdsa-secp256k1")  # the default protocol (DKLs23)


@pytest.fixture(scope="module")
def cggmp_key(mpc):
    """For what only CGGMP21 has: identification after a failed presigning."""
    key = mpc.create_key("ecdsa-secp256k1", protocol="cggmp21")
    assert key.protocol == "cggmp21"
    return key


ALL_R: list[int] = []  # r of every signature this module made: no presignature may ever be used twice


def verify(key, d, sig) -> bool:
    ALL_R.append(sig.r)
    return coincurve.PublicKey(key.public_key).verify(sig.der(), d, hasher=None)


def test_holders_are_pinned_to_their_party_nodes(mpc):
    for party in (1, 2, 3):
        labels = call_holder(party, "node_labels")
        assert labels.get("mpc-party") == str(party) and labels.get("region") == f"region-{party}"


def test_holder_actors_expose_only_the_entry_points(mpc):
    """A holder actor is the facade of node/actor.py: any driver can call its methods, so the ShareHolder methods
    that hand out shares and Paillier keys in process are not there."""
    from mpc_ray.node.actor import ENTRY_POINTS

    holder = ray.get_actor("mpc-holder-1", namespace="mpc-ray")
    for name in ("key", "aux", "authorization", "state", "protocols", "restart", "_node_secret", "vault", "store",
                 "identity"):
        with pytest.raises(AttributeError):
            getattr(holder, name)
    for name in ENTRY_POINTS:
        getattr(holder, name)  # each is an actor method
    assert call_holder(1, "has_aux") is True


def test_a_plain_ray_driver_gets_unauthorized_from_every_entry_point(mpc, key):
    """Issue 14: a driver with Ray access calls every holder entry point that uses a secret or changes state, with
    what it can make up but no principal's signature: each refuses with Unauthorized and nothing is consumed."""
    from mpc_ray.node.holder import BeginRequest
    from mpc_ray.node.principals import Principal, PrincipalRegistry

    mpc.wait_for_pools(key.key_id, 2, timeout=300)
    lease = ray.get(mpc._coordinator.lease_presignatures.remote(key.key_id, 1))
    from mpc_ray.protocols.ecdsa_protocols import ecdsa_protocol
    from mpc_ray.protocols.wire import decode

    pid = decode(lease["presignatures"][0], ecdsa_protocol(lease["protocol"]).public_type).presignature_id
    holder = ray.get_actor("mpc-holder-1", namespace="mpc-ray")
    identity = ray.get(holder.public_identity.remote())
    consumed = ray.get(holder.consumed_ids.remote())
    stranger = PrincipalRegistry(principals=(Principal.from_signing_key("me", "admin",
                                                                        nacl.signing.SigningKey.generate()),))
    begin = [BeginRequest(p, f"{p}:attacker".encode(), [1, 2, 3], params) for p, params in (
        ("keygen", {"key_id": "mine", "threshold": 1}),
        ("frost-dkg", {"key_id": "mine", "scheme": "eddsa-ed25519", "threshold": 1}),
        ("refresh", {"key_id": key.key_id, "epoch": 1}),
        ("reshare", {"key_id": key.key_id, "epoch": 1, "scheme": "ecdsa-secp256k1", "dealers": [1, 2],
                     "new_parties": [1, 2, 3], "new_threshold": 1, "old_public": b""}),
        ("aux", {"level": "112"}),
        # only the coordinator's grant starts these (requests/grants.py)
        ("dkls23-setup", {"key_id": key.key_id}), ("dkls23-presign", {"key_id": key.key_id, "executor": "worker-0"}),
        ("presign", {"key_id": key.key_id}), ("identify", {"presign_sid": b"presign:x"}))]
    calls = [("partial_sign", None, [(0, pid)]), ("partial_sign", key.key_id, [(0, pid)]),
             ("frost_sign", None, [(0, pid, b"")]), ("sign_request", None, pid), ("sign_requests", [(None, pid)]),
             ("frost_sign_request", None, pid, b""), ("set_policy", None), ("set_principals", None),
             ("bootstrap_principals", stranger.to_bytes()), ("extend_directory", None, [identity]),
             ("backup", None, "a long enough passphrase", "min"), ("restore", None, b"blob", "passphrase!!"),
             ("set_coordinator", None, bytes(range(32))), ("frost_commit", key.key_id, 1),
             *[("begin", [b]) for b in begin]]
    for method, *args in calls:
        try:
            out = ray.get(getattr(holder, method).remote(*args), timeout=60)
        except Unauthorized:
            continue
        # a batch answers each item on its own: its refusal is in the answer
        assert method == "sign_requests" and isinstance(out[0], Unauthorized), (method, out)
    assert ray.get(holder.consumed_ids.remote()) == consumed  # nothing consumed
    assert ray.get(holder.key_views.remote()).keys() == {key.key_id}  # no key made
    worker = ray.get_actor("mpc-worker-1-0", namespace="mpc-ray")  # a presign worker starts nothing either
    for b in begin[-3:]:
        with pytest.raises(Unauthorized):
            ray.get(worker.begin.remote([b]), timeout=60)


def _gc_settings(_actor_self):
    import gc

    return gc.get_threshold()[0], gc.get_freeze_count()


def test_signing_actors_keep_their_start_up_state_out_of_the_collector(mpc):
    """Holders and the coordinator freeze what they built at start-up (a full collection over a Ray worker's heap
    would land in the middle of a signature) and collect young garbage less often; this process keeps its own."""
    import gc

    from mpc_ray.node.actor_runtime import GEN0_THRESHOLD, settle_gc_for_latency

    before = gc.get_threshold()
    settle_gc_for_latency()  # not an actor: nothing changes here
    assert gc.get_threshold() == before
    for name in ("mpc-holder-1", "mpc-coordinator"):
        threshold, frozen = ray.get(ray.get_actor(name, namespace="mpc-ray").__ray_call__.remote(_gc_settings))
        assert threshold == GEN0_THRESHOLD and frozen > 10_000, (name, threshold, frozen)


def test_sign_and_sign_many(mpc, key):
    from eth_account import Account
    from eth_keys import keys as eth_keys

    assert key.scheme == "ecdsa-secp256k1" and key.threshold == 2 and key.parties == 3 and len(key.public_key) == 33
    sig = mpc.sign(key.key_id, digest(0))
    assert verify(key, digest(0), sig)
    address = eth_keys.PublicKey(coincurve.PublicKey(key.public_key).format(compressed=False)[1:]).to_checksum_address()
    assert Account._recover_hash(digest(0), vrs=(sig.recovery_id, sig.r, sig.s)) == address
    sigs = mpc.sign_many(key.key_id, [digest(i) for i in range(1, 25)])
    assert all(verify(key, digest(i + 1), s) for i, s in enumerate(sigs))


def test_bad_requests_are_typed(mpc, key):
    with pytest.raises(InvalidInput):
        mpc.sign(key.key_id, b"not a digest")
    with pytest.raises(InvalidInput):
        mpc.sign("no-such-key", digest(1))
    with pytest.raises(InvalidInput):
        mpc.create_key("rsa-2048")
    with pytest.raises(InvalidInput):
        mpc.sign_many(key.key_id, ["not bytes"])


def test_kill_a_node_during_a_stream_then_restart(mpc, key):
    results: list = []
    stop = threading.Event()

    def stream():
        i = 1000
        while not stop.is_set():
            i += 1
            try:
                results.append((i, mpc.sign(key.key_id, digest(i))))
            except MpcError as exc:  # a typed error is acceptable for a request in flight at the kill
                results.append((i, exc))

    mpc.wait_for_pools(key.key_id, 4)
    t = threading.Thread(target=stream)
    t.start()
    time.sleep(0.5)
    mpc.kill_node(3)
    killed_at = len(results)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the stream must go on: wait for 5 signatures after the kill
        if sum(1 for _, s in results[killed_at:] if not isinstance(s, Exception)) >= 5:
            break
        time.sleep(0.1)
    stop.set()
    t.join(timeout=60)
    after = results[killed_at:]
    good = [(i, s) for i, s in after if not isinstance(s, Exception)]
    assert len(good) >= 5, f"signing stopped after the kill: {after[:5]}"
    for i, s in results:
        assert isinstance(s, MpcError) or verify(key, digest(i), s), "a wrong signature was returned"
    errors = [s for _, s in after if isinstance(s, Exception)]
    assert len(errors) <= 2, errors

    # bring 3 back and take 1 away: only {2, 3} can sign, which needs party 3's reloaded holder
    mpc.restart_node(3)
    mpc.kill_node(1)
    deadline = time.monotonic() + 90
    while True:
        try:
            sig = mpc.sign(key.key_id, digest(1))
            break
        except MpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert verify(key, digest(1), sig)
    mpc.restart_node(1)


def test_killed_holder_actor_restarts_and_reloads(mpc, key):
    """Kill only the holder process (not the node): Ray restarts it, it reloads its store and signs again."""
    holder = ray.get_actor("mpc-holder-2", namespace="mpc-ray")
    before = call_holder(2, "consumed_ids")
    ray.kill(holder, no_restart=False)
    mpc.kill_node(1)  # only {2, 3} remain, so the next signature needs the restarted holder 2
    deadline = time.monotonic() + 90
    while True:
        try:
            sig = mpc.sign(key.key_id, digest(7))
            break
        except MpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert verify(key, digest(7), sig)
    after = call_holder(2, "consumed_ids")
    assert after[: len(before)] == before and len(after) > len(before)  # the ledger survived the restart
    mpc.restart_node(1)


def test_connect_to_the_running_committee(mpc, key):
    client = mpc_ray.connect(address="auto", credentials=mpc.credentials)  # the principals this committee knows
    assert client.parties == 3 and client.default_threshold == 2
    sig = client.sign(key.key_id, digest(8))
    assert verify(key, digest(8), sig)
    assert key.key_id in client.status()["keys"]


def test_policy_enforced_by_the_nodes(mpc, key):
    """Agents sign requests; the holders decode them, apply the admin's policy, and refuse what it forbids."""
    import nacl.signing

    from mpc_ray.errors import PolicyDenied
    from mpc_ray.node.policy import decode_evm_transaction
    from mpc_ray.node.principals import Principal, PrincipalRegistry, sign_request
    from tests.support.policies import ALICE, BASE, base_policy, usdc_transfer

    admin, agent = ADMIN_KEY, AGENT_KEY
    mpc.bootstrap_principals(PrincipalRegistry(principals=(Principal.from_signing_key("root", "admin", admin),
                                                            Principal.from_signing_key("bot", "agent", agent))))
    mpc.set_policy(sign_request(admin, principal_id="root", kind="set_policy", format="json",
                                body=base_policy(key_id=key.key_id).to_bytes(), key_id=key.key_id, now=time.time()))
    body = usdc_transfer(to=ALICE, amount=1_000_000)
    sig = mpc.sign_request(sign_request(agent, principal_id="bot", kind="sign", format="evm_tx", body=body,
                                        key_id=key.key_id, chain=BASE, now=time.time()))
    assert verify(key, decode_evm_transaction(body).digest, sig)
    with pytest.raises(PolicyDenied) as e:
        mpc.sign_request(sign_request(agent, principal_id="bot", kind="sign", format="evm_tx",
                                      body=usdc_transfer(to=ALICE, amount=50_000_000), key_id=key.key_id, chain=BASE,
                                      now=time.time()))
    assert e.value.rule == "policy.per_tx_cap"
    # the same agent on an Ed25519 (FROST) key: a Solana transfer, decoded and checked by every node
    from solders.pubkey import Pubkey

    from mpc_ray.node.policy import AssetLimit, Policy, TxType, native_asset
    from tests.support.policies import solana_transfer
    from tests.support.policies import SOLANA

    sol = mpc.create_key("eddsa-ed25519")
    friend, me = Pubkey.new_unique(), Pubkey(sol.public_key)
    policy = Policy(key_id=sol.key_id, principal_id="bot", allowed_chains=(SOLANA,),
                    allowed_tx_types=(TxType.SOLANA_TRANSFER,), recipient_allowlist=(str(friend),),
                    asset_limits=(AssetLimit(asset=native_asset(SOLANA), per_tx=1_000_000),))
    mpc.set_policy(sign_request(admin, principal_id="root", kind="set_policy", format="json",
                                body=policy.to_bytes(), key_id=sol.key_id, now=time.time()))
    msg = solana_transfer(me, friend, 40_000)
    sig = mpc.sign_request(sign_request(agent, principal_id="bot", kind="sign", format="solana_tx", body=msg,
                                        key_id=sol.key_id, chain=SOLANA, now=time.time()))
    nacl.signing.VerifyKey(sol.public_key).verify(msg, sig.to_bytes())
    with pytest.raises(PolicyDenied) as e:
        mpc.sign_request(sign_request(agent, principal_id="bot", kind="sign", format="solana_tx",
                                      body=solana_transfer(me, Pubkey.new_unique(), 40_000), key_id=sol.key_id,
                                      chain=SOLANA, now=time.time()))
    assert e.value.rule == "policy.recipient_allowlist"
    # a batch across both keys: each request answered on its own, in order (a refusal in its place, not raised)
    from tests.support.policies import EVE

    bodies = [usdc_transfer(to=ALICE, amount=2_000 + i) for i in range(3)]
    batch = [sign_request(agent, principal_id="bot", kind="sign", format="evm_tx", body=b, key_id=key.key_id,
                          chain=BASE, now=time.time()) for b in bodies]
    batch.insert(1, sign_request(agent, principal_id="bot", kind="sign", format="evm_tx",
                                 body=usdc_transfer(to=EVE, amount=1), key_id=key.key_id, chain=BASE, now=time.time()))
    msg2 = solana_transfer(me, friend, 41_000)
    batch.append(sign_request(agent, principal_id="bot", kind="sign", format="solana_tx", body=msg2,
                              key_id=sol.key_id, chain=SOLANA, now=time.time()))
    out = mpc.sign_requests(batch)
    assert isinstance(out[1], PolicyDenied) and out[1].rule == "policy.recipient_denylist"
    for sig, body in zip([out[0], *out[2:4]], bodies):
        assert verify(key, decode_evm_transaction(body).digest, sig)
    nacl.signing.VerifyKey(sol.public_key).verify(msg2, out[4].to_bytes())


def test_one_hop_signing_with_leased_presignatures(mpc, key):
    """`sign` on a warm client: one round straight to the signers with a presignature leased from the coordinator;
    the holders still consume it durably, so the same lease cannot sign twice."""
    mpc.sign(key.key_id, digest(7000))  # creates the client's lease cache (and starts a background fetch)
    leases = mpc._leases
    deadline = time.monotonic() + 120
    while not leases._leases.get(key.key_id):  # the coordinator leases at most half a pool: let the pools fill
        assert time.monotonic() < deadline, "no presignature was leased"
        mpc.wait_for_pools(key.key_id, 4, timeout=60)
        leases._fetch(key.key_id)
    pub = leases._leases[key.key_id][0]
    request = mpc.credentials.operator_request(key.key_id, [digest(7001)])  # what `mpc.sign` sends the signers
    out = leases.sign(key.key_id, request)
    assert out is not None, "the one-hop path fell back to the coordinator"
    sig = mpc_ray.types.Signature.ecdsa(int.from_bytes(out[0][:32], "big"), int.from_bytes(out[0][32:], "big"), out[1])
    assert verify(key, digest(7001), sig)
    # the leased presignature is consumed on both signers: neither a fresh operator request nor the same one can
    # use it again
    with pytest.raises(AlreadyConsumed):
        call_holder(pub.signers[0], "partial_sign", mpc.credentials.operator_request(key.key_id, [digest(7002)]),
                    [(0, pub.presignature_id)])
    with pytest.raises(AlreadyConsumed):
        call_holder(pub.signers[1], "partial_sign", request, [(0, pub.presignature_id)])
    with pytest.raises(PolicyDenied) as e:  # a request for a key the operator has no policy on: default deny
        call_holder(pub.signers[1], "partial_sign", mpc.credentials.operator_request("no-such-key", [digest(7002)]),
                    [(0, pub.presignature_id)])
    assert e.value.rule == "policy.none"
    with pytest.raises(Unauthorized) as e:  # an agent's request is not an operator's raw batch
        call_holder(pub.signers[1], "partial_sign", sign_request(AGENT_KEY, principal_id="bot", kind="sign",
                                                                 format="raw_batch", body=request.body,
                                                                 key_id=key.key_id, chain=request.chain,
                                                                 now=time.time()), [(0, pub.presignature_id)])
    assert e.value.rule.startswith("auth.")
    with pytest.raises(InvalidInput):  # the one-hop path signs one digest per request
        leases.sign(key.key_id, mpc.credentials.operator_request(key.key_id, [digest(7003), digest(7004)]))
    assert all(verify(key, digest(7100 + i), mpc.sign(key.key_id, digest(7100 + i))) for i in range(5))


def test_a_refused_operator_request_keeps_the_clients_leases(mpc):
    """The signers refuse an operator request its policy forbids before they consume anything: the one-hop path
    raises the refusal (a fresh request through the coordinator would be refused alike) and keeps the client's other
    leases, so a client retrying refused requests cannot drain the pools every principal signs from."""
    from mpc_ray.client.credentials import RAW_CHAIN
    from mpc_ray.node.policy import Policy, TxType
    from mpc_ray.node.principals import RequestKind

    k = mpc.create_key("ecdsa-secp256k1")
    creds, leases = mpc.credentials, mpc._lease_book()
    deadline = time.monotonic() + 120
    while len(leases._leases.get(k.key_id, ())) < 5:
        assert time.monotonic() < deadline, "no presignature was leased"
        mpc.wait_for_pools(k.key_id, 2, timeout=120)
        leases._fetch(k.key_id)
    # from now on the operator may sign only as the child m/0/1 of this key: master-key digests are refused
    pinned = Policy(key_id=k.key_id, principal_id=creds.operator[0], allowed_chains=(RAW_CHAIN,),
                    allowed_tx_types=(TxType.RAW_DIGEST,), derivation_paths=("m/0/1",), version=time.time_ns() // 1000)
    mpc.set_policy(creds.admin_request(RequestKind.SET_POLICY, key_id=k.key_id, body=pinned.to_bytes()))
    queued = [p.presignature_id for p in leases._leases[k.key_id]]
    for i in range(3):
        with pytest.raises(PolicyDenied) as e:
            mpc.sign(k.key_id, digest(9000 + i))
        assert e.value.rule == "policy.derivation_path"
    left = {p.presignature_id for p in leases._leases.get(k.key_id, ())}
    assert sum(pid in left for pid in queued) >= len(queued) - 3, "a refusal dropped the client's leases"
    sig = mpc.sign(k.key_id, digest(9100), path="m/0/1")  # what the policy allows still signs
    recovered = coincurve.PublicKey.from_signature_and_message(sig.to_bytes() + bytes([sig.recovery_id]),
                                                               digest(9100), hasher=None)
    assert recovered.format() == mpc.derive(k.key_id, "m/0/1").public_key


def test_one_hop_agent_requests(mpc, key):
    """An agent request on a warm client goes straight to the signers of a leased presignature; each signer still
    verifies, decodes, applies its policy and audits; a refusal names its rule; a request signs once."""
    from mpc_ray.errors import PolicyDenied
    from mpc_ray.node.policy import decode_evm_transaction
    from mpc_ray.node.principals import sign_request
    from tests.support.policies import ALICE, BASE, EVE, usdc_transfer

    def request(to, amount):
        return sign_request(AGENT_KEY, principal_id="bot", kind="sign", format="evm_tx",
                            body=usdc_transfer(to=to, amount=amount), key_id=key.key_id, chain=BASE, now=time.time())

    leases = mpc._lease_book()
    deadline = time.monotonic() + 120
    while len(leases._leases.get(key.key_id, ())) < 3:  # the policy test set up the principals and the policy
        assert time.monotonic() < deadline, "no presignature was leased"
        mpc.wait_for_pools(key.key_id, 2, timeout=120)  # at most low water: a pool below it refills
        leases._fetch(key.key_id)
    req = request(ALICE, 3_000)
    out = leases.sign_request(req)
    assert out is not None, "the one-hop path fell back to the coordinator"
    sig = mpc_ray.types.Signature.ecdsa(int.from_bytes(out[0][:32], "big"), int.from_bytes(out[0][32:], "big"), out[1])
    assert verify(key, decode_evm_transaction(req.body).digest, sig)
    with pytest.raises(PolicyDenied) as e:  # its nonce is spent on both signers
        leases.sign_request(req)
    assert e.value.rule == "auth.replayed"
    with pytest.raises(PolicyDenied) as e:
        leases.sign_request(request(EVE, 1))
    assert e.value.rule == "policy.recipient_denylist"
    ok = request(ALICE, 3_001)  # and the client's own sign_request takes the same path
    assert verify(key, decode_evm_transaction(ok.body).digest, mpc.sign_request(ok))
    # a wallet passes the digest it computed and the client skips its own decoding; a wrong one cannot make the
    # client blame a signer: the signature comes back over what the request says, for the wallet to check
    for given in (None, bytes(32)):
        while len(leases._leases.get(key.key_id, ())) < 1:
            mpc.wait_for_pools(key.key_id, 2, timeout=120)  # at most low water: a pool below it refills
            leases._fetch(key.key_id)
        req = request(ALICE, 3_002 if given is None else 3_003)
        want = decode_evm_transaction(req.body).digest
        out = leases.sign_request(req, want if given is None else given)
        sig = mpc_ray.types.Signature.ecdsa(int.from_bytes(out[0][:32], "big"), int.from_bytes(out[0][32:], "big"),
                                            out[1])
        assert verify(key, want, sig)


def test_coordinator_restart_rebuilds_its_key_table_from_the_holders(mpc, key):
    """Ray restarts the coordinator (detached, max_restarts=-1); it forgets keys and pools, asks the holders for
    their public key views, adopts what a threshold of each committee reports, refills, and signs again with the
    same keys through the same client handle."""
    import nacl.signing

    ed = mpc.create_key("eddsa-ed25519")
    ray.kill(mpc._coordinator, no_restart=False)

    def once_back(call):
        """Calls to the coordinator fail while Ray restarts it; then they must work again."""
        deadline = time.monotonic() + 120
        while True:
            try:
                return call()
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError, MpcError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    # sign_many goes through the coordinator (sign could use a presignature leased before the restart)
    (sig,) = once_back(lambda: mpc.sign_many(key.key_id, [digest(4242)]))
    assert verify(key, digest(4242), sig)
    ed_sig = once_back(lambda: mpc.sign(ed.key_id, b"after the coordinator restart"))
    nacl.signing.VerifyKey(ed.public_key).verify(b"after the coordinator restart", ed_sig.to_bytes())
    keys = once_back(mpc.status)["keys"]
    assert key.key_id in keys and ed.key_id in keys


def _cheat_on_delta(actor_self, on: bool) -> int:
    """Run inside holder 2's actor (test only): its presigning broadcasts delta_i + 1 with valid proofs (and uses it
    itself, so it answers PresignFailed and takes part in identification), or behaves again."""
    from mpc_ray.crypto.secp256k1 import Q
    from mpc_ray.protocols.base import Outbox
    from mpc_ray.protocols.ecdsa.presign import PresignParty, Round3

    class WrongDelta(PresignParty):
        def round3(self, inbox):
            out = super().round3(inbox)
            b = out.broadcast
            self._delta_i = (b.delta + 1) % Q
            return Outbox(broadcast=Round3(self._delta_i, b.Delta, b.S, b.echo), direct=out.direct)

    holder = getattr(actor_self, "_holder", actor_self)  # the ShareHolder behind the actor facade
    if not on:
        holder.protocols["presign"] = holder.ecdsa  # the honest entry of its protocol table
        return holder.party

    class Cheating:
        def machine(self, req):
            m = holder.ecdsa.machine(req)
            m.__class__ = WrongDelta
            return m

        def finish(self, session):
            return holder.ecdsa.finish(session)

    holder.protocols["presign"] = Cheating()
    return holder.party


def _kept_sessions(actor_self) -> list:
    holder = getattr(actor_self, "_holder", actor_self)
    return [s.protocol for s in list(holder.sessions.values()) if s.protocol in ("presign", "identify")]


def test_a_wrong_delta_is_identified_and_its_sender_excluded(mpc, cggmp_key):
    """Holder 2 broadcasts a wrong delta_i with valid proofs: the presigning fails its sums, the coordinator runs
    identification among the signers, names 2 (party 1's Pi-dec check), excludes it, and signing goes on with 1
    and 3. Only the holder cheats (presign workers stay honest): `worker=None` presigns on the holders, so the
    refill threads, which use the workers, never meet the cheat. CGGMP21 only: DKLs23 has security with abort."""
    from mpc_ray.errors import ProtocolAbort

    key = cggmp_key
    holder2 = ray.get_actor("mpc-holder-2", namespace="mpc-ray")
    coordinator = ray.get_actor("mpc-coordinator", namespace="mpc-ray")
    assert ray.get(holder2.__ray_call__.remote(_cheat_on_delta, True)) == 2
    try:
        with pytest.raises(ProtocolAbort) as e:
            ray.get(coordinator.presign.remote(key.key_id, (1, 2), 1, None), timeout=120)
        assert (e.value.culprit, e.value.reporter) == (2, 1) and e.value.check.startswith("presign.identify.pi_dec")
        status = mpc.status()
        assert status["excluded"] == {2: e.value.check}
        assert status["telemetry"]["aborts"].get(e.value.check, 0) >= 1  # mpc_aborts_total, by check
        sigs = mpc.sign_many(key.key_id, [digest(7000 + i) for i in range(3)])  # signer set {1, 3}
        assert all(verify(key, digest(7000 + i), s) for i, s in enumerate(sigs))
        for party in (1, 2):  # identification wiped the failed run on both signers
            actor = ray.get_actor(f"mpc-holder-{party}", namespace="mpc-ray")
            assert ray.get(actor.__ray_call__.remote(_kept_sessions)) == []
    finally:
        ray.get(holder2.__ray_call__.remote(_cheat_on_delta, False))
    assert mpc.readmit(2)["was_excluded"] == e.value.check and 2 not in mpc.status()["excluded"]
    assert verify(key, digest(7100), mpc.sign(key.key_id, digest(7100)))


def test_no_presignature_used_twice(mpc, key):
    sigs = mpc.sign_many(key.key_id, [digest(5000 + i) for i in range(10)])
    assert all(verify(key, digest(5000 + i), s) for i, s in enumerate(sigs))
    assert len(ALL_R) > 30 and len(set(ALL_R)) == len(ALL_R), "two signatures share r: a presignature was reused"
    consumed = {}
    for party in (1, 2, 3):
        ids = call_holder(party, "consumed_ids")
        assert len(ids) == len(set(ids)) and len(ids) > 0
        consumed[party] = set(ids)
    # every signature consumed its presignature at exactly `threshold` = 2 holders
    assert sum(len(c) for c in consumed.values()) >= 2 * len(ALL_R)
