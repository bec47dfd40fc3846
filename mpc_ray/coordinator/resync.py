"""Rebuilding a restarted coordinator's key table from the holders.

The coordinator is a detached actor that Ray restarts (``max_restarts=-1``); its key table and pools are in memory
only. After a restart it asks every holder for the public views of the keys it holds (`node.inventory`) and adopts
a key when at least `threshold` members of the key's committee report the same public record at the key's latest
epoch. A holder that reports something else is not believed (and logged); a key that too few holders report
identically stays unknown until more of them answer. Pools start empty and refill: presignatures and nonces made
for the old coordinator stay unused in the holders' vaults (never reused: they are single-use by id).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import ray

from ..crypto.frost_suites import get_suite
from ..errors import InvalidInput
from ..node.frost_records import public_package_from_bytes
from ..node.lifecycle import ecdsa_public_from_bytes
from ..protocols.ecdsa_protocols import ecdsa_protocol
from ..protocols.frost import public_key_bytes
from .ecdsa_engine import EcdsaEngine, EcdsaKey
from .frost_engine import FrostEngine, FrostKey
from .sessions import UNAVAILABLE
from .state import CoordinatorState

log = logging.getLogger(__name__)

ECDSA = "ecdsa-secp256k1"


class KeyResync:
    """The key table's rebuild from the holders, once after every (re)start and on `resync` calls."""

    RESYNC_FOR_S = 120.0  # after a (re)start, how long to keep asking parties that have not answered yet

    def __init__(self, state: CoordinatorState, ecdsa: EcdsaEngine, frost: FrostEngine) -> None:
        self.state, self.ecdsa, self.frost = state, ecdsa, frost
        self.first_done = threading.Event()  # the first rebuild is done: sign calls stop waiting for it

    def resync(self, timeout: float | None = None) -> list[str]:
        """Adopt every key the holders hold that this coordinator does not know; returns the new key ids."""
        cfg = self.state.cfg
        views = gather_views(self.state, list(cfg.parties), timeout or cfg.round_timeout_s)
        adopted = adopt_keys(self.state, self.ecdsa, self.frost, views)
        if adopted:
            log.warning("adopted keys %s from the holders (coordinator restart)", adopted)
            self._start_refills()
        return adopted

    def run_after_start(self) -> None:
        """After a (re)start: until every party has answered once, or RESYNC_FOR_S passed, adopt what the
        holders report. On a fresh committee there is nothing to adopt and this ends at once."""
        cfg, stop = self.state.cfg, self.state.stop
        deadline = time.monotonic() + self.RESYNC_FOR_S
        answered: set[int] = set()
        while not stop.is_set() and time.monotonic() < deadline:
            missing = [p for p in cfg.parties if p not in answered]
            try:
                views = gather_views(self.state, missing, 2.0)
                answered |= set(views)
                if adopt_keys(self.state, self.ecdsa, self.frost, views):
                    self._start_refills()
            except Exception as exc:  # noqa: BLE001 - a failed attempt is retried; signing works meanwhile
                log.warning("key resync attempt failed: %s", type(exc).__name__)
            if len(answered) >= len(cfg.parties) or (answered and not self.first_done.is_set()):
                self.first_done.set()  # sign calls stop waiting once the first holders have answered
            if len(answered) >= len(cfg.parties):
                return
            time.sleep(1.0)
        self.first_done.set()

    def known(self, key_id: str) -> bool:
        """Whether `key_id` is in the key table, waiting (bounded) for the first rebuild after a restart."""
        if key_id in self.ecdsa.keys or key_id in self.frost.keys:
            return True
        self.first_done.wait(self.state.cfg.quorum_wait_s)
        return key_id in self.ecdsa.keys or key_id in self.frost.keys

    def _start_refills(self) -> None:
        self.ecdsa.start_refill()
        self.frost.start_refill()


def gather_views(state: CoordinatorState, parties: list[int], timeout: float) -> dict[int, dict[str, Any]]:
    """{party: {key id: view}} from every holder that answers within `timeout`."""
    refs = {}
    for p in parties:
        try:
            refs[p] = state.holder(p).key_views.remote()
        except ValueError:  # no such actor right now
            continue
    views = {}
    for p, ref in refs.items():
        try:
            got = ray.get(ref, timeout=timeout)
        except UNAVAILABLE:
            continue
        if isinstance(got, dict):
            views[p] = got
    return views


def adopt_keys(state: CoordinatorState, ecdsa: EcdsaEngine, frost: FrostEngine,
               views: dict[int, dict[str, Any]]) -> list[str]:
    """Add every key that a threshold of its committee reports identically; returns the adopted key ids."""
    by_key: dict[str, dict[int, dict[str, Any]]] = {}
    for party, entries in views.items():
        for key_id, view in entries.items():
            by_key.setdefault(key_id, {})[party] = view
    adopted = []
    for key_id, reports in sorted(by_key.items()):
        if ecdsa.key(key_id) is not None or frost.key(key_id) is not None:
            continue
        try:
            top = max(int(v["epoch"]) for v in reports.values())
            # ECDSA views name the key's protocol (node/lifecycle.py `public_view`); older holders: CGGMP21
            current = {p: (v["scheme"], bytes(v["public"]), str(v.get("protocol") or "cggmp21"))
                       for p, v in reports.items() if int(v["epoch"]) == top and v.get("public")}
        except (KeyError, TypeError, ValueError):
            log.warning("key %s: a holder sent a malformed view; not adopted", key_id)
            continue
        candidates: dict[tuple[str, bytes, str], list[int]] = {}
        for p, record in current.items():
            candidates.setdefault(record, []).append(p)
        for (scheme, public, protocol), reporters in sorted(candidates.items(), key=lambda kv: -len(kv[1])):
            try:
                if scheme == ECDSA:
                    _, template = ecdsa_public_from_bytes(public)
                    parties, threshold = list(template.parties), template.threshold
                    key: EcdsaKey | FrostKey = EcdsaKey(key_id, scheme, template.public_key, threshold, parties,
                                                        getattr(template, "chain_code", b""),
                                                        ecdsa_protocol(protocol).name)
                else:
                    pub = public_package_from_bytes(public)
                    if pub.suite_key != scheme:
                        raise InvalidInput("public package of another scheme")
                    suite = get_suite(scheme)
                    parties, threshold = list(pub.parties), pub.threshold
                    key = FrostKey(key_id, scheme, suite, pub, public_key_bytes(suite, pub.group_key), threshold,
                                   parties)
            except InvalidInput as exc:
                log.warning("key %s: holders %s sent an unusable public record (%s)", key_id, reporters, exc)
                continue
            if len(set(reporters) & set(parties)) < threshold:
                continue  # too few of its committee vouch for this record (yet)
            if len(candidates) > 1:
                log.warning("key %s: holders disagree on its public record; adopting the one %s report",
                            key_id, sorted(reporters))
            state.add_members(parties)  # a party added by resharing after the coordinator started
            if isinstance(key, EcdsaKey):
                ecdsa.adopt(key)
            else:
                frost.adopt(key)
            adopted.append(key_id)
            break
    return adopted
