"""Byte records of what a holder keeps in its encrypted store: aux info, key shares, presignature shares (CGGMP21
and DKLs23, told apart by their tag), DKLs23 setups.

Plain dataclasses encoded with the protocol wire codec; they are only ever written through `EncryptedStore`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto.paillier import PaillierSecretKey
from ..crypto.params import level as as_level
from ..crypto.ring_pedersen import RingPedersenParams, RingPedersenSecret
from ..crypto.secp256k1 import Point
from ..protocols.ecdsa.aux_info import AuxInfo, AuxPublic
from ..protocols.ecdsa.keygen import KeyShare
from ..protocols.dkls23.sign import PresignaturePublic as DKLs23PresignaturePublic
from ..protocols.dkls23.sign import PresignatureShare as DKLs23PresignatureShare
from ..protocols.ecdsa.presign import PresignatureShare
from ..protocols.wire import WireError, decode, encode


@dataclass(frozen=True)
class _AuxEntry:
    party: int
    public: AuxPublic


@dataclass(frozen=True)
class AuxRecord:
    party: int
    level: str
    p: int
    q: int
    lam: int
    test_only: bool
    public: list[_AuxEntry]


def aux_to_bytes(aux: AuxInfo) -> bytes:
    sk, rp = aux.paillier, aux.ring_pedersen
    entries = [_AuxEntry(j, aux.public[j]) for j in sorted(aux.public)]
    return encode(AuxRecord(aux.party, aux.level.name, int(sk.p), int(sk.q), int(rp.lam), sk.test_only, entries))


def aux_from_bytes(data: bytes) -> AuxInfo:
    r = decode(data, AuxRecord)
    sk = PaillierSecretKey(r.p, r.q, test_only=r.test_only)
    public = {e.party: e.public for e in r.public}
    own = public[r.party]
    rp = RingPedersenSecret(RingPedersenParams(sk.public.n, own.s, own.t), r.lam, sk)
    return AuxInfo(r.party, as_level(r.level), sk, rp, public)


@dataclass(frozen=True)
class _PublicShare:
    party: int
    point: Point


@dataclass(frozen=True)
class _KeyRecordV1:
    """A key share stored before HD support (no chain code): still readable, but cannot derive children."""

    party: int
    threshold: int
    parties: list[int]
    x: int
    public_key: Point
    public_shares: list[_PublicShare]


@dataclass(frozen=True)
class KeyRecord:
    party: int
    threshold: int
    parties: list[int]
    x: int
    public_key: Point
    public_shares: list[_PublicShare]
    chain_code: bytes  # public BIP32 chain code made at key generation


def key_to_bytes(key: KeyShare) -> bytes:
    shares = [_PublicShare(j, key.public_shares[j]) for j in sorted(key.public_shares)]
    return encode(KeyRecord(key.party, key.threshold, list(key.parties), key.x, key.public_key, shares,
                            key.chain_code))


def key_from_bytes(data: bytes) -> KeyShare:
    try:
        r = decode(data, KeyRecord)
        chain_code = r.chain_code
    except WireError:
        r = decode(data, _KeyRecordV1)  # type: ignore[assignment]
        chain_code = b""
    return KeyShare(r.party, r.threshold, r.parties, r.x, r.public_key, {s.party: s.point for s in r.public_shares},
                    chain_code=chain_code)


@dataclass(frozen=True)
class _PresignatureRecordV1:
    """A presignature stored before HD support: signs for the master key only (no R to re-randomise)."""

    party: int
    presignature_id: bytes
    r: int
    k: int
    chi: int


@dataclass(frozen=True)
class PresignatureRecord:
    """What a holder needs to sign with one presignature: its id, r = x(R) mod q, the secret (k_i, chi_i), and the
    point R and signer set that a child-key signature hashes into its re-randomiser (None in older records)."""

    party: int
    presignature_id: bytes
    r: int
    k: int
    chi: int
    R: Point | None = None
    signers: list[int] | None = None

    def __repr__(self) -> str:
        return f"PresignatureRecord(party={self.party}, id={self.presignature_id.hex()[:16]}, <redacted>)"


@dataclass(frozen=True)
class _PresignatureRecordV2:
    party: int
    presignature_id: bytes
    r: int
    k: int
    chi: int
    R: Point
    signers: list[int]


def presignature_to_bytes(share: PresignatureShare) -> bytes:
    k, chi = share.secret_values()
    p = share.public
    return encode(_PresignatureRecordV2(share.party, p.presignature_id, p.r, k, chi, p.R, list(p.signers)))


def presignature_from_bytes(data: bytes) -> PresignatureRecord:
    try:
        r = decode(data, _PresignatureRecordV2)
        return PresignatureRecord(r.party, r.presignature_id, r.r, r.k, r.chi, r.R, r.signers)
    except WireError:
        v1 = decode(data, _PresignatureRecordV1)
        return PresignatureRecord(v1.party, v1.presignature_id, v1.r, v1.k, v1.chi)


# DKLs23 (protocols/dkls23) ------------------------------------------------------------------------------------------
CGGMP21, DKLS23 = "cggmp21", "dkls23"  # the protocols an ECDSA key can be made for (protocols/ecdsa_protocols.py)


@dataclass(frozen=True)
class DKLs23PresignatureRecord:
    """One DKLs23 presignature share at rest: `protocol` is its tag ("dkls23"; a CGGMP21 record has 5 or 7 fields and
    never decodes as this one), the public id, R and signer set, and the secret (phi_i, u_i, v_i)."""

    protocol: str
    party: int
    presignature_id: bytes
    R: Point
    signers: list[int]
    phi: int
    u: int
    v: int

    def __repr__(self) -> str:
        return f"DKLs23PresignatureRecord(party={self.party}, id={self.presignature_id.hex()[:16]}, <redacted>)"


def dkls23_presignature_to_bytes(share: DKLs23PresignatureShare) -> bytes:
    """The record of a fresh share; the in-memory share is used up (`take`): from now on only the store holds it."""
    phi, u, v = share.take()
    p = share.public
    return encode(DKLs23PresignatureRecord(DKLS23, share.party, p.presignature_id, p.R, list(p.signers), phi, u, v))


def dkls23_presignature_from_bytes(data: bytes) -> DKLs23PresignatureShare:
    r = decode(data, DKLs23PresignatureRecord)
    if r.protocol != DKLS23:
        raise WireError("not a DKLs23 presignature record")
    public = DKLs23PresignaturePublic(r.presignature_id, r.R, tuple(r.signers))
    return DKLs23PresignatureShare(r.party, public, r.phi, r.u, r.v)


def presignature_protocol(data: bytes) -> str:
    """The protocol a stored presignature record was made by: its tag, or (records without one) CGGMP21."""
    try:
        return decode(data, DKLs23PresignatureRecord).protocol
    except WireError:
        return CGGMP21


@dataclass(frozen=True)
class DKLs23SetupRecord:
    """A key's DKLs23 setup at rest (protocols/dkls23/setup.py `SetupOutput.to_secret_bytes`), the epoch of the key
    it was made for, its parties and the peers whose pair was retired after a failed OT check."""

    epoch: int
    parties: list[int]
    setup: bytes
    retired: list[int]

    def __repr__(self) -> str:
        return f"DKLs23SetupRecord(epoch={self.epoch}, parties={self.parties}, retired={self.retired}, <redacted>)"
