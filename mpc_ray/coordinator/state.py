"""What every part of the coordinator shares: its configuration, its grant key, the lock over its tables, the stop
signal of its threads, its handles on the holder and presign-worker actors, and the parties' health.

The parts (ecdsa_engine.py, frost_engine.py, requests.py, resync.py, lifecycle.py, identify.py) each take a
`CoordinatorState`; `Coordinator` (coordinator.py) builds it and them. Nothing here knows a protocol.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import ray

from ..deploy import HOLDER_NAME, WORKER_NAME
from ..requests.grants import GrantSigner
from .health import PartyHealth
from .sessions import gather


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


HolderLookup = Callable[[int], Any]  # party -> its holder's handle


class CoordinatorState:
    def __init__(self, cfg: CoordinatorConfig, namespace: str, holders: HolderLookup | None = None) -> None:
        """`holders`: where to find a party's holder; None: Ray's named actor in `namespace` (tests pass
        in-process holders here)."""
        self.cfg = cfg
        self.namespace = namespace
        self.grants = GrantSigner(cfg.coordinator_seed) if cfg.coordinator_seed else GrantSigner.generate()
        self.lock = threading.RLock()  # over every table of the parts: keys, pools, health
        self.stop = threading.Event()  # ends the refill and resync threads
        self.health = PartyHealth(cfg, self.lock)
        self._lookup = holders
        self._handles: dict[str, Any] = {}

    def actor(self, name: str) -> Any:
        """A cached handle: a detached actor keeps its handle across Ray's restarts, and looking a name up
        costs a GCS round trip on every call otherwise."""
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = ray.get_actor(name, namespace=self.namespace)
        return handle

    def holder(self, party: int) -> Any:
        if self._lookup is not None:
            return self._lookup(party)
        return self.actor(HOLDER_NAME.format(party=party))

    def holders(self, parties: Iterable[int]) -> dict[int, Any]:
        return {i: self.holder(i) for i in parties}

    def presigners(self, parties: Iterable[int], worker: int | None) -> dict[int, Any]:
        """Who runs presigning: worker `worker` of each party's node, or the holders when there are none."""
        if worker is None or self.cfg.workers_per_node == 0:
            return self.holders(parties)
        return {i: self.actor(WORKER_NAME.format(party=i, worker=worker)) for i in parties}

    def answers(self, refs: Mapping[int, Any]) -> dict[int, Any]:
        """Each party's answer to one request round; a party that does not answer is marked down and named
        (PartyUnavailable). A holder's own refusal (PolicyDenied, ...) propagates as it is."""
        return gather(refs, self.cfg.round_timeout_s, self.health.mark_down)

    def add_members(self, parties: Iterable[int]) -> None:
        """Parties a resharing added: administrative calls (policies) reach them from now on."""
        with self.lock:
            self.cfg.parties = sorted(set(self.cfg.parties) | set(parties))
