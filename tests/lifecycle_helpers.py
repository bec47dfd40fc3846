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
from mpc_ray.protocols.ecdsa.sign import combine
from mpc_ray.protocols.frost import aggregate
from mpc_ray.protocols.wire import decode

DIGEST = hashlib.sha256(b"lifecycle").digest()


class FixturePrimes:
    """Stands in for `generate_keypair` in aux-info (monkeypatched): the TEST ONLY fixture Paillier keys, handed
    out round-robin, instead of fresh safe primes, to keep the suite fast. Twelve keys and sessions of at most
    five parties: no key repeats within a session or in the next epoch (the refresh's stale-modulus check)."""

    def __init__(self, level: str = "112") -> None:
        from tests.fixture_primes import fixture_paillier_key

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
        for p in old:
            self.holders[p].extend_directory(ids)

    def restart(self, party: int) -> None:
        self.holders[party].ledger.close()
        self.holders[party] = self._open(party)

    def call(self, party: int, method: str, *args):
        return getattr(self.holders[party], method)(*args)

    def run(self, protocol, parties, params, count=1):
        sids = [new_sid(protocol) for _ in range(count)]
        parties = sorted(parties)
        res = {i: self.holders[i].begin([BeginRequest(protocol, s, parties, params) for s in sids]) for i in parties}
        while (done := finished(parties, sids, res)) is None:
            inputs = route(parties, sids, res)
            res = {i: self.holders[i].step(inputs[i]) for i in parties}
        return done

    def run_one(self, spec: SessionSpec):
        return next(iter(self.run(spec.protocol, spec.parties, spec.params).values()))

    # ECDSA ----------------------------------------------------------------------------------------------
    def presign(self, key_id, signers, count=1) -> list[PresignaturePublic]:
        out = self.run("presign", signers, {"key_id": key_id}, count=count)
        return [decode(next(iter(r.values())), PresignaturePublic) for r in out.values()]

    def sign(self, key_id, public_key: Point, signers, digest=DIGEST, presig=None):
        presig = presig or self.presign(key_id, signers)[0]
        partials = {i: self.holders[i].partial_sign(key_id, [(presig.presignature_id, digest)])[0] for i in signers}
        return combine(presig, public_key, digest, partials)

    # FROST ----------------------------------------------------------------------------------------------
    def frost_sign(self, key_id, public_package: bytes, signers, message=b"lifecycle"):
        pub = public_package_from_bytes(public_package)
        suite = pub.suite
        entries = {p: self.holders[p].frost_commit(key_id, 1)[0] for p in signers}
        clist = b"".join(entries[p][1] for p in sorted(signers))
        shares = {p: self.holders[p].frost_sign(key_id, [(entries[p][0], message, clist)])[0] for p in signers}
        coms = commitment_list_from_bytes(suite, clist)
        return aggregate(suite, coms, message, pub.group_key, shares, pub.verifying_shares).to_bytes()
