"""Driving the key lifecycle across holders: proactive refresh and resharing to a new committee.

`KeyLifecycle` is the orchestration, over two callables (run a protocol session among parties; call one holder's
method), so the same code drives holder actors on Ray (`LifecycleDriver` below, the `Coordinator`'s part) and
`ShareHolder` objects in one process (tests). Steps, for epoch e + 1 of a key at epoch e:

1. every participant is at epoch e (asked, not assumed);
2. the sessions run: "refresh" (ECDSA, every party) or "reshare" (old dealers and the new committee; a FROST
   refresh is a resharing onto the same committee), then for an ECDSA resharing "reshare-aux" among the new
   committee. Holders keep the result pending, beside the epoch in use, and all must report the same digest of the
   new public package (else the odd one out is named);
3. every member of the new committee confirms (a signature by its node identity over key, epoch, digest);
4. commit at every participant with those confirmations: holders check them all before they switch epochs and
   destroy the old epoch's shares, presignatures and nonces. A removed holder deletes its share only here.
A failure before the commit discards the pending epoch everywhere (the old one stays in use). A failure during
the commit leaves `LifecycleIncomplete` naming the holders still to commit: `commit` is idempotent and the same
call completes it once they are back (their pending epoch waits for it).

The coordinator pauses the key meanwhile (no signing, no refills for it), empties its presignature or nonce pools
(the holders destroyed the secrets), and takes the key back with its new committee.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

from ..errors import InvalidInput, MpcError, ProtocolAbort, QuorumUnavailable
from ..errors import LifecycleIncomplete  # noqa: F401  (old import path)
from .ecdsa_engine import EcdsaEngine, EcdsaKey
from .frost_engine import FrostEngine, FrostKey
from .sessions import SessionSpec
from .state import CoordinatorState

ECDSA = "ecdsa-secp256k1"
log = logging.getLogger(__name__)

RunSession = Callable[[SessionSpec], Mapping[int, Any]]  # {party: result} of one session
CallHolder = Callable[..., Any]  # call(party, method, *args) -> result


@dataclass
class LifecycleResult:
    key_id: str
    scheme: str
    epoch: int
    parties: list[int]
    threshold: int
    public: bytes  # the new public package (ECDSA public record / FROST public key package)
    destroyed: dict[int, int] = field(default_factory=dict)  # per holder: one-time secrets destroyed

    def as_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "scheme": self.scheme, "epoch": self.epoch, "parties": self.parties,
                "threshold": self.threshold, "destroyed": dict(self.destroyed)}


class KeyLifecycle:
    def __init__(self, run: RunSession, call: CallHolder, *, security: str = "128") -> None:
        self.run, self.call, self.security = run, call, security

    def _epoch(self, key_id: str, parties: Sequence[int]) -> int:
        epochs = {p: self.call(p, "key_epoch", key_id) for p in parties}
        if len(set(epochs.values())) != 1:
            raise InvalidInput(f"holders of key {key_id!r} disagree on its epoch: {epochs} (finish the last commit)")
        return int(next(iter(epochs.values())))

    @staticmethod
    def _agree(results: Mapping[int, Any], field_name: str, check: str) -> Any:
        values = Counter(r[field_name] for r in results.values())
        majority, _ = values.most_common(1)[0]
        for p in sorted(results):
            if results[p][field_name] != majority:
                raise ProtocolAbort(p, check, "reported a different new public package")
        return majority

    def refresh(self, key_id: str, scheme: str, parties: Sequence[int], *, old_public: bytes = b"",
                threshold: int | None = None, approval: Any = None) -> LifecycleResult:
        """New shares (ECDSA: and aux info) for the same committee. FROST: `old_public` is the public package.
        `approval`: the admin-quorum ``refresh_key`` request every holder checks before it takes part."""
        parties = sorted(parties)
        if scheme != ECDSA:
            if threshold is None:
                raise InvalidInput("a FROST refresh needs the key's threshold")
            return self.reshare(key_id, scheme, parties, parties, threshold, dealers=parties, old_public=old_public,
                                approval=approval)
        epoch = self._epoch(key_id, parties) + 1
        try:
            results = self.run(SessionSpec("refresh", parties, {"key_id": key_id, "epoch": epoch,
                                                                "approval": approval}))
            digest = self._agree(results, "digest", "lifecycle.digest")
            first = results[parties[0]]
            return self._confirm_and_commit(key_id, scheme, epoch, parties, parties, digest, first)
        except LifecycleIncomplete:
            raise
        except BaseException:
            self._discard(key_id, epoch, parties)
            raise

    def reshare(self, key_id: str, scheme: str, old_parties: Sequence[int], new_parties: Sequence[int],
                new_threshold: int, *, dealers: Sequence[int] | None = None, old_public: bytes = b"",
                approval: Any = None) -> LifecycleResult:
        """Move the key to `new_parties`; `approval`: the admin-quorum ``reshare_key`` request naming them and the
        threshold (or, for a FROST refresh, the ``refresh_key`` request), checked by every participant."""
        dealers = sorted(dealers if dealers is not None else old_parties)
        new_parties = sorted(new_parties)
        if not set(dealers) <= set(old_parties):
            raise InvalidInput("dealers must be holders of the key")
        if not 1 <= new_threshold <= len(new_parties):
            raise InvalidInput("need 1 <= threshold <= new parties")
        epoch = self._epoch(key_id, dealers) + 1
        protocol = {}  # an ECDSA key's protocol, for the new members (absent: CGGMP21)
        if scheme == ECDSA:
            views = {p: self.call(p, "lifecycle_public", key_id) for p in dealers}
            old_public, name = Counter((v["public"], v.get("protocol", "cggmp21")) for v in views.values()).most_common(
                1)[0][0]  # a dealer with another view refuses to begin
            protocol = {"protocol": name} if name != "cggmp21" else {}
        elif not old_public:
            raise InvalidInput("a FROST resharing needs the key's public key package")
        participants = sorted(set(dealers) | set(new_parties))
        params = {"key_id": key_id, "epoch": epoch, "scheme": scheme, "dealers": dealers,
                  "new_parties": new_parties, "new_threshold": new_threshold, "old_public": old_public,
                  "approval": approval, **protocol}
        try:
            results = self.run(SessionSpec("reshare", participants, params))
            digest = self._agree(results, "digest", "lifecycle.digest")
            if scheme == ECDSA:
                aux = self.run(SessionSpec("reshare-aux", new_parties,
                                           {"key_id": key_id, "epoch": epoch, "level": self.security}))
                if self._agree(aux, "digest", "lifecycle.digest") != digest:
                    raise MpcError("the aux session changed the pending epoch")
            return self._confirm_and_commit(key_id, scheme, epoch, participants, new_parties, digest,
                                            results[new_parties[0]])
        except LifecycleIncomplete:
            raise
        except BaseException:
            self._discard(key_id, epoch, participants)
            raise

    def _confirm_and_commit(self, key_id: str, scheme: str, epoch: int, participants: list[int],
                            members: list[int], digest: bytes, result: Mapping[str, Any]) -> LifecycleResult:
        confirmations = {}
        for p in members:
            c = self.call(p, "lifecycle_confirm", key_id, epoch)
            if c["digest"] != digest or c["party"] != p:
                raise ProtocolAbort(p, "lifecycle.confirm", "confirmed another epoch")
            confirmations[p] = c["signature"]
        out = LifecycleResult(key_id, scheme, epoch, members, result["threshold"], result["public"])
        return self.commit(out, participants, digest, confirmations)

    def commit(self, out: LifecycleResult, participants: Sequence[int], digest: bytes,
               confirmations: Mapping[int, bytes]) -> LifecycleResult:
        failed: dict[int, str] = {}
        for p in participants:  # every holder checks every confirmation itself
            try:
                out.destroyed[p] = self.call(p, "lifecycle_commit", out.key_id, out.epoch, digest, dict(confirmations))["destroyed"]
            except Exception as exc:  # noqa: BLE001 - the others commit anyway; the caller retries these
                failed[p] = type(exc).__name__
        if failed:
            raise LifecycleIncomplete(out.key_id, out.epoch, sorted(failed), str(failed))
        return out

    def _discard(self, key_id: str, epoch: int, parties: Sequence[int]) -> None:
        for p in parties:
            try:
                self.call(p, "lifecycle_discard", key_id, epoch)
            except Exception:  # noqa: BLE001 - best effort; a later run refuses until this one is discarded
                pass


# the coordinator's part ---------------------------------------------------------------------------------------
class LifecycleDriver:
    """Refresh, resharing and new members for `Coordinator`: pauses the key in its engine, runs `KeyLifecycle` on
    the holder actors and takes the key back with its new committee."""

    def __init__(self, state: CoordinatorState, ecdsa: EcdsaEngine, frost: FrostEngine) -> None:
        self.state, self.ecdsa, self.frost = state, ecdsa, frost

    def _driver(self) -> KeyLifecycle:
        import ray

        from ..errors import PartyUnavailable
        from .sessions import UNAVAILABLE, run_sessions

        state = self.state

        def run(spec: SessionSpec) -> Mapping[int, Any]:
            out = run_sessions(state.holders(spec.parties), spec, timeout=state.cfg.aux_timeout_s)
            return next(iter(out.values()))

        def call(party: int, method: str, *args: Any) -> Any:
            try:
                return ray.get(getattr(state.holder(party), method).remote(*args), timeout=state.cfg.round_timeout_s)
            except UNAVAILABLE as exc:
                raise PartyUnavailable(party, type(exc).__name__) from None

        return KeyLifecycle(run, call, security=state.cfg.security)

    def _pause(self, key_id: str) -> EcdsaKey | FrostKey:
        """Take the key out of signing and refills (waiting for refills of it already running), pools emptied."""
        key: EcdsaKey | FrostKey | None = self.ecdsa.pause(key_id)
        if key is None:
            key = self.frost.pause(key_id)
        if key is None:
            raise InvalidInput(f"unknown key {key_id!r} (or a refresh or resharing of it is running)")
        return key

    def _resume(self, key: EcdsaKey | FrostKey, result: LifecycleResult | None) -> None:
        from ..node.frost_records import public_package_from_bytes

        if result is not None:
            self.ecdsa.drop_pools(key.key_id)  # a refill that raced the commit may have added old-epoch entries
            self.frost.drop_pools(key.key_id)
            if isinstance(key, EcdsaKey):
                key = replace(key, threshold=result.threshold, parties=list(result.parties))
                try:  # DKLs23: a new pairwise setup for the new epoch (the holders refuse the old one from now on)
                    self.ecdsa.setup_protocol(key)
                except Exception as exc:  # noqa: BLE001 - the key is still resumed; its refills wait for a setup
                    log.warning("key %s: protocol setup after the epoch switch failed: %s", key.key_id,
                                type(exc).__name__)
            else:
                pub = public_package_from_bytes(result.public)
                key = replace(key, public_package=pub, threshold=result.threshold, parties=list(result.parties))
            self.state.add_members(result.parties)  # a new member: administrative calls (policies) reach it
        if isinstance(key, EcdsaKey):
            self.ecdsa.resume(key)
        else:
            self.frost.resume(key)

    def refresh_key(self, key_id: str, approval: Any = None) -> dict[str, Any]:
        """Coordinator.refresh_key: new shares (and aux info) for the key's committee, same public key."""
        key = self._pause(key_id)
        result = None
        try:
            down = [p for p in key.parties if not self.state.health.available(p)]
            if down:
                raise QuorumUnavailable(f"a refresh needs every holder of the key; down: {down}")
            old_public = b"" if isinstance(key, EcdsaKey) else _frost_public(key)
            result = self._driver().refresh(key_id, key.scheme, key.parties, old_public=old_public,
                                            threshold=key.threshold, approval=approval)
            return result.as_dict()
        finally:
            self._resume(key, result)

    def reshare_key(self, key_id: str, parties: Sequence[int], threshold: int,
                    dealers: Sequence[int] | None = None, approval: Any = None) -> dict[str, Any]:
        """Coordinator.reshare_key: move the key to committee `parties` with `threshold` signers (new parties must
        have holders and be in every holder's directory: `add_parties`)."""
        key = self._pause(key_id)
        result = None
        try:
            health = self.state.health
            chosen = sorted(dealers) if dealers is not None else [p for p in key.parties if health.available(p)]
            if len(chosen) < key.threshold:
                raise QuorumUnavailable(f"need {key.threshold} dealers among {key.parties}")
            old_public = b"" if isinstance(key, EcdsaKey) else _frost_public(key)
            result = self._driver().reshare(key_id, key.scheme, key.parties, parties, threshold, dealers=chosen,
                                            old_public=old_public, approval=approval)
            return result.as_dict()
        finally:
            self._resume(key, result)

    def add_parties(self, parties: Sequence[int], approval: Any = None) -> list[int]:
        """New committee members: exchange identities (new holders get the whole directory, existing holders add
        the newcomers; entries never change), then set up the committee's aux info again among everyone, so new
        keys can use the new members. Existing keys keep their committees until `reshare_key` moves them. Returns
        the committee."""
        import ray

        from .sessions import run_sessions

        state, cfg = self.state, self.state.cfg
        new = sorted(set(parties) - set(cfg.parties))
        if not new:
            return list(cfg.parties)
        everyone = sorted(set(cfg.parties) | set(new))
        hs = state.holders(everyone)
        idents = ray.get([hs[p].public_identity.remote() for p in everyone], timeout=cfg.round_timeout_s)
        ray.get([hs[p].set_directory.remote(idents, state.grants.verify_key) for p in new],
                timeout=cfg.round_timeout_s)
        ray.get([hs[p].extend_directory.remote(approval, idents) for p in cfg.parties], timeout=cfg.round_timeout_s)
        run_sessions(hs, SessionSpec("aux", everyone, {"level": cfg.security, "approval": approval}),
                     timeout=cfg.aux_timeout_s, grants=state.grants)
        cfg.parties = everyone
        return everyone

    def drop_pools(self, party: int) -> int:
        """Forget every pooled presignature (ECDSA, per signer set) and nonce commitment (FROST) that involves
        `party`: after its holder was restored from a backup, which discards them all on the node. Returns how many
        were dropped; the refill threads make fresh ones."""
        with self.state.lock:
            return self.ecdsa.drop_party(party) + self.frost.drop_party(party)


def _frost_public(key: FrostKey) -> bytes:
    from ..node.frost_records import public_package_to_bytes

    return public_package_to_bytes(key.public_package)
