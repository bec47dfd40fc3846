"""The coordinator side of FROST (Ed25519 and BIP340): key generation, nonce-commitment pools and batch signing.

`Coordinator` owns one `FrostEngine` (`coordinator.frost`) and hands FROST keys to it (create_key, sign_many,
status and pool_depths dispatch on the key's scheme). Everything here is public: key packages' public halves,
commitment entries and signature shares.

Pools: one deque per (key, party) of (nonce id, commitment entry) pairs that party's holder made with
`frost_commit` and keeps, secret, in its vault. A background thread keeps every available party at
`cfg.pool_depth` (a nonce pair costs a holder two fixed-base multiplications and one vault write). Any `threshold`
parties can sign together, so pools are per party, not per signer set as for ECDSA presignatures.

Signing a batch: pick `threshold` available parties (deepest pools first), pop one commitment per signer per
message (topping a short pool up with a synchronous `frost_commit`), build each message's commitment list sorted by
identifier, and submit every signer's `frost_sign` calls for the whole batch at once, in parallel (one call per chunk
of `chunk` = 256 messages, so the coordinator combines chunk k while the holders sign chunk k + 1). Each holder
consumes a call's nonces durably (one ledger fsync) before computing shares and returns (z_i, R) per message. The signature R || sum z_i is checked with
an independent verifier (libsodium / libsecp256k1); only if that fails does the coordinator recompute the session
and check every share against its verifying share (RFC `aggregate`), which raises ProtocolAbort naming the culprit:
it is excluded and the message is retried with other signers. A holder that fails mid-batch is marked down, the
commitments of that batch are dropped (some may be consumed), and its messages are retried with another set.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Sequence

import coincurve
import nacl.exceptions
import ray
from nacl import bindings as _nacl

from .. import telemetry as tm
from ..crypto.frost_suites import Ciphersuite, get_suite
from ..errors import HolderRefused, InvalidInput, PolicyDenied, ProtocolAbort, QuorumUnavailable
from ..schemes import FROST_SCHEMES
from ..node.frost_records import (
    commitment_entry_size,
    commitment_list_from_bytes,
    public_package_from_bytes,
)
from ..node.holder import check_key_id
from ..protocols.frost import PublicKeyPackage, aggregate, prepare, public_key_bytes
from ..requests.grants import commit_item
from ..types import Signature
from ..errors import PartyUnavailable
from .sessions import UNAVAILABLE, SessionSpec, run_sessions
from .state import CoordinatorState

MAX_COMMIT = 4096  # nonce pairs per frost_commit call (as the holder allows)


@dataclass
class FrostKey:
    key_id: str
    scheme: str
    suite: Ciphersuite
    public_package: PublicKeyPackage
    public_key: bytes  # 32-byte Ed25519 / 32-byte x-only BIP340 (untweaked)
    threshold: int
    parties: list[int]
    _tweaked: dict[tuple[bytes | None, int | None], bytes] = field(default_factory=dict)

    def verify_key(self, tap_tweak: bytes | None, hd_tweak: int | None = None) -> bytes:
        """The key signatures verify under: the public key, or the BIP341 output key for `tap_tweak`; with
        `hd_tweak`, of that BIP32 child (protocols.frost.keys.key_adjust)."""
        if tap_tweak is None and hd_tweak is None:
            return self.public_key
        pk = self._tweaked.get((tap_tweak, hd_tweak))
        if pk is None:
            if len(self._tweaked) > 4096:
                self._tweaked.clear()
            pk = self._tweaked[(tap_tweak, hd_tweak)] = public_key_bytes(
                self.suite, self.public_package.group_key, tap_tweak, hd_tweak)
        return pk

    def hd_tweak(self, path: str | None) -> int | None:
        """The BIP32 tweak of `path` (BIP340 keys only); None without a path."""
        if path is None:
            return None
        cc = self.public_package.chain_code
        if self.scheme != "schnorr-bip340" or not cc:
            raise InvalidInput(f"key {self.key_id!r} has no BIP32 derivation (Ed25519, or made before HD support)")
        if not isinstance(path, str):
            raise InvalidInput("a derivation path is a string like 'm/0/7'")
        from ..crypto import bip32

        return bip32.derive_bip340(self.public_key, cc, path).tweak


# pure helpers (no Ray): tested in process ------------------------------------------------------------------
def fast_verify(suite: Ciphersuite, public_key: bytes, msg: bytes, sig: bytes) -> bool:
    """libsodium (Ed25519) / libsecp256k1 (BIP340) verification: one double-base multiplication."""
    if len(sig) != 64:
        return False
    if suite.key == "eddsa-ed25519":
        try:
            _nacl.crypto_sign_open(sig + msg, public_key)  # raises unless the signature verifies
            return True
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
            return False
    if suite.key == "schnorr-bip340":
        try:
            return coincurve.PublicKeyXOnly(public_key).verify(sig, msg)
        except ValueError:
            return False
    raise InvalidInput(f"no fast verifier for {suite.key}")


def signature_bytes(suite: Ciphersuite, r_enc: bytes, z: int) -> bytes:
    """The signature from the encoded group commitment R and z: R || z (Ed25519), x(R) || z (BIP340: x(R) = x(-R),
    so whether the signers negated their nonces does not matter here)."""
    zb = suite.group.serialize_scalar(z)
    return (bytes(r_enc[1:]) if suite.bip340 else bytes(r_enc)) + zb


def combine(key: FrostKey, msg: bytes, commitment_list: bytes, shares: dict[int, int],
            group_commitments: dict[int, bytes] | None = None, tap_tweak: bytes | None = None,
            hd_tweak: int | None = None) -> tuple[bytes, list[int]]:
    """(signature, parties that reported a wrong R). Fast path: the signers' R and the sum of the shares verify.
    Otherwise the RFC aggregate with verifying shares: a bad share raises ProtocolAbort(culprit, "frost.sign.share")."""
    suite, g = key.suite, key.suite.group
    for i, z in shares.items():
        if not isinstance(z, int) or isinstance(z, bool) or not 0 <= z < g.order:
            raise ProtocolAbort(i, "frost.sign.share", "share is not a reduced scalar")
    if group_commitments:
        rs = set(group_commitments.values())
        if len(rs) == 1 and all(isinstance(r, bytes) and len(r) == g.element_size for r in rs):
            sig = signature_bytes(suite, rs.pop(), sum(shares.values()) % g.order)
            if fast_verify(suite, key.verify_key(tap_tweak, hd_tweak), msg, sig):
                return sig, []
    commitments = commitment_list_from_bytes(suite, commitment_list)
    session = prepare(suite, key.public_package.group_key, commitments, msg, tap_tweak, hd_tweak)
    fs = aggregate(suite, session, msg, key.public_package.group_key, shares,
                   key.public_package.verifying_shares, tap_tweak)
    r_enc = g.serialize_element(session.group_commitment)
    liars = sorted(i for i, r in (group_commitments or {}).items() if r != r_enc)
    return fs.to_bytes(), liars


# the coordinator's FROST part -------------------------------------------------------------------------------
class FrostEngine:
    def __init__(self, state: CoordinatorState) -> None:
        self.state = state
        self.cfg = state.cfg
        self.health = state.health
        self.lock = state.lock
        self.keys: dict[str, FrostKey] = {}
        self.pools: dict[tuple[str, int], deque[tuple[bytes, bytes]]] = {}
        self.commit_batch = 64  # per refill call: a holder is busy a few ms, so signing barely waits behind it
        self.chunk = 256  # messages per frost_sign call: the coordinator combines one chunk while holders sign the next
        self._thread: threading.Thread | None = None
        self._topping_up: set[tuple[str, int]] = set()  # below low water once, filling to full depth
        self._signing: dict[int, int] = {}  # party -> sign batches in flight: refills wait (holders serve one call)
        self._limited: dict[tuple[str, int], float] = {}  # (key, party) -> until when its holder's rate limit holds

    @property
    def depth(self) -> int:
        return self.cfg.pool_depth

    # keys ---------------------------------------------------------------------------------------------
    def key(self, key_id: str) -> FrostKey | None:
        with self.lock:
            return self.keys.get(key_id)

    def create_key(self, key_id: str, scheme: str, threshold: int, approval: Any = None) -> dict[str, Any]:
        """A new key among the whole committee (the caller checked that no ECDSA key has this id)."""
        check_key_id(key_id)
        if scheme not in FROST_SCHEMES:
            raise InvalidInput(f"scheme {scheme!r} is not a FROST scheme")
        if not isinstance(threshold, int) or not 1 <= threshold <= len(self.cfg.parties):
            raise InvalidInput("need 1 <= threshold <= parties")
        with self.lock:
            if key_id in self.keys:
                raise InvalidInput(f"key {key_id!r} exists")
        parties = list(self.cfg.parties)
        spec = SessionSpec("frost-dkg", parties, {"key_id": key_id, "scheme": scheme, "threshold": threshold,
                                                  "approval": approval})
        out = run_sessions(self.state.holders(parties), spec, timeout=self.cfg.round_timeout_s)
        results = next(iter(out.values()))
        packages = [results[p]["public_package"] for p in parties]
        majority = max(set(packages), key=packages.count)
        for p in parties:
            if results[p]["public_package"] != majority:
                raise ProtocolAbort(p, "frost.dkg.public_package_disagreement")
        pub = public_package_from_bytes(majority)
        suite = get_suite(scheme)
        if pub.suite_key != scheme or pub.threshold != threshold or list(pub.parties) != sorted(parties):
            raise ProtocolAbort(parties[0], "frost.dkg.public_package_mismatch")
        pk = public_key_bytes(suite, pub.group_key)
        for p in parties:
            if results[p]["public_key"] != pk:
                raise ProtocolAbort(p, "frost.dkg.public_key_mismatch")
        key = FrostKey(key_id, scheme, suite, pub, pk, threshold, sorted(parties))
        with self.lock:
            self.keys[key_id] = key
            for p in key.parties:
                self.pools[(key_id, p)] = deque()
        self.start_refill()
        return {"key_id": key_id, "scheme": scheme, "public_key": pk, "threshold": threshold, "parties": len(parties),
                "chain_code": pub.chain_code if scheme == "schnorr-bip340" else b""}

    def key_status(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {k: {"scheme": v.scheme, "threshold": v.threshold, "public_key": v.public_key.hex()}
                    for k, v in self.keys.items()}

    def pool_depths(self) -> dict[str, int]:
        """{"<key_id>:<party>": commitments pooled for that party}."""
        with self.lock:
            return {f"{k}:{p}": len(q) for (k, p), q in self.pools.items()}

    # the key table across restarts and epochs (resync.py, lifecycle.py) -----------------------------------
    def adopt(self, key: FrostKey) -> None:
        with self.lock:
            self.keys[key.key_id] = key
            for p in key.parties:
                self.pools.setdefault((key.key_id, p), deque())

    def pause(self, key_id: str) -> FrostKey | None:
        """Take the key out of signing and refills and empty its pools; None if it is not a FROST key here."""
        with self.lock:
            key = self.keys.pop(key_id, None)
        if key is not None:
            self.drop_pools(key_id)
        return key

    def resume(self, key: FrostKey) -> None:
        """Take the key back (perhaps with another committee): a pool per member, none for a removed party."""
        with self.lock:
            self.keys[key.key_id] = key
            for slot in [s for s in self.pools if s[0] == key.key_id and s[1] not in key.parties]:
                del self.pools[slot]
            for p in key.parties:
                self.pools.setdefault((key.key_id, p), deque())
        self.start_refill()

    def drop_pools(self, key_id: str) -> None:
        with self.lock:
            for slot in [s for s in self.pools if s[0] == key_id]:
                self.pools[slot].clear()

    def drop_party(self, party: int) -> int:
        """Forget every pooled commitment of `party`; returns how many."""
        dropped = 0
        with self.lock:
            for slot, pool in self.pools.items():
                if slot[1] == party:
                    dropped += len(pool)
                    pool.clear()
        return dropped

    # what frost_requests.py signs with ----------------------------------------------------------------
    def holder(self, party: int) -> Any:
        return self.state.holder(party)

    def answers(self, refs: dict[int, Any]) -> dict[int, Any]:
        return self.state.answers(refs)

    def exclude(self, abort: ProtocolAbort) -> None:
        self.health.exclude(abort)

    # pools --------------------------------------------------------------------------------------------
    def _accept(self, key: FrostKey, party: int, got: Any, count: int) -> list[tuple[bytes, bytes]]:
        """Shape checks on a holder's commitments (points are checked by the co-signers and the final verify)."""
        g, size = key.suite.group, commitment_entry_size(key.suite)
        if not isinstance(got, list) or len(got) != count:
            raise HolderRefused(party, "frost_commit returned the wrong number of commitments")
        ident = g.serialize_scalar(party)
        for item in got:
            if (not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], bytes) or len(item[0]) != 32
                    or not isinstance(item[1], bytes) or len(item[1]) != size or item[1][: g.scalar_size] != ident):
                raise HolderRefused(party, "frost_commit returned a malformed commitment")
        return got

    def _commit(self, key: FrostKey, counts: dict[int, int]) -> dict[int, list[tuple[bytes, bytes]]]:
        """frost_commit on several holders in parallel; PartyUnavailable / HolderRefused name the first failure."""
        calls = [(p, min(MAX_COMMIT, n - off)) for p, n in counts.items() for off in range(0, n, MAX_COMMIT)]
        grant = self.state.grants.sign([commit_item(p, key.key_id, m) for p, m in calls], time.time())  # one for all
        refs: dict[int, list[tuple[Any, int]]] = {}
        for p, m in calls:
            refs.setdefault(p, []).append((self.state.holder(p).frost_commit.remote(key.key_id, m, grant), m))
        flat = [(p, ref, n) for p, calls in refs.items() for ref, n in calls]
        answers = self._get_all([(p, ref) for p, ref, _ in flat])
        out: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in refs}
        for (p, _, n), answer in zip(flat, answers):
            out[p].extend(self._accept(key, p, answer, n))
        return out

    def _get_all(self, refs: list[tuple[int, Any]]) -> list[Any]:
        """`_get` of each, every answer read before the first failure is raised (an answer left unread is logged by
        Ray as an unhandled error, although the caller got the refusal)."""
        out, first = [], None
        for party, ref in refs:
            try:
                out.append(self._get(party, ref))
            except (PartyUnavailable, HolderRefused) as exc:
                first = first or exc
                out.append(None)
        if first is not None:
            raise first
        return out

    def _get(self, party: int, ref: Any) -> Any:
        try:
            return ray.get(ref, timeout=self.cfg.round_timeout_s)
        except UNAVAILABLE as exc:
            raise PartyUnavailable(party, type(exc).__name__) from None
        except Exception as exc:  # noqa: BLE001 - the holder raised: typed or not, it refused this call
            refused = HolderRefused(party, f"{type(exc).__name__}: {str(exc)[:200]}")
            refused.rule = getattr(exc, "rule", None)  # type: ignore[attr-defined]  # auth.rate_limited: not a fault
            refused.decision = exc if isinstance(exc, PolicyDenied) else None  # type: ignore[attr-defined]
            raise refused from None

    def _fail(self, key: FrostKey, exc: Exception) -> None:
        """A party failed a call: skip it for a while; a refusing holder's pool is suspect, so drop it."""
        party = getattr(exc, "party", None)
        if party is None:
            return
        self.health.mark_down(party)
        if isinstance(exc, HolderRefused) and getattr(exc, "rule", None) != "auth.rate_limited":
            with self.lock:
                self.pools.get((key.key_id, party), deque()).clear()

    def refill_once(self) -> int:
        """One refill step: top every available party's pool of every key up towards `depth` (at most
        `commit_batch` per call, all holders in parallel). Returns how many commitments were added."""
        low = min(self.cfg.pool_low_water, self.depth - 1)
        with self.lock:
            plan = []
            for key in self.keys.values():
                for p in key.parties:
                    slot, have = (key.key_id, p), len(self.pools[(key.key_id, p)])
                    # hysteresis: start below the low-water mark, then fill to full depth (fewer, larger calls,
                    # so a single signature rarely waits behind a refill on its holders)
                    if have < low:
                        self._topping_up.add(slot)
                    elif have >= self.depth:
                        self._topping_up.discard(slot)
                    if (slot in self._topping_up and self.health.available(p) and not self._signing.get(p)
                            and self._limited.get(slot, 0.0) <= time.monotonic()):
                        plan.append((key, p, min(self.commit_batch, self.depth - have)))
        if not plan:
            return 0
        grant = self.state.grants.sign([commit_item(p, key.key_id, n) for key, p, n in plan], time.time())  # one per round
        calls = []
        for key, p, n in plan:
            try:
                calls.append((key, p, n, self.state.holder(p).frost_commit.remote(key.key_id, n, grant)))
            except ValueError:  # the actor name is not registered right now
                self.health.mark_down(p)
        added = 0
        for key, p, n, ref in calls:
            try:
                got = self._accept(key, p, self._get(p, ref), n)
            except (PartyUnavailable, HolderRefused) as exc:
                if getattr(exc, "rule", None) == "auth.rate_limited":  # as if the pool were full, for a second
                    with self.lock:
                        self._topping_up.discard((key.key_id, p))
                        self._limited[(key.key_id, p)] = time.monotonic() + 1.0
                    continue
                self._fail(key, exc)
                continue
            with self.lock:
                self.pools[(key.key_id, p)].extend(got)
            added += len(got)
        return added

    def start_refill(self) -> None:
        # A thread of its own rather than a turn in the ECDSA refill loop: one presign batch there blocks for
        # seconds, while nonce pools must refill within milliseconds of a large sign_many.
        if self.cfg.refill and self._thread is None:
            self._thread = threading.Thread(target=self._refill_loop, daemon=True, name="frost-pool-refill")
            self._thread.start()

    def _refill_loop(self) -> None:
        stop = self.state.stop
        while not stop.is_set():
            try:
                added = self.refill_once()
            except Exception:  # noqa: BLE001 - never let the refill thread die; the next step retries
                added = 0
            if not added:
                stop.wait(0.05)

    # signing ------------------------------------------------------------------------------------------
    def choose_signers(self, key: FrostKey) -> list[int]:
        """`threshold` available parties, deepest pools first (ties: lower id)."""
        health = self.health
        deadline = time.monotonic() + self.cfg.quorum_wait_s
        while sum(health.available(p) for p in key.parties) < key.threshold:
            health.probe(self.state.holder)  # a restarted holder is taken back as soon as it answers
            if sum(health.available(p) for p in key.parties) >= key.threshold:
                break
            if time.monotonic() > deadline:
                raise QuorumUnavailable(f"fewer than {key.threshold} parties available for key {key.key_id!r}")
            time.sleep(0.2)
        with self.lock:
            avail = [p for p in key.parties if health.available(p)]
            avail.sort(key=lambda p: (-len(self.pools[(key.key_id, p)]), p))
        return sorted(avail[: key.threshold])

    def take(self, key: FrostKey, signers: list[int], count: int) -> dict[int, list[tuple[bytes, bytes]]]:
        """`count` commitments of every signer: popped from its pool, the shortfall committed now."""
        with self.lock:
            taken = {}
            for p in signers:
                pool = self.pools[(key.key_id, p)]
                taken[p] = [pool.popleft() for _ in range(min(count, len(pool)))]
        short = {p: count - len(v) for p, v in taken.items() if len(v) < count}
        if short:
            tm.annotate(key_id=key.key_id, presigned_on_demand=1)  # `mpc-ray bench` counts these
            try:
                fresh = self._commit(key, short)
            except BaseException:
                with self.lock:  # nothing was used: put the popped commitments back in front
                    for p, v in taken.items():
                        self.pools[(key.key_id, p)].extendleft(reversed(v))
                raise
            for p, v in fresh.items():
                taken[p].extend(v)
        return taken

    def _blame_commitments(self, key: FrostKey, taken: dict[int, list[tuple[bytes, bytes]]]) -> bool:
        """Decode every commitment of a refused batch; exclude (and empty the pool of) a party that handed out an
        invalid point. True if one was found. Runs only after a refusal."""
        found = False
        for p, entries in taken.items():
            for _, entry in entries:
                try:
                    commitment_list_from_bytes(key.suite, entry)
                except InvalidInput as exc:
                    self.health.exclude(ProtocolAbort(p, "frost.sign.commitment_point", str(exc)))
                    with self.lock:
                        self.pools[(key.key_id, p)].clear()
                    found = True
                    break
        return found

    def _submit(self, key: FrostKey, signers: list[int], request: Any, todo: list[int]
                ) -> tuple[list[tuple[int, int, dict[int, Any]]], dict[int, list[tuple[bytes, bytes]]], list[bytes]]:
        """Pop (or commit) one commitment per signer per message and submit the frost_sign calls: per signer one
        call per chunk of `chunk` messages, all submitted at once (a holder runs them in order), so the
        coordinator combines chunk k while the holders compute chunk k + 1. Returns (chunks, taken, lists)."""
        taken = self.take(key, signers, len(todo))
        lists = [b"".join(taken[p][n][1] for p in signers) for n in range(len(todo))]
        chunks: list[tuple[int, int, dict[int, Any]]] = []  # (start, end, {party: ref})
        try:
            handles = {}
            for p in signers:
                try:
                    handles[p] = self.state.holder(p)
                except ValueError:  # the actor name is not registered right now
                    raise PartyUnavailable(p, "no actor") from None
            for lo in range(0, len(todo), self.chunk):
                hi = min(len(todo), lo + self.chunk)
                refs = {}
                for p in signers:  # the request carries the messages, the tweak and the path
                    items = [(todo[n], taken[p][n][0], lists[n]) for n in range(lo, hi)]
                    refs[p] = handles[p].frost_sign.remote(request, items)
                chunks.append((lo, hi, refs))
        except PartyUnavailable as exc:
            exc.taken = taken  # type: ignore[attr-defined]
            raise
        return chunks, taken, lists

    def _answers(self, refs: dict[int, Any], size: int) -> dict[int, list[Any]]:
        answers = dict(zip(refs, self._get_all(list(refs.items()))))
        for p, a in answers.items():
            if not isinstance(a, list) or len(a) != size:
                raise HolderRefused(p, "frost_sign returned the wrong number of shares")
        return answers

    def sign_many(self, key_id: str, request: Any, messages: Sequence[bytes], tap_tweak: bytes | None = None,
                  path: str | None = None) -> list[Signature]:
        """Signatures of `messages` (the bytes themselves, those of the operator's raw_batch `request` with its
        `tap_tweak` and `path`), in order, each verified under the key (with `path`: under that BIP32 child of a
        BIP340 key; the holders derive its tweak themselves)."""
        key = self.keys.get(key_id)
        if key is None:
            raise InvalidInput(f"unknown key {key_id!r}")
        if not isinstance(messages, (list, tuple)) or not all(isinstance(m, (bytes, bytearray)) for m in messages):
            raise InvalidInput("messages must be a list of bytes")
        messages = [bytes(m) for m in messages]
        hd_tweak = key.hd_tweak(path)  # InvalidInput for a bad path or a key without BIP32
        if tap_tweak is not None or hd_tweak is not None:
            tap_tweak = None if tap_tweak is None else bytes(tap_tweak)
            key.verify_key(tap_tweak, hd_tweak)  # InvalidInput for a bad tweak or a non-BIP340 key
        done: list[Signature | None] = [None] * len(messages)
        todo = list(range(len(messages)))
        attempts = 0
        while todo:
            attempts += 1
            if attempts > 2 * len(key.parties) + 4:
                raise QuorumUnavailable("no signer set completed the signatures")
            signers = self.choose_signers(key)
            with self.lock:
                for p in signers:
                    self._signing[p] = self._signing.get(p, 0) + 1
                depth = min(len(self.pools.get((key.key_id, p), ())) for p in signers)
            tm.annotate(signer_set=signers, pool_depth=depth)
            taken = None
            try:
                chunks, taken, lists = self._submit(key, signers, request, todo)
                for lo, hi, refs in chunks:
                    with tm.round_span("frost-sign", 2, signers, hi - lo):  # round 1 was pooled
                        answers = self._answers(refs, hi - lo)
                    for n in range(lo, hi):
                        idx = todo[n]
                        try:
                            shares = {p: answers[p][n - lo][0] for p in signers}
                            rs = {p: answers[p][n - lo][1] for p in signers}
                            sig, liars = combine(key, messages[idx], lists[n], shares, rs, tap_tweak, hd_tweak)
                        except ProtocolAbort as exc:
                            self.health.exclude(exc)
                            continue
                        except (TypeError, IndexError, KeyError, ValueError):
                            continue  # a malformed answer: retried with a fresh set
                        for p in liars:
                            self.health.exclude(ProtocolAbort(p, "frost.sign.group_commitment", "reported a wrong R"))
                        done[idx] = Signature(key.scheme, sig)
            except (PartyUnavailable, HolderRefused) as exc:
                decision = getattr(exc, "decision", None)
                if decision is not None and getattr(decision, "rule", None) != "auth.rate_limited":
                    raise decision from None  # the holders' decision on this request: no fault, no other signer set
                # the rest of the batch's commitments are dropped (some may be consumed). A co-signer that refused
                # because another party's commitment point is invalid is not at fault: find and exclude that party.
                taken = getattr(exc, "taken", None) or taken
                if not (isinstance(exc, HolderRefused) and taken and self._blame_commitments(key, taken)):
                    self._fail(key, exc)
            finally:
                with self.lock:
                    for p in signers:
                        self._signing[p] -= 1
            todo = [i for i in todo if done[i] is None]
        return done  # type: ignore[return-value]
