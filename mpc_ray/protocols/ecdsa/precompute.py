"""Randomness made while idle, for CGGMP21 presigning: a bounded, in-memory pool of `PaillierNonce`s and
`PrecomputedRange`s.

What is precomputed. Most of a presigning party's time is r^N mod N^2, and every such r^N depends only on a fresh
r <- Z*_N and a public modulus N: the randomness of the own-key encryptions K_i = Enc_i(k_i), G_i = Enc_i(gamma_i),
F = Enc_i(y), F-hat = Enc_i(y-hat), of the MtA encryptions Enc_j(y; s), Enc_j(y-hat; s-hat) under a peer's key,
and of the proofs' commitments A = (1 + N0)^alpha r^N0 (pi_enc, pi_log* under the own key; pi_aff_g's A under the
peer's key and B_y under the own key). A `PaillierNonce` is such a pair (r, r^N mod N^2) (crypto/paillier.py).
Next come the ring-Pedersen commitments every range proof makes against the verifier's (N^, s, t): D = s^alpha
t^gamma depends only on the fresh alpha, gamma, and S = s^x t^mu splits into s^x (short x) and t^mu (fresh mu,
as long as N^). A `PrecomputedRange` (crypto/zk/common.py) is (alpha, mu, gamma, D, t^mu) for one (N^, s, t),
alpha bound and level. `presign_demand` counts how many of each one presignature takes. What depends on the
witness or a peer's message (s^x, K_j^gamma, C^alpha, rho^e) and all of the verifier's work are computed in the
session as before.

Why this is as secure as computing them in the session:
- Same distribution. A nonce's r is `sample_unit(N)`, uniform in Z*_N from `secrets`, and a range entry's alpha,
  mu, gamma are `sample_signed` over the bounds `range_commitments` uses: exactly what the session would draw,
  independently of everything else; r^N, D and t^mu are functions of them (S = s^x t^mu is the same value). The pool hands out nonces in the order they
  were made, never choosing by value, so the r a session gets is still uniform and independent of the session, of
  the other nonces and of every challenge (all are drawn before the session's transcript exists). The prover's
  messages therefore have the distribution of the paper's, and the simulators and the extraction of the proofs
  apply unchanged.
- Used at most once. Reusing an r across two proofs leaks the witness (two responses r rho^e, r rho'^e' for the
  same r and A give rho^e / rho'^e'; with one ciphertext and two challenges, rho itself), reusing it across two
  encryptions links their plaintexts, and reusing alpha, gamma answers two challenges for one commitment (z1 - z1'
  = (e - e') x: the witness). An entry is removed from the pool before it is used (`take` pops it; no reference
  stays in the pool), and the entry's own `take` empties it, so a second use raises.
  Nonces are never written anywhere: they are not in any store, both classes refuse to be pickled (Ray's object
  store cannot copy them into a second process), a node empties its pools in a forked child process
  (node/ecdsa_holder.py `empty_in_forked_child`), `repr` is redacted, and the pool dies with the process (a
  restart starts empty).
- Bound to its modulus. A nonce records the N it was made for, a range entry the (N^, s, t), alpha bound and level,
  and their `take` refuses anything else; the pool files entries by that binding and gives a session only entries
  of the key or parameters it asks with. When a peer's key changes (aux-info refresh, resharing, a new committee:
  its Paillier modulus and ring-Pedersen parameters change together), `target` with the new aux info discards
  every entry no longer targeted, and an entry of the old parameters could not be used for the new ones anyway.
- Nothing else changes. A session takes a nonce if the pool has one and draws a fresh r otherwise; checks,
  messages and their distribution are the same either way, so without a pool presigning is what it was.

Thread safety. A node fills the pool from one background thread while sessions take from it: each binding's entries
sit in a `collections.deque`, whose append and popleft are atomic in CPython, and the per-modulus table is replaced
whole by `target`, so no lock is needed (an entry added to a table just replaced is dropped, which costs only work).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import NoReturn, Union

from ...crypto.paillier import PaillierKey, PaillierNonce
from ...crypto.params import SecurityLevel
from ...crypto.ring_pedersen import RingPedersenParams
from ...crypto.zk.common import PrecomputedRange
from .aux_info import AuxInfo

Precomputed = Union[PaillierNonce, PrecomputedRange]
Slot = tuple[object, ...]  # what an entry is bound to: ("enc", N) or ("range", N^, s, t, alpha bound, ell, eps)


def nonce_slot(key: PaillierKey) -> Slot:
    return ("enc", int(key.public.n))


def range_slot(rp: RingPedersenParams, alpha_bound: int, level: SecurityLevel) -> Slot:
    return ("range", int(rp.n), int(rp.s), int(rp.t), int(alpha_bound), level.ell, level.eps)


def _slot_of(item: Precomputed) -> Slot:
    if isinstance(item, PaillierNonce):
        return ("enc", int(item.n))
    return ("range", *item.binding)


def x_bound(level: SecurityLevel) -> int:
    """alpha's bound for a witness in +-2^ell (pi_enc, pi_log*, pi_aff_g's x): 2^(ell+eps)."""
    return 1 << (level.ell + level.eps)


def y_bound(level: SecurityLevel) -> int:
    """beta's bound for pi_aff_g's y in +-2^ell': 2^(ell'+eps)."""
    return 1 << (level.ell_prime + level.eps)


def presign_demand(aux: AuxInfo, peers: int) -> dict[Slot, tuple[Callable[[], Precomputed], int]]:
    """What one presignature takes, per slot: {slot: (maker of one entry, count)}. With P = `peers` (the other
    signers): own-key nonces 2 (K, G) + 7 per peer (pi_enc's A, F, F-hat, the two pi_aff_g B_y, pi_log*'s A in
    rounds 2 and 3); per peer j: 4 nonces under j's key (Enc_j(y), Enc_j(y-hat), the two pi_aff_g A), and against
    j's ring-Pedersen parameters 5 range entries for an ell-bit witness (pi_enc, pi_aff_g's x twice, pi_log* twice)
    and 2 for an ell'-bit one (pi_aff_g's y twice). Every other party of `aux` is counted as a possible peer, since
    the signer set of the next presignature is not known in advance."""
    own, lv = aux.paillier, aux.level
    out: dict[Slot, tuple[Callable[[], Precomputed], int]] = {
        nonce_slot(own): (lambda: PaillierNonce(own), 2 + 7 * peers)
    }
    for j in aux.parties:
        if j == aux.party:
            continue
        pk, rp = aux.paillier_pk(j), aux.rp(j).params
        out[nonce_slot(pk)] = (lambda pk=pk: PaillierNonce(pk), 4)  # type: ignore[misc]
        for bound, count in ((x_bound(lv), 5), (y_bound(lv), 2)):
            out[range_slot(rp, bound, lv)] = (lambda rp=rp, b=bound: PrecomputedRange(rp, b, lv), count)  # type: ignore[misc]
    return out


class PaillierRandomness:
    """A bounded pool of precomputed presigning randomness per slot (modulus, or ring-Pedersen parameters and
    bound), for `PresignParty(randomness=...)`.

    `target(plans)` sets which slots to keep and how many (`depth` presignatures' worth of `presign_demand`),
    discarding the entries of any other slot; `need()` returns the maker of an entry for the slot furthest below
    its target, `put` adds an entry; `take(key)` and `take_range(rp, bound, level)` remove and return one entry of
    that slot (None when there is none: the caller then draws fresh randomness). Sans-I/O: whoever fills it
    (node/ecdsa_holder.py, on an idle thread) owns the threads."""

    __slots__ = ("depth", "_caps", "_entries", "__weakref__")

    def __init__(self, depth: int = 2) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.depth = depth
        self._caps: dict[Slot, tuple[Callable[[], Precomputed], int]] = {}
        self._entries: dict[Slot, deque[Precomputed]] = {}

    def target(self, plans: Iterable[tuple[AuxInfo, int]]) -> None:
        """Keep entries for the presignatures of `plans`, each (aux info, number of peers), `depth` of each; drop the
        entries of every slot none of them has (a replaced key's). The largest demand wins where plans share one."""
        caps: dict[Slot, tuple[Callable[[], Precomputed], int]] = {}
        for aux, peers in plans:
            for slot, (make, count) in presign_demand(aux, peers).items():
                if slot not in caps or caps[slot][1] < count * self.depth:
                    caps[slot] = (make, count * self.depth)
        old = self._entries
        self._caps = caps
        self._entries = {slot: old.get(slot) or deque() for slot in caps}  # other slots' entries go with `old`

    def need(self) -> Callable[[], Precomputed] | None:
        """The maker for the slot furthest below its target (relative to it), or None when every slot is full."""
        best: tuple[float, Callable[[], Precomputed]] | None = None
        entries = self._entries
        for slot, (make, cap) in self._caps.items():
            have = len(entries.get(slot, ()))
            if have < cap and (best is None or have / cap < best[0]):
                best = (have / cap, make)
        return None if best is None else best[1]

    def put(self, item: Precomputed) -> bool:
        """Add an entry; False (and it is dropped) when its slot is not targeted or full, or it was used."""
        slot = _slot_of(item)
        q, cap = self._entries.get(slot), self._caps.get(slot)
        if q is None or cap is None or item.used or len(q) >= cap[1]:
            return False
        q.append(item)
        return True

    def fill(self, limit: int | None = None) -> int:
        """Make entries in the calling thread until every slot is full (or `limit` were made); returns how many."""
        made = 0
        while limit is None or made < limit:
            make = self.need()
            if make is None:
                break
            self.put(make())
            made += 1
        return made

    def _pop(self, slot: Slot) -> Precomputed | None:
        q = self._entries.get(slot)
        try:
            return None if q is None else q.popleft()
        except IndexError:
            return None

    def take(self, key: PaillierKey) -> PaillierNonce | None:
        """Remove and return one nonce for `key`'s modulus, or None. Removed before use: never handed out twice."""
        item = self._pop(nonce_slot(key))
        return item if isinstance(item, PaillierNonce) else None

    def take_range(self, rp: RingPedersenParams, alpha_bound: int, level: SecurityLevel) -> PrecomputedRange | None:
        """Remove and return one range entry for these parameters, bound and level, or None."""
        item = self._pop(range_slot(rp, alpha_bound, level))
        return item if isinstance(item, PrecomputedRange) else None

    def size(self, key: PaillierKey | None = None) -> int:
        """Entries held: nonces for one key's modulus, or every entry."""
        if key is not None:
            return len(self._entries.get(nonce_slot(key), ()))
        return sum(len(q) for q in self._queues())

    def range_size(self, rp: RingPedersenParams, alpha_bound: int, level: SecurityLevel) -> int:
        return len(self._entries.get(range_slot(rp, alpha_bound, level), ()))

    def _queues(self) -> Iterator[deque[Precomputed]]:
        return iter(list(self._entries.values()))

    def clear(self) -> None:
        """Drop every entry (targets stay): a restart, a close, a forked child."""
        self._entries = {slot: deque() for slot in self._caps}

    def __repr__(self) -> str:
        return f"PaillierRandomness({len(self._caps)} slots, {self.size()} entries, <redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("PaillierRandomness holds secret encryption randomness and cannot be pickled")
