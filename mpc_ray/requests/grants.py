"""Session grants: the coordinator's signed word that starts presigning, aux-info and identification sessions on a
holder or presign worker, and that makes a holder commit FROST nonce pairs.

These sessions use no principal's request (they make one-time secrets, not signatures), but each costs a node CPU,
memory and disk, so only the committee's coordinator may start them: its Ed25519 identity key is announced with the
committee directory (trust on first use, like the directory; replaced only by an admin-quorum ``set_coordinator``
request), and it signs one grant per ``begin`` call or refill round, not one per session.

A grant lists the items it authorises and an expiry a short time ahead. An item is (protocol, session id, parties,
plain params): the params whose values are plain (str, int, bool, bytes, None) are covered, as `encode_params` writes
them; the others (an admin's approval) carry their own signatures and are checked by the holder anyway. For
``frost_commit`` the item is (``frost-commit``, a fresh id, (the party,), {key_id, count}).

`grant_digest` = SHA-256(length-prefixed domain || expiry || each item's encoding, length-prefixed); the coordinator
signs it. `check_grant` makes the checks that need nothing but the coordinator's verify key and the time, cheap
ones first, each ``Unauthorized("auth.not_coordinator")``: the shape (a `SessionGrant`, at most `MAX_GRANT_ITEMS`
well-formed items, a 64-byte signature), not expired and not more than `MAX_GRANT_TTL_S` ahead, every call covered
by an item, then the signature. Replay (an id granted before) is refused by the holder, which keeps the ids it
admitted until their grant expires (node/session_gate.py).

Pure: no Ray, no disk, no clock (the caller passes ``now``).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.signing

from ..errors import InvalidInput, Unauthorized
from .signed import length_prefixed

__all__ = [
    "COMMIT_PROTOCOL",
    "GRANTED_PROTOCOLS",
    "GRANT_TTL_S",
    "MAX_GRANT_ITEMS",
    "MAX_GRANT_TTL_S",
    "GrantItem",
    "GrantSigner",
    "SessionGrant",
    "check_grant",
    "check_verify_key",
    "commit_item",
    "encode_params",
    "grant_digest",
]

_DOMAIN = b"mpc-ray/session-grant/v1"  # separates grant signatures from anything else the coordinator key signs
# begin needs the coordinator's grant for these
GRANTED_PROTOCOLS = frozenset({"presign", "aux", "identify", "dkls23-setup", "dkls23-presign"})
COMMIT_PROTOCOL = "frost-commit"
GRANT_TTL_S = 60  # a grant is used at once (begin follows the signature); the slack covers clock skew
MAX_GRANT_TTL_S = 300  # what a holder accepts: bounds how long it must remember the ids it admitted
MAX_GRANT_ITEMS = 8192
_MAX_SHORT = 128  # bytes of a protocol name, session id or param name
_RULE = "auth.not_coordinator"


def check_verify_key(key: Any) -> bytes:
    """A 32-byte Ed25519 verify key that decodes (InvalidInput otherwise)."""
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise InvalidInput("a coordinator verify key is 32 bytes")
    try:
        nacl.signing.VerifyKey(bytes(key))
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        raise InvalidInput("not an Ed25519 verify key") from None
    return bytes(key)


def _plain(value: Any) -> bytes | None:
    """The tagged encoding of a plain value, None for any other (left to its own checks)."""
    if value is None:
        return b"n"
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, int):
        return b"i" + value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
    if isinstance(value, str):
        return b"s" + value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return b"b" + value
    return None


def encode_params(params: Any) -> bytes:
    """The plain params of a session, canonical: (name, tagged value) length-prefixed, sorted by name."""
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise InvalidInput("params must be a dict with string keys")
    out = []
    for name in sorted(params):
        value = _plain(params[name])
        if value is not None:
            out.append(length_prefixed(name.encode("utf-8", "surrogatepass")) + length_prefixed(value))
    return b"".join(out)


@dataclass(frozen=True)
class GrantItem:
    """One session (or one ``frost_commit`` call) a grant authorises. `params` is `encode_params` of its params."""

    protocol: str
    sid: bytes
    parties: tuple[int, ...]
    params: bytes

    @classmethod
    def of(cls, protocol: str, sid: bytes, parties: Sequence[int], params: dict[str, Any]) -> GrantItem:
        return cls(protocol, sid, tuple(parties), encode_params(params))

    def encode(self) -> bytes:
        """Canonical bytes; Unauthorized for an item of the wrong shape (a grant arrives unpickled, unchecked)."""
        p, sid, parties, params = self.protocol, self.sid, self.parties, self.params
        if (not isinstance(p, str) or not 0 < len(p) <= _MAX_SHORT or not isinstance(sid, bytes)
                or not 0 < len(sid) <= _MAX_SHORT or not isinstance(params, bytes)
                or not isinstance(parties, tuple) or not parties or len(parties) > 1024
                or not all(type(i) is int and 0 < i < 2**32 for i in parties)):
            raise Unauthorized(_RULE, "a malformed session grant")
        return (length_prefixed(p.encode()) + length_prefixed(sid)
                + length_prefixed(b"".join(struct.pack(">I", i) for i in parties)) + length_prefixed(params))


def commit_item(party: int, key_id: str, count: int, sid: bytes | None = None) -> GrantItem:
    """The item of one `frost_commit(key_id, count)` call on `party`'s holder (a fresh id unless given)."""
    sid = COMMIT_PROTOCOL.encode() + b":" + secrets.token_bytes(16) if sid is None else sid
    return GrantItem.of(COMMIT_PROTOCOL, sid, (party,), {"key_id": key_id, "count": count})


@dataclass(frozen=True)
class SessionGrant:
    """What the coordinator signed: `items`, valid until `expiry` (unix seconds). Public; safe to log."""

    items: tuple[GrantItem, ...]
    expiry: int
    signature: bytes

    def __repr__(self) -> str:
        return f"SessionGrant({len(self.items) if isinstance(self.items, tuple) else '?'} items, expiry={self.expiry})"


def grant_digest(encoded_items: Sequence[bytes], expiry: int) -> bytes:
    return hashlib.sha256(length_prefixed(_DOMAIN) + struct.pack(">Q", expiry)
                          + b"".join(length_prefixed(e) for e in encoded_items)).digest()


def check_grant(grant: Any, verify_key: bytes | None, wanted: Iterable[GrantItem], now: float,
                what: str = "this session") -> tuple[GrantItem, ...]:
    """The grant's items, once `grant` is a `SessionGrant` signed by `verify_key`, valid at `now` and covering every
    item of `wanted` (encoding equal). Unauthorized("auth.not_coordinator") otherwise, cheap checks first."""
    if not isinstance(grant, SessionGrant):
        raise Unauthorized(_RULE, f"{what} needs a grant signed by the committee's coordinator")
    if verify_key is None:
        raise Unauthorized(_RULE, "no coordinator key is set on this node (the coordinator's setup announces it)")
    items, expiry, signature = grant.items, grant.expiry, grant.signature
    if (not isinstance(items, tuple) or not 0 < len(items) <= MAX_GRANT_ITEMS or type(expiry) is not int
            or not isinstance(signature, bytes) or len(signature) != 64):
        raise Unauthorized(_RULE, "a malformed session grant")
    if not isinstance(now, (int, float)) or not math.isfinite(now):
        raise InvalidInput("now must be a number of unix seconds")
    if now >= expiry:
        raise Unauthorized(_RULE, "the session grant has expired")
    if expiry - now > MAX_GRANT_TTL_S:
        raise Unauthorized(_RULE, f"a session grant expires at most {MAX_GRANT_TTL_S} s ahead")
    if not all(isinstance(i, GrantItem) for i in items):
        raise Unauthorized(_RULE, "a malformed session grant")
    encoded = [i.encode() for i in items]
    have = set(encoded)
    if not all(w.encode() in have for w in wanted):
        raise Unauthorized(_RULE, f"the session grant does not cover {what} (other sessions, protocol, parties "
                                  "or params)")
    try:
        nacl.signing.VerifyKey(verify_key).verify(grant_digest(encoded, expiry), signature)
    except nacl.exceptions.BadSignatureError:
        raise Unauthorized(_RULE, "the session grant is not signed by this committee's coordinator") from None
    return items


class GrantSigner:
    """The coordinator's identity key, signing grants. Never pickled, never shown."""

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, (bytes, bytearray)) or len(seed) != 32:
            raise InvalidInput("a coordinator seed is 32 bytes")
        self._key = nacl.signing.SigningKey(bytes(seed))
        self.verify_key = bytes(self._key.verify_key)

    @classmethod
    def generate(cls) -> GrantSigner:
        return cls(secrets.token_bytes(32))

    def sign(self, items: Sequence[GrantItem], now: float, ttl_s: int = GRANT_TTL_S) -> SessionGrant:
        items = tuple(items)
        if not 0 < len(items) <= MAX_GRANT_ITEMS:
            raise InvalidInput(f"a grant covers 1 to {MAX_GRANT_ITEMS} items")
        expiry = int(now) + ttl_s
        signature = self._key.sign(grant_digest([i.encode() for i in items], expiry)).signature
        return SessionGrant(items, expiry, signature)

    def for_begin(self, requests: Sequence[Any], now: float) -> SessionGrant:
        """One grant for a begin batch (objects with protocol, sid, parties, params: node/holder.py BeginRequest)."""
        return self.sign([GrantItem.of(r.protocol, r.sid, r.parties, r.params) for r in requests], now)

    def __repr__(self) -> str:
        return f"GrantSigner(verify_key={self.verify_key.hex()[:16]}.., seed=<redacted>)"

    def __reduce__(self):
        raise TypeError("the coordinator's signing key is not pickled")
