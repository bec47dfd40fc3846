"""Sealed envelopes: what share holders hand to the coordinator to relay.

Every envelope is signed (Ed25519) by its sender's node identity over a canonical, length-prefixed encoding of all
its other fields, so the relay (coordinator, Ray's object store) can neither forge nor alter one, nor replay it in
another session, round, protocol or direction. A direct message's payload is additionally encrypted from the sender's
X25519 key to the recipient's (nacl Box), so only the recipient can read it; the signature covers the ciphertext.

Inside the Box the plaintext is prefixed with a digest of the envelope header. The signature already binds the
header, so this is defence in depth: a ciphertext lifted into any other header does not decrypt.

A failure on open raises `ProtocolAbort(culprit=sealed.sender, check=...)`. Note that a bad signature or an
unknown sender can equally be the relay's doing (anyone can attach a wrong signature to someone else's name); the
`detail` says so, and callers should treat `envelope.signature` / `envelope.malformed` as "sender or relay".
Duplicate detection inside a round is the protocol state machine's job (`RoundParty.receive`).

Forward secrecy (`SessionKeys`). Under the long-term X25519 identity keys alone, whoever records a session's
envelopes and later breaks into one node once opens every direct message that node ever sent or received: for a
refresh that is f_j(i) from every dealer j, so x_i(old) = x_i(new) - sum_j f_j(i), and one more old share anywhere
gives the key - proactive refresh would buy nothing (the same holds for resharing sub-shares and for the shares of
a key generation, from which every later epoch descends). So the sessions whose direct messages carry shares seal
them under per-session ephemeral keys instead:
- each party makes a fresh X25519 `SessionKey` when the session begins, and its round-1 broadcast carries the
  public half in `SealedEnvelope.ephemeral`. That field is under the envelope's Ed25519 signature by the node
  identity, which also binds the session id, round, sender and protocol: the relay cannot substitute its own key
  (nor move one to another session or party) without breaking the signature;
- every direct message is then boxed from the sender's session key to the recipient's (ephemeral-to-ephemeral), so
  no long-term key opens it - not the recipient's, not the sender's;
- a holder erases its session key when the session ends, succeeds or aborts (before any result is committed), and
  a commit drops any abandoned session of the key too. A later break-in finds only the identity (which signs, and
  opens nothing of these sessions), and the new epoch's share.
No extra round is needed: round 1 of every such protocol (holder.FORWARD_SECURE: keygen, frost-dkg, refresh,
reshare, reshare-aux) is broadcast-only, and `seal` refuses a direct message whose recipient's session key is not
known yet. The mode is the receiving holder's decision (by the session's protocol), never the envelope's: a direct
message of such a session sealed under identity keys does not open (`envelope.decrypt`), so a relay cannot
downgrade one.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.encoding
import nacl.exceptions
import nacl.hash

from ..errors import InvalidInput, ProtocolAbort
from ..protocols.base import Envelope
from .identity import KEY_BYTES, SIGNATURE_BYTES, NodeIdentity, NodeIdentityPublic, SessionKey

__all__ = ["BROADCAST", "MAX_BODY_BYTES", "SealedEnvelope", "SessionKeys", "open_envelope", "seal"]

BROADCAST = 0  # `SealedEnvelope.recipient` of a broadcast (parties are 1-based)
MAX_BODY_BYTES = (64 << 20) + 1024  # the wire codec's 64 MiB limit plus Box overhead and header digest
_MAX_SID_BYTES = 1024
_MAX_U32 = 2**32 - 1
_PROTOCOL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
# separates envelope signatures from anything else a node signs; v2 signs `ephemeral` too
_DOMAIN = b"mpc-ray/sealed-envelope/v2"
_HEADER_DIGEST_BYTES = 32
_FIELDS = ("sid", "round", "sender", "recipient", "protocol", "body", "signature", "ephemeral")


@dataclass(frozen=True, repr=False)
class SealedEnvelope:
    """A signed (and, for direct messages, encrypted) envelope. Only bytes/ints/str: safe for Ray and logs."""

    sid: bytes
    round: int
    sender: int
    recipient: int  # BROADCAST (0) or the 1-based recipient party
    protocol: str  # protocol tag, e.g. "ecdsa.presign"; signed, so a message cannot cross protocols
    body: bytes  # broadcast: the payload in clear; direct: nacl Box ciphertext (nonce || ct || mac)
    signature: bytes  # Ed25519 by `sender` over signed_bytes()
    ephemeral: bytes = b""  # the sender's session public key: on round-1 broadcasts of forward-secure sessions only

    @property
    def is_broadcast(self) -> bool:
        return self.recipient == BROADCAST

    def signed_bytes(self) -> bytes:
        """The exact bytes the sender signs: every field except the signature, canonically encoded."""
        return _signed_bytes(self.sid, self.round, self.sender, self.recipient, self.protocol, self.body,
                             self.ephemeral)

    def __repr__(self) -> str:
        # body may be large; a direct body is ciphertext anyway, but there is no reason to print it
        to = "broadcast" if self.recipient == BROADCAST else f"to={self.recipient}"
        return (
            f"SealedEnvelope(protocol={self.protocol!r}, sid={bytes(self.sid)[:8].hex()}.., round={self.round}, "
            f"from={self.sender}, {to}, body={len(self.body)} bytes)"
        )


def _lp(data: bytes) -> bytes:
    # 8-byte length prefix makes the concatenation injective
    return struct.pack(">Q", len(data)) + data


def _header_bytes(sid: bytes, round_: int, sender: int, recipient: int, protocol: str) -> bytes:
    return _lp(_DOMAIN) + _lp(protocol.encode("ascii")) + _lp(sid) + struct.pack(">III", round_, sender, recipient)


def _signed_bytes(sid: bytes, round_: int, sender: int, recipient: int, protocol: str, body: bytes,
                  ephemeral: bytes) -> bytes:
    return _header_bytes(sid, round_, sender, recipient, protocol) + _lp(body) + _lp(ephemeral)


def _header_digest(sid: bytes, round_: int, sender: int, recipient: int, protocol: str) -> bytes:
    return nacl.hash.blake2b(
        _header_bytes(sid, round_, sender, recipient, protocol),
        digest_size=_HEADER_DIGEST_BYTES,
        person=b"mpcray-env-hdr",
        encoder=nacl.encoding.RawEncoder,
    )


def _is_u32(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _MAX_U32


def _check_protocol(protocol: object) -> bool:
    return isinstance(protocol, str) and _PROTOCOL_RE.fullmatch(protocol) is not None


class SessionKeys:
    """The ephemeral keys of one forward-secure session at one party: its own `SessionKey`, and each peer's session
    public key as that peer's signed round-1 broadcast announced it. Memory only; `erase()` at the session's end."""

    __slots__ = ("_own", "_peers")

    def __init__(self) -> None:
        self._own = SessionKey()
        self._peers: dict[int, bytes] = {}

    @property
    def public(self) -> bytes:
        return self._own.public

    @property
    def erased(self) -> bool:
        return self._own.erased

    def peer(self, party: int) -> bytes | None:
        return self._peers.get(party)

    def _learn(self, party: int, public: bytes) -> None:
        """Record `party`'s announced key; InvalidInput if it is unusable or contradicts the one announced before."""
        known = self._peers.get(party)
        if known is not None and known != public:
            raise InvalidInput("a second, different session key from the same party")
        self._own.agree(public)  # refuses a small-order point now, not at the first direct message
        self._peers[party] = public

    def encrypt_to(self, party: int, plaintext: bytes) -> bytes:
        peer = self._peers.get(party)
        if peer is None:
            # round 1 of a forward-secure protocol must be broadcast-only (the keys are exchanged there)
            raise InvalidInput("no session key of the recipient yet: direct messages only after round 1")
        return self._own.encrypt_to(peer, plaintext)

    def decrypt_from(self, party: int, ciphertext: bytes) -> bytes:
        """nacl.exceptions.CryptoError if it does not open; the caller has checked that `party` announced a key."""
        return self._own.decrypt_from(self._peers[party], ciphertext)

    def erase(self) -> None:
        self._own.erase()
        self._peers.clear()

    def __repr__(self) -> str:
        return f"SessionKeys({self._own!r}, peers={sorted(self._peers)})"

    def __reduce__(self) -> Any:
        raise TypeError("session keys are ephemeral and never leave their process")


def seal(
    identity: NodeIdentity,
    env: Envelope,
    protocol: str,
    recipient_public: NodeIdentityPublic | None,
    session: SessionKeys | None = None,
) -> SealedEnvelope:
    """Sign `env` as `identity` (and encrypt it to `recipient_public` if it is a direct message).

    `recipient_public` must be None for a broadcast and the recipient's public identity for a direct message, so a
    direct payload can never go out in clear by mistake. With `session` (a forward-secure session), a round-1
    broadcast announces the session public key and a direct message is boxed between the two session keys.
    """
    if not isinstance(env, Envelope):
        raise InvalidInput("expected a protocols.base.Envelope")
    if not _check_protocol(protocol):
        raise InvalidInput("protocol tag must match [A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
    if env.sender != identity.party:
        raise InvalidInput("a node can only seal envelopes it sends")
    if not isinstance(env.sid, bytes) or not 1 <= len(env.sid) <= _MAX_SID_BYTES:
        raise InvalidInput(f"sid must be 1..{_MAX_SID_BYTES} bytes")
    if not _is_u32(env.round) or env.round < 1:
        raise InvalidInput("round must be a positive 32-bit integer")
    if not isinstance(env.payload, bytes):
        raise InvalidInput("payload must be bytes")
    if session is not None and not isinstance(session, SessionKeys):
        raise InvalidInput("session must be SessionKeys or None")
    ephemeral = b""
    if env.recipient is None:
        if recipient_public is not None:
            raise InvalidInput("a broadcast is not encrypted; pass recipient_public=None")
        recipient = BROADCAST
        body = env.payload
        if session is not None and env.round == 1:
            ephemeral = session.public
    else:
        if recipient_public is None:
            raise InvalidInput("a direct message needs the recipient's public identity")
        if recipient_public.party != env.recipient or env.recipient == BROADCAST:
            raise InvalidInput("recipient_public does not belong to the envelope's recipient")
        if env.recipient == identity.party:
            raise InvalidInput("a node does not send direct messages to itself")
        recipient = env.recipient
        plain = _header_digest(env.sid, env.round, env.sender, recipient, protocol) + env.payload
        body = identity.encrypt_to(recipient_public, plain) if session is None else session.encrypt_to(recipient, plain)
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput("payload too large")
    signature = identity.sign(_signed_bytes(env.sid, env.round, env.sender, recipient, protocol, body, ephemeral))
    return SealedEnvelope(env.sid, env.round, env.sender, recipient, protocol, body, signature, ephemeral)


def open_envelope(
    sealed: SealedEnvelope,
    *,
    me: NodeIdentity,
    directory: Mapping[int, NodeIdentityPublic],
    expected_protocol: str,
    session: SessionKeys | None = None,
) -> Envelope:
    """Verify (and, if direct, decrypt) an envelope received through the relay; return the protocol Envelope.

    Checks, in order: well-formed fields (`envelope.malformed`), sender in `directory`
    (`envelope.unknown_sender`), signature (`envelope.signature`), protocol tag (`envelope.protocol`), session key
    (`envelope.ephemeral`: with `session`, a round-1 broadcast must announce a usable key, the same one if it comes
    twice, and nothing else may carry one; without, nothing may), addressed to `me` (`envelope.misaddressed`),
    decryption (`envelope.decrypt`: with `session`, only between the two session keys). The signature is checked
    before everything else, so those checks only ever judge what the sender really signed.
    """
    sender: object = getattr(sealed, "sender", None)
    # a relay could hand us any object (unpickling skips __init__), so validate every field's type first;
    # 0 names no party when not even the sender field is usable
    culprit = sender if isinstance(sender, int) and _is_u32(sender) else 0

    def abort(check: str, detail: str) -> ProtocolAbort:
        return ProtocolAbort(culprit, f"envelope.{check}", detail, reporter=me.party)

    if not isinstance(sealed, SealedEnvelope):
        raise abort("malformed", "not a SealedEnvelope")
    if not all(hasattr(sealed, f) for f in _FIELDS):  # unpickled state may leave a field out altogether
        raise abort("malformed", "malformed envelope fields (sender or relay)")
    if session is not None and session.erased:
        raise InvalidInput("this session's keys are erased: the session is over")  # our state, not the sender's
    if not (
        _is_u32(sealed.sender)
        and sealed.sender >= 1
        and _is_u32(sealed.round)
        and _is_u32(sealed.recipient)
        and isinstance(sealed.sid, bytes)
        and 1 <= len(sealed.sid) <= _MAX_SID_BYTES
        and _check_protocol(sealed.protocol)
        and isinstance(sealed.body, bytes)
        and len(sealed.body) <= MAX_BODY_BYTES
        and isinstance(sealed.signature, bytes)
        and len(sealed.signature) == SIGNATURE_BYTES
        and isinstance(sealed.ephemeral, bytes)
        and len(sealed.ephemeral) in (0, KEY_BYTES)
    ):
        raise abort("malformed", "malformed envelope fields (sender or relay)")
    sender_public = directory.get(sealed.sender)
    if sender_public is None or sender_public.party != sealed.sender:
        raise abort("unknown_sender", "sender is not in the committee directory")
    if not sender_public.verify(sealed.signed_bytes(), sealed.signature):
        raise abort("signature", "signature does not verify (forged or altered by sender or relay)")
    if sealed.protocol != expected_protocol:
        raise abort("protocol", f"signed for protocol {sealed.protocol!r}, expected {expected_protocol!r}")
    announces = session is not None and sealed.round == 1 and sealed.recipient == BROADCAST
    if announces:
        if not sealed.ephemeral:
            raise abort("ephemeral", "the round-1 broadcast announces no session key")
        try:
            session._learn(sealed.sender, sealed.ephemeral)  # type: ignore[union-attr]
        except InvalidInput as exc:
            raise abort("ephemeral", str(exc)) from None
    elif sealed.ephemeral:
        raise abort("ephemeral", "a session key where none belongs")
    if sealed.recipient == BROADCAST:
        return Envelope(sealed.sid, sealed.round, sealed.sender, None, sealed.body)
    if sealed.recipient != me.party:
        raise abort("misaddressed", f"direct message for party {sealed.recipient}")
    if session is not None and session.peer(sealed.sender) is None:
        raise abort("ephemeral", "a direct message before the sender announced its session key")
    try:
        if session is None:
            plain = me.decrypt_from(sender_public, sealed.body)
        else:
            plain = session.decrypt_from(sealed.sender, sealed.body)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise abort("decrypt", "direct message does not decrypt") from None
    digest = _header_digest(sealed.sid, sealed.round, sealed.sender, sealed.recipient, sealed.protocol)
    if len(plain) < _HEADER_DIGEST_BYTES or plain[:_HEADER_DIGEST_BYTES] != digest:
        raise abort("decrypt", "ciphertext is bound to another envelope header")
    return Envelope(sealed.sid, sealed.round, sealed.sender, sealed.recipient, plain[_HEADER_DIGEST_BYTES:])
