"""The coordinator actor: committee setup, and the facade over its parts.

It holds only public data (identities, public keys, presignature public parts, nonce commitments). The parts own
their state and share a `CoordinatorState` (state.py: config, grant key, lock, actor handles, `PartyHealth`):
`EcdsaEngine` (ecdsa_engine.py: keys, presignature pools and their refill, leases, signing), `FrostEngine`
(frost_engine.py), `AgentRequests` (requests.py: principal-signed requests routed to the engine of their key),
`KeyResync` (resync.py: the key table rebuilt from the holders after a restart) and `LifecycleDriver`
(lifecycle.py: refresh, resharing, new members). A party that sent a bad value (ProtocolAbort) is excluded until
`readmit` (or for this coordinator's life); a presigning whose sums fail runs identification first (identify.py).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import ray

from .. import telemetry as tm  # spans per request and round, Ray metrics
from ..deploy import COORDINATOR_NAME, HOLDER_NAME, WORKER_NAME  # noqa: F401  (also imported from here)
from ..errors import InvalidInput, PartyUnavailable
from ..node.actor_runtime import in_ray_actor, settle_gc_for_latency
from ..node.holder import check_key_id
from ..protocols.ecdsa_protocols import CGGMP21, ecdsa_protocol
from ..requests import SignedRequest, decode_raw_batch
from ..schemes import FROST_SCHEMES
from ..types import Signature
from .ecdsa_engine import ECDSA, EcdsaEngine, EcdsaKey
from .frost_engine import FrostEngine
from .hd import derive_info
from .lifecycle import LifecycleDriver
# the agent-request modules are imported with the coordinator, not on the first agent request: they pull in
# eth-account, eth-abi and solders, which cost that request about half a second
from .requests import AgentRequests
from .resync import KeyResync
from .sessions import UNAVAILABLE, SessionSpec, run_sessions
from .state import CoordinatorConfig as CoordinatorConfig, CoordinatorState, HolderLookup

log = logging.getLogger(__name__)

_Key = EcdsaKey  # its old name, for tests written before the engines


class Coordinator:
    def __init__(self, config: CoordinatorConfig, namespace: str, holders: HolderLookup | None = None) -> None:
        """`holders`: where to find a party's holder; None: Ray's named actors in `namespace` (tests pass
        in-process holders)."""
        self.state = CoordinatorState(config, namespace, holders)
        self.cfg, self.namespace, self.grants = config, namespace, self.state.grants
        self.health = self.state.health
        self.ecdsa = EcdsaEngine(self.state)
        self.frost = FrostEngine(self.state)
        self.key_resync = KeyResync(self.state, self.ecdsa, self.frost)
        self.agent_requests = AgentRequests(self.ecdsa, self.frost, self.key_resync.known)
        self.lifecycle = LifecycleDriver(self.state, self.ecdsa, self.frost)
        self.ready = False
        tm.configure_from_env()  # MPC_RAY_TRACING=console|otlp|memory
        if in_ray_actor():  # a (re)started actor; a Coordinator object built in a test process drives nothing itself
            threading.Thread(target=self.key_resync.run_after_start, daemon=True, name="key-resync").start()
        else:
            self.key_resync.first_done.set()
        settle_gc_for_latency()  # in an actor only: long-lived state out of the collector's scans

    # actors -------------------------------------------------------------------------------------------
    def holder(self, party: int) -> Any:
        return self.state.holder(party)

    def holders(self, parties: list[int]) -> dict[int, Any]:
        return self.state.holders(parties)

    def presigners(self, parties: list[int], worker: int | None) -> dict[int, Any]:
        return self.state.presigners(parties, worker)

    def answers(self, refs: dict[int, Any]) -> dict[int, Any]:
        return self.state.answers(refs)

    # restart: rebuild the key table from the holders (resync.py) ----------------------------------------
    def resync(self, timeout: float | None = None) -> list[str]:
        """Adopt every key the holders hold that this coordinator does not know; returns the new key ids."""
        return self.key_resync.resync(timeout)

    # setup --------------------------------------------------------------------------------------------
    @tm.traced_request("setup")
    def setup(self) -> dict[str, Any]:
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
                   protocol: str | None = None) -> dict[str, Any]:
        """A new key among the whole committee. `approval`: the admin-quorum ``create_key`` request naming it, which
        every holder checks before it takes part. ECDSA: `protocol` "dkls23" or "cggmp21"
        (protocols/ecdsa_protocols.py): the same key generation, then, for DKLs23, its pairwise setup. None is
        CGGMP21, as for the holders (an approval naming no protocol means CGGMP21); clients resolve their own None
        to `DEFAULT_ECDSA_PROTOCOL` and pass it here and in the approval."""
        check_key_id(key_id)
        if protocol is not None and scheme != ECDSA:
            raise InvalidInput("a protocol is chosen for ECDSA keys only")
        proto = ecdsa_protocol(CGGMP21.name if protocol is None else protocol)
        if scheme in FROST_SCHEMES or key_id in self.frost.keys:
            if self.ecdsa.key(key_id) is not None:
                raise InvalidInput(f"key {key_id!r} exists")
            return self.frost.create_key(key_id, scheme, threshold, approval)
        if scheme != ECDSA:
            raise InvalidInput(f"scheme {scheme!r} is not served by this runtime yet")
        return self.ecdsa.create_key(key_id, threshold, approval, proto)

    def setup_protocol(self, key: EcdsaKey) -> None:
        """The key's protocol setup among its whole committee (DKLs23's pairwise setup), for its current epoch."""
        self.ecdsa.setup_protocol(key)

    def signer_sets(self, key: EcdsaKey) -> list[tuple[int, ...]]:
        """The ECDSA key's signer sets without a disputed pair (identify.py)."""
        return self.ecdsa.signer_sets(key)

    # presignature pools -------------------------------------------------------------------------------
    def presign(self, key_id: str, signers: tuple[int, ...], count: int, worker: int | None = 0) -> int:
        """Run `count` presignatures among `signers` and add them to the pool; returns how many were added."""
        return self.ecdsa.presign(key_id, signers, count, worker)

    def readmit(self, party: int) -> dict[str, Any]:
        """End `party`'s exclusion and its disputes (identify.py). Exclusion only protects this coordinator's
        availability, and any Ray caller could call this, so it takes no admin approval."""
        return self.health.readmit(party)

    def pool_depths(self) -> dict[str, int]:
        """ECDSA pools as "<key>:<signer set>", FROST pools as "<key>:<party>"."""
        return {**self.ecdsa.pool_depths(), **self.frost.pool_depths()}

    def stop(self) -> None:
        self.state.stop.set()

    # signing ------------------------------------------------------------------------------------------
    def lease_presignatures(self, key_id: str, count: int) -> dict[str, Any]:
        """Hand a client up to `count` pooled presignatures (public parts) of one signer set for one-hop signing
        (client/fastpath.py). They leave the pool for good; at most half of a pool goes, so this path keeps some.
        Never presigns on demand: an empty answer sends the client through `sign`."""
        if self.key_resync.known(key_id) and key_id in self.frost.keys:
            return {"unleasable": True}
        key = self.ecdsa.key(key_id)
        if key is None:
            raise InvalidInput(f"unknown key {key_id!r}")
        return self.ecdsa.lease(key, count, self.namespace)

    def derive(self, key_id: str, path: str) -> dict[str, Any]:
        """The BIP32 child of a key at a non-hardened `path`, public values only (hd.py)."""
        return derive_info(key_id, self.ecdsa.key(key_id), self.frost.key(key_id), path)

    @tm.traced_request("sign")
    def sign_many(self, key_id: str, request: SignedRequest) -> list[Any]:
        """Signatures of the messages of an operator's ``raw_batch`` request, in order: ECDSA (64-byte r||s,
        recovery id) for 32-byte digests, FROST `Signature` objects for message bytes. The request travels to every
        signer, which checks it and its policy itself and signs each message a bounded number of times; the request's
        derivation path (and, BIP340, tap_tweak) apply to every message, each signature from a re-randomised
        presignature (protocols/ecdsa/sign.py)."""
        if not isinstance(request, SignedRequest) or request.key_id != key_id:
            raise InvalidInput("expected the operator's signed raw_batch request for this key")
        raw = decode_raw_batch(request.body)
        digests, path = list(raw.messages), request.derivation_path or None
        tm.annotate(messages=len(digests))  # the count is in the request's body, not an argument
        self.key_resync.known(key_id)  # after a restart, the key table is rebuilt from the holders
        fkey = self.frost.key(key_id)
        if fkey is not None:  # Signature objects for the message bytes
            tm.annotate(scheme=fkey.scheme)
            return self.frost.sign_many(key_id, request, digests, raw.tap_tweak, path=path)
        key = self.ecdsa.key(key_id)
        if key is None:
            raise InvalidInput(f"unknown key {key_id!r}")
        tm.annotate(scheme=key.scheme)
        if raw.tap_tweak is not None:
            raise InvalidInput("tap_tweak applies to BIP340 keys only")
        return self.ecdsa.sign_many(key, request, digests, path)

    # policy-enforced signing ----------------------------------------------------------------------------
    def _on_every_holder(self, method: str, *args: Any, parties: list[int] | None = None) -> None:
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

    def set_policy(self, request: Any) -> None:
        """Relay an admin-signed policy to the holders of its key (a holder without a share cannot check a policy
        against the key's committee, and refuses it); each verifies and stores it itself."""
        key_id = getattr(request, "key_id", "")
        parties = None
        if isinstance(key_id, str) and self.key_resync.known(key_id):
            key = self.ecdsa.key(key_id) or self.frost.key(key_id)
            parties = None if key is None else list(key.parties)
        self._on_every_holder("set_policy", request, parties=parties)

    def set_principals(self, request: Any) -> None:
        """Relay an admin-quorum-signed principal registry to every holder; each checks the quorum itself."""
        self._on_every_holder("set_principals", request)

    def coordinator_key(self) -> bytes:
        """This coordinator's verify key (public): the holders accept the session grants it signs."""
        return self.grants.verify_key

    def set_coordinator(self, request: Any, verify_key: bytes) -> None:
        """Relay an admin-quorum ``set_coordinator`` request to every holder; each checks it and takes `verify_key`
        as the coordinator's from then on. This coordinator's own grants stop working unless `verify_key` is its
        own: restart the coordinator with the new key's seed (CoordinatorConfig.coordinator_seed)."""
        self._on_every_holder("set_coordinator", request, verify_key)

    @tm.traced_request("sign_request")
    def sign_request(self, request: SignedRequest) -> tuple[bytes, int] | Signature:
        """Sign a principal-signed request. The holders decode it, check their policy and sign the digest they
        computed, which they report with their partials; the coordinator combines with that digest and decodes the
        request itself only if the signature does not verify (requests.py). Not retried on another signer set: the
        request's nonce is spent at the holders that saw it, so the agent signs a fresh request."""
        return self.agent_requests.sign_request(request)

    @tm.traced_request("sign_requests")
    def sign_requests(self, requests: list[SignedRequest]) -> list[Any]:
        """Principal-signed requests in one call per signer (one audit fsync per holder for the batch): for each,
        (r||s, recovery id) or a Signature (FROST keys), or the error that refused it (requests.py)."""
        return self.agent_requests.sign_requests(requests)

    # key lifecycle (lifecycle.py) ---------------------------------------------------------------------
    def refresh_key(self, key_id: str, approval: SignedRequest | None = None) -> dict[str, Any]:
        """New shares (ECDSA: and aux info) for the key's committee, same public key; old epoch destroyed.
        `approval`: the admin-quorum ``refresh_key`` request, checked by every holder."""
        return self.lifecycle.refresh_key(check_key_id(key_id), approval)

    def reshare_key(self, key_id: str, parties: list[int], threshold: int, dealers: list[int] | None = None,
                    approval: SignedRequest | None = None) -> dict[str, Any]:
        """Move the key to committee `parties` with `threshold` signers, same public key. `approval`: the
        admin-quorum ``reshare_key`` request naming that committee and threshold, checked by every holder."""
        return self.lifecycle.reshare_key(check_key_id(key_id), parties, threshold, dealers, approval)

    def add_parties(self, parties: list[int], approval: SignedRequest | None = None) -> list[int]:
        """Let new holders (already running) join: identities exchanged, directories extended as the admin-quorum
        ``extend_directory`` request `approval` names them."""
        return self.lifecycle.add_parties(parties, approval)

    def drop_pools(self, party: int) -> int:
        """Forget the pooled presignatures and nonces involving `party` (after its holder was restored)."""
        return self.lifecycle.drop_pools(party)

    def status(self) -> dict[str, Any]:
        return {
            "parties": self.cfg.parties,
            "threshold": self.cfg.threshold,
            "keys": {**self.ecdsa.key_status(), **self.frost.key_status()},
            "pools": self.pool_depths(),
            "down": self.health.down(),
            "excluded": dict(self.health.excluded),
            "disputes": self.health.sorted_disputes(),  # pairs never put in one signer set
            "telemetry": tm.snapshot(),  # latency, pool gauges, denials/aborts by reason, last errors
        }

    # tracing switched on a running coordinator; its spans read back (memory exporter) ------------------------
    def configure_tracing(self, exporter: str | None, endpoint: str | None = None) -> None:
        tm.configure_tracing(exporter, endpoint=endpoint)

    def telemetry(self, clear_spans: bool = False) -> dict[str, Any]:
        return {**tm.snapshot(), "spans": tm.finished_spans(clear=clear_spans)}
