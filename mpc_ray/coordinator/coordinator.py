"""The coordinator actor: committee setup, key generation, presignature pools and signing.

It holds only public data (identities, public keys, presignature public parts). Signing picks a signer set
whose members answer and whose pool is not empty; if a member fails mid-signature the presignature is dropped
and another set is tried. A party that sent a bad value (ProtocolAbort) is excluded until `readmit` (or for this
coordinator's life); a presigning whose sums fail runs identification first (coordinator/identify.py).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import ray

from .. import telemetry as tm  # ops hook: spans per request and round, Ray metrics
from ..crypto.secp256k1 import Point
from ..deploy import COORDINATOR_NAME, HOLDER_NAME, WORKER_NAME  # noqa: F401  (also imported from here)
from ..errors import InvalidInput, ProtocolAbort, QuorumUnavailable
from ..node.actor_runtime import in_ray_actor, settle_gc_for_latency
from ..node.holder import check_key_id
from ..protocols.ecdsa.sign import digest_to_int
from ..protocols.ecdsa_protocols import CGGMP21, ecdsa_protocol, protocol_of
from ..protocols.wire import decode, encode
from ..requests import SignedRequest, decode_raw_batch
from ..requests.grants import GrantSigner
# the agent-request modules are imported with the coordinator, not on the first agent request: they pull in
# eth-account, eth-abi and solders, which cost that request about half a second
from . import requests as agent_requests
from .frost_pools import FROST_SCHEMES, FrostPools  # FROST hook
from .frost_requests import frost_sign_request
from .sessions import UNAVAILABLE, PartyUnavailable, SessionSpec, gather, run_sessions

log = logging.getLogger(__name__)



@dataclass
class CoordinatorConfig:
    parties: list[int]
    threshold: int = 2  # default number of signers for new keys
    security: str = "128"
    pool_depth: int = 32  # presignatures kept per (key, signer set)
    pool_low_water: int = 8
    presign_batch: int = 8
    on_empty_pool: str = "presign"  # or "fail"
    round_timeout_s: float = 30.0
    aux_timeout_s: float = 900.0
    down_retry_s: float = 5.0  # how long a party that failed to answer is skipped
    probe_timeout_s: float = 2.0  # a down party that answers a ping this fast is taken back at once
    quorum_wait_s: float = 5.0  # how long a request waits for a quorum to come back before QuorumUnavailable
    refill: bool = True
    workers_per_node: int = 0  # presign workers beside each holder (0: the holders presign themselves)
    # the coordinator's Ed25519 identity (32-byte seed): it signs the grants that start presigning, aux-info and
    # identification sessions and FROST nonce commitments (requests/grants.py). Ray restarts the actor with the same
    # config, so with the same key; None: a fresh key for this object's life. Never in repr.
    coordinator_seed: bytes | None = field(default=None, repr=False)


@dataclass
class _Key:
    key_id: str
    scheme: str
    public_key: Point
    threshold: int
    parties: list[int]
    chain_code: bytes = b""  # BIP32 chain code the holders made at key generation (public)
    protocol: str = CGGMP21.name  # its threshold-ECDSA protocol (protocols/ecdsa_protocols.py), fixed at creation


class Coordinator:
    def __init__(self, config: CoordinatorConfig, namespace: str) -> None:
        self.cfg = config
        self.namespace = namespace
        self.grants = GrantSigner(config.coordinator_seed) if config.coordinator_seed else GrantSigner.generate()
        self.keys: dict[str, _Key] = {}
        # public parts of pooled presignatures (CGGMP21's or DKLs23's PresignaturePublic, as the key's protocol)
        self.pools: dict[tuple[str, tuple[int, ...]], deque[Any]] = {}
        self.lock = threading.RLock()
        self.down_until: dict[int, float] = {}  # holders that did not answer: skipped for signing
        self.workers_down_until: dict[int, float] = {}  # presign workers that did not answer: skipped for refills
        self.excluded: dict[int, str] = {}
        self.disputes: set[frozenset[int]] = set()  # pairs that accused each other in identification (identify.py)
        self.ready = False
        self._handles: dict[str, Any] = {}
        self._stop = threading.Event()
        self.frost = FrostPools(self)  # FROST hook: keys, nonce pools (own refill thread) and signing
        self._refill_threads: list[threading.Thread] = []
        self._refilling: set[tuple[str, tuple[int, ...]]] = set()  # being filled by a refill thread now
        self._topping_up: set[tuple[str, tuple[int, ...]]] = set()  # below low water once, filling to full
        tm.configure_from_env()  # ops hook: MPC_RAY_TRACING=console|otlp|memory
        self._resynced = threading.Event()  # the first key-table rebuild from the holders is done (resync.py)
        if in_ray_actor():  # a (re)started actor; a Coordinator object built in a test process drives nothing itself
            threading.Thread(target=self._resync_loop, daemon=True, name="key-resync").start()
        else:
            self._resynced.set()
        settle_gc_for_latency()  # in an actor only: long-lived state out of the collector's scans

    # plumbing -----------------------------------------------------------------------------------------
    def _actor(self, name: str):
        """A cached handle: a detached actor keeps its handle across Ray's restarts, and looking a name up
        costs a GCS round trip on every call otherwise."""
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = ray.get_actor(name, namespace=self.namespace)
        return handle

    def holder(self, party: int):
        return self._actor(HOLDER_NAME.format(party=party))

    def holders(self, parties) -> dict[int, Any]:
        return {i: self.holder(i) for i in parties}

    def presigners(self, parties, worker: int | None) -> dict[int, Any]:
        """Who runs presigning: worker `worker` of each party's node, or the holders when there are none."""
        if worker is None or self.cfg.workers_per_node == 0:
            return self.holders(parties)
        return {i: self._actor(WORKER_NAME.format(party=i, worker=worker)) for i in parties}

    def _available(self, party: int) -> bool:
        return party not in self.excluded and self.down_until.get(party, 0) <= time.monotonic()

    def _mark_down(self, party: int) -> None:
        tm.record_unavailable(party)  # ops hook
        self.down_until[party] = time.monotonic() + self.cfg.down_retry_s

    def _exclude(self, abort: ProtocolAbort) -> None:
        tm.record_abort(abort)  # ops hook: culprit on the span, abort counted by check
        if abort.culprit in self.cfg.parties:
            self.excluded[abort.culprit] = abort.check

    # restart: rebuild the key table from the holders (coordinator/resync.py) ---------------------------
    RESYNC_FOR_S = 120.0

    def resync(self, timeout: float | None = None) -> list[str]:
        """Adopt every key the holders hold that this coordinator does not know; returns the new key ids."""
        from .resync import adopt_keys, gather_views

        views = gather_views(self, list(self.cfg.parties), timeout or self.cfg.round_timeout_s)
        adopted = adopt_keys(self, views)
        if adopted:
            log.warning("adopted keys %s from the holders (coordinator restart)", adopted)
            self._start_refill()
            self.frost._start_refill()
        return adopted

    def _resync_loop(self) -> None:
        """After a (re)start: until every party has answered once, or RESYNC_FOR_S passed, adopt what the
        holders report. On a fresh committee there is nothing to adopt and this ends at once."""
        from .resync import adopt_keys, gather_views

        deadline = time.monotonic() + self.RESYNC_FOR_S
        answered: set[int] = set()
        while not self._stop.is_set() and time.monotonic() < deadline:
            missing = [p for p in self.cfg.parties if p not in answered]
            try:
                views = gather_views(self, missing, 2.0)
                answered |= set(views)
                if adopt_keys(self, views):
                    self._start_refill()
                    self.frost._start_refill()
            except Exception as exc:  # noqa: BLE001 - a failed attempt is retried; signing works meanwhile
                log.warning("key resync attempt failed: %s", type(exc).__name__)
            if len(answered) >= len(self.cfg.parties) or (answered and not self._resynced.is_set()):
                self._resynced.set()  # sign calls stop waiting once the first holders have answered
            if len(answered) >= len(self.cfg.parties):
                return
            time.sleep(1.0)
        self._resynced.set()

    def _known(self, key_id: str) -> bool:
        """Whether `key_id` is in the key table, waiting (bounded) for the first resync after a restart."""
        if key_id in self.keys or key_id in self.frost.keys:
            return True
        self._resynced.wait(self.cfg.quorum_wait_s)
        return key_id in self.keys or key_id in self.frost.keys

    # setup --------------------------------------------------------------------------------------------
    @tm.traced_request("setup")
    def setup(self) -> dict:
        """Exchange node identities (trust on first use) and run aux-info once for the committee."""
        parties = self.cfg.parties
        hs = self.holders(parties)
        idents = ray.get([hs[i].public_identity.remote() for i in parties], timeout=self.cfg.round_timeout_s)
        key = self.grants.verify_key  # announced with the directory: the holders take it on first use
        ray.get([hs[i].set_directory.remote(idents, key) for i in parties], timeout=self.cfg.round_timeout_s)
        have = ray.get([hs[i].has_aux.remote() for i in parties], timeout=self.cfg.round_timeout_s)
        if not all(have):
            run_sessions(hs, SessionSpec("aux", parties, {"level": self.cfg.security}), timeout=self.cfg.aux_timeout_s,
                         grants=self.grants)
        self.ready = True
        return {"parties": parties, "security": self.cfg.security}

    # keys ---------------------------------------------------------------------------------------------
    @tm.traced_request("keygen")
    def create_key(self, key_id: str, scheme: str, threshold: int, approval: SignedRequest | None = None,
                   protocol: str | None = None) -> dict:
        """A new key among the whole committee. `approval`: the admin-quorum ``create_key`` request naming it, which
        every holder checks before it takes part. ECDSA: `protocol` "cggmp21" (default) or "dkls23"
        (protocols/ecdsa_protocols.py): the same key generation, then, for DKLs23, its pairwise setup."""
        check_key_id(key_id)
        if protocol is not None and scheme != "ecdsa-secp256k1":
            raise InvalidInput("a protocol is chosen for ECDSA keys only")
        proto = ecdsa_protocol(CGGMP21.name if protocol is None else protocol)
        if scheme in FROST_SCHEMES or key_id in self.frost.keys:  # FROST hook
            return self.frost.create_key(key_id, scheme, threshold, approval)
        if scheme != "ecdsa-secp256k1":
            raise InvalidInput(f"scheme {scheme!r} is not served by this runtime yet")
        if not 1 <= threshold <= len(self.cfg.parties):
            raise InvalidInput("need 1 <= threshold <= parties")
        with self.lock:
            if key_id in self.keys:
                raise InvalidInput(f"key {key_id!r} exists")
        parties = self.cfg.parties
        params = {"key_id": key_id, "threshold": threshold, "approval": approval}
        if proto is not CGGMP21:  # CGGMP21 keys are made as before (their approval names no protocol)
            params["protocol"] = proto.name
        out = run_sessions(self.holders(parties), SessionSpec("keygen", parties, params),
                           timeout=self.cfg.round_timeout_s)
        results = next(iter(out.values()))
        pks = {r["public_key"] for r in results.values()}
        if len(pks) != 1:
            raise ProtocolAbort(parties[0], "keygen.public_key_disagreement")
        ccs = {r.get("chain_code", b"") for r in results.values()}  # HD hook
        if len(ccs) != 1:
            raise ProtocolAbort(parties[0], "keygen.chain_code_disagreement")
        key = _Key(key_id, scheme, Point.from_bytes(pks.pop()), threshold, list(parties), ccs.pop(), proto.name)
        if proto.setup_session is not None:  # DKLs23: the pairwise OT setup, once per key and epoch
            self.setup_protocol(key)
        with self.lock:
            self.keys[key_id] = key
        self._start_refill()
        return {"key_id": key_id, "scheme": scheme, "public_key": key.public_key.to_bytes(),
                "threshold": threshold, "parties": len(parties), "chain_code": key.chain_code,
                "protocol": proto.name}

    def setup_protocol(self, key: _Key) -> None:
        """The key's protocol setup among its whole committee (DKLs23: base OTs, OT-extension setups, zero-sharing
        seeds), for its current epoch; nothing for CGGMP21."""
        name = ecdsa_protocol(key.protocol).setup_session
        if name is not None:
            run_sessions(self.holders(key.parties), SessionSpec(name, list(key.parties), {"key_id": key.key_id}),
                         timeout=self.cfg.round_timeout_s, grants=self.grants)

    def signer_sets(self, key: _Key) -> list[tuple[int, ...]]:
        # a disputed pair holds a cheater (coordinator/identify.py): never again in one set, until readmit
        return [s for s in itertools.combinations(key.parties, key.threshold)
                if not any(frozenset(pair) in self.disputes for pair in itertools.combinations(s, 2))]

    # presignature pools -------------------------------------------------------------------------------
    def presign(self, key_id: str, signers: tuple[int, ...], count: int, worker: int | None = 0) -> int:
        """Run `count` presignatures among `signers` and add them to the pool; returns how many were added."""
        with self.lock:
            key = self.keys.get(key_id)
        proto = ecdsa_protocol(key.protocol if key is not None else CGGMP21.name)
        if not proto.presign_workers:
            worker = None  # DKLs23: the holders presign (their ledger keeps the OT extension ids)
        spec = SessionSpec(proto.presign_session, list(signers), {"key_id": key_id})
        use_workers = worker is not None and self.cfg.workers_per_node > 0
        from .identify import BroadcastLog, settle_presign  # identification hook: coordinator/identify.py
        relayed = BroadcastLog()
        try:
            out = run_sessions(self.presigners(signers, worker), spec, count=count, timeout=self.cfg.round_timeout_s,
                               observe=relayed, grants=self.grants)
        except PartyUnavailable as exc:
            # a dead presign worker only pauses refills through that party; its holder may still sign
            if use_workers:
                self.workers_down_until[exc.party] = time.monotonic() + self.cfg.down_retry_s
            else:
                self._mark_down(exc.party)
            raise
        except ProtocolAbort as exc:
            self._exclude(exc)
            raise
        # identification hook: sessions that failed their sums are judged (the culprit excluded), the rest kept
        out, abort = settle_presign(self, key_id, signers, worker, out, relayed) if proto.identifies else (out, None)
        added = []
        for results in out.values():
            blobs = set(results.values())
            if len(blobs) != 1:
                continue  # holders disagree on the public part: never use it
            added.append(decode(blobs.pop(), proto.public_type))
        with self.lock:
            self.pools.setdefault((key_id, tuple(signers)), deque()).extend(added)
            tm.record_pool(key_id, signers, len(self.pools[(key_id, tuple(signers))]))  # ops hook
        if abort is not None:
            raise abort
        return len(added)

    def readmit(self, party: int) -> dict:
        """End `party`'s exclusion and its disputes (identification hook, coordinator/identify.py). Exclusion only
        protects this coordinator's availability, and any Ray caller could call this, so it takes no admin approval."""
        with self.lock:
            check = self.excluded.pop(party, None)
            dropped = {d for d in self.disputes if party in d}
            self.disputes -= dropped
        return {"party": party, "was_excluded": check, "disputes_dropped": sorted(sorted(d) for d in dropped)}

    def pool_depths(self) -> dict[str, int]:
        with self.lock:
            depths = {f"{k}:{'-'.join(map(str, s))}": len(p) for (k, s), p in self.pools.items()}
        return {**depths, **self.frost.pool_depths()}  # FROST hook: "<key>:<party>"

    def _start_refill(self) -> None:
        if self.cfg.refill and not self._refill_threads:
            for w in range(max(1, self.cfg.workers_per_node)):
                t = threading.Thread(target=self._refill_loop, args=(w,), daemon=True, name=f"pool-refill-{w}")
                t.start()
                self._refill_threads.append(t)

    def _claim_refill(self) -> tuple[_Key, tuple[int, ...], int] | None:
        """The emptiest pool below its depth whose members are up and which no other refill thread is filling."""
        with self.lock:
            best = None
            for key in self.keys.values():
                for signers in self.signer_sets(key):
                    slot = (key.key_id, signers)
                    depth = len(self.pools.get(slot, ()))
                    if depth >= self.cfg.pool_depth:
                        self._topping_up.discard(slot)
                        continue
                    if slot in self._refilling:
                        continue
                    # hysteresis: start below the low-water mark, then fill up to the full depth
                    if depth > self.cfg.pool_low_water and slot not in self._topping_up:
                        continue
                    now = time.monotonic()
                    if not all(self._available(p) and self.workers_down_until.get(p, 0) <= now for p in signers):
                        continue
                    if best is None or depth < best[2]:
                        best = (key, signers, depth)
            if best is not None:
                self._refilling.add((best[0].key_id, best[1]))
                self._topping_up.add((best[0].key_id, best[1]))
            return best

    def _refill_loop(self, worker: int) -> None:
        while not self._stop.is_set():
            try:
                self._refill_once(worker)
            except Exception:  # noqa: BLE001 - the refill must outlive any one failure; it is logged
                log.exception("presignature refill failed; retrying")
                self._stop.wait(1.0)

    def _refill_once(self, worker: int) -> None:
        claim = self._claim_refill()
        if claim is None:
            self._stop.wait(0.1)
            return
        key, signers, depth = claim
        try:
            self.presign(key.key_id, signers, min(self.cfg.presign_batch, self.cfg.pool_depth - depth), worker)
        except Exception as exc:  # noqa: BLE001 - a failed refill is retried; presign() marked the party down
            if getattr(exc, "rule", None) == "auth.rate_limited":  # a holder's limit: as if the pool were full
                with self.lock:
                    self._topping_up.discard((key.key_id, signers))
                self._stop.wait(1.0)
            else:
                self._stop.wait(0.2)
        finally:
            with self.lock:
                self._refilling.discard((key.key_id, signers))

    def stop(self) -> None:
        self._stop.set()

    # signing ------------------------------------------------------------------------------------------
    def _probe_down(self) -> None:
        """Ask every party marked down whether it is back (a restarted holder answers within a second or two)."""
        now = time.monotonic()
        down = [p for p, t in self.down_until.items() if t > now and p not in self.excluded]
        refs = {}
        for p in down:
            try:
                refs[p] = self.holder(p).ping.remote()
            except ValueError:  # the actor name is not registered right now
                continue
        for p, ref in refs.items():
            try:
                ray.get(ref, timeout=self.cfg.probe_timeout_s)
                self.down_until.pop(p, None)
            except UNAVAILABLE:
                pass

    def _take_presignatures(self, key: _Key, count: int) -> tuple[tuple[int, ...], list[Any]]:
        """Pop up to `count` presignatures from the fullest pool whose members are all available."""
        deadline = time.monotonic() + self.cfg.quorum_wait_s
        while not any(all(self._available(p) for p in s) for s in self.signer_sets(key)):
            self._probe_down()  # a restarted holder is taken back as soon as it answers
            if time.monotonic() > deadline or any(all(self._available(p) for p in s) for s in self.signer_sets(key)):
                break
            time.sleep(0.2)
        with self.lock:
            options = [
                (len(self.pools.get((key.key_id, s), ())), s)
                for s in self.signer_sets(key)
                if all(self._available(p) for p in s)
            ]
            if not options:
                raise QuorumUnavailable(f"fewer than {key.threshold} parties available for key {key.key_id!r}")
            depth, signers = max(options)
            pool = self.pools.get((key.key_id, signers))
            taken = [pool.popleft() for _ in range(min(count, depth))] if pool else []
        tm.annotate(signer_set=signers, pool_depth=depth)  # ops hook
        tm.record_pool(key.key_id, signers, depth - len(taken))
        if not taken:
            if self.cfg.on_empty_pool != "presign":
                raise QuorumUnavailable("presignature pool empty")
            tm.annotate(key_id=key.key_id, presigned_on_demand=1)  # ops hook: `mpc-ray bench` counts these
            self.presign(key.key_id, signers, min(count, self.cfg.presign_batch), worker=None)
            return self._take_presignatures(key, count)
        return signers, taken

    def lease_presignatures(self, key_id: str, count: int) -> dict:
        """Hand a client up to `count` pooled presignatures (public parts) of one signer set for one-hop signing
        (client/fastpath.py). They leave the pool for good; at most half of a pool goes, so this path keeps some.
        Never presigns on demand: an empty answer sends the client through `sign`."""
        if self._known(key_id) and key_id in self.frost.keys:
            return {"unleasable": True}
        with self.lock:
            key = self.keys.get(key_id)
            if key is None:
                raise InvalidInput(f"unknown key {key_id!r}")
            options = [(len(self.pools.get((key_id, s), ())), s) for s in self.signer_sets(key)
                       if all(self._available(p) for p in s)]
            taken: list[Any] = []
            if options:
                depth, signers = max(options)
                n = min(max(1, int(count)), 64, depth // 2)
                pool = self.pools[(key_id, signers)] if n > 0 else None
                taken = [pool.popleft() for _ in range(n)] if pool is not None else []
        return {"namespace": self.namespace, "public_key": key.public_key.to_bytes(), "protocol": key.protocol,
                "presignatures": [encode(p) for p in taken]}

    def derive(self, key_id: str, path: str) -> dict:
        """HD hook: the BIP32 child of a key at a non-hardened `path`, public values only (coordinator/hd.py)."""
        from .hd import derive_info

        return derive_info(self, key_id, path)

    @tm.traced_request("sign")
    def sign_many(self, key_id: str, request: SignedRequest) -> list:
        """Signatures of the messages of an operator's ``raw_batch`` request, in order: ECDSA (64-byte r||s,
        recovery id) for 32-byte digests, FROST `Signature` objects for message bytes. The request travels to every
        signer, which checks it and its policy itself and signs each message a bounded number of times; the request's
        derivation path (and, BIP340, tap_tweak) apply to every message, each signature from a re-randomised
        presignature (protocols/ecdsa/sign.py)."""
        if not isinstance(request, SignedRequest) or request.key_id != key_id:
            raise InvalidInput("expected the operator's signed raw_batch request for this key")
        raw = decode_raw_batch(request.body)
        digests, path = list(raw.messages), request.derivation_path or None
        tm.annotate(messages=len(digests))  # ops hook: the count is in the request's body, not an argument
        self._known(key_id)  # restart hook: after a restart, the key table is rebuilt from the holders
        if key_id in self.frost.keys:  # FROST hook: Signature objects for the message bytes
            tm.annotate(scheme=self.frost.keys[key_id].scheme)  # ops hook
            return self.frost.sign_many(key_id, request, digests, raw.tap_tweak, path=path)
        with self.lock:
            key = self.keys.get(key_id)
        if key is None:
            raise InvalidInput(f"unknown key {key_id!r}")
        tm.annotate(scheme=key.scheme)  # ops hook
        if raw.tap_tweak is not None:
            raise InvalidInput("tap_tweak applies to BIP340 keys only")
        for d in digests:
            digest_to_int(d)
        tweak = None
        if path is not None:  # HD hook: the holders derive the same tweak from their own chain code
            from .hd import ecdsa_tweak

            path, tweak = ecdsa_tweak(key, path)
        done: list[tuple[bytes, int] | None] = [None] * len(digests)
        todo = list(range(len(digests)))
        failures = 0  # attempts that signed nothing; a big batch may take many successful ones
        while todo:
            if failures > 2 * len(self.signer_sets(key)) + 2:
                raise QuorumUnavailable("no signer set completed the signature")
            try:
                signers, presigs = self._take_presignatures(key, len(todo))
            except PartyUnavailable:
                failures += 1
                continue  # presign() marked the party down; another set is tried
            except ProtocolAbort:
                failures += 1
                continue  # presign() excluded the culprit
            batch = todo[: len(presigs)]
            try:
                partials = self._partials(key, signers, presigs, batch, request)
            except PartyUnavailable as exc:
                self._mark_down(exc.party)
                failures += 1
                continue  # those presignatures may be consumed on some holders: they are gone either way
            for n, idx in enumerate(batch):
                per_party = {p: partials[p][n] for p in signers}
                try:
                    # always re-randomised, the master key too (tweak 0): the holders derive the same rho
                    proto = protocol_of(presigs[n])  # CGGMP21's sigma_i or DKLs23's online shares
                    child = proto.rerandomize_for(presigs[n], key.public_key, 0 if tweak is None else tweak,
                                                  digests[idx])
                    sig = proto.combine(presigs[n], key.public_key, digests[idx], per_party, child)
                except ProtocolAbort as exc:
                    self._exclude(exc)
                    continue
                done[idx] = (sig.to_bytes(), sig.recovery_id)
            left = [i for i in todo if done[i] is None]
            failures += len(left) == len(todo)
            todo = left
        return done  # type: ignore[return-value]

    # policy-enforced signing ----------------------------------------------------------------------------
    def answers(self, refs: dict[int, Any]) -> dict[int, Any]:
        """Each party's answer to one request round; a party that does not answer is marked down and named
        (PartyUnavailable). A holder's own refusal (PolicyDenied, ...) propagates as it is."""
        return gather(refs, self.cfg.round_timeout_s, self._mark_down)

    def _on_every_holder(self, method: str, *args, parties: list[int] | None = None) -> None:
        """Administrative calls reach every holder (or `parties`): wait (up to aux_timeout_s) for one that is
        restarting."""
        deadline = time.monotonic() + self.cfg.aux_timeout_s
        for p in self.cfg.parties if parties is None else parties:
            while True:
                try:
                    ray.get(getattr(self.holder(p), method).remote(*args), timeout=self.cfg.round_timeout_s)
                    break
                except UNAVAILABLE:
                    if time.monotonic() > deadline:
                        raise PartyUnavailable(p, f"{method} could not reach it") from None
                    time.sleep(0.5)

    def bootstrap_principals(self, registry: bytes) -> None:
        """Hand every holder the first principals (deployment step; trust on first use on each node)."""
        self._on_every_holder("bootstrap_principals", registry)

    def set_policy(self, request) -> None:
        """Relay an admin-signed policy to the holders of its key (a holder without a share cannot check a policy
        against the key's committee, and refuses it); each verifies and stores it itself."""
        key_id = getattr(request, "key_id", "")
        parties = None
        if isinstance(key_id, str) and self._known(key_id):
            with self.lock:
                key = self.keys.get(key_id) or self.frost.keys.get(key_id)
            parties = None if key is None else list(key.parties)
        self._on_every_holder("set_policy", request, parties=parties)

    def set_principals(self, request) -> None:
        """Relay an admin-quorum-signed principal registry to every holder; each checks the quorum itself."""
        self._on_every_holder("set_principals", request)

    def coordinator_key(self) -> bytes:
        """This coordinator's verify key (public): the holders accept the session grants it signs."""
        return self.grants.verify_key

    def set_coordinator(self, request, verify_key: bytes) -> None:
        """Relay an admin-quorum ``set_coordinator`` request to every holder; each checks it and takes `verify_key`
        as the coordinator's from then on. This coordinator's own grants stop working unless `verify_key` is its
        own: restart the coordinator with the new key's seed (CoordinatorConfig.coordinator_seed)."""
        self._on_every_holder("set_coordinator", request, verify_key)

    @tm.traced_request("sign_request")
    def sign_request(self, request) -> tuple[bytes, int]:
        """Sign a principal-signed request. The holders decode it, check their policy and sign the digest they
        computed, which they report with their partials; the coordinator combines with that digest and decodes the
        request itself only if the signature does not verify (coordinator/requests.py). Not retried on another
        signer set: the request's nonce is spent at the holders that saw it, so the agent signs a fresh request."""
        self._known(getattr(request, "key_id", ""))  # restart hook
        if isinstance(request, SignedRequest) and request.key_id in self.frost.keys:  # FROST (frost_requests.py)
            return frost_sign_request(self.frost, request)
        (out,) = agent_requests.sign_requests(self, [request])
        if isinstance(out, BaseException):
            raise out
        return out

    @tm.traced_request("sign_requests")
    def sign_requests(self, requests: list) -> list:
        """Principal-signed requests in one call per signer (one audit fsync per holder for the batch): for each,
        (r||s, recovery id) or a Signature (FROST keys), or the error that refused it (coordinator/requests.py)."""
        return agent_requests.sign_requests(self, requests)

    @tm.traced_round("sign")
    def _partials(self, key: _Key, signers, presigs, messages: list[int],
                  request: SignedRequest) -> dict[int, list[int]]:
        """Each signer's partials for the request's `messages` (their indices in it), one presignature each."""
        items = [(i, p.presignature_id) for i, p in zip(messages, presigs)]  # `messages`: counted by the round span
        return gather({p: self.holder(p).partial_sign.remote(request, items) for p in signers},
                      self.cfg.round_timeout_s)

    # key lifecycle hooks: the logic lives in lifecycle.py ------------------------------------------------
    def refresh_key(self, key_id: str, approval: SignedRequest | None = None) -> dict:
        """New shares (ECDSA: and aux info) for the key's committee, same public key; old epoch destroyed.
        `approval`: the admin-quorum ``refresh_key`` request, checked by every holder."""
        from .lifecycle import refresh_key
        return refresh_key(self, check_key_id(key_id), approval)

    def reshare_key(self, key_id: str, parties: list[int], threshold: int, dealers: list[int] | None = None,
                    approval: SignedRequest | None = None) -> dict:
        """Move the key to committee `parties` with `threshold` signers, same public key. `approval`: the
        admin-quorum ``reshare_key`` request naming that committee and threshold, checked by every holder."""
        from .lifecycle import reshare_key
        return reshare_key(self, check_key_id(key_id), parties, threshold, dealers, approval)

    def add_parties(self, parties: list[int], approval: SignedRequest | None = None) -> list[int]:
        """Let new holders (already running) join: identities exchanged, directories extended as the admin-quorum
        ``extend_directory`` request `approval` names them."""
        from .lifecycle import add_parties
        return add_parties(self, parties, approval)

    def drop_pools(self, party: int) -> int:
        """Forget the pooled presignatures and nonces involving `party` (after its holder was restored)."""
        from .lifecycle import drop_pools
        return drop_pools(self, party)

    def status(self) -> dict:
        now = time.monotonic()
        return {
            "parties": self.cfg.parties,
            "threshold": self.cfg.threshold,
            "keys": {**{k: {"threshold": v.threshold, "public_key": v.public_key.to_bytes().hex(),
                            "parties": len(v.parties), "members": list(v.parties),  # lifecycle hook: its committee
                            "protocol": v.protocol}
                        for k, v in self.keys.items()},
                     **self.frost.key_status()},  # FROST hook
            "pools": self.pool_depths(),
            "down": [p for p, t in self.down_until.items() if t > now],
            "excluded": dict(self.excluded),
            "disputes": sorted(sorted(d) for d in list(self.disputes)),  # identification hook: never in one set
            "telemetry": tm.snapshot(),  # ops hook: latency, pool gauges, denials/aborts by reason, last errors
        }

    # ops hooks: tracing switched on a running coordinator; its spans read back (memory exporter) ----------------
    def configure_tracing(self, exporter: str | None, endpoint: str | None = None) -> None:
        tm.configure_tracing(exporter, endpoint=endpoint)

    def telemetry(self, clear_spans: bool = False) -> dict:
        return {**tm.snapshot(), "spans": tm.finished_spans(clear=clear_spans)}
