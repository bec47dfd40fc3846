"""Which parties the coordinator uses now: holders that did not answer (skipped for a while), presign workers that
did not answer (skipped for refills), parties excluded for a bad value (ProtocolAbort) and disputed pairs.

Exclusion and disputes are an availability measure of this coordinator, not a security boundary (the holders check
everything themselves): `readmit` ends them, and takes no admin approval (coordinator/identify.py).
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import ray

from .. import telemetry as tm
from ..errors import ProtocolAbort
from .sessions import UNAVAILABLE

if TYPE_CHECKING:
    from .state import CoordinatorConfig


class PartyHealth:
    def __init__(self, cfg: CoordinatorConfig, lock: threading.RLock) -> None:
        self.cfg = cfg
        self.lock = lock
        self.down_until: dict[int, float] = {}  # holders that did not answer: skipped for signing
        self.workers_down_until: dict[int, float] = {}  # presign workers that did not answer: skipped for refills
        self.excluded: dict[int, str] = {}  # party -> the check it failed
        self.disputes: set[frozenset[int]] = set()  # pairs that accused each other in identification (identify.py)

    def available(self, party: int) -> bool:
        return party not in self.excluded and self.down_until.get(party, 0) <= time.monotonic()

    def workers_available(self, party: int, now: float) -> bool:
        return self.workers_down_until.get(party, 0) <= now

    def mark_down(self, party: int) -> None:
        tm.record_unavailable(party)
        self.down_until[party] = time.monotonic() + self.cfg.down_retry_s

    def mark_up(self, party: int) -> None:
        self.down_until.pop(party, None)

    def mark_worker_down(self, party: int) -> None:
        """A dead presign worker only pauses refills through that party; its holder may still sign."""
        self.workers_down_until[party] = time.monotonic() + self.cfg.down_retry_s

    def exclude(self, abort: ProtocolAbort) -> None:
        tm.record_abort(abort)  # culprit on the span, abort counted by check
        if abort.culprit in self.cfg.parties:
            self.excluded[abort.culprit] = abort.check

    def down(self) -> list[int]:
        now = time.monotonic()
        return [p for p, t in self.down_until.items() if t > now]

    def probe(self, holder: Callable[[int], Any]) -> None:
        """Ask every party marked down whether it is back (a restarted holder answers within a second or two)."""
        now = time.monotonic()
        down = [p for p, t in self.down_until.items() if t > now and p not in self.excluded]
        refs = {}
        for p in down:
            try:
                refs[p] = holder(p).ping.remote()
            except ValueError:  # the actor name is not registered right now
                continue
        for p, ref in refs.items():
            try:
                ray.get(ref, timeout=self.cfg.probe_timeout_s)
                self.mark_up(p)
            except UNAVAILABLE:
                pass

    # disputes (coordinator/identify.py) ------------------------------------------------------------------------
    def undisputed(self, sets: Iterable[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """The signer sets without a disputed pair: a disputed pair holds a cheater, never again in one set."""
        return [s for s in sets if not any(frozenset(pair) in self.disputes for pair in itertools.combinations(s, 2))]

    def dispute(self, accusations: Iterable[tuple[int, int]], signers: Sequence[int]) -> dict[int, set[int]]:
        """Record the accusing pairs; returns each signer's dispute partners."""
        with self.lock:
            for v, c in accusations:
                self.disputes.add(frozenset((v, c)))
            return {p: {q for d in self.disputes if p in d for q in d if q != p} for p in signers}

    def readmit(self, party: int) -> dict[str, Any]:
        """End `party`'s exclusion and its disputes."""
        with self.lock:
            check = self.excluded.pop(party, None)
            dropped = {d for d in self.disputes if party in d}
            self.disputes -= dropped
        return {"party": party, "was_excluded": check, "disputes_dropped": sorted(sorted(d) for d in dropped)}

    def sorted_disputes(self) -> list[list[int]]:
        return sorted(sorted(d) for d in list(self.disputes))
