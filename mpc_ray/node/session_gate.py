"""The holder's (and each presign worker's) side of session grants: who may start the sessions that make one-time
secrets, and how many per key.

Presigning, aux-info and identification sessions, and FROST nonce commitments, start only on a grant the committee's
coordinator signed (requests/grants.py: its verify key is the one the holder took with the directory, or the one an
admin quorum set since). On top of the signature:

- **replay**: every session id (and ``frost_commit`` id) a grant admitted is remembered until that grant expires, so
  a recorded grant cannot start its sessions again (``auth.not_coordinator``). The set is bounded: when it is full of
  unexpired ids, new grants are refused (``auth.rate_limited``) rather than an id forgotten early;
- **rate**: a token bucket per key for presigning sessions begun and one for FROST nonce pairs committed
  (``auth.rate_limited``), sized far above what the coordinator's refill asks (benchmarks/bench_runtime.py and
  bench_frost_runtime.py fill pools of about 2,000 at full speed), so only a runaway or hostile caller meets them;
- **stored**: at most `MAX_STORED_PRESIGNATURES` unconsumed presignatures of a key on a node (InvalidInput), as
  frost_holder.MAX_STORED_NONCES bounds nonce pairs.

A refused call consumes nothing: no id is remembered and no token taken. A worker reads the coordinator key from the
node's store, again when a grant does not verify under the key it has (an admin quorum may have replaced it).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import InvalidInput, Unauthorized
from ..requests.grants import COMMIT_PROTOCOL, GRANTED_PROTOCOLS, GrantItem, check_grant, commit_item
from .holder_state import HolderState, check_key_id, presig_kind

if TYPE_CHECKING:
    from .sessions import BeginRequest

# per key on each holder and worker: capacity (a burst) and refill per second
PRESIGN_BUCKET = (2_048, 256.0)  # presigning sessions begun (a node makes a few per second)
NONCE_BUCKET = (20_000, 5_000.0)  # FROST nonce pairs committed (a holder commits a few thousand per second)
MAX_STORED_PRESIGNATURES = 20_000  # unconsumed presignatures of one key on one node: far above any pool depth
MAX_GRANTED_IDS = 200_000  # ids remembered against replay (each until its grant expires)
MAX_BUCKETS = 4_096
PRESIGN_PROTOCOLS = ("presign", "dkls23-presign")  # sessions that each store one presignature of a key


def _bucket_size(kind: str) -> tuple[int, float]:
    """(capacity, refill per second) of a new bucket of `kind`, read when it is made (tests change them)."""
    return PRESIGN_BUCKET if kind == "presign" else NONCE_BUCKET


class TokenBucket:
    __slots__ = ("capacity", "rate", "tokens", "at")

    def __init__(self, capacity: int, rate: float, now: float) -> None:
        self.capacity, self.rate, self.tokens, self.at = capacity, rate, float(capacity), now

    def level(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = max(self.at, now)
        return self.tokens


class SessionGate:
    """Part of a holder's (or worker's) authorization (node/authorized.py `Authorization`). Thread-safe."""

    def __init__(self, state: HolderState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._granted: OrderedDict[bytes, int] = OrderedDict()  # id -> expiry of the grant that admitted it
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    # entry points ---------------------------------------------------------------------------------------------
    def admit_begin(self, requests: Sequence[BeginRequest], grant: Any, now: float | None = None) -> None:
        """Admit the sessions of a begin call that need the coordinator's grant (presign, aux, identify), or refuse
        them all. Requests already shape-checked (sessions.check_begin_request)."""
        granted = [r for r in requests if r.protocol in GRANTED_PROTOCOLS]
        if not granted:
            return
        now = time.time() if now is None else now
        wanted = [GrantItem.of(r.protocol, r.sid, r.parties, r.params) for r in granted]
        costs: dict[str, int] = {}
        for r in granted:
            if r.protocol in PRESIGN_PROTOCOLS:
                key_id = check_key_id(r.params.get("key_id"))
                costs[key_id] = costs.get(key_id, 0) + 1
        self._verify(grant, wanted, now, f"{granted[0].protocol} sessions")
        for key_id, n in costs.items():  # before anything is taken: a refusal leaves the buckets as they were
            self._check_stored(key_id, n)
        self._admit([(w.sid, grant.expiry) for w in wanted], [("presign", k, n) for k, n in costs.items()], now)

    def check_commit(self, key_id: str, count: int, grant: Any, now: float | None = None) -> tuple[bytes, int]:
        """(the id, the expiry) of the unused item of `grant` that covers `frost_commit(key_id, count)` on this
        holder; Unauthorized otherwise. Changes nothing: `admit_commit` takes it."""
        now = time.time() if now is None else now
        items = self._verify(grant, [], now, "frost_commit")  # shape, expiry, signature; the item is found below
        with self._lock:
            self._prune(now)
            sid = next((i.sid for i in items if i.protocol == COMMIT_PROTOCOL and i.sid not in self._granted
                        and commit_item(self.state.party, key_id, count, i.sid).encode() == i.encode()), None)
        if sid is None:
            raise Unauthorized("auth.not_coordinator", "the session grant does not cover this frost_commit (another "
                                                       "party, key or count), or it was used here before")
        return sid, grant.expiry

    def admit_commit(self, key_id: str, count: int, checked: tuple[bytes, int], now: float | None = None) -> None:
        """Take what `check_commit` found: its id remembered, `count` tokens of the key's nonce bucket."""
        now = time.time() if now is None else now
        self._admit([checked], [("nonce", key_id, count)], now)

    def tokens_left(self, kind: str, key_id: str, now: float | None = None) -> float:
        """What this node would admit of `key_id` now: presigning sessions (`kind` "presign") or FROST nonce pairs
        ("nonce"), its token bucket's level (a key not seen yet has a full one). Reads only."""
        if kind not in ("presign", "nonce"):
            raise InvalidInput('kind is "presign" or "nonce"')
        now = time.time() if now is None else now
        with self._lock:
            bucket = self._buckets.get((kind, key_id))
            return float(_bucket_size(kind)[0]) if bucket is None else bucket.level(now)

    # checks ----------------------------------------------------------------------------------------------------
    def _verify(self, grant: Any, wanted: list[GrantItem], now: float, what: str):
        st = self.state
        try:
            return check_grant(grant, st.coordinator_key, wanted, now, what)
        except Unauthorized:
            if st.role != "worker" or not st.reload_coordinator_key():
                raise
            return check_grant(grant, st.coordinator_key, wanted, now, what)  # the holder's key was replaced

    def _check_stored(self, key_id: str, n: int) -> None:
        st = self.state
        kind = presig_kind(key_id)
        if st.role == "holder":
            stored = st.vault.count(kind)
        else:  # a worker has no ledger: files consumed but not yet unlinked count too (an upper bound)
            stored = len(st.store.names(kind + "."))
        if stored + n > MAX_STORED_PRESIGNATURES:
            raise InvalidInput(f"{MAX_STORED_PRESIGNATURES} presignatures of this key are stored on this node "
                               "already (MAX_STORED_PRESIGNATURES)")

    def _admit(self, ids: list[tuple[bytes, int]], costs: list[tuple[str, str, int]], now: float) -> None:
        """Remember `ids` and take `costs` ((bucket, key id, tokens)) all at once, or refuse and change nothing."""
        with self._lock:
            self._prune(now)
            if any(sid in self._granted for sid, _ in ids) or len({sid for sid, _ in ids}) != len(ids):
                raise Unauthorized("auth.not_coordinator", "a session of this grant was started here before "
                                                           "(a replayed grant)")
            if len(self._granted) + len(ids) > MAX_GRANTED_IDS:
                raise Unauthorized("auth.rate_limited", f"{MAX_GRANTED_IDS} granted sessions are still unexpired on "
                                                        "this node")
            buckets = [(self._bucket(kind, key_id, now), n, kind) for kind, key_id, n in costs]
            for bucket, n, kind in buckets:
                if bucket.level(now) < n:
                    what = "presigning sessions" if kind == "presign" else "nonce pairs"
                    raise Unauthorized("auth.rate_limited", f"{what} of this key are rate-limited on this node "
                                                            f"({bucket.capacity} at once, {bucket.rate:g}/s)")
            for bucket, n, _ in buckets:
                bucket.tokens -= n
            for sid, expiry in ids:
                self._granted[sid] = expiry

    def _bucket(self, kind: str, key_id: str, now: float) -> TokenBucket:
        bucket = self._buckets.get((kind, key_id))
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:  # a full bucket is the same as a new one: forget those
                for k in [k for k, b in self._buckets.items() if b.level(now) >= b.capacity]:
                    del self._buckets[k]
            bucket = self._buckets[(kind, key_id)] = TokenBucket(*_bucket_size(kind), now)
        return bucket

    def _prune(self, now: float) -> None:
        # from the oldest end (O(1) per call): a grant that outlives the next holds the rest back a little
        while self._granted:
            sid, expiry = next(iter(self._granted.items()))
            if expiry > now:
                break
            self._granted.popitem(last=False)
