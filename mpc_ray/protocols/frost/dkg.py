"""Pedersen DKG for FROST (Komlo-Goldberg 2020, Figure 1; the shape of ZcashFoundation frost `keys::dkg`).

Round 1 (broadcast): Feldman commitments C_i = (a_i0 G, .., a_i(t-1) G) to a random polynomial f_i of degree t-1
and a Schnorr proof of knowledge of a_i0: R = kG, c = HDKG(id || Phi || C_i0 || R), mu = k + a_i0 c, where
Phi = len(sid) || sid binds the proof to this run (the paper's context string; ZcashFoundation omits it).
Round 2: broadcast an echo digest of every round-1 broadcast (stops equivocation); send f_i(j) to each j directly.
Output: the key share s_j = sum_i f_i(j), the group key Y = sum_i C_i0, every party's verifying share.

BIP32 chain code (public, `PublicKeyPackage.chain_code`): commit-then-reveal, so it is uniform if one party is
honest and nobody can steer it after seeing the others. Round 1 also broadcasts V_i = H(tag, sid, i, u_i) for a
fresh 32-byte u_i (covered by the echo, so all parties hold the same V_i); round 2 reveals u_i; the chain code is
H(tag, sid, u_1, .., u_n) in identifier order. (FROST's round 1 is revealed at once, so unlike the ECDSA key
generation there is no committed joint seed to reuse; a hash of the transcript alone would let the last party to
speak grind its polynomial to bias the chain code.)

Checks, each naming the sender: "frost.dkg.identifier", "frost.dkg.commitment_count" (exactly t commitments),
"frost.dkg.commitment_point", "frost.dkg.pok", "frost.dkg.echo", "frost.dkg.share", "frost.dkg.chain_code" (a
commitment or opening of the wrong size, or an opening that does not match its commitment), "frost.decode".
An echo mismatch names the party whose echo differs from ours (without signed envelopes the equivocating
party cannot be told apart from a lying echo; the node layer's signed envelopes can settle it).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Mapping, Sequence, cast

from ...crypto.frost_suites import Ciphersuite, Element, SecretPolynomial, evaluate_commitments, get_suite
from ...errors import InvalidInput, MpcError
from ..base import Inbound, Outbox
from ..common import echo_digest, same_bytes
from ._party import FrostRoundParty
from .keys import KeyPackage, PublicKeyPackage, validate_identifiers
from .messages import DkgCommitMsg, DkgEchoMsg, DkgShareMsg


_CHAIN_TAG = b"mpc-ray/bip32/chain-code/frost/v1"


def _chain_hash(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for part in (_CHAIN_TAG, *parts):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.digest()


def chain_seed_commitment(sid: bytes, identifier: int, seed: bytes) -> bytes:
    """V_i = H(tag, sid, i, u_i): party i's commitment to its chain-code contribution."""
    return _chain_hash(b"commit", bytes(sid), identifier.to_bytes(8, "big"), bytes(seed))


def chain_code_from_seeds(sid: bytes, seeds: Sequence[bytes]) -> bytes:
    """The key's chain code from every party's contribution, in identifier order."""
    return _chain_hash(b"chain-code", bytes(sid), *(bytes(s) for s in seeds))


def _pok_challenge(suite: Ciphersuite, sid: bytes, identifier: int, c0: Element, r: Element) -> int:
    g = suite.group
    phi = len(sid).to_bytes(8, "big") + sid
    return suite.HDKG(g.serialize_scalar(identifier) + phi + g.serialize_element(c0) + g.serialize_element(r))


def prove_knowledge(suite: Ciphersuite, sid: bytes, identifier: int, a0: int, c0: Element) -> tuple[Element, int]:
    """Schnorr PoK of a0 with C0 = a0 G, RFC-style challenge HDKG."""
    g = suite.group
    k = g.random_scalar()
    r = g.base_mul(k)
    return r, (k + a0 * _pok_challenge(suite, sid, identifier, c0, r)) % g.order


def verify_knowledge(suite: Ciphersuite, sid: bytes, identifier: int, c0: Element, r: Element, mu: int) -> bool:
    """R == mu G - c C0."""
    g = suite.group
    return bool(r == g.base_mul(mu) - c0 * _pok_challenge(suite, sid, identifier, c0, r))  # Element ops: Any


@dataclass(frozen=True)
class DkgOutput:
    """This party's share and the committee's public keys. `repr` is redacted through KeyPackage."""

    key_package: KeyPackage
    public_package: PublicKeyPackage

    @property
    def group_key(self) -> Element:
        return self.public_package.group_key

    def public_key_bytes(self, tap_tweak: bytes | None = None) -> bytes:
        return self.public_package.public_key_bytes(tap_tweak)

    @property
    def chain_code(self) -> bytes:
        return self.public_package.chain_code


class DkgParty(FrostRoundParty):
    """Pedersen DKG of a `threshold`-of-n key for parties 1..n (threshold = number of signers needed)."""

    NAME = "frost.dkg"
    ROUNDS = ((DkgCommitMsg, None), (DkgEchoMsg, DkgShareMsg))

    def __init__(
        self, suite: Ciphersuite | str, sid: bytes, party: int, parties: Sequence[int], threshold: int
    ) -> None:
        validate_identifiers(list(parties))
        super().__init__(sid, party, parties)
        if not isinstance(threshold, int) or not 1 <= threshold <= len(self.parties):
            raise InvalidInput("need 1 <= threshold <= number of parties")
        self.suite = get_suite(suite)
        self.threshold = threshold
        self._poly: SecretPolynomial | None = None
        self._own_share: int | None = None
        self._round1: dict[int, DkgCommitMsg] = {}
        self._commitments: dict[int, list[Element]] = {}
        self._echo = b""
        self._chain_seed = secrets.token_bytes(32)

    def __repr__(self) -> str:
        return f"DkgParty(suite={self.suite.key!r}, party={self.party}, parties={self.parties}, <redacted>)"

    # round 1 ------------------------------------------------------------------------------------------
    def round1(self) -> Outbox:
        g = self.suite.group
        self._poly = SecretPolynomial.random(g, self.threshold - 1)
        commitments = self._poly.commitments(g)
        r, mu = prove_knowledge(self.suite, self.sid, self.party, self._poly.coefficients[0], commitments[0])
        msg = DkgCommitMsg(
            self.party, [g.serialize_element(c) for c in commitments], g.serialize_element(r), g.serialize_scalar(mu),
            chain_seed_commitment(self.sid, self.party, self._chain_seed),
        )
        self._round1[self.party] = msg
        self._commitments[self.party] = commitments
        return Outbox(broadcast=msg)

    # round 2 ------------------------------------------------------------------------------------------
    def round2(self, inbox: Mapping[int, Inbound]) -> Outbox:
        assert self._poly is not None
        for sender in sorted(inbox):
            msg = cast(DkgCommitMsg, inbox[sender].broadcast)
            if msg.identifier != sender:
                raise self.abort(sender, "identifier", f"message claims identifier {msg.identifier}")
            if len(msg.commitments) != self.threshold:
                # A longer vector would raise the threshold, a shorter one lower it (Trail of Bits 2024).
                raise self.abort(
                    sender, "commitment_count", f"{len(msg.commitments)} commitments, need {self.threshold}"
                )
            if len(msg.chain_commit) != 32:
                raise self.abort(sender, "chain_code", "chain-code commitment is not 32 bytes")
            points = [self._element(sender, c, "commitment_point") for c in msg.commitments]
            r = self._element(sender, msg.pok_r, "pok")
            mu = self._scalar(sender, msg.pok_z, "pok")
            if not verify_knowledge(self.suite, self.sid, sender, points[0], r, mu):
                raise self.abort(sender, "pok", "proof of knowledge of the constant term does not verify")
            self._round1[sender] = msg
            self._commitments[sender] = points
        self._echo = echo_digest("frost.dkg.round1", self.sid, self._round1)
        g = self.suite.group
        direct = {j: DkgShareMsg(g.serialize_scalar(self._poly(j))) for j in self.others}
        self._own_share = self._poly(self.party)
        self._poly.wipe()  # f_i is no longer needed; only f_i(i) stays
        self._poly = None
        return Outbox(broadcast=DkgEchoMsg(self._echo, self._chain_seed), direct=direct)

    # round 3 (output) ---------------------------------------------------------------------------------
    def round3(self, inbox: Mapping[int, Inbound]) -> DkgOutput:
        assert self._own_share is not None
        g = self.suite.group
        seeds = {self.party: self._chain_seed}
        for sender in sorted(inbox):
            echo_msg = cast(DkgEchoMsg, inbox[sender].broadcast)
            if not same_bytes(echo_msg.echo, self._echo):
                raise self.abort(sender, "echo", "saw different round-1 broadcasts")
            seed = echo_msg.chain_seed
            if len(seed) != 32 or not same_bytes(
                chain_seed_commitment(self.sid, sender, seed), self._round1[sender].chain_commit
            ):
                raise self.abort(sender, "chain_code", "chain-code contribution does not open its commitment")
            seeds[sender] = seed
        chain_code = chain_code_from_seeds(self.sid, [seeds[i] for i in self.parties])
        share = self._own_share
        for sender in sorted(inbox):
            f_l_i = self._scalar(sender, cast(DkgShareMsg, inbox[sender].direct).share, "share")
            if g.base_mul(f_l_i) != evaluate_commitments(g, self._commitments[sender], self.party):
                raise self.abort(sender, "share", "share does not match the sender's commitments")
            share = (share + f_l_i) % g.order
        self._own_share = None
        # Summed commitments give every verifying share with one polynomial evaluation per party.
        summed = [g.sum(self._commitments[i][k] for i in self.parties) for k in range(self.threshold)]
        group_key = summed[0]
        if group_key.is_identity:
            raise MpcError("DKG produced the identity as group key")  # excluded by the PoKs, barring a bug
        verifying = {j: evaluate_commitments(g, summed, j) for j in self.parties}
        if g.base_mul(share) != verifying[self.party]:
            raise MpcError("own key share does not match the summed commitments")  # every share was checked
        key = KeyPackage(self.suite.key, self.party, share, verifying[self.party], group_key, self.threshold,
                         chain_code)
        return DkgOutput(key, PublicKeyPackage(self.suite.key, group_key, verifying, self.threshold, chain_code))
