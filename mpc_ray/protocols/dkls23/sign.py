"""DKLs23 threshold signing (Doerner, Kondi, Lee, shelat, "Threshold ECDSA in Three Rounds", ePrint 2023/765,
Protocol 3.6), sans-I/O: two message-independent rounds make a presignature, the third round is online.

Statement: signers S (|S| >= t) of a key made by the Feldman DKG (`ecdsa.keygen.KeyShare`: Shamir share x_i, public
key pk) and the committee's pairwise setup (`setup.SetupOutput`: OT-extension states per ordered pair, zero-sharing
seeds) end with an ECDSA signature under pk, or an abort that names the check (and the culprit where the protocol
can tell). Party i, session sid (the presignature id, never reused with a setup: KOS refuses a second extension id):

    keys:     sk_i = lambda_i x_i + zeta_i  (Lagrange over S; zeta_i from F_Zero sums to zero over S, so each
              session's additive shares are fresh and sum_i sk_i = sk)
    round 1:  r_i, phi_i <- Z_q; R_i = r_i G; broadcast com_i = H(sid, i, R_i, u_i)      (nonce commitment)
              per peer j: start the multiplication with i as Bob; his random input is chi_ij     (RVOLE request)
    round 2:  broadcast the opening (R_i, u_i) and pk_i = sk_i G
              per peer j, as Alice with input (r_i, sk_i) against j's chi_ji: c^u_ij + d^u_ji = r_i chi_ji,
              c^v_ij + d^v_ji = sk_i chi_ji; send the response, Gamma^u_ij = c^u_ij G, Gamma^v_ij = c^v_ij G and
              psi_ij = phi_i - chi_ij
    finish:   per peer j:  H(sid, j, R_j, u_j) == com_j                              ("dkls23.sign.commitment")
                           the multiplication check                                  ("dkls23.rvole.check")
                           chi_ij R_j - Gamma^u_ji == d^u_ij G                       ("dkls23.sign.gamma_u")
                           chi_ij pk_j - Gamma^v_ji == d^v_ij G                      ("dkls23.sign.gamma_v")
              sum_j pk_j == pk                                                       ("dkls23.sign.public_key")
              R = sum_j R_j;  u_i = r_i (phi_i + sum_j psi_ji) + sum_j (d^u_ij + c^u_ij),
                              v_i = sk_i (phi_i + sum_j psi_ji) + sum_j (d^v_ij + c^v_ij)
              so that sum u_i = r phi and sum v_i = sk phi (phi = sum phi_i, r = sum r_i, R = r G).
    online:   w_i = m phi_i + r_x v_i; broadcast (u_i, w_i); s = sum w_i / sum u_i = (m + r_x sk) / r.
    combine:  verify (r_x, s) under pk                                                ("dkls23.sign.verify")

The Gamma checks are what make the multiplication outputs consistent with the committed nonces and key shares: Alice
cannot use one r_j (or sk_j) in the multiplication and reveal another R_j (pk_j), since Bob's chi_ij is hidden from
her. Nonce-commitment binding: nothing that depends on r_i leaves party i (the round-2 response is masked by the
OT pads; Gamma^u only after com_i) before every com_j is fixed, so no signer picks R_j as a function of the others'.

Online round, re-randomised as CGGMP21's (`ecdsa/sign.py` explains why: presignatures are pooled, so R is public
before the digest; without it a master-key signature is also one for every child key): with
rho = H(presignature id, R, S, pk, pk', t, digest) from `ecdsa.sign.rerandomize`, R' = rho R, r' = x(R'),
    u_i' = rho u_i,  w_i' = m phi_i + r' (v_i + t phi_i)
and s = sum w_i' / sum u_i' = (m + r' (sk + t)) / (rho r): an ECDSA signature under pk' = pk + t G with nonce R'.

What cannot be attributed: DKLs23 is secure with abort, not with identifiable abort. A wrong key-share point pk_j
only shows in the sum, and a wrong online share only in the signature; both abort with culprit 0 (nobody named),
except with two signers, where an honest reporter knows the other one is at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NoReturn, Sequence

import gmpy2

from ...crypto.ot._common import SecretHolder, hash_parts, u32
from ...crypto.secp256k1 import Q, Point, random_scalar, sum_points
from ...crypto.vss import lagrange_coefficient
from ...errors import InvalidInput, ProtocolAbort
from ...types import Signature
from ..base import Inbound, Outbox, RoundParty
from ..common import hash_commit, random_seed, same_bytes
from ..ecdsa.keygen import KeyShare
from ..ecdsa.sign import Rerandomized, digest_to_int, rerandomize, verify_ecdsa
from .rvole import RVOLEReceiver, RVOLERequest, RVOLEResponse, rvole_respond
from .setup import SetupOutput

TAG = "dkls23/sign"
CHECK = "dkls23.sign"


# --- messages ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NonceCommitment:
    """Round 1, broadcast: com_i = H(sid, i, R_i, u_i)."""

    commitment: bytes


@dataclass(frozen=True)
class MulRequest:
    """Round 1, to each peer j: i as Bob in the multiplication with j."""

    request: RVOLERequest


@dataclass(frozen=True)
class NonceReveal:
    """What com_i commits to: R_i and a random u_i."""

    R: Point
    u: bytes


@dataclass(frozen=True)
class Opening:
    """Round 2, broadcast: the opening of com_i and pk_i = sk_i G."""

    reveal: NonceReveal
    pk: Point


@dataclass(frozen=True)
class MulResponse:
    """Round 2, to each peer j: i as Alice with input (r_i, sk_i), Gamma^u_ij, Gamma^v_ij, psi_ij."""

    response: RVOLEResponse
    gamma_u: Point
    gamma_v: Point
    psi: int


@dataclass(frozen=True)
class OnlineShare:
    """Online round, broadcast: (u_i', w_i')."""

    u: int
    w: int


# --- the presignature ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PresignaturePublic:
    """What every signer and the combiner share: the presignature id (the session id), R and the signer set."""

    presignature_id: bytes
    R: Point
    signers: tuple[int, ...]


class PresignatureShare(SecretHolder):
    """Party i's single-use (phi_i, u_i, v_i) of one presignature; `take` hands them out once."""

    __slots__ = ("party", "public", "_secret")

    def __init__(self, party: int, public: PresignaturePublic, phi: int, u: int, v: int) -> None:
        self.party, self.public = party, public
        self._secret: tuple[int, int, int] | None = (phi, u, v)

    @property
    def used(self) -> bool:
        return self._secret is None

    def take(self) -> tuple[int, int, int]:
        if self._secret is None:
            raise InvalidInput("presignature share already used")
        secret, self._secret = self._secret, None
        return secret


def _mul_sid(sid: bytes, signers: Sequence[int]) -> bytes:
    """The multiplications' session id: the presignature id and the signer set (the pair is in the OT context)."""
    return hash_parts(b"dkls23/sign/mul", bytes(sid), b"".join(u32(p) for p in signers))


def _reduced(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < Q


class DKLs23PresignParty(RoundParty):
    """Rounds 1-2 of DKLs23 signing for one signer set; the output is a `PresignatureShare`."""

    NAME = CHECK
    ROUNDS = ((NonceCommitment, MulRequest), (Opening, MulResponse))

    def __init__(self, sid: bytes, key: KeyShare, setup: SetupOutput, signers: Sequence[int]) -> None:
        super().__init__(sid, key.party, signers)
        if not isinstance(setup, SetupOutput) or setup.party != key.party:
            raise InvalidInput("the setup must be this party's")
        if len(self.parties) < key.threshold or not set(self.parties) <= set(key.parties):
            raise InvalidInput(f"need at least {key.threshold} signers, all holders of the key")
        if any(p not in setup.pairs for p in self.others):
            raise InvalidInput("no pairwise setup with one of the signers")
        self._key, self._setup = key, setup
        zeta = setup.zero_seeds.share(self.sid, self.parties)
        self._sk = (lagrange_coefficient(key.party, self.parties) * key.x + zeta) % Q
        self._mul = _mul_sid(self.sid, self.parties)

    def __repr__(self) -> str:  # holds the nonce, the mask and the key share
        return f"DKLs23PresignParty(party={self.party}, <secret redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("DKLs23PresignParty holds secrets and cannot be pickled")

    def round1(self) -> Outbox:
        self._r, self._phi = random_scalar(), random_scalar()
        self._reveal = NonceReveal(Point.base_mul(self._r), random_seed())
        self._bob = {j: RVOLEReceiver(self._setup.pairs[j].ote_receiver, self._mul) for j in self.others}
        return Outbox(
            broadcast=NonceCommitment(hash_commit(TAG, self.sid, self.party, self._reveal)),
            direct={j: MulRequest(self._bob[j].request()) for j in self.others},
        )

    def round2(self, inbox: dict[int, Inbound]) -> Outbox:
        self._commitments = {j: m.broadcast.commitment for j, m in inbox.items()}
        self._c_u = self._c_v = 0
        out = {}
        for j in self.others:
            resp, (c_u, c_v) = rvole_respond(
                self._setup.pairs[j].ote_sender, self._mul, [self._r, self._sk], inbox[j].direct.request
            )
            self._c_u, self._c_v = self._c_u + c_u, self._c_v + c_v
            psi = (self._phi - self._bob[j].b) % Q
            out[j] = MulResponse(resp, Point.base_mul(c_u), Point.base_mul(c_v), psi)
        self._pk = Point.base_mul(self._sk)
        return Outbox(broadcast=Opening(self._reveal, self._pk), direct=out)

    def round3(self, inbox: dict[int, Inbound]) -> PresignatureShare:
        d_u = d_v = psi_sum = 0
        nonces, keys = [self._reveal.R], [self._pk]
        for j in self.others:
            opening: Opening = inbox[j].broadcast
            msg: MulResponse = inbox[j].direct
            if not same_bytes(hash_commit(TAG, self.sid, j, opening.reveal), self._commitments[j]):
                raise self.abort(j, "commitment", "R_j does not open the round-1 commitment")
            R_j, pk_j = opening.reveal.R, opening.pk
            if R_j.is_identity or pk_j.is_identity or msg.gamma_u.is_identity or msg.gamma_v.is_identity:
                raise self.abort(j, "shape", "a point is the identity")
            if not _reduced(msg.psi):
                raise self.abort(j, "shape", "psi is not reduced mod q")
            du_j, dv_j = self._bob[j].finish(msg.response)  # "dkls23.rvole.check" names j
            chi = self._bob[j].b
            # chi R_j - Gamma^u_ij == d_u G, checked as chi R_j == Gamma^u_ij + d_u G (no point negation)
            if R_j * chi != msg.gamma_u + Point.base_mul(du_j):
                raise self.abort(j, "gamma_u", "the multiplication does not match R_j")
            if pk_j * chi != msg.gamma_v + Point.base_mul(dv_j):
                raise self.abort(j, "gamma_v", "the multiplication does not match pk_j")
            d_u, d_v, psi_sum = d_u + du_j, d_v + dv_j, psi_sum + msg.psi
            nonces.append(R_j)
            keys.append(pk_j)
        if sum_points(keys) != self._key.public_key:
            # only the sum is checkable (zeta_j hides each pk_j); with one peer, that peer is at fault
            culprit = self.others[0] if len(self.others) == 1 else 0
            raise self.abort(culprit, "public_key", "the signers' key-share points do not sum to the public key")
        R = sum_points(nonces)
        if R.is_identity:  # probability 2^-256 with the commitments: nobody can aim at it
            raise self.abort(0, "nonce_identity", "R is the identity; discard this session")
        mask = (self._phi + psi_sum) % Q
        u = (self._r * mask + d_u + self._c_u) % Q
        v = (self._sk * mask + d_v + self._c_v) % Q
        phi = self._phi
        self._r = self._phi = self._sk = self._c_u = self._c_v = 0
        return PresignatureShare(self.party, PresignaturePublic(self.sid, R, self.parties), phi, u, v)


# --- the online round ----------------------------------------------------------------------------------------------

_ID_PREFIX = b"dkls23:"  # keeps DKLs23 presignature ids apart from CGGMP21's in the shared re-randomiser


def rerandomize_for(public: PresignaturePublic, master_key: Point, tweak: int, digest: bytes) -> Rerandomized:
    """rho, R' = rho R and the child key pk + t G for signing `digest` (tweak 0: the master key)."""
    return rerandomize(_ID_PREFIX + public.presignature_id, public.R, public.signers, master_key, tweak, digest)


def partial_sign(share: PresignatureShare, digest: bytes, child: Rerandomized) -> OnlineShare:
    """(u_i', w_i') = (rho u_i, m phi_i + r' (v_i + t phi_i)). Consumes the presignature share."""
    m = digest_to_int(digest)
    if not isinstance(child, Rerandomized):  # checked before the share is consumed
        raise InvalidInput("partial_sign needs the re-randomised public values (rerandomize_for)")
    phi, u, v = share.take()
    r = child.r
    return OnlineShare(child.rho * u % Q, (m * phi + r * (v + child.tweak * phi)) % Q)


def combine(public: PresignaturePublic, public_key: Point, digest: bytes, shares: Mapping[int, OnlineShare],
            child: Rerandomized | None = None, *, reporter: int | None = None) -> Signature:
    """s = sum w_j' / sum u_j', low-s, verified under the child key. A missing or unreduced share names its sender;
    an invalid signature names nobody (culprit 0) unless `reporter`, an honest signer, has exactly one co-signer."""
    digest_to_int(digest)
    if child is None:
        child = rerandomize_for(public, public_key, 0, digest)
    signers = list(public.signers)
    for j in signers:
        sh = shares.get(j)
        if not isinstance(sh, OnlineShare):
            raise ProtocolAbort(j, f"{CHECK}.missing_share", reporter=reporter)
        if not _reduced(sh.u) or not _reduced(sh.w):
            raise ProtocolAbort(j, f"{CHECK}.share_range", reporter=reporter)
    u = sum(shares[j].u for j in signers) % Q
    w = sum(shares[j].w for j in signers) % Q
    R = child.R
    r = R.x() % Q
    s = w * int(gmpy2.invert(u, Q)) % Q if u else 0
    if s == 0 or r == 0 or not verify_ecdsa(child.public_key, bytes(digest), r, min(s, Q - s)):
        others = [j for j in signers if j != reporter]
        culprit = others[0] if reporter in signers and len(others) == 1 else 0
        raise ProtocolAbort(culprit, f"{CHECK}.verify", "the combined signature does not verify", reporter=reporter)
    if R.x() >= Q:  # recovery ids 2/3, probability ~2^-128
        raise ProtocolAbort(0, f"{CHECK}.r_overflow", "x(R) >= q; discard this presignature", reporter=reporter)
    recovery_id = 1 if R.has_odd_y() else 0
    if s > Q // 2:
        s, recovery_id = Q - s, recovery_id ^ 1
    return Signature.ecdsa(r, s, recovery_id)


class DKLs23SignParty(RoundParty):
    """The online round as a state machine: broadcast (u_i', w_i'), output the verified signature."""

    NAME = f"{CHECK}.online"
    ROUNDS = ((OnlineShare, None),)

    def __init__(self, sid: bytes, share: PresignatureShare, public_key: Point, digest: bytes,
                 tweak: int | None = None) -> None:
        super().__init__(sid, share.party, share.public.signers)
        digest_to_int(digest)
        self._share, self._public_key, self._digest = share, public_key, bytes(digest)
        self._child = rerandomize_for(share.public, public_key, 0 if tweak is None else tweak, digest)

    def __repr__(self) -> str:
        return f"DKLs23SignParty(party={self.party}, <secret redacted>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("DKLs23SignParty holds a presignature share and cannot be pickled")

    def round1(self) -> Outbox:
        self._mine = partial_sign(self._share, self._digest, self._child)
        return Outbox(broadcast=self._mine)

    def round2(self, inbox: dict[int, Inbound]) -> Signature:
        shares = {j: m.broadcast for j, m in inbox.items()}
        shares[self.party] = self._mine
        return combine(self._share.public, self._public_key, self._digest, shares, self._child, reporter=self.party)


__all__ = [
    "DKLs23PresignParty",
    "DKLs23SignParty",
    "MulRequest",
    "MulResponse",
    "NonceCommitment",
    "NonceReveal",
    "OnlineShare",
    "Opening",
    "PresignaturePublic",
    "PresignatureShare",
    "combine",
    "partial_sign",
    "rerandomize_for",
]
