"""The in-process committee every test without Ray uses: share holders driven exactly as the coordinator drives
holder actors (begin / step / route), a committee that can grow, the coordinator's lifecycle orchestration on it,
TEST ONLY fixture primes for aux-info, and holder handles that stand in for Ray actor handles."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mpc_ray.coordinator.frost_engine import FrostKey
from mpc_ray.coordinator.frost_engine import combine as frost_combine
from mpc_ray.coordinator.lifecycle import KeyLifecycle
from mpc_ray.coordinator.sessions import SessionSpec, finished, new_sid, route
from mpc_ray.crypto.frost_suites import get_suite
from mpc_ray.crypto.secp256k1 import Point
from mpc_ray.node.frost_records import commitment_list_from_bytes, public_package_from_bytes
from mpc_ray.node.holder import BeginRequest, ShareHolder
from mpc_ray.protocols.ecdsa.presign import PresignaturePublic
from mpc_ray.node.principals import RequestKind
from mpc_ray.node.records import aux_to_bytes
from mpc_ray.protocols.ecdsa.sign import combine, rerandomize_for
from mpc_ray.protocols.frost import aggregate
from mpc_ray.protocols.wire import decode, encode
from tests.support.authz import TestPrincipals

DIGEST = hashlib.sha256(b"lifecycle").digest()


class FixturePrimes:
    """Stands in for `generate_keypair` in aux-info (monkeypatched): the TEST ONLY fixture Paillier keys, handed
    out round-robin, instead of fresh safe primes, to keep the suite fast. Twelve keys and sessions of at most
    five parties: no key repeats within a session or in the next epoch (the refresh's stale-modulus check)."""

    def __init__(self, level: str = "112") -> None:
        from tests.support.primes import fixture_paillier_key

        self.keys = [fixture_paillier_key(level, i) for i in range(12)]
        self.handed = 0

    def __call__(self, prime_bits: int, **_: object):
        key = self.keys[self.handed % len(self.keys)]
        self.handed += 1
        return key, key.public


class Committee:
    """Share holders in one process, driven exactly as the coordinator drives holder actors (begin / step /
    route), with the admin and operator a client would hold. One class for every in-process test: ECDSA (presign,
    sign), FROST (dkg, commit, raw, frost_sign_batch), the lifecycle (add, KeyLifecycle on it) and restarts.
    `aux`: TEST ONLY aux info written to the stores (no aux-info session). `relayed` keeps every envelope the
    coordinator saw, serialised (for checks that no secret is ever relayed)."""

    def __init__(self, root: Path, parties=(1, 2, 3), aux=None) -> None:
        self.root = root
        self.holders: dict[int, ShareHolder] = {}
        for p in parties:
            self.holders[p] = self._open(p)
        ids = [h.public_identity() for h in self.holders.values()]
        for h in self.holders.values():
            h.set_directory(ids)
        if aux is not None:
            for p, h in self.holders.items():
                h.store.put("aux", aux_to_bytes(aux[p]))
        self.principals = TestPrincipals()  # the admin and operator a client would hold
        self.principals.bootstrap(self.holders.values())
        self.lifecycle = KeyLifecycle(self.run_one, self.call, security="112")
        self.relayed: list[bytes] = []
        self.keys: dict[str, FrostKey] = {}

    def _open(self, party: int) -> ShareHolder:
        return ShareHolder(party, str(self.root / f"party-{party}"), kdf="min")

    def add(self, *parties: int) -> None:
        """New holders on new nodes; identities exchanged as `coordinator.lifecycle.add_parties` does."""
        old = list(self.holders)
        for p in parties:
            self.holders[p] = self._open(p)
        ids = [h.public_identity() for h in self.holders.values()]
        for p in parties:
            self.holders[p].set_directory(ids)
        self.principals.bootstrap(self.holders[p] for p in parties)
        approval = self.principals.directory_approval([self.holders[p].public_identity() for p in parties])
        for p in old:
            self.holders[p].extend_directory(approval, ids)

    def restart(self, party: int) -> None:
        self.holders[party].close()  # its ledgers and audit log, as a dying process releases them
        self.holders[party] = self._open(party)

    def call(self, party: int, method: str, *args):
        return getattr(self.holders[party], method)(*args)

    def run(self, protocol, parties, params, count=1):
        sids = [new_sid(protocol) for _ in range(count)]
        parties = sorted(parties)
        params = self._approved(protocol, parties, params)
        reqs = [BeginRequest(protocol, s, parties, params) for s in sids]
        res = {i: self.holders[i].begin(reqs, self.principals.grant(reqs)) for i in parties}
        while (done := finished(parties, sids, res)) is None:
            for results in res.values():
                for r in results:
                    self.relayed.extend(encode(e) for e in r.envelopes)
            inputs = route(parties, sids, res)
            res = {i: self.holders[i].step(inputs[i]) for i in parties}
        return done

    def _approved(self, protocol: str, parties: list[int], params: dict) -> dict:
        """The params with the admin approval a client adds (an explicit "approval", even None, is kept); a new key
        also gets the operator policy that `sign` needs."""
        if "approval" in params and params["approval"] is not None or protocol not in (
                "keygen", "frost-dkg", "refresh", "reshare"):
            return params
        p = self.principals
        if protocol in ("keygen", "frost-dkg"):
            approved = p.keygen_params(params["key_id"], params["threshold"], parties,
                                       params.get("scheme", "ecdsa-secp256k1"))
            self._operator_keys = {*getattr(self, "_operator_keys", ()), params["key_id"]}
            return {**params, "approval": approved["approval"]}
        if protocol == "refresh":
            return {**params, "approval": p.approval(RequestKind.REFRESH_KEY, key_id=params["key_id"])}
        return {**params, "approval": p.approval(RequestKind.RESHARE_KEY, key_id=params["key_id"],
                                                 parties=sorted(params["new_parties"]),
                                                 threshold=params["new_threshold"])}

    def allow_operator(self, key_id: str) -> None:
        """The operator policy `sign` / `frost_sign` need, on every holder that lacks it (also the new ones): a
        holder refuses the same policy version twice (admin.stale_version)."""
        from mpc_ray.node.policy import policy_store_name

        name = policy_store_name(key_id, self.principals.creds.operator[0])
        missing = [h for h in self.holders.values() if h.store.get(name) is None]
        if missing:
            self.principals.allow_operator(missing, key_id)

    def run_one(self, spec: SessionSpec):
        return next(iter(self.run(spec.protocol, spec.parties, spec.params).values()))

    # ECDSA ----------------------------------------------------------------------------------------------
    def presign(self, key_id, signers, count=1) -> list[PresignaturePublic]:
        out = self.run("presign", signers, {"key_id": key_id}, count=count)
        return [decode(next(iter(r.values())), PresignaturePublic) for r in out.values()]

    def sign(self, key_id, public_key: Point, signers, digest=DIGEST, presig=None):
        presig = presig or self.presign(key_id, signers)[0]
        self._operator_policy(key_id, signers)
        request = self.principals.raw(key_id, [digest])
        partials = {i: self.holders[i].partial_sign(request, [(0, presig.presignature_id)])[0] for i in signers}
        return combine(presig, public_key, digest, partials, rerandomize_for(presig, public_key, 0, digest))

    def _operator_policy(self, key_id: str, signers) -> None:
        from mpc_ray.node.policy import policy_store_name

        name = policy_store_name(key_id, self.principals.creds.operator[0])
        if any(self.holders[i].store.get(name) is None for i in signers):
            self.allow_operator(key_id)

    # FROST ----------------------------------------------------------------------------------------------
    def dkg(self, key_id: str, scheme: str, threshold: int = 2) -> FrostKey:
        parties = sorted(self.holders)
        params = self.principals.keygen_params(key_id, threshold, parties, scheme)
        out = next(iter(self.run("frost-dkg", parties, params).values()))
        assert len({r["public_package"] for r in out.values()}) == 1
        assert len({r["public_key"] for r in out.values()}) == 1
        pub = public_package_from_bytes(out[parties[0]]["public_package"])
        key = FrostKey(key_id, scheme, get_suite(scheme), pub, out[parties[0]]["public_key"], threshold, parties)
        self.keys[key_id] = key
        return key

    def commit(self, key_id: str, signers, count: int = 1):
        """{party: [(nonce id, entry)]} and the commitment lists, one per index."""
        got = {p: self.principals.commit(self.holders[p], key_id, count) for p in signers}
        lists = [b"".join(got[p][n][1] for p in sorted(signers)) for n in range(count)]
        return got, lists

    def raw(self, key_id: str, msgs, tap_tweak=None):
        """The operator's raw_batch request for `msgs`, with the policy it needs."""
        self.allow_operator(key_id)
        return self.principals.raw(key_id, msgs, tap_tweak=tap_tweak)

    def frost_sign_batch(self, key_id: str, signers, msgs, tap_tweak=None):
        """Sign `msgs` with a key of `dkg`: the signatures, the nonces, the commitment lists and the answers."""
        got, lists = self.commit(key_id, signers, len(msgs))
        request = self.raw(key_id, msgs, tap_tweak)
        answers = {}
        for p in signers:
            answers[p] = self.holders[p].frost_sign(request, [(n, got[p][n][0], lists[n]) for n in range(len(msgs))])
        key = self.keys[key_id]
        out = []
        for n, m in enumerate(msgs):
            sig, liars = frost_combine(key, m, lists[n], {p: answers[p][n][0] for p in signers},
                                       {p: answers[p][n][1] for p in signers}, tap_tweak)
            assert liars == []
            out.append(sig)
        return out, got, lists, answers

    def frost_sign(self, key_id, public_package: bytes, signers, message=b"lifecycle"):
        pub = public_package_from_bytes(public_package)
        suite = pub.suite
        entries = {p: self.principals.commit(self.holders[p], key_id, 1)[0] for p in signers}
        clist = b"".join(entries[p][1] for p in sorted(signers))
        self._operator_policy(key_id, signers)
        request = self.principals.raw(key_id, [message])
        shares = {p: self.holders[p].frost_sign(request, [(0, entries[p][0], clist)])[0][0] for p in signers}
        coms = commitment_list_from_bytes(suite, clist)
        return aggregate(suite, coms, message, pub.group_key, shares, pub.verifying_shares).to_bytes()


# holder actor handles over in-process holders, for the coordinator's logic without Ray ------------------------
class InProcessRef:
    def __init__(self, fn, args):
        try:
            self.value, self.error = fn(*args), None
        except Exception as exc:  # noqa: BLE001 - re-raised by get, as ray.get would
            self.value, self.error = None, exc


def get_in_process(ref, timeout=None):
    """`ray.get` for InProcessRef results (patch it in: ``monkeypatch.setattr(ray, "get", get_in_process)``)."""
    if isinstance(ref, list):
        return [get_in_process(r) for r in ref]
    if ref.error is not None:
        raise ref.error
    return ref.value


class InProcessHandle:
    """Stands in for a holder actor handle: `.method.remote(*args)` runs the call now; `dead` / `hooks` simulate
    an unavailable holder and a malicious one."""

    def __init__(self, holder):
        self.holder, self.dead, self.hooks = holder, False, {}

    def __getattr__(self, name):
        fn = getattr(self.holder, name)
        handle = self

        class _M:
            @staticmethod
            def remote(*args):
                if handle.dead:
                    import ray.exceptions

                    return InProcessRef(lambda: (_ for _ in ()).throw(ray.exceptions.GetTimeoutError("dead")), ())
                return InProcessRef(handle.hooks.get(name, lambda f: f)(fn), args)

        return _M


@contextmanager
def keyed_committee(root: Path) -> Iterator[Committee]:
    """A committee with an ECDSA key "k1" and a FROST Ed25519 key "f1" (its public package in `frost_public`);
    aux-info takes the fixture primes while the committee is open (a refresh runs aux-info again)."""
    from mpc_ray.protocols.ecdsa import aux_info

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aux_info, "generate_keypair", FixturePrimes())
        c = Committee(root)
        c.run("aux", [1, 2, 3], {"level": "112"})
        c.run("keygen", [1, 2, 3], {"key_id": "k1", "threshold": 2})
        out = c.run("frost-dkg", [1, 2, 3], {"key_id": "f1", "scheme": "eddsa-ed25519", "threshold": 2})
        c.frost_public = next(iter(out.values()))[1]["public_package"]
        yield c
