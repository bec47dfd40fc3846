"""Proactive key refresh with new auxiliary info (CGGMP21 Fig. 6, threshold form), sans-I/O.

Same committee, same public key, new shares and new Paillier / ring-Pedersen parameters: after a refresh, shares
and presignatures of the previous epoch are worthless to an attacker who collects shares across epochs, and the
node layer destroys them.

The aux-info part is exactly `aux_info.AuxInfoParty` (Pi-prm on the new s, t; Pi-mod and Pi-fac on the new N),
driven in lockstep inside this party on the session context, so its checks and their names ("aux.<check>") are
the ones of the committee setup. The key part is a Feldman zero-sharing (the threshold form of the paper's
x_i^j with sum_j x_i^j = 0): each party i deals a random polynomial f_i of degree t-1 with f_i(0) = 0. Rounds:

1. broadcast the aux commitment and V_i = H(ssid, i, F_i, A_i, rho_i, u_i): F_i = (f_i0 G = identity, f_i1 G, ..)
   and A_i the first messages of Schnorr proofs of knowledge of f_i1 .. f_i(t-1)
2. broadcast both decommitments and an echo of round 1
3. check the echo, decommitments, |F_j| = t, `check_zero_constant` (f_j0 G is the identity), the non-constant
   terms, that no new modulus is one of the old epoch's (`stale_modulus`), then the aux checks; rho = XOR rho_j;
   broadcast Pi-mod and the Schnorr proofs (bound to rho), send each j Pi-fac and f_i(j)
4. verify Pi-mod, Pi-fac, the Schnorr proofs (their first messages must be the A_j of round 1), every f_j(i)
   against F_j and `check_zero_sum`; x_i' = x_i + sum_j f_j(i), X_k' = X_k + sum_j F_j(k).
   Output `RefreshOutput(key, aux)`: the public key is unchanged (checked by interpolation).

The session context (`refresh_context`: sid, epoch, level, public key, threshold and every public share) goes
into every hash commitment and proof transcript, so a message from another key, epoch or session never verifies.
With threshold 1 every party holds the key itself and only the aux info changes.

Round 1 is broadcast-only on purpose: the node layer announces each party's ephemeral session key there and seals
the round-3 f_i(j) between session keys, which it erases when the session ends; under long-term keys a later
break-in would open a recorded refresh and give back x_i(old) = x_i(new) - sum_j f_j(i).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping, Sequence

from ...crypto.paillier import PaillierSecretKey
from ...crypto.params import SecurityLevel
from ...crypto.secp256k1 import Q, Point, sum_points
from ...crypto.transcript import Transcript
from ...crypto.vss import Polynomial, evaluate_commitments, lagrange_coefficient, random_coefficients
from ...crypto.zk import schnorr
from ...errors import InvalidInput, MpcError, ProofError
from ..base import Inbound, Outbox, RoundParty
from ..common import echo_digest, hash_commit, is_seed, proof_transcript, random_seed, same_bytes, xor_seeds
from . import aux_info
from .aux_info import AuxInfo, AuxInfoParty
from .keygen import KeyShare

TAG = "cggmp21/refresh"


@dataclass(frozen=True)
class Reveal:
    coefficients: list[Point]  # F_i: f_i0 G (the identity) .. f_i(t-1) G
    schnorr_commitments: list[Point]  # A_i1 .. A_i(t-1)
    rho: bytes
    u: bytes


@dataclass(frozen=True)
class Commitment:
    aux: aux_info.Commitment
    v: bytes


@dataclass(frozen=True)
class Decommitment:
    aux: aux_info.Decommitment
    reveal: Reveal
    echo: bytes


@dataclass(frozen=True)
class Proofs:
    mod: aux_info.ModProof
    schnorr: list[schnorr.Proof]


@dataclass(frozen=True)
class Direct:
    fac: aux_info.FacProof
    share: int  # f_i(j); the node layer seals it under session ephemeral keys (forward secrecy, node/envelope.py)


class RefreshOutput:
    """The new epoch of one party: its refreshed `KeyShare` and new `AuxInfo`. Both are secret; `repr` redacted."""

    __slots__ = ("key", "aux")

    def __init__(self, key: KeyShare, aux: AuxInfo) -> None:
        self.key, self.aux = key, aux

    def __repr__(self) -> str:
        return f"RefreshOutput({self.key!r}, {self.aux!r})"


# the checks, by name ----------------------------------------------------------------------------------------
def check_zero_constant(coefficients: Sequence[Point]) -> None:
    """A zero-sharing's constant term commitment must be the identity (f_j(0) = 0). ProofError("zero_constant")."""
    if not coefficients or not coefficients[0].is_identity:
        raise ProofError("zero_constant", "the zero-sharing's constant term is not zero")


def check_zero_sum(zero_commitments: Mapping[int, Sequence[Point]]) -> None:
    """The dealt polynomials must add up to a sharing of zero: the constant term of sum_j F_j is the identity, so
    the public key cannot move. ProofError("zero_sum")."""
    if not sum_points(c[0] for c in zero_commitments.values()).is_identity:
        raise ProofError("zero_sum", "the zero-sharings do not sum to zero")


def check_public_key_unchanged(key: KeyShare, public_shares: Mapping[int, Point]) -> None:
    """The new public shares must interpolate to the old public key (any `threshold` of them). ProofError."""
    signers = list(key.parties[: key.threshold])
    y = sum_points(public_shares[j] * lagrange_coefficient(j, signers) for j in signers)
    if y != key.public_key:
        raise ProofError("public_key_changed", "new public shares do not interpolate to the public key")


def refresh_context(sid: bytes, key: KeyShare, epoch: int, level: SecurityLevel) -> bytes:
    """32-byte digest binding a refresh to its session, epoch, level and key (public key and every public share)."""
    t = Transcript(f"{TAG}/context").append_bytes("sid", sid).append_int("epoch", epoch)
    t.append_bytes("level", level.name.encode()).append_point("Y", key.public_key)
    t.append_int("threshold", key.threshold)
    for j in key.parties:
        t.append_int("party", j).append_point("X", key.public_shares[j])
    return t.challenge_bytes("ssid", 32)


def _as_inbox(pairs: Mapping[int, tuple[object, object]]) -> dict[int, Inbound]:
    return {j: Inbound(b, d) for j, (b, d) in pairs.items()}


class RefreshParty(RoundParty):
    """Party `key.party` of a refresh of `key` among all of `key.parties` (everyone must take part).

    `old_aux` is the aux info of the epoch being replaced (its moduli must not come back); `paillier` the new
    Paillier key (fresh safe primes when None)."""

    NAME = "refresh"
    ROUNDS = ((Commitment, None), (Decommitment, None), (Proofs, Direct))

    def __init__(
        self,
        sid: bytes,
        key: KeyShare,
        old_aux: AuxInfo | None,
        level: SecurityLevel,
        paillier: PaillierSecretKey | None = None,
        *,
        epoch: int,
        allow_test_keys: bool = False,
    ) -> None:
        super().__init__(sid, key.party, key.parties)
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise InvalidInput("the new epoch must be a positive integer")
        if old_aux is not None and paillier is not None and int(paillier.public.n) in _moduli(old_aux):
            raise InvalidInput("the new Paillier key is one of the old epoch's")
        self.key, self.level, self.epoch = key, level, epoch
        self.ssid = refresh_context(self.sid, key, epoch, level)
        self._old_moduli = _moduli(old_aux) if old_aux is not None else set()
        # the committee-setup machine, run on the session context; only its round methods are used
        self._aux = AuxInfoParty(self.ssid, key.party, key.parties, level, paillier, allow_test_keys=allow_test_keys)
        self._commits: dict[int, Commitment] = {}
        self._reveals: dict[int, Reveal] = {}

    def __repr__(self) -> str:
        return f"RefreshParty(party={self.party}, parties={self.parties}, epoch={self.epoch}, <redacted>)"

    # round 1 ----------------------------------------------------------------------------------------------
    def round1(self) -> Outbox:
        t = self.key.threshold
        self._poly = Polynomial(random_coefficients(t - 1, 0, Q))  # f_i(0) = 0: a sharing of zero
        self._nonces = [schnorr.Nonce() for _ in range(t - 1)]
        self._reveal = Reveal(self._poly.commitments(), [n.commitment().a for n in self._nonces],
                              random_seed(), random_seed())
        aux_out = self._aux.round1()
        self._commits[self.party] = Commitment(aux_out.broadcast, hash_commit(TAG, self.ssid, self.party,
                                                                              self._reveal))
        return Outbox(broadcast=self._commits[self.party])

    # round 2 ----------------------------------------------------------------------------------------------
    def round2(self, inbox: Mapping[int, Inbound]) -> Outbox:
        for j in self.others:
            self._commits[j] = inbox[j].broadcast
        self._echo = echo_digest(TAG, self.ssid, self._commits)
        aux_out = self._aux.round2(_as_inbox({j: (self._commits[j].aux, None) for j in self.others}))
        return Outbox(broadcast=Decommitment(aux_out.broadcast, self._reveal, self._echo))

    # round 3 ----------------------------------------------------------------------------------------------
    def round3(self, inbox: Mapping[int, Inbound]) -> Outbox:
        t = self.key.threshold
        for j in self.others:
            msg: Decommitment = inbox[j].broadcast
            if not same_bytes(msg.echo, self._echo):
                raise self.abort(j, "echo", "round-1 broadcasts differ")
            if not same_bytes(hash_commit(TAG, self.ssid, j, msg.reveal), self._commits[j].v):
                raise self.abort(j, "decommitment")
            rv = msg.reveal
            if not (is_seed(rv.rho) and is_seed(rv.u)):
                raise self.abort(j, "seed_length")
            if len(rv.coefficients) != t or len(rv.schnorr_commitments) != t - 1:
                raise self.abort(j, "commitment_count", f"{len(rv.coefficients)} commitments for threshold {t}")
            with self.blame(j):
                check_zero_constant(rv.coefficients)
            if any(c.is_identity for c in rv.coefficients[1:]) or any(a.is_identity for a in rv.schnorr_commitments):
                raise self.abort(j, "identity_commitment")
            if int(msg.aux.reveal.public.n) in self._old_moduli:
                # a party that keeps its old Paillier key would make the refresh of the aux info void
                raise self.abort(j, "stale_modulus", "the new modulus is one of the old epoch's")
            self._reveals[j] = rv
        self._reveals[self.party] = self._reveal
        try:
            check_zero_sum({j: r.coefficients for j, r in self._reveals.items()})
        except ProofError:  # every dealer passed check_zero_constant, so only a bug gets here
            raise MpcError("zero-sharings passed one by one but do not sum to zero") from None
        aux_out = self._aux.round3(_as_inbox({j: (inbox[j].broadcast.aux, None) for j in self.others}))
        self._rho = xor_seeds([self._reveals[j].rho for j in self.parties])
        proofs = [
            schnorr.prove(self._schnorr_transcript(self.party, k), self._poly.coefficients[k],
                          self._reveal.coefficients[k], self._nonces[k - 1])
            for k in range(1, t)
        ]
        self._nonces = []
        direct = {j: Direct(aux_out.direct[j], self._poly(j)) for j in self.others}
        self._own = self._poly(self.party)
        self._poly.wipe()
        return Outbox(broadcast=Proofs(aux_out.broadcast, proofs), direct=direct)

    def _schnorr_transcript(self, prover: int, k: int) -> Transcript:
        return proof_transcript(f"{TAG}/schnorr", self.ssid, prover, seed=self._rho).append_int("coefficient", k)

    # round 4 (output) -------------------------------------------------------------------------------------
    def round4(self, inbox: Mapping[int, Inbound]) -> RefreshOutput:
        t = self.key.threshold
        new_aux = self._aux.round4(_as_inbox({j: (inbox[j].broadcast.mod, inbox[j].direct.fac) for j in self.others}))
        x = (self.key.x + self._own) % Q
        self._own = 0
        for j in self.others:
            proofs: list[schnorr.Proof] = inbox[j].broadcast.schnorr
            rv = self._reveals[j]
            if len(proofs) != t - 1:
                raise self.abort(j, "schnorr.count")
            for k, proof in enumerate(proofs, start=1):
                if proof.a != rv.schnorr_commitments[k - 1]:
                    raise self.abort(j, "schnorr.commitment_mismatch")
                with self.blame(j):
                    schnorr.verify(self._schnorr_transcript(j, k), proof, rv.coefficients[k])
            share = inbox[j].direct.share
            if not 0 <= share < Q or Point.base_mul(share) != evaluate_commitments(rv.coefficients, self.party):
                raise self.abort(j, "share", "f_j(i) does not match the zero-sharing commitments")
            x = (x + share) % Q
        summed = [sum_points(self._reveals[j].coefficients[k] for j in self.parties) for k in range(t)]
        shares = {k: self.key.public_shares[k] + evaluate_commitments(summed, k) for k in self.parties}
        if Point.base_mul(x) != shares[self.party]:
            raise MpcError("own refreshed share does not match the summed commitments")  # every share was checked
        try:  # implied by check_zero_sum; kept as the last word before the key is replaced
            check_public_key_unchanged(self.key, shares)
        except ProofError:
            raise MpcError("refreshed public shares do not interpolate to the public key") from None
        new_key = copy.copy(self.key)  # keeps every public field of the share (e.g. a chain code) as it was
        new_key.x, new_key.public_shares = x, shares
        return RefreshOutput(new_key, new_aux)


def _moduli(aux: AuxInfo) -> set[int]:
    return {int(a.n) for a in aux.public.values()}

