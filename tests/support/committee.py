"""In-process share holders for the key lifecycle tests: a committee that can grow, driven exactly as the
coordinator drives holder actors (begin / step / route), plus the coordinator's lifecycle orchestration on it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mpc_ray.coordinator.lifecycle import KeyLifecycle
from mpc_ray.coordinator.sessions import SessionSpec, finished, new_sid, route
from mpc_ray.crypto.secp256k1 import Point
from mpc_ray.node.frost_records import commitment_list_from_bytes, public_package_from_bytes
from mpc_ray.node.holder import BeginRequest, ShareHolder
from mpc_ray.protocols.ecdsa.presign import PresignaturePublic
from mpc_ray.node.principals import RequestKind
from mpc_ray.protocols.ecdsa.sign import combine, rerandomize_for
from mpc_ray.protocols.frost import aggregate
from mpc_ray.protocols.wire import decode
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
    def __init__(self, root: Path, parties=(1, 2, 3)) -> None:
        self.root = root
        self.holders: dict[int, ShareHolder] = {}
        for p in parties:
            self.holders[p] = self._open(p)
        ids = [h.public_identity() for h in self.holders.values()]
        for h in self.holders.values():
            h.set_directory(ids)
        self.principals = TestPrincipals()  # the admin and operator a client would hold
        self.principals.bootstrap(self.holders.values())
        self.lifecycle = KeyLifecycle(self.run_one, self.call, security="112")

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
