"""A node's long-term identity: an Ed25519 signing key and an X25519 encryption key (PyNaCl).

The public half (`NodeIdentityPublic`) is what the committee directory holds and what the coordinator may see.
The secret half never leaves the share holder except encrypted, through `to_secret_bytes()` into the node's
`EncryptedStore`; `NodeIdentity` refuses to be pickled so that it cannot slip into Ray's object store by accident.

`SessionKey` is the other kind of X25519 key a node has: an ephemeral one, made for one protocol session, held in
memory only and erased when the session ends (see envelope.py for why and how it is used). Its public half is
authenticated by the node identity's signature on the envelope that announces it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, NoReturn

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing

from ..errors import InvalidInput

__all__ = ["KEY_BYTES", "SIGNATURE_BYTES", "NodeIdentity", "NodeIdentityPublic", "SessionKey"]

KEY_BYTES = 32
SIGNATURE_BYTES = 64
# version byte || Ed25519 seed (32) || X25519 secret (32); the version lets the layout change later
_SECRET_VERSION = b"\x01"
_SECRET_LEN = 1 + 2 * KEY_BYTES


def _check_party(party: object) -> int:
    # bool is an int subclass; a party index True would be a bug, not party 1
    if not isinstance(party, int) or isinstance(party, bool) or not 1 <= party < 2**32:
        raise InvalidInput("party must be an integer in [1, 2**32)")
    return party


@dataclass(frozen=True)
class NodeIdentityPublic:
    """The public identity of one party: safe to publish, log and pass through Ray."""

    party: int
    verify_key: bytes  # Ed25519 public key, 32 bytes
    box_key: bytes  # X25519 public key, 32 bytes

    def __post_init__(self) -> None:
        _check_party(self.party)
        for name in ("verify_key", "box_key"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != KEY_BYTES:
                raise InvalidInput(f"{name} must be {KEY_BYTES} bytes")
        try:
            # reject points PyNaCl will not load now, rather than at the first message
            nacl.signing.VerifyKey(self.verify_key)
            nacl.public.PublicKey(self.box_key)
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise InvalidInput("invalid public key") from None

    def verify(self, data: bytes, signature: bytes) -> bool:
        """True iff `signature` is this party's Ed25519 signature of `data`."""
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES or not isinstance(data, bytes):
            return False
        try:
            nacl.signing.VerifyKey(self.verify_key).verify(data, signature)
        except nacl.exceptions.BadSignatureError:
            return False
        return True

    def __repr__(self) -> str:
        return f"NodeIdentityPublic(party={self.party}, verify_key={self.verify_key.hex()[:16]}..)"


class NodeIdentity:
    """A party's secret identity keys. Create with `generate` or `from_secret_bytes`."""

    __slots__ = ("_box_secret", "_boxes", "_party", "_public", "_signing")

    def __init__(self, party: int, signing_key: nacl.signing.SigningKey, box_secret: nacl.public.PrivateKey) -> None:
        self._party = _check_party(party)
        if not isinstance(signing_key, nacl.signing.SigningKey) or not isinstance(box_secret, nacl.public.PrivateKey):
            raise InvalidInput("expected nacl SigningKey and PrivateKey")
        self._signing = signing_key
        self._box_secret = box_secret
        self._public = NodeIdentityPublic(party, bytes(signing_key.verify_key), bytes(box_secret.public_key))
        # Box precomputes the X25519 shared key; caching it saves a scalar multiplication per message
        self._boxes: dict[bytes, nacl.public.Box] = {}

    @classmethod
    def generate(cls, party: int) -> NodeIdentity:
        """Fresh keys from the OS CSPRNG (through libsodium)."""
        return cls(party, nacl.signing.SigningKey.generate(), nacl.public.PrivateKey.generate())

    @classmethod
    def from_secret_bytes(cls, party: int, data: bytes) -> NodeIdentity:
        if not isinstance(data, (bytes, bytearray)) or len(data) != _SECRET_LEN or data[:1] != _SECRET_VERSION:
            raise InvalidInput("malformed node identity secret")
        data = bytes(data)
        return cls(
            party,
            nacl.signing.SigningKey(data[1 : 1 + KEY_BYTES]),
            nacl.public.PrivateKey(data[1 + KEY_BYTES :]),
        )

    def to_secret_bytes(self) -> bytes:
        """The secret keys as bytes, only for writing into the node's EncryptedStore."""
        return _SECRET_VERSION + bytes(self._signing) + bytes(self._box_secret)

    @property
    def party(self) -> int:
        return self._party

    def public(self) -> NodeIdentityPublic:
        return self._public

    def sign(self, data: bytes) -> bytes:
        """Detached 64-byte Ed25519 signature. Callers sign domain-separated encodings (see envelope.py)."""
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidInput("can only sign bytes")
        return self._signing.sign(bytes(data)).signature

    def _box(self, peer: NodeIdentityPublic) -> nacl.public.Box:
        box = self._boxes.get(peer.box_key)
        if box is None:
            box = nacl.public.Box(self._box_secret, nacl.public.PublicKey(peer.box_key))
            self._boxes[peer.box_key] = box
        return box

    def encrypt_to(self, peer: NodeIdentityPublic, plaintext: bytes) -> bytes:
        """Authenticated encryption from this node's X25519 key to `peer`'s (nacl Box, random nonce prepended)."""
        return bytes(self._box(peer).encrypt(bytes(plaintext)))

    def decrypt_from(self, peer: NodeIdentityPublic, ciphertext: bytes) -> bytes:
        """Inverse of `peer.encrypt_to(self.public(), ...)`; raises nacl.exceptions.CryptoError if it does not open."""
        return self._box(peer).decrypt(bytes(ciphertext))

    # keep secrets out of reprs and out of pickles (Ray's object store, logs, tracebacks)
    def __repr__(self) -> str:
        return (
            f"NodeIdentity(party={self._party}, verify_key={self._public.verify_key.hex()[:16]}.., <secret redacted>)"
        )

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("NodeIdentity holds secret keys and cannot be pickled; use to_secret_bytes() into the store")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        self.__reduce__()
        raise AssertionError("unreachable")

    def __copy__(self) -> NodeIdentity:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> NodeIdentity:
        return self


_NONCE_BYTES = nacl.bindings.crypto_box_NONCEBYTES


class SessionKey:
    """An ephemeral X25519 key of one protocol session: memory only, never stored, never pickled.

    `encrypt_to` / `decrypt_from` are nacl Box (X25519, XSalsa20-Poly1305; random nonce from `secrets` prepended)
    between this key and a peer's session public key. `erase()` drops the secret and every derived shared key; the
    key is useless afterwards. Python cannot scrub memory it has freed, so erasure means that nothing reachable
    (and nothing on disk: the key is never written) can open what was sealed with it.
    """

    __slots__ = ("_public", "_secret", "_shared")

    def __init__(self) -> None:
        self._secret: bytes | None = secrets.token_bytes(KEY_BYTES)
        self._public = nacl.bindings.crypto_scalarmult_base(self._secret)
        self._shared: dict[bytes, bytes] = {}  # peer public key -> Box shared key (one X25519 per peer)

    @property
    def public(self) -> bytes:
        return self._public

    @property
    def erased(self) -> bool:
        return self._secret is None

    def agree(self, peer_public: bytes) -> bytes:
        """The Box shared key with `peer_public` (cached). InvalidInput for a key that is not a usable X25519 point
        (wrong length, or of small order: libsodium refuses the all-zero shared secret)."""
        if self._secret is None:
            raise InvalidInput("this session key has been erased")
        if not isinstance(peer_public, bytes) or len(peer_public) != KEY_BYTES:
            raise InvalidInput(f"a session public key is {KEY_BYTES} bytes")
        shared = self._shared.get(peer_public)
        if shared is None:
            try:
                shared = nacl.bindings.crypto_box_beforenm(peer_public, self._secret)
            except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError):
                raise InvalidInput("the session public key is of small order") from None
            self._shared[peer_public] = shared
        return shared

    def encrypt_to(self, peer_public: bytes, plaintext: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce + nacl.bindings.crypto_box_easy_afternm(bytes(plaintext), nonce, self.agree(peer_public))

    def decrypt_from(self, peer_public: bytes, ciphertext: bytes) -> bytes:
        """Inverse of the peer's `encrypt_to(self.public, ...)`; nacl.exceptions.CryptoError if it does not open."""
        if len(ciphertext) < _NONCE_BYTES:
            raise nacl.exceptions.CryptoError("ciphertext too short")
        nonce, ct = ciphertext[:_NONCE_BYTES], ciphertext[_NONCE_BYTES:]
        return nacl.bindings.crypto_box_open_easy_afternm(bytes(ct), nonce, self.agree(peer_public))

    def erase(self) -> None:
        self._secret = None
        self._shared.clear()

    def __repr__(self) -> str:
        state = "erased" if self._secret is None else "<secret redacted>"
        return f"SessionKey(public={self._public.hex()[:16]}.., {state})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a SessionKey is ephemeral and never leaves its process")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        self.__reduce__()
        raise AssertionError("unreachable")

    def __copy__(self) -> SessionKey:
        return self  # a copy would outlive erase()

    def __deepcopy__(self, memo: dict[int, Any]) -> SessionKey:
        return self
