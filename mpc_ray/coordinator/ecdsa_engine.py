"""The coordinator side of threshold ECDSA (CGGMP21, DKLs23): the key table, presignature pools per signer set and
the threads that refill them, leases for one-hop signing, and signing (raw batches and agent requests).

Everything here is public: public keys and the presignatures' public parts. Signing picks a signer set whose members
answer and whose pool is not empty; if a member fails mid-signature the presignature is dropped and another set is
tried. A presigning whose sums fail runs identification first (coordinator/identify.py).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

from .. import telemetry as tm
from ..crypto.secp256k1 import Point
from ..errors import InvalidInput, MpcError, PartyUnavailable, ProtocolAbort, QuorumUnavailable
from ..protocols.ecdsa.sign import digest_to_int
from ..protocols.ecdsa_protocols import CGGMP21, EcdsaProtocol, ecdsa_protocol, protocol_of
from ..protocols.wire import decode, encode
from ..requests import NOT_REFUSALS, SignedRequest
from .identify import BroadcastLog, settle_presign
from .requests import combine_request
from .sessions import SessionSpec, gather, run_sessions
from .state import CoordinatorState

log = logging.getLogger(__name__)

ECDSA = "ecdsa-secp256k1"
Slot = tuple[str, tuple[int, ...]]  # (key id, signer set): one presignature pool


@dataclass
class EcdsaKey:
    key_id: str
    scheme: str
    public_key: Point
    threshold: int
    parties: list[int]
    chain_code: bytes = b""  # BIP32 chain code the holders made at key generation (public)
    protocol: str = CGGMP21.name  # its threshold-ECDSA protocol (protocols/ecdsa_protocols.py), fixed at creation


class EcdsaEngine:
    def __init__(self, state: CoordinatorState) -> None:
        self.state = state
        self.cfg = state.cfg
        self.health = state.health
        self.lock = state.lock
        self.keys: dict[str, EcdsaKey] = {}
        # public parts of pooled presignatures (CGGMP21's or DKLs23's PresignaturePublic, as the key's protocol)
        self.pools: dict[Slot, deque[Any]] = {}
        self._refill_threads: list[threading.Thread] = []
        self._refilling: set[Slot] = set()  # being filled by a refill thread now
        self._topping_up: set[Slot] = set()  # below low water once, filling to full

    # keys ---------------------------------------------------------------------------------------------
    def key(self, key_id: str) -> EcdsaKey | None:
        with self.lock:
            return self.keys.get(key_id)

    def create_key(self, key_id: str, threshold: int, approval: SignedRequest | None,
                   proto: EcdsaProtocol) -> dict[str, Any]:
        """A new key among the whole committee: key generation, then the protocol's setup (DKLs23's)."""
        if not 1 <= threshold <= len(self.cfg.parties):
            raise InvalidInput("need 1 <= threshold <= parties")
        with self.lock:
            if key_id in self.keys:
                raise InvalidInput(f"key {key_id!r} exists")
        parties = self.cfg.parties
        params: dict[str, Any] = {"key_id": key_id, "threshold": threshold, "approval": approval}
        if proto is not CGGMP21:  # CGGMP21 keys are made as before (their approval names no protocol)
            params["protocol"] = proto.name
        out = run_sessions(self.state.holders(parties), SessionSpec("keygen", parties, params),
                           timeout=self.cfg.round_timeout_s)
        results = next(iter(out.values()))
        pks = {r["public_key"] for r in results.values()}
        if len(pks) != 1:
            raise ProtocolAbort(parties[0], "keygen.public_key_disagreement")
        ccs = {r.get("chain_code", b"") for r in results.values()}  # BIP32 chain code
        if len(ccs) != 1:
            raise ProtocolAbort(parties[0], "keygen.chain_code_disagreement")
        key = EcdsaKey(key_id, ECDSA, Point.from_bytes(pks.pop()), threshold, list(parties), ccs.pop(), proto.name)
        if proto.setup_session is not None:  # DKLs23: the pairwise OT setup, once per key and epoch
            self.setup_protocol(key)
        with self.lock:
            self.keys[key_id] = key
        self.start_refill()
        return {"key_id": key_id, "scheme": ECDSA, "public_key": key.public_key.to_bytes(),
                "threshold": threshold, "parties": len(parties), "chain_code": key.chain_code,
                "protocol": proto.name}

    def setup_protocol(self, key: EcdsaKey) -> None:
        """The key's protocol setup among its whole committee (DKLs23: base OTs, OT-extension setups, zero-sharing
        seeds), for its current epoch; nothing for CGGMP21."""
        name = ecdsa_protocol(key.protocol).setup_session
        if name is not None:
            run_sessions(self.state.holders(key.parties), SessionSpec(name, list(key.parties), {"key_id": key.key_id}),
                         timeout=self.cfg.round_timeout_s, grants=self.state.grants)

    def signer_sets(self, key: EcdsaKey) -> list[tuple[int, ...]]:
        return self.health.undisputed(itertools.combinations(key.parties, key.threshold))

    def key_status(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {k: {"threshold": v.threshold, "public_key": v.public_key.to_bytes().hex(),
                        "parties": len(v.parties), "members": list(v.parties), "protocol": v.protocol}
                    for k, v in self.keys.items()}

    # the key table across restarts and epochs (resync.py, lifecycle.py) -----------------------------------
    def adopt(self, key: EcdsaKey) -> None:
        with self.lock:
            self.keys[key.key_id] = key

    def pause(self, key_id: str) -> EcdsaKey | None:
        """Take the key out of signing and refills, waiting (bounded) for refills of it already running, and
        empty its pools. None if it is not an ECDSA key here."""
        with self.lock:
            key = self.keys.pop(key_id, None)
        if key is None:
            return None
        deadline = time.monotonic() + self.cfg.aux_timeout_s
        while True:
            with self.lock:
                busy = any(k == key_id for k, _ in self._refilling)
            if not busy or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.drop_pools(key_id)
        return key

    def resume(self, key: EcdsaKey) -> None:
        with self.lock:
            self.keys[key.key_id] = key
        self.start_refill()

    def drop_pools(self, key_id: str) -> None:
        with self.lock:
            for slot in [s for s in self.pools if s[0] == key_id]:
                del self.pools[slot]

    def drop_party(self, party: int) -> int:
        """Forget every pooled presignature of a signer set with `party`; returns how many."""
        dropped = 0
        with self.lock:
            for slot in [s for s in self.pools if party in s[1]]:
                dropped += len(self.pools.pop(slot))
        return dropped

    # presignature pools -------------------------------------------------------------------------------
    def presign(self, key_id: str, signers: tuple[int, ...], count: int, worker: int | None = 0) -> int:
        """Run `count` presignatures among `signers` and add them to the pool; returns how many were added."""
        with self.lock:
            key = self.keys.get(key_id)
        proto = ecdsa_protocol(key.protocol if key is not None else CGGMP21.name)
        if self.cfg.workers_per_node == 0 or not proto.presign_workers:
            worker = None  # the holders presign
        spec = SessionSpec(proto.presign_session, list(signers), proto.presign_params(key_id, worker))
        use_workers = worker is not None
        relayed = BroadcastLog()
        try:
            out = run_sessions(self.state.presigners(signers, worker), spec, count=count,
                               timeout=self.cfg.round_timeout_s, observe=relayed, grants=self.state.grants)
        except PartyUnavailable as exc:
            # a dead presign worker only pauses refills through that party; its holder may still sign
            if use_workers:
                self.health.mark_worker_down(exc.party)
            else:
                self.health.mark_down(exc.party)
            raise
        except ProtocolAbort as exc:
            self.health.exclude(exc)
            raise
        # identification: sessions that failed their sums are judged (the culprit excluded), the rest kept
        abort: MpcError | None = None
        if proto.identifies:
            out, abort = settle_presign(self.state, key, signers, worker, out, relayed)
        added: list[Any] = []
        for results in out.values():
            blobs = set(results.values())
            if len(blobs) != 1:
                continue  # holders disagree on the public part: never use it
            added.append(decode(blobs.pop(), proto.public_type))
        with self.lock:
            self.pools.setdefault((key_id, tuple(signers)), deque()).extend(added)
            tm.record_pool(key_id, signers, len(self.pools[(key_id, tuple(signers))]))
        if abort is not None:
            raise abort
        return len(added)

    def pool_depths(self) -> dict[str, int]:
        """{"<key_id>:<signer set, dash-joined>": presignatures pooled}."""
        with self.lock:
            return {f"{k}:{'-'.join(map(str, s))}": len(p) for (k, s), p in self.pools.items()}

    def start_refill(self) -> None:
        if self.cfg.refill and not self._refill_threads:
            for w in range(max(1, self.cfg.workers_per_node)):
                t = threading.Thread(target=self._refill_loop, args=(w,), daemon=True, name=f"pool-refill-{w}")
                t.start()
                self._refill_threads.append(t)

    def _claim_refill(self) -> tuple[EcdsaKey, tuple[int, ...], int] | None:
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
                    if not all(self.health.available(p) and self.health.workers_available(p, now) for p in signers):
                        continue
                    if best is None or depth < best[2]:
                        best = (key, signers, depth)
            if best is not None:
                self._refilling.add((best[0].key_id, best[1]))
                self._topping_up.add((best[0].key_id, best[1]))
            return best

    def _refill_loop(self, worker: int) -> None:
        stop = self.state.stop
        while not stop.is_set():
            try:
                self._refill_once(worker)
            except Exception:  # noqa: BLE001 - the refill must outlive any one failure; it is logged
                log.exception("presignature refill failed; retrying")
                stop.wait(1.0)

    def _refill_once(self, worker: int) -> None:
        stop = self.state.stop
        claim = self._claim_refill()
        if claim is None:
            stop.wait(0.1)
            return
        key, signers, depth = claim
        try:
            self.presign(key.key_id, signers, min(self.cfg.presign_batch, self.cfg.pool_depth - depth), worker)
        except Exception as exc:  # noqa: BLE001 - a failed refill is retried; presign() marked the party down
            if getattr(exc, "rule", None) == "auth.rate_limited":  # a holder's limit: as if the pool were full
                with self.lock:
                    self._topping_up.discard((key.key_id, signers))
                stop.wait(1.0)
            else:
                stop.wait(0.2)
        finally:
            with self.lock:
                self._refilling.discard((key.key_id, signers))

    # signing ------------------------------------------------------------------------------------------
    def take_presignatures(self, key: EcdsaKey, count: int) -> tuple[tuple[int, ...], list[Any]]:
        """Pop up to `count` presignatures from the fullest pool whose members are all available."""
        health = self.health
        deadline = time.monotonic() + self.cfg.quorum_wait_s
        while not any(all(health.available(p) for p in s) for s in self.signer_sets(key)):
            health.probe(self.state.holder)  # a restarted holder is taken back as soon as it answers
            if time.monotonic() > deadline or any(all(health.available(p) for p in s) for s in self.signer_sets(key)):
                break
            time.sleep(0.2)
        with self.lock:
            options = [
                (len(self.pools.get((key.key_id, s), ())), s)
                for s in self.signer_sets(key)
                if all(health.available(p) for p in s)
            ]
            if not options:
                raise QuorumUnavailable(f"fewer than {key.threshold} parties available for key {key.key_id!r}")
            depth, signers = max(options)
            pool = self.pools.get((key.key_id, signers))
            taken = [pool.popleft() for _ in range(min(count, depth))] if pool else []
        tm.annotate(signer_set=signers, pool_depth=depth)
        tm.record_pool(key.key_id, signers, depth - len(taken))
        if not taken:
            if self.cfg.on_empty_pool != "presign":
                raise QuorumUnavailable("presignature pool empty")
            tm.annotate(key_id=key.key_id, presigned_on_demand=1)  # `mpc-ray bench` counts these
            self.presign(key.key_id, signers, min(count, self.cfg.presign_batch), worker=None)
            return self.take_presignatures(key, count)
        return signers, taken

    def lease(self, key: EcdsaKey, count: int, namespace: str) -> dict[str, Any]:
        """Up to `count` pooled presignatures (public parts) of one signer set for one-hop signing; at most half of
        a pool goes. Never presigns on demand."""
        with self.lock:
            options = [(len(self.pools.get((key.key_id, s), ())), s) for s in self.signer_sets(key)
                       if all(self.health.available(p) for p in s)]
            taken: list[Any] = []
            if options:
                depth, signers = max(options)
                n = min(max(1, int(count)), 64, depth // 2)
                pool = self.pools[(key.key_id, signers)] if n > 0 else None
                taken = [pool.popleft() for _ in range(n)] if pool is not None else []
        return {"namespace": namespace, "public_key": key.public_key.to_bytes(), "protocol": key.protocol,
                "presignatures": [encode(p) for p in taken]}

    def sign_many(self, key: EcdsaKey, request: SignedRequest, digests: list[bytes],
                  path: str | None) -> list[tuple[bytes, int]]:
        """(r||s, recovery id) of each digest of an operator's raw_batch `request`, in order (Coordinator.sign_many)."""
        for d in digests:
            digest_to_int(d)
        tweak = None
        if path is not None:  # the holders derive the same tweak from their own chain code
            from .hd import ecdsa_tweak

            path, tweak = ecdsa_tweak(key, path)
        done: list[tuple[bytes, int] | None] = [None] * len(digests)
        todo = list(range(len(digests)))
        failures = 0  # attempts that signed nothing; a big batch may take many successful ones
        while todo:
            if failures > 2 * len(self.signer_sets(key)) + 2:
                raise QuorumUnavailable("no signer set completed the signature")
            try:
                signers, presigs = self.take_presignatures(key, len(todo))
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
                self.health.mark_down(exc.party)
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
                    self.health.exclude(exc)
                    continue
                done[idx] = (sig.to_bytes(), sig.recovery_id)
            left = [i for i in todo if done[i] is None]
            failures += len(left) == len(todo)
            todo = left
        return done  # type: ignore[return-value]  # every entry is set once todo is empty

    @tm.traced_round("sign")
    def _partials(self, key: EcdsaKey, signers: tuple[int, ...], presigs: list[Any], messages: list[int],
                  request: SignedRequest) -> dict[int, list[Any]]:
        """Each signer's partials for the request's `messages` (their indices in it), one presignature each."""
        items = [(i, p.presignature_id) for i, p in zip(messages, presigs)]  # `messages`: counted by the round span
        return gather({p: self.state.holder(p).partial_sign.remote(request, items) for p in signers},
                      self.cfg.round_timeout_s)

    # principal-signed (agent) requests: coordinator/requests.py routes them here ---------------------------
    def sign_requests(self, key: EcdsaKey, requests: Sequence[SignedRequest]) -> list[Any]:
        """For each request on `key`, in order: (r||s, recovery id), or the error that refused it. Every holder of a
        signer set gets a whole chunk in one call (one audit fsync for all of it)."""
        out: list[Any] = [None] * len(requests)
        idx = list(range(len(requests)))
        tm.annotate(key_id=key.key_id, scheme=key.scheme)
        while idx:
            try:
                signers, presigs = self.take_presignatures(key, len(idx))
            except MpcError as exc:
                for i in idx:
                    out[i] = exc
                break
            chunk, idx = idx[: len(presigs)], idx[len(presigs):]
            self._sign_chunk(key, signers, [(requests[i], p) for i, p in zip(chunk, presigs)], chunk, out)
        return out

    def _sign_chunk(self, key: EcdsaKey, signers: tuple[int, ...], items: list[tuple[SignedRequest, Any]],
                    where: list[int], out: list[Any]) -> None:
        """One holder call per signer for these (request, presignature) pairs; results go to out[where[n]]."""
        batch = [(request, presig.presignature_id) for request, presig in items]
        refs = {p: self.state.holder(p).sign_requests.remote(batch) for p in signers}
        try:
            answers = self.state.answers(refs)
        except MpcError as exc:  # a signer did not answer (PartyUnavailable) or refused the whole batch
            for i in where:
                out[i] = exc
            return
        except NOT_REFUSALS:
            raise
        except BaseException as exc:  # noqa: BLE001 - a signer failed untyped: these requests fail, typed, others go on
            for i in where:
                out[i] = MpcError(f"a signer failed ({type(exc).__name__})")
            return
        for p, answer in answers.items():
            if not isinstance(answer, list) or len(answer) != len(items):
                abort = ProtocolAbort(p, "sign_requests.answer_shape", "not one answer per request")
                self.health.exclude(abort)
                for i in where:
                    out[i] = abort
                return
        for n, (i, (request, presig)) in enumerate(zip(where, items)):
            got = {p: answers[p][n] for p in signers}
            refusal = next((a for a in got.values() if isinstance(a, BaseException)), None)
            if refusal is not None:
                out[i] = refusal if isinstance(refusal, MpcError) else InvalidInput(type(refusal).__name__)
                continue
            try:
                sig = combine_request(request, presig, key.public_key, got, key=key)
            except ProtocolAbort as exc:
                self.health.exclude(exc)
                out[i] = exc
                continue
            except MpcError as exc:  # the signers accepted a request this coordinator cannot decode
                out[i] = exc
                continue
            out[i] = (sig.to_bytes(), sig.recovery_id)
