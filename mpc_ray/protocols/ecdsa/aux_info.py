"""Auxiliary info (CGGMP21 Fig. 6 without the key refresh): Paillier-Blum moduli and ring-Pedersen parameters.

Run once per committee; every key of the committee reuses the result. Rounds:
1. broadcast V_i = H(sid, i, N_i, s_i, t_i, pi_prm, rho_i, u_i)
2. broadcast the decommitment and an echo of round 1
3. check echo, decommitment, modulus size, pi_prm; rho = XOR rho_j seeds the next proofs;
   broadcast pi_mod (N_i is Paillier-Blum), send each j pi_fac (no small factors) on j's ring-Pedersen params
4. verify pi_mod and pi_fac of every peer; output `AuxInfo`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from ...crypto.paillier import PaillierPublicKey, PaillierSecretKey, generate_keypair
from ...crypto.params import SecurityLevel
from ...crypto.ring_pedersen import RingPedersenParams, RingPedersenSecret, generate_ring_pedersen
from ...crypto.zk import pi_fac, pi_mod, pi_prm
from ...errors import TestPrimeRefused
from ..base import Inbound, Outbox, RoundParty
from ..common import echo_digest, hash_commit, is_seed, proof_transcript, random_seed, same_bytes, xor_seeds

TAG = "cggmp21/aux"
MAX_MODULUS_FACTOR = 2  # a peer's N may be at most twice the level's minimum length


@dataclass(frozen=True)
class AuxPublic:
    """A party's public auxiliary info."""

    n: int
    s: int
    t: int


@dataclass(frozen=True)
class Commitment:
    v: bytes


@dataclass(frozen=True)
class Reveal:
    public: AuxPublic
    prm: pi_prm.Proof
    rho: bytes
    u: bytes


@dataclass(frozen=True)
class Decommitment:
    reveal: Reveal
    echo: bytes


@dataclass(frozen=True)
class ModProof:
    proof: pi_mod.Proof


@dataclass(frozen=True)
class FacProof:
    proof: pi_fac.Proof


class AuxInfo:
    """One party's result: its Paillier and ring-Pedersen secrets and every party's public values."""

    __slots__ = ("party", "level", "paillier", "ring_pedersen", "public", "_pks", "_rps")

    def __init__(
        self,
        party: int,
        level: SecurityLevel,
        paillier: PaillierSecretKey,
        ring_pedersen: RingPedersenSecret,
        public: Mapping[int, AuxPublic],
    ) -> None:
        self.party, self.level = party, level
        self.paillier, self.ring_pedersen = paillier, ring_pedersen
        self.public = dict(public)
        self._pks = {j: PaillierPublicKey.from_n(a.n) for j, a in self.public.items()}
        self._pks[party] = paillier.public
        self._rps: dict[int, RingPedersenParams | RingPedersenSecret] = {
            j: RingPedersenParams(self._pks[j].n, a.s, a.t) for j, a in self.public.items()
        }
        self._rps[party] = ring_pedersen  # own parameters: verify with CRT

    @property
    def parties(self) -> tuple[int, ...]:
        return tuple(sorted(self.public))

    def paillier_pk(self, j: int) -> PaillierPublicKey:
        return self._pks[j]

    def rp(self, j: int) -> RingPedersenParams | RingPedersenSecret:
        return self._rps[j]

    def __repr__(self) -> str:
        return f"AuxInfo(party={self.party}, parties={self.parties}, level={self.level.name}, <secrets redacted>)"


class AuxInfoParty(RoundParty):
    NAME = "aux"
    ROUNDS = ((Commitment, None), (Decommitment, None), (ModProof, FacProof))

    def __init__(
        self,
        sid: bytes,
        party: int,
        parties: Sequence[int],
        level: SecurityLevel,
        paillier: PaillierSecretKey | None = None,
        *,
        allow_test_keys: bool = False,
    ) -> None:
        super().__init__(sid, party, parties)
        if paillier is not None and paillier.test_only and not allow_test_keys:
            raise TestPrimeRefused("aux-info was handed a TEST ONLY Paillier key")
        self.level = level
        self._given_paillier = paillier  # None: round 1 generates a fresh key

    def round1(self) -> Outbox:
        sk = self._given_paillier
        if sk is None:
            sk, _ = generate_keypair(self.level.prime_bits)
        self._paillier = sk
        if sk.public.bits() < self.level.modulus_bits:
            raise ValueError("own Paillier modulus is shorter than the security level demands")
        self._rp = generate_ring_pedersen(sk)
        p = self._rp.params
        prm = pi_prm.prove(proof_transcript(f"{TAG}/pi_prm", self.sid, self.party), secret=self._rp, level=self.level)
        self._reveal = Reveal(AuxPublic(int(p.n), int(p.s), int(p.t)), prm, random_seed(), random_seed())
        return Outbox(broadcast=Commitment(hash_commit(TAG, self.sid, self.party, self._reveal)))

    def round2(self, inbox: dict[int, Inbound]) -> Outbox:
        self._commitments = {j: m.broadcast for j, m in inbox.items()}
        self._commitments[self.party] = Commitment(hash_commit(TAG, self.sid, self.party, self._reveal))
        self._echo = echo_digest(TAG, self.sid, self._commitments)
        return Outbox(broadcast=Decommitment(self._reveal, self._echo))

    def round3(self, inbox: dict[int, Inbound]) -> Outbox:
        lv = self.level
        reveals = {self.party: self._reveal}
        seen_moduli = {self._reveal.public.n: self.party}
        for j in self.others:
            msg: Decommitment = inbox[j].broadcast
            if not same_bytes(msg.echo, self._echo):
                raise self.abort(j, "echo", "round-1 broadcasts differ")
            if not same_bytes(hash_commit(TAG, self.sid, j, msg.reveal), self._commitments[j].v):
                raise self.abort(j, "decommitment")
            if not (is_seed(msg.reveal.rho) and is_seed(msg.reveal.u)):
                raise self.abort(j, "seed_length")
            pub = msg.reveal.public
            if pub.n.bit_length() < lv.modulus_bits:
                raise self.abort(j, "short_modulus", f"{pub.n.bit_length()} bits")
            if pub.n.bit_length() > MAX_MODULUS_FACTOR * lv.modulus_bits:
                # every later proof costs exponentiations mod N^2: a huge N would stall the committee
                raise self.abort(j, "long_modulus", f"{pub.n.bit_length()} bits")
            if not RingPedersenParams(pub.n, pub.s, pub.t).is_well_formed():
                raise self.abort(j, "ring_pedersen_params")
            if pub.n in seen_moduli:
                raise self.abort(j, "duplicate_modulus", f"same N as party {seen_moduli[pub.n]}")
            seen_moduli[pub.n] = j
            with self.blame(j):
                pi_prm.verify(
                    proof_transcript(f"{TAG}/pi_prm", self.sid, j),
                    msg.reveal.prm,
                    params=RingPedersenParams(pub.n, pub.s, pub.t),
                    level=lv,
                )
            reveals[j] = msg.reveal
        self._public = {j: r.public for j, r in reveals.items()}
        self._rho = xor_seeds([reveals[j].rho for j in sorted(reveals)])
        mod = pi_mod.prove(proof_transcript(f"{TAG}/pi_mod", self.sid, self.party, seed=self._rho), sk=self._paillier, level=lv)
        fac = {}
        for j in self.others:
            pub = self._public[j]
            fac[j] = FacProof(
                pi_fac.prove(
                    proof_transcript(f"{TAG}/pi_fac", self.sid, self.party, j, seed=self._rho),
                    sk=self._paillier,
                    verifier_rp=RingPedersenParams(pub.n, pub.s, pub.t),
                    level=lv,
                )
            )
        return Outbox(broadcast=ModProof(mod), direct=fac)

    def round4(self, inbox: dict[int, Inbound]) -> AuxInfo:
        for j in self.others:
            with self.blame(j):
                pi_mod.verify(
                    proof_transcript(f"{TAG}/pi_mod", self.sid, j, seed=self._rho),
                    inbox[j].broadcast.proof,
                    n=self._public[j].n,
                    level=self.level,
                )
                pi_fac.verify(
                    proof_transcript(f"{TAG}/pi_fac", self.sid, j, self.party, seed=self._rho),
                    inbox[j].direct.proof,
                    n0=self._public[j].n,
                    verifier_rp=self._rp,
                    level=self.level,
                )
        return AuxInfo(self.party, self.level, self._paillier, self._rp, self._public)
