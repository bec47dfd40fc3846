"""Byte records of FROST state: key packages, public key packages, commitments and single-use nonce records.

Points and scalars are stored in their suite's RFC 9591 encoding (`Group.serialize_element` / `serialize_scalar`):
key packages and public key packages inside a wire-codec dataclass, whose decoding validates every point and
scalar again (a record read back from disk, or a public package received from a peer, yields the same objects the
protocol produced); nonce records in a fixed layout, since one is read per signature.

Commitments travel as the RFC's own commitment-list entry: SerializeScalar(identifier) || SerializeElement(D) ||
SerializeElement(E) (96 bytes for Ed25519, 98 for secp256k1). A commitment list is the concatenation of entries
sorted by identifier, i.e. exactly `encode_group_commitment_list`, so H5 hashes the bytes as received.

Single-use nonces: `SigningNonces` refuses copying and pickling on purpose. The only way to persist one is
`new_nonce_record` (which makes the pair and its record together) and the only way back is `restore_nonces`,
which must only be called on bytes returned by `SecretVault.take` / `take_many`: the vault's ledger, not the
object, is what makes the pair single-use across processes and restarts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..crypto.ed25519 import EdPoint
from ..crypto.frost_suites import Ciphersuite, Element, get_suite
from ..errors import InvalidInput
from ..protocols.frost import (
    KeyPackage,
    PublicKeyPackage,
    SigningCommitments,
    SigningNonces,
    nonce_generate,
)
from ..protocols.wire import WireError, decode, encode

__all__ = [
    "NonceRecord",
    "commitment_entry_size",
    "commitment_from_bytes",
    "commitment_from_trusted_bytes",
    "commitment_list_from_bytes",
    "commitment_list_to_bytes",
    "commitment_to_bytes",
    "key_package_from_bytes",
    "key_package_to_bytes",
    "new_nonce_record",
    "nonce_id",
    "nonce_record_from_bytes",
    "nonce_record_to_bytes",
    "public_package_from_bytes",
    "public_package_to_bytes",
    "restore_nonces",
    "split_commitment_list",
]

_NONCE_ID_DOMAIN = b"mpc-ray/frost/nonce-id/v1"


def _element(suite: Ciphersuite, data: bytes, what: str) -> Element:
    try:
        return suite.group.deserialize_element(data)
    except ValueError as exc:
        raise InvalidInput(f"{what}: {exc}") from None


def _scalar(suite: Ciphersuite, data: bytes, what: str) -> int:
    try:
        return suite.group.deserialize_scalar(data)
    except ValueError:
        raise InvalidInput(f"{what}: not a canonical scalar") from None  # never echo secret bytes


def _decode(data: bytes, cls: type):
    try:
        return decode(data, cls)
    except WireError as exc:
        raise InvalidInput(f"malformed {cls.__name__}: {exc}") from None


# key packages ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _KeyPackageRecordV1:
    """A key package stored before HD support (no chain code)."""

    suite: str
    identifier: int
    signing_share: bytes
    verifying_share: bytes
    group_key: bytes
    threshold: int


@dataclass(frozen=True)
class KeyPackageRecord:
    suite: str
    identifier: int
    signing_share: bytes
    verifying_share: bytes
    group_key: bytes
    threshold: int
    chain_code: bytes  # public BIP32 chain code from the DKG (b"" if none)


def _decode_versions(data: bytes, current: type, legacy: type):
    """Decode the current record layout, or the one before HD support (chain code b"")."""
    try:
        return decode(data, current)
    except WireError:
        old = _decode(data, legacy)
        return current(**{f: getattr(old, f) for f in old.__dataclass_fields__}, chain_code=b"")


def key_package_to_bytes(kp: KeyPackage) -> bytes:
    """Secret: store only through `EncryptedStore`."""
    g = kp.suite.group
    return encode(KeyPackageRecord(kp.suite_key, kp.identifier, g.serialize_scalar(kp.signing_share),
                                   g.serialize_element(kp.verifying_share), g.serialize_element(kp.group_key),
                                   kp.threshold, kp.chain_code))


def key_package_from_bytes(data: bytes) -> KeyPackage:
    """Decode and check: the share matches its verifying share (one base multiplication)."""
    r = _decode_versions(data, KeyPackageRecord, _KeyPackageRecordV1)
    suite = get_suite(r.suite)
    s = _scalar(suite, r.signing_share, "signing share")
    y_i = _element(suite, r.verifying_share, "verifying share")
    if suite.group.base_mul(s) != y_i:
        raise InvalidInput("key package: signing share does not match its verifying share")
    return KeyPackage(suite.key, r.identifier, s, y_i, _element(suite, r.group_key, "group key"), r.threshold,
                      _chain_code(r.chain_code))


def _chain_code(value: bytes) -> bytes:
    if len(value) not in (0, 32):
        raise InvalidInput("chain code must be 32 bytes (or empty for a key without one)")
    return value


@dataclass(frozen=True)
class _PublicPackageRecordV1:
    """A public key package encoded before HD support (no chain code)."""

    suite: str
    group_key: bytes
    identifiers: list[int]
    verifying_shares: list[bytes]
    threshold: int


@dataclass(frozen=True)
class PublicPackageRecord:
    suite: str
    group_key: bytes
    identifiers: list[int]
    verifying_shares: list[bytes]
    threshold: int
    chain_code: bytes


def public_package_to_bytes(pub: PublicKeyPackage) -> bytes:
    """Canonical (identifiers sorted): equal packages give equal bytes, so holders' outputs compare bytewise
    (the chain code included, so the coordinator's agreement check covers it)."""
    g = pub.suite.group
    ids = sorted(pub.verifying_shares)
    return encode(PublicPackageRecord(pub.suite_key, g.serialize_element(pub.group_key), ids,
                                      [g.serialize_element(pub.verifying_shares[i]) for i in ids], pub.threshold,
                                      pub.chain_code))


def public_package_from_bytes(data: bytes) -> PublicKeyPackage:
    r = _decode_versions(data, PublicPackageRecord, _PublicPackageRecordV1)
    suite = get_suite(r.suite)
    if len(r.identifiers) != len(r.verifying_shares) or r.identifiers != sorted(set(r.identifiers)):
        raise InvalidInput("public package: identifiers must be sorted, distinct, one per verifying share")
    if not r.identifiers or r.identifiers[0] < 1 or not 1 <= r.threshold <= len(r.identifiers):
        raise InvalidInput("public package: bad identifiers or threshold")
    shares = {i: _element(suite, v, "verifying share") for i, v in zip(r.identifiers, r.verifying_shares)}
    return PublicKeyPackage(suite.key, _element(suite, r.group_key, "group key"), shares, r.threshold,
                            _chain_code(r.chain_code))


# commitments ----------------------------------------------------------------------------------------------
def commitment_entry_size(suite: Ciphersuite) -> int:
    g = suite.group
    return g.scalar_size + 2 * g.element_size


def commitment_to_bytes(suite: Ciphersuite, c: SigningCommitments) -> bytes:
    """The RFC commitment-list entry of one signer."""
    g = suite.group
    return g.serialize_scalar(c.identifier) + g.serialize_element(c.hiding) + g.serialize_element(c.binding)


def commitment_from_bytes(suite: Ciphersuite, data: bytes) -> SigningCommitments:
    """Decode one entry, validating both points (canonical, prime-order group, not the identity)."""
    g = suite.group
    if not isinstance(data, (bytes, bytearray)) or len(data) != commitment_entry_size(suite):
        raise InvalidInput("commitment entry has the wrong length")
    data = bytes(data)
    i = _scalar(suite, data[: g.scalar_size], "identifier")
    d = _element(suite, data[g.scalar_size : g.scalar_size + g.element_size], "hiding commitment")
    e = _element(suite, data[g.scalar_size + g.element_size :], "binding commitment")
    return SigningCommitments(i, d, e)


def split_commitment_list(suite: Ciphersuite, data: bytes) -> list[tuple[int, bytes]]:
    """[(identifier, entry bytes)] of a list, checking only lengths, canonical identifiers and their order
    (sorted, distinct, >= 1). Points are not decoded here."""
    g = suite.group
    size = commitment_entry_size(suite)
    if not isinstance(data, (bytes, bytearray)) or not data or len(data) % size:
        raise InvalidInput("commitment list must be a non-empty concatenation of commitment entries")
    data = bytes(data)
    out = []
    prev = 0
    for off in range(0, len(data), size):
        entry = data[off : off + size]
        i = _scalar(suite, entry[: g.scalar_size], "identifier")
        if i <= prev:
            raise InvalidInput("commitment list must be sorted by distinct identifiers >= 1")
        prev = i
        out.append((i, entry))
    return out


def commitment_list_to_bytes(suite: Ciphersuite, commitments: list[SigningCommitments]) -> bytes:
    return b"".join(commitment_to_bytes(suite, c) for c in sorted(commitments, key=lambda c: c.identifier))


def commitment_list_from_bytes(suite: Ciphersuite, data: bytes) -> list[SigningCommitments]:
    return [commitment_from_bytes(suite, entry) for _, entry in split_commitment_list(suite, data)]


def nonce_id(suite: Ciphersuite, key_id: str, entry: bytes) -> bytes:
    """The one-time id of a nonce pair: SHA-256 over a domain tag, the key id, the suite and the commitment entry.
    Public (derived from public values), unique per pair because the nonces are fresh."""
    kid = key_id.encode()
    h = hashlib.sha256(_NONCE_ID_DOMAIN)
    h.update(len(kid).to_bytes(2, "big") + kid + len(suite.context).to_bytes(2, "big") + suite.context)
    h.update(bytes(entry))
    return h.digest()


# single-use nonce records ---------------------------------------------------------------------------------
_NONCE_MAGIC = b"MFN\x01"


@dataclass(frozen=True)
class NonceRecord:
    """What the vault keeps for one nonce pair: the secret scalars and the public entry they commit to.

    Fixed layout (read once per signature, so no general-purpose codec): magic "MFN\\x01" || u8 len(suite) ||
    suite || u8 len(key_id) || key_id || SerializeScalar(d) || SerializeScalar(e) || commitment entry."""

    suite: str
    key_id: str
    hiding: bytes  # d, SerializeScalar
    binding: bytes  # e, SerializeScalar
    commitment: bytes  # the commitment-list entry (identifier, D, E)

    def __repr__(self) -> str:
        return f"NonceRecord(suite={self.suite!r}, key_id={self.key_id!r}, <redacted>)"


def new_nonce_record(suite: Ciphersuite, key_id: str, key_package: KeyPackage) -> tuple[bytes, bytes, bytes]:
    """RFC `commit` for the vault: a fresh pair (d, e) (RFC nonce_generate, hedged with the signing share) and its
    commitments. Returns (nonce id, public commitment entry, secret record bytes); the caller puts the record in
    the vault under the id before it hands out the entry."""
    g = suite.group
    while True:
        d = nonce_generate(suite, key_package.signing_share)
        e = nonce_generate(suite, key_package.signing_share)
        if d and e:
            break
    entry = g.serialize_scalar(key_package.identifier) + g.serialize_element(g.base_mul(d)) + \
        g.serialize_element(g.base_mul(e))
    record = nonce_record_to_bytes(NonceRecord(suite.key, key_id, g.serialize_scalar(d), g.serialize_scalar(e), entry))
    return nonce_id(suite, key_id, entry), entry, record


def nonce_record_to_bytes(rec: NonceRecord) -> bytes:
    suite, kid = rec.suite.encode(), rec.key_id.encode()
    return (_NONCE_MAGIC + bytes([len(suite)]) + suite + bytes([len(kid)]) + kid + rec.hiding + rec.binding
            + rec.commitment)


def nonce_record_from_bytes(data: bytes) -> NonceRecord:
    """Decode the fixed layout; lengths follow from the suite. InvalidInput if malformed."""
    try:
        if not data.startswith(_NONCE_MAGIC):
            raise ValueError
        off = len(_NONCE_MAGIC)
        n = data[off]
        suite_key = data[off + 1 : off + 1 + n].decode()
        off += 1 + n
        n = data[off]
        key_id = data[off + 1 : off + 1 + n].decode()
        off += 1 + n
        g = get_suite(suite_key).group
        ss = g.scalar_size
        d, e, entry = data[off : off + ss], data[off + ss : off + 2 * ss], data[off + 2 * ss :]
        if len(e) != ss or len(entry) != ss + 2 * g.element_size:
            raise ValueError
    except (ValueError, IndexError, UnicodeDecodeError, InvalidInput):
        raise InvalidInput("malformed nonce record") from None
    return NonceRecord(suite_key, key_id, d, e, entry)


def restore_nonces(record: NonceRecord, *, trusted_points: bool = True) -> SigningNonces:
    """Re-create the `SigningNonces` of a record just taken out of the vault (`SecretVault.take*`), for one call of
    the RFC `sign`. This is the one documented way back from bytes: there is no pickling.

    The commitment points were made by this holder (`new_nonce_record`) and came back from its authenticated
    store, so with `trusted_points` they are not re-validated (saves a subgroup check per point); the caller still
    compares the entry with the commitment list it signs over."""
    suite = get_suite(record.suite)
    g = suite.group
    d = _scalar(suite, record.hiding, "nonce")
    e = _scalar(suite, record.binding, "nonce")
    if trusted_points:
        c = commitment_from_trusted_bytes(suite, record.commitment)
    else:
        c = commitment_from_bytes(suite, record.commitment)
    if not d or not e:
        raise InvalidInput("nonce record holds a zero nonce")
    if not trusted_points and (g.base_mul(d) != c.hiding or g.base_mul(e) != c.binding):
        raise InvalidInput("nonce record does not match its commitments")
    return SigningNonces(suite.key, d, e, c)


def commitment_from_trusted_bytes(suite: Ciphersuite, data: bytes) -> SigningCommitments:
    """Decode an entry this process already validated (or made itself) without the subgroup checks."""
    g = suite.group
    if len(data) != commitment_entry_size(suite):
        raise InvalidInput("commitment entry has the wrong length")
    i = _scalar(suite, data[: g.scalar_size], "identifier")
    d_enc, e_enc = data[g.scalar_size : g.scalar_size + g.element_size], data[g.scalar_size + g.element_size :]
    if suite.group.name == "ed25519":
        return SigningCommitments(i, EdPoint(d_enc), EdPoint(e_enc))
    return SigningCommitments(i, _element(suite, d_enc, "hiding commitment"), _element(suite, e_enc, "binding commitment"))
