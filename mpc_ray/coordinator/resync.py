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
from collections import deque
from typing import TYPE_CHECKING, Any

import ray

from ..crypto.frost_suites import get_suite
from ..errors import InvalidInput
from ..node.frost_records import public_package_from_bytes
from ..node.lifecycle import ecdsa_public_from_bytes
from ..protocols.ecdsa_protocols import ecdsa_protocol
from ..protocols.frost import public_key_bytes
from .sessions import UNAVAILABLE

if TYPE_CHECKING:
    from .coordinator import Coordinator

log = logging.getLogger(__name__)

ECDSA = "ecdsa-secp256k1"


def gather_views(c: Coordinator, parties: list[int], timeout: float) -> dict[int, dict[str, dict]]:
    """{party: {key id: view}} from every holder that answers within `timeout`."""
    refs = {}
    for p in parties:
        try:
            refs[p] = c.holder(p).key_views.remote()
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


def adopt_keys(c: Coordinator, views: dict[int, dict[str, Any]]) -> list[str]:
    """Add every key that a threshold of its committee reports identically; returns the adopted key ids."""
    from .coordinator import _Key
    from .frost_pools import FrostKey

    by_key: dict[str, dict[int, dict]] = {}
    for party, entries in views.items():
        for key_id, view in entries.items():
            by_key.setdefault(key_id, {})[party] = view
    adopted = []
    for key_id, reports in sorted(by_key.items()):
        with c.lock:
            if key_id in c.keys or key_id in c.frost.keys:
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
                    key: Any = _Key(key_id, scheme, template.public_key, threshold, parties,
                                    getattr(template, "chain_code", b""), ecdsa_protocol(protocol).name)
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
            with c.lock:
                for p in parties:
                    if p not in c.cfg.parties:  # a party added by resharing after the coordinator started
                        c.cfg.parties.append(p)
                c.cfg.parties.sort()
                if scheme == ECDSA:
                    c.keys[key_id] = key
                else:
                    c.frost.keys[key_id] = key
                    for p in parties:
                        c.frost.pools.setdefault((key_id, p), deque())
            adopted.append(key_id)
            break
    return adopted
