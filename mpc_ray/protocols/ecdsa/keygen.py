"""Threshold key generation: Feldman VSS with hash commitments, an echo check and Schnorr proofs.

Rounds:
1. broadcast V_i = H(sid, i, F_i, A_i, rho_i, u_i): F_i commits to a random polynomial of degree t-1, A_i is the
   first message of a Schnorr proof for its constant term
2. broadcast the decommitment and an echo of round 1; send f_i(j) to each j (the node layer encrypts it)
3. check echo, decommitment, |F_j| = t, the share against F_j; rho = XOR rho_j; broadcast the Schnorr proof,
   bound to rho
4. verify every Schnorr proof (its commitment must be the A_j of round 1); output the `KeyShare`.

The BIP32 chain code of the key (`KeyShare.chain_code`, public) is SHA-256 over a domain tag, the session id and
rho = XOR rho_j. rho is jointly random already: each rho_j is bound by the round-1 hash commitment before any is
revealed, so one honest party makes it uniform and nobody can steer it after seeing the others (a party can only
abort, and is then named). The tag separates the chain code from rho's other use (the seed of the Schnorr
proofs' transcripts), and no extra message or round is needed. The chain code need not be secret: with the
public key it is the key's extended public key (BIP32 xpub), from which anyone derives the children's public keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from ...crypto.secp256k1 import Q, Point, sum_points
from ...crypto.vss import Polynomial, evaluate_commitments
from ...crypto.zk import schnorr
from ..base import Inbound, Outbox, RoundParty
from ..common import echo_digest, hash_commit, is_seed, proof_transcript, random_seed, same_bytes, xor_seeds

TAG = "cggmp21/keygen"
CHAIN_CODE_TAG = b"mpc-ray/bip32/chain-code/ecdsa/v1"


def chain_code_from_rho(sid: bytes, rho: bytes) -> bytes:
    """The key's BIP32 chain code: SHA-256(len || tag || len || sid || rho) (see the module docstring)."""
    h = hashlib.sha256()
    for part in (CHAIN_CODE_TAG, bytes(sid), bytes(rho)):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.digest()


@dataclass(frozen=True)
class Commitment:
    v: bytes


@dataclass(frozen=True)
class Reveal:
    coefficients: list[Point]
    schnorr_commitment: Point
    rho: bytes
    u: bytes


@dataclass(frozen=True)
class Decommitment:
    reveal: Reveal
    echo: bytes


@dataclass(frozen=True)
class Share:
    value: int


@dataclass(frozen=True)
class KnowledgeProof:
    proof: schnorr.Proof


class KeyShare:
    """A party's Shamir share x_i of the key, and the public data every signer needs. `repr` is redacted."""

    __slots__ = ("party", "threshold", "parties", "x", "public_key", "public_shares", "chain_code")

    def __init__(self, party: int, threshold: int, parties: Iterable[int], x: int, public_key: Point,
                 public_shares: Mapping[int, Point], *, chain_code: bytes = b"") -> None:
        self.party, self.threshold, self.parties = party, threshold, tuple(sorted(parties))
        self.x = x
        self.public_key = public_key
        self.public_shares = dict(public_shares)
        self.chain_code = bytes(chain_code)  # public BIP32 chain code; b"" for a key made before HD support

    def __repr__(self) -> str:
        return (
            f"KeyShare(party={self.party}, {self.threshold}-of-{len(self.parties)}, "
            f"public_key={self.public_key.to_bytes().hex()}, x=<redacted>)"
        )


class KeygenParty(RoundParty):
    NAME = "keygen"
    ROUNDS = ((Commitment, None), (Decommitment, Share), (KnowledgeProof, None))

    def __init__(self, sid: bytes, party: int, parties: Sequence[int], threshold: int) -> None:
        super().__init__(sid, party, parties)
        if not 1 <= threshold <= len(self.parties):
            raise ValueError("threshold must be between 1 and the number of parties")
        if any(p < 1 or p >= Q for p in self.parties):
            raise ValueError("party indices must be positive")
        self.threshold = threshold

    def round1(self) -> Outbox:
        self._poly = Polynomial.random(self.threshold - 1)
        self._nonce = schnorr.Nonce()
        self._reveal = Reveal(self._poly.commitments(), self._nonce.commitment().a, random_seed(), random_seed())
        return Outbox(broadcast=Commitment(hash_commit(TAG, self.sid, self.party, self._reveal)))

    def round2(self, inbox: dict[int, Inbound]) -> Outbox:
        self._commitments = {j: m.broadcast for j, m in inbox.items()}
        self._commitments[self.party] = Commitment(hash_commit(TAG, self.sid, self.party, self._reveal))
        self._echo = echo_digest(TAG, self.sid, self._commitments)
        shares = {j: Share(self._poly(j)) for j in self.others}
        return Outbox(broadcast=Decommitment(self._reveal, self._echo), direct=shares)

    def round3(self, inbox: dict[int, Inbound]) -> Outbox:
        reveals = {self.party: self._reveal}
        self._x = self._poly(self.party)
        for j in self.others:
            msg: Decommitment = inbox[j].broadcast
            if not same_bytes(msg.echo, self._echo):
                raise self.abort(j, "echo", "round-1 broadcasts differ")
            if not same_bytes(hash_commit(TAG, self.sid, j, msg.reveal), self._commitments[j].v):
                raise self.abort(j, "decommitment")
            if not (is_seed(msg.reveal.rho) and is_seed(msg.reveal.u)):
                raise self.abort(j, "seed_length")
            coeffs = msg.reveal.coefficients
            if len(coeffs) != self.threshold:
                raise self.abort(j, "commitment_count", f"{len(coeffs)} commitments for threshold {self.threshold}")
            if any(c.is_identity for c in coeffs) or msg.reveal.schnorr_commitment.is_identity:
                raise self.abort(j, "identity_commitment")
            share = inbox[j].direct.value
            if not 0 <= share < Q or Point.base_mul(share) != evaluate_commitments(coeffs, self.party):
                raise self.abort(j, "share", "f_j(i) does not match the commitments")
            self._x = (self._x + share) % Q
            reveals[j] = msg.reveal
        self._reveals = reveals
        self._rho = xor_seeds([reveals[j].rho for j in sorted(reveals)])
        proof = schnorr.prove(
            proof_transcript(f"{TAG}/schnorr", self.sid, self.party, seed=self._rho),
            self._poly.coefficients[0],
            self._reveal.coefficients[0],
            self._nonce,
        )
        self._poly.wipe()  # the polynomial is no longer needed; drop its coefficients
        return Outbox(broadcast=KnowledgeProof(proof))

    def round4(self, inbox: dict[int, Inbound]) -> KeyShare:
        for j in self.others:
            proof: schnorr.Proof = inbox[j].broadcast.proof
            if proof.a != self._reveals[j].schnorr_commitment:
                raise self.abort(j, "schnorr.commitment_mismatch")
            with self.blame(j):
                schnorr.verify(
                    proof_transcript(f"{TAG}/schnorr", self.sid, j, seed=self._rho),
                    proof,
                    self._reveals[j].coefficients[0],
                )
        ordered = [self._reveals[j].coefficients for j in self.parties]
        public_key = sum_points(c[0] for c in ordered)
        summed = [sum_points(c[k] for c in ordered) for k in range(self.threshold)]
        public_shares = {k: evaluate_commitments(summed, k) for k in self.parties}
        if public_key.is_identity or public_shares[self.party] != Point.base_mul(self._x):
            raise RuntimeError("own share inconsistent with the joint commitments")
        return KeyShare(self.party, self.threshold, self.parties, self._x, public_key, public_shares,
                        chain_code=chain_code_from_rho(self.sid, self._rho))
