"""The holder side of CGGMP21 ECDSA sessions: aux info, key generation and presigning.

Protocols "aux", "keygen" and "presign" (node/sessions.py's table). Aux info is set up once per committee, again
only for members an admin quorum added; key generation needs an admin-quorum ``create_key`` approval and fixes the
protocol the key signs with (param ``protocol``: "cggmp21", the default, or "dkls23", whose setup and presigning are
node/dkls23_holder.py's; the approval names a non-default protocol); presigning
(on the coordinator's grant, node/session_gate.py) runs with the key's current epoch's share and aux info and
stores its presignature in the vault, unless the key moved to another epoch meanwhile (node/lifecycle.py).
Signing with the stored presignatures is node/authorized.py's, on a principal's request.

While the node is idle (no open session), a low-priority thread fills an in-memory pool of presigning randomness
(Paillier nonces r with r^N mod N^2 for the own key and every peer's, and the randomness-only ring-Pedersen terms
of the range proofs; protocols/ecdsa/precompute.py argues why that is safe) that CGGMP21 presigning takes from: a
presignature made after a quiet spell skips most of its prover-side exponentiations (lower latency, the same CPU
in total). The pool covers the moduli of the aux info the holder last presigned with, per key, drops
those of a replaced key, and is emptied on close and restart; a session never waits for it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

import gmpy2

from ..crypto.params import level as as_level
from ..errors import InvalidInput, ProtocolMismatch, StaleEpoch
from ..protocols.base import RoundParty
from ..protocols.ecdsa.aux_info import AuxInfo, AuxInfoParty
from ..protocols.ecdsa.keygen import KeygenParty, KeyShare
from ..protocols.ecdsa.precompute import PaillierRandomness
from ..protocols.ecdsa.presign import MessageAttestor, PresignParty
from ..protocols.ecdsa_protocols import ecdsa_protocol
from ..protocols.wire import encode
from .holder_state import HolderState, Session, check_key_id, ecdsa_key_entry, key_protocol_entry, presig_kind
from .principals import RequestKind
from .records import CGGMP21, aux_to_bytes, key_from_bytes, key_to_bytes, presignature_to_bytes
from .store import SecretVault

if TYPE_CHECKING:
    from .authorized import Authorization
    from .sessions import BeginRequest

ECDSA = "ecdsa-secp256k1"


def require_protocol(state: HolderState, key_id: str, wanted: str) -> None:
    """ProtocolMismatch unless the key signs with `wanted` (its presignatures are of that protocol only)."""
    got = state.keys.protocol(key_id)
    if got != wanted:
        raise ProtocolMismatch(f"key {key_id!r} signs with {got}, not {wanted}")


_FORK_EMPTIED: weakref.WeakSet[PaillierRandomness] = weakref.WeakSet()


def _empty_pools_after_fork() -> None:
    for pool in list(_FORK_EMPTIED):
        pool.clear()


os.register_at_fork(after_in_child=_empty_pools_after_fork)


def empty_in_forked_child(pool: PaillierRandomness) -> PaillierRandomness:
    """Register `pool` to be emptied in a child process forked from this one: the child holds a copy of the
    parent's nonces, and using them in both processes would use each twice (protocols/ecdsa/precompute.py)."""
    _FORK_EMPTIED.add(pool)
    return pool


class RandomnessFiller:
    """Fills a `PaillierRandomness` pool on a daemon thread, one entry at a time, while `idle()` holds.

    The thread runs at the lowest CPU priority (nice 19, Linux applies it to the thread alone) and lets gmpy2 release
    the GIL during its exponentiations (`allow_release_gil`, in this thread's gmpy2 context only), so a session that
    starts meanwhile neither waits for the GIL nor for a CPU the filler holds. It checks `idle()` before each entry:
    once a session opens, it stops within one entry (one or two exponentiations)."""

    POLL_S = 0.05  # how often a waiting filler looks again (an entry costs 2 to 30 ms)

    def __init__(self, pool: PaillierRandomness, idle: Callable[[], bool], name: str = "paillier-randomness") -> None:
        self.pool, self._idle, self._name = pool, idle, name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True, name=self._name)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (it finishes the exponentiation it is in) and wait for it."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):  # not Linux, or not allowed: the filler still only runs while idle
            pass
        gmpy2.get_context().allow_release_gil = True  # this thread's context only
        while not self._stop.is_set():
            make = self.pool.need() if self._idle() else None
            if make is None:
                self._stop.wait(self.POLL_S)
                continue
            self.pool.put(make())


class EcdsaHolder:
    """Runs "aux", "keygen" and "presign" sessions on `state` (holder or presign worker)."""

    PROTOCOLS = ("aux", "keygen", "presign")
    # presignatures' worth of randomness kept per key while idle (protocols/ecdsa/precompute.py); 0: none
    PRECOMPUTE_DEPTH = 2

    def __init__(self, state: HolderState, authorization: Authorization) -> None:
        self.state = state
        self._auth = authorization
        self._seen_epoch: dict[str, int] = {}  # workers: the epoch their cached share is of
        self._committee_aux = b""  # workers: digest of the committee aux info they hold
        depth = self.PRECOMPUTE_DEPTH
        self.randomness = empty_in_forked_child(PaillierRandomness(depth)) if depth > 0 else None
        self._plans: dict[str, tuple[AuxInfo, int]] = {}  # key id -> (aux info it presigned with, peers)
        self._filler: RandomnessFiller | None = None

    def machine(self, req: BeginRequest) -> RoundParty:
        st = self.state
        if req.protocol == "aux":
            if st.keys.has_aux():  # set up once per committee; again only for members an admin quorum added
                self._auth.check_approved(req.params.get("approval"), RequestKind.EXTEND_DIRECTORY,
                                          lambda params: {m[0] for m in params["members"]} <= set(req.parties))
            return AuxInfoParty(req.sid, st.party, req.parties, as_level(req.params.get("level", "128")),
                                allow_test_keys=st.allow_test_keys)
        if req.protocol == "keygen":
            key_id, threshold = check_key_id(req.params.get("key_id")), req.params.get("threshold")
            protocol = req.params.get("protocol", CGGMP21)
            if type(threshold) is not int:
                raise InvalidInput("threshold must be an integer")
            ecdsa_protocol(protocol)  # InvalidInput for an unknown one
            approved = {"key_id": key_id, "scheme": ECDSA, "threshold": threshold, "parties": sorted(req.parties)}
            if protocol != CGGMP21:  # the admins approve the protocol too (CGGMP21 approvals stay as they were)
                approved["protocol"] = protocol
            self._auth.approve(req.params.get("approval"), RequestKind.CREATE_KEY, approved)
            if st.store.get(ecdsa_key_entry(key_id)) is not None:
                raise InvalidInput("key id exists")
            return KeygenParty(req.sid, st.party, req.parties, threshold)
        require_protocol(st, check_key_id(req.params.get("key_id")), CGGMP21)
        key, aux = self.presign_inputs(req.params["key_id"])
        self._plan_randomness(req.params["key_id"], aux, len(req.parties) - 1)
        return PresignParty(req.sid, key, aux, req.parties, attestor=self._attestor(), randomness=self.randomness)

    def finish(self, session: Session) -> Any:
        st, out = self.state, session.machine.output
        if session.protocol == "aux":
            st.store.put("aux", aux_to_bytes(out))
            st.keys.set_aux(out)
            return {"parties": list(out.parties), "level": out.level.name}
        if session.protocol == "keygen":
            key_id, protocol = session.params["key_id"], session.params.get("protocol", CGGMP21)
            st.store.put(key_protocol_entry(key_id), protocol.encode())  # before the share: a key never lacks it
            st.store.put(ecdsa_key_entry(key_id), key_to_bytes(out))
            st.keys.forget(key_id)
            st.keys.set_key(key_id, out)
            return {"public_key": out.public_key.to_bytes(), "threshold": out.threshold, "parties": list(out.parties),
                    "chain_code": out.chain_code, "protocol": protocol}
        self.store_presignature(session.params["key_id"], session.machine.key, out.public.presignature_id,
                                presignature_to_bytes(out))
        return encode(out.public)

    def store_presignature(self, key_id: str, key: KeyShare, pid: bytes, data: bytes) -> None:
        """Store a presignature made with `key` (under `presignature_guard`): in the vault on the holder; a presign
        worker, which has no vault, writes the store entry the holder's vault reads, never over an existing one (a
        CGGMP21 id is random; a DKLs23 id is never made twice by one executor, and executors' ids differ)."""
        st = self.state
        kind = presig_kind(key_id)
        with self.presignature_guard(key_id, key):
            if st.role == "holder":
                st.vault.put(kind, pid, data)
                return
            name = SecretVault.entry_name(kind, pid)
            if st.store.exists(name):
                raise InvalidInput(f"a presignature with id {pid.hex()[:16]}.. is already stored")
            st.store.put(name, data)

    # Paillier randomness made while idle --------------------------------------------------------------------
    def _plan_randomness(self, key_id: str, aux: AuxInfo, peers: int) -> None:
        """Keep nonces for the moduli of `aux` (this key's presignatures), dropping those of the aux info the key
        used before if it changed (a refreshed or reshared key, a new committee); start the filler."""
        pool = self.randomness
        if pool is None:
            return
        if self._plans.get(key_id) != (aux, peers):
            self._plans[key_id] = (aux, peers)
            pool.target(list(self._plans.values()))
        if self._filler is None:
            sessions = self.state.sessions
            self._filler = RandomnessFiller(pool, lambda: not sessions)
        self._filler.start()

    def close(self) -> None:
        """Stop the filler and drop every precomputed entry (close and restart of the holder)."""
        if self._filler is not None:
            self._filler.stop()
            self._filler = None
        if self.randomness is not None:
            self.randomness.target(())
        self._plans.clear()

    def _attestor(self) -> MessageAttestor:
        """Signs this party's MtA messages with its node identity and checks peers' against the directory, so that
        identification can tell who sent what (protocols/ecdsa/presign.py)."""
        st = self.state

        def verify(party: int, data: bytes, signature: bytes) -> bool:
            peer = st.directory.get(party)
            return peer is not None and peer.verify(data, signature)

        return MessageAttestor(st.identity.sign, verify)

    # epochs (node/lifecycle.py switches them) ---------------------------------------------------------------
    def presign_inputs(self, key_id: str) -> tuple[KeyShare, AuxInfo]:
        """(share, aux info) of the key's current epoch. A presign worker re-reads both when the epoch moved (its
        holder switched epochs in another process); the holder's own caches are updated by the lifecycle's commit."""
        st = self.state
        key = self.current_key(key_id)
        if st.role == "worker":
            raw = st.store.get("aux")  # the committee's aux info is set up again when members join
            stamp = hashlib.sha256(raw).digest() if raw is not None else b""
            if self._committee_aux != stamp:
                st.keys.forget_aux()
                self._committee_aux = stamp
        return key, st.keys.key_aux(key_id)

    def current_key(self, key_id: str) -> KeyShare:
        """The key's share of its current epoch; a presign worker reads it again when the epoch moved."""
        st = self.state
        if st.role == "worker":
            epoch = st.epoch(key_id)
            if self._seen_epoch.get(key_id) != epoch:
                st.keys.forget(key_id)
                self._seen_epoch[key_id] = epoch
        return st.keys.key(key_id)

    @contextmanager
    def presignature_guard(self, key_id: str, key: KeyShare) -> Iterator[None]:
        """Around storing a presignature: refuses (StaleEpoch) one made with a share that is no longer the stored
        one. Under the shared lock, so a commit (exclusive) either sees the presignature and destroys it, or comes
        first."""
        st = self.state
        with st.lifecycle_lock(exclusive=False):
            raw = st.store.get(ecdsa_key_entry(key_id))
            if raw is None or key_from_bytes(raw).x != key.x:
                raise StaleEpoch("the key moved to a new epoch while this presignature was made; it is discarded")
            yield
