"""One-round signing with a presignature, always re-randomised: sigma_i' = rho^-1 (k_i m + r' (chi_i + k_i t)),
combined, normalised to low-s, verified.

A combiner (the coordinator) holds only `PresignaturePublic`; if the combined signature does not verify it checks
each partial with public values (below) and names the party whose partial fails.

Re-randomised presignatures, for the master key (t = 0) and BIP32 child keys (`crypto/bip32.py`)
-------------------------------------------------------------------------------------------------
A presignature gives additive shares over the signer set of k (sum k_i) and chi = k x (sum chi_i), with
R = k^-1 G, so the ECDSA nonce is k^-1 and s = k (m + r x). A child key at a non-hardened path has the secret
x' = x + t for the public tweak t (`bip32.derive(...).tweak`) and the public key Y' = Y + t G.

Groth and Shoup (eprint 2021/1330) show that presignatures combined with additive key derivation lose tightness:
with R known before the request, an attacker who picks the message and the tweak after seeing R has a cube-root
forgery attack. Their fix, used here, re-randomises the presignature at signing time with public randomness fixed
only once the whole request is: every signer computes itself

    rho = H("mpc-ray/ecdsa/rerandomize/v1", presignature id, R, signer set, Y, Y', t, digest)  mod q  (SHA-512,
          length-prefixed fields, so the reduction bias is about 2^-256 and no two inputs share an encoding)
    R'  = rho R   (so the nonce is rho k^-1, i.e. k' = k / rho),  r' = x(R') mod q
    sigma_i' = rho^-1 (k_i m + r' (chi_i + k_i t))

and sum sigma_i' = rho^-1 (k m + r' k x + r' k t) = (k / rho) (m + r' (x + t)) = k' (m + r' x'): an ECDSA
signature under Y' with nonce R'. Every step is linear in (k_i, chi_i), so it stays one round with no new secret.
Why it is sound: rho is a random-oracle output over the presignature and everything the request fixes (digest,
child key and tweak), so the nonce R' a signature uses is unknown until the request is fixed, and changing any part
of the request changes R' unpredictably; a related-key forgery must then hit a fresh random target per query,
which brings the bound back to the square-root (birthday) level of plain ECDSA. Nobody chooses rho: not the
coordinator (each holder derives it from its own stored R, the digest and the path), not an agent. Each
presignature is still single-use, consumed before its partial leaves the holder; the same presignature can
therefore never serve two paths or two messages.

The combiner verifies the result under Y' and, if it fails, checks each partial with public values only:
sigma_i' R' == (m + r' t) (k_i R) + r' (chi_i R), naming the party whose partial is wrong.

EVERY signature is re-randomised, the master key's too (t = 0; CVE-2025-66017 class). The plain presignature
(s = k (m + r x) with R as presigned) is only safe when R is unknown until the digest is fixed, and here it is
not: the coordinator pools and leases presignatures, so R is public first. A master-key signature (r, s) on
m = m* + r t is then, unchanged, a valid signature on m* under the child key Y + t G, since
k (m* + r t + r x) = k (m* + r (x + t)): an agent allowed raw digests on the master key would sign for every child,
around any derivation-path rule. With rho bound to the digest, r' is unknown until m is chosen, so no m can be
aimed at r' t. A request without a path and one with the path "m" are the same request (key Y, tweak 0) and get
the same rho, deliberately: both sign under Y, and a presignature serves only one of them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import coincurve
import gmpy2

from ...crypto.secp256k1 import Q, Point
from ...errors import InvalidInput, ProtocolAbort
from ...types import Signature
from ..base import Inbound, Outbox, RoundParty
from .presign import PresignaturePublic, PresignatureShare


def digest_to_int(digest: bytes) -> int:
    if not isinstance(digest, (bytes, bytearray)) or len(digest) != 32:
        raise InvalidInput("ECDSA signs a 32-byte digest")
    return int.from_bytes(digest, "big") % Q


def partial_sign(share: PresignatureShare, digest: bytes, child: "Rerandomized") -> int:
    """sigma_i', re-randomised: `child` is `rerandomize_for(share.public, master key, tweak, digest)`, tweak 0 for
    the master key. There is no plain partial (module docstring). Consumes the presignature share (a second call
    raises)."""
    m = digest_to_int(digest)
    if not isinstance(child, Rerandomized):  # checked before the share is consumed
        raise InvalidInput("partial_sign needs the re-randomised public values (rerandomize_for, tweak 0 for the master)")
    k, chi = share.take()
    return child_sigma(k, chi, m, child)


_RERANDOMIZE_TAG = b"mpc-ray/ecdsa/rerandomize/v1"


@dataclass(frozen=True)
class Rerandomized:
    """Public values of one child-key signature from one presignature (see the module docstring)."""

    rho: int
    R: Point  # R' = rho R: the nonce the signature uses
    tweak: int  # t: the child's secret is x + t
    public_key: Point  # Y' = Y + t G: the key the signature verifies under

    @property
    def r(self) -> int:
        return self.R.x() % Q


def rerandomize(presignature_id: bytes, R: Point, signers: Sequence[int], master_key: Point, tweak: int,
                digest: bytes) -> Rerandomized:
    """rho, R' and the child key for signing `digest` under master_key + tweak G with the presignature (id, R,
    signers). Every signer and the combiner compute it themselves from values they hold."""
    digest_to_int(digest)
    if not isinstance(tweak, int) or isinstance(tweak, bool) or not 0 <= tweak < Q:
        raise InvalidInput("the tweak is a scalar mod q")
    if R.is_identity or master_key.is_identity:
        raise InvalidInput("R and the key must not be the identity")
    child_key = _child_key(master_key.to_bytes(), tweak)
    h = hashlib.sha512()
    parts = (_RERANDOMIZE_TAG, bytes(presignature_id), R.to_bytes(),
             b"".join(int(j).to_bytes(8, "big") for j in signers), master_key.to_bytes(), child_key.to_bytes(),
             tweak.to_bytes(32, "big"), bytes(digest))
    for part in parts:
        h.update(len(part).to_bytes(8, "big") + part)
    rho = int.from_bytes(h.digest(), "big") % Q
    if rho == 0:  # probability 2^-256
        raise InvalidInput("re-randomiser is zero; use another presignature")
    return Rerandomized(rho, R * rho, tweak, child_key)


@lru_cache(maxsize=4096)
def _child_key(master_key: bytes, tweak: int) -> Point:
    """Y + t G, cached: every signature for one child (an agent's address) needs the same point."""
    child_key = Point.from_bytes(master_key) + Point.base_mul(tweak)
    if child_key.is_identity:
        raise InvalidInput("the derived key is the identity")
    return child_key


def rerandomize_for(public: PresignaturePublic, master_key: Point, tweak: int, digest: bytes) -> Rerandomized:
    """`rerandomize` for a presignature's public part."""
    return rerandomize(public.presignature_id, public.R, public.signers, master_key, tweak, digest)


def child_sigma(k: int, chi: int, m: int, child: Rerandomized) -> int:
    """sigma_i' = rho^-1 (k_i m + r' (chi_i + k_i t)): party i's partial for the child key."""
    return int(gmpy2.invert(child.rho, Q)) * (k * m + child.r * (chi + k * child.tweak)) % Q


@lru_cache(maxsize=256)
def _verifier(public_key: bytes) -> coincurve.PublicKey:
    return coincurve.PublicKey(public_key)  # parsed once per key: sign_many verifies thousands under one key


def verify_ecdsa(public_key: Point, digest: bytes, r: int, s: int) -> bool:
    sig = coincurve.ecdsa.cdata_to_der(coincurve.ecdsa.deserialize_compact(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
    return _verifier(public_key.to_bytes()).verify(sig, bytes(digest), hasher=None)


def combine(public: PresignaturePublic, public_key: Point, digest: bytes, partials: Mapping[int, int],
            child: Rerandomized | None = None) -> Signature:
    """Sum the re-randomised partial signatures, normalise, verify; on failure name the party whose partial is
    wrong. `child` is `rerandomize_for(public, public_key, tweak, digest)`; without it, the master key's (tweak 0)
    is computed here. The signature uses R' and verifies under `child.public_key`."""
    m = digest_to_int(digest)
    if child is None:
        child = rerandomize_for(public, public_key, 0, digest)
    signers = list(public.signers)
    for j in signers:
        if j not in partials:
            raise ProtocolAbort(j, "sign.missing_partial")
        v = partials[j]
        if not isinstance(v, int) or not 0 <= v < Q:
            raise ProtocolAbort(j, "sign.partial_range")
    R, verify_key = child.R, child.public_key
    r = R.x() % Q
    s = sum(partials[j] for j in signers) % Q
    ok = s != 0 and verify_ecdsa(verify_key, digest, r, s if s <= Q // 2 else Q - s)
    if not ok:
        # public check of each partial: sigma_j R' == (m + r' t) (k_j R) + r' (chi_j R)
        m_eff = (m + r * child.tweak) % Q
        for idx, j in enumerate(signers):
            if R * partials[j] != public.k_points[idx] * m_eff + public.chi_points[idx] * r:
                raise ProtocolAbort(j, "sign.partial_signature")
        raise ProtocolAbort(signers[0], "sign.verify", "combined signature invalid with valid partials")
    recovery_id = 1 if R.has_odd_y() else 0
    if R.x() >= Q:  # x(R) overflowed the order: recovery ids 2/3, probability ~2^-128
        raise ProtocolAbort(signers[0], "sign.r_overflow", "x(R) >= q; discard this presignature")
    if s > Q // 2:
        s, recovery_id = Q - s, recovery_id ^ 1
    return Signature.ecdsa(r, s, recovery_id)


@dataclass(frozen=True)
class Partial:
    sigma: int


class SignParty(RoundParty):
    """The signing round as a state machine: broadcast sigma_i, output the combined signature."""

    NAME = "sign"
    ROUNDS = ((Partial, None),)

    def __init__(self, sid: bytes, share: PresignatureShare, public_key: Point, digest: bytes,
                 tweak: int | None = None) -> None:
        """`public_key` is the master key; the signature is re-randomised under public_key + tweak G (`tweak`: a
        BIP32 child's, `bip32.derive(...).tweak`; None is the master key, tweak 0)."""
        super().__init__(sid, share.party, share.public.signers)
        digest_to_int(digest)
        self._share, self._public_key, self._digest = share, public_key, bytes(digest)
        self._child = rerandomize_for(share.public, public_key, 0 if tweak is None else tweak, digest)

    def round1(self) -> Outbox:
        self._sigma = partial_sign(self._share, self._digest, self._child)
        return Outbox(broadcast=Partial(self._sigma))

    def round2(self, inbox: dict[int, Inbound]) -> Signature:
        partials = {j: m.broadcast.sigma for j, m in inbox.items()}
        partials[self.party] = self._sigma
        return combine(self._share.public, self._public_key, self._digest, partials, self._child)
