"""The one signer protocol every wallet talks to, and the agent credential that signs requests.

A wallet (`EvmWallet`, `SolanaWallet`, `TaprootWallet`) never signs anything itself: it turns a transaction or message
into a `Payload` (what the nodes must decode: the request format and body, and what the signature must be over), hands
it to a `Signer`, and checks the signature it gets back against its own public key before returning it. Three signers
satisfy the protocol:

- `SignHandle` (client/handle.py, sync) and its `aio` twin: a Ray driver talking to the coordinator actor;
- `RemoteSigner` (client/remote.py): an agent outside the cluster talking HTTP to the gateway (no Ray at all);
- `SimSigner` (client/simsigner.py): keys of `mpc_ray.sim`, in process, for tests and notebooks.

With an `Agent` configured, a signer never asks for a bare digest: it sends a principal-signed request
(`mpc_ray.requests.sign_request`) carrying the payload's format and body, and every holder decodes the body and
computes the digest itself before it applies its policy. Without one (an admin's Ray driver, the simulator) it signs
the payload's digest / message directly.

No Ray import here: the remote client depends on this module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import nacl.signing

from ..errors import InvalidInput
from ..errors import RequestTimeout, BadSignature  # noqa: F401  (old import path)
from ..requests import RequestFormat, SignedRequest, sign_request
from ..types import KeyInfo, Signature

__all__ = ["Agent", "BadSignature", "Payload", "RequestTimeout", "Signer", "check_payload"]

POLICY_SCHEMES = ("ecdsa-secp256k1", "eddsa-ed25519")  # schemes whose requests the nodes decode and police


@dataclass(frozen=True)
class Payload:
    """One thing to sign.

    `message` is what the threshold signature is over: the 32-byte digest for ECDSA, the message bytes themselves for
    Ed25519 / BIP340. `format`, `body` and `chain` are what a principal-signed request carries; the nodes decode `body`
    by `format` and must arrive at the same `message` (the wallet checks the signature against its own `message`).
    `format` None: there is no request format the nodes can decode for this payload (signable only without an agent).
    `tap_tweak` (BIP340 only): b"" or a 32-byte merkle root, sign for the BIP341 output key.
    `path` (ECDSA, BIP340): a non-hardened BIP32 path ("m/0/7"): sign as that child of the key. An agent's request
    carries it signed (`derivation_path`), so no relay can move a signature to another child.
    """

    key_id: str
    message: bytes
    format: RequestFormat | None
    body: bytes = b""
    chain: str = ""
    tap_tweak: bytes | None = None
    path: str | None = None


@dataclass(frozen=True)
class Agent:
    """An agent's request credential: its principal id and Ed25519 signing key (never printed: `repr` is redacted).

    Each request it signs carries a fresh random nonce and expires `ttl_s` seconds later.
    """

    principal_id: str
    signing_key: nacl.signing.SigningKey = field(repr=False)
    ttl_s: int = 60

    def __post_init__(self) -> None:
        key = self.signing_key
        if isinstance(key, (bytes, bytearray)) and len(key) == 32:
            object.__setattr__(self, "signing_key", nacl.signing.SigningKey(bytes(key)))
        elif not isinstance(key, nacl.signing.SigningKey):
            raise InvalidInput("an agent's signing key is a nacl SigningKey or a 32-byte seed")
        if not isinstance(self.ttl_s, int) or not 0 < self.ttl_s <= 3600:
            raise InvalidInput("ttl_s must be an integer in 1..3600")

    @property
    def verify_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    def sign(self, payload: Payload, *, now: float | None = None) -> SignedRequest:
        """The principal-signed ``sign`` request for `payload` (InvalidInput if the nodes cannot decode it)."""
        if payload.format is None:
            raise InvalidInput("the nodes have no request format for this payload; it cannot be signed under a policy")
        if payload.tap_tweak is not None:
            raise InvalidInput("policy-enforced requests carry no Taproot tweak: an agent signs whole PSBTs "
                               "(TaprootWallet.sign_psbt), which the nodes decode")
        return sign_request(
            self.signing_key, principal_id=self.principal_id, kind="sign", format=payload.format, body=payload.body,
            key_id=payload.key_id, chain=payload.chain, now=time.time() if now is None else now, ttl_s=self.ttl_s,
            derivation_path=payload.path or "",
        )

    def __repr__(self) -> str:
        return f"Agent(principal_id={self.principal_id!r}, signing_key=<redacted>)"


@runtime_checkable
class Signer(Protocol):
    """What a wallet needs: the key's public description and a signature for a payload, sync and async.
    `key_info(key_id, path)` describes the BIP32 child at `path` (its public key and chain code) when a path is given.
    """

    def key_info(self, key_id: str, path: str | None = None) -> KeyInfo: ...

    def sign_payload(self, payload: Payload) -> Signature: ...

    async def sign_payload_async(self, payload: Payload) -> Signature: ...


def check_payload(info: KeyInfo, payload: Payload) -> None:
    """Refuse a payload that cannot be signed by this key before anything leaves the process."""
    if info.scheme == "ecdsa-secp256k1":
        if len(payload.message) != 32:
            raise InvalidInput("an ECDSA payload is a 32-byte digest")
        if payload.tap_tweak is not None:
            raise InvalidInput("tap_tweak is for BIP340 keys only")
    elif payload.tap_tweak is not None and info.scheme != "schnorr-bip340":
        raise InvalidInput("tap_tweak is for BIP340 keys only")
    if payload.tap_tweak is not None and len(payload.tap_tweak) not in (0, 32):
        raise InvalidInput("tap_tweak is b'' (key path only) or a 32-byte merkle root")
    if payload.path is not None and (info.scheme == "eddsa-ed25519" or not isinstance(payload.path, str)):
        raise InvalidInput("derivation paths are strings like 'm/0/7', for ECDSA and BIP340 keys")


def child_key_info(master: KeyInfo, child: dict) -> KeyInfo:
    """The `KeyInfo` a wallet uses for a BIP32 child: the master's scheme and committee, the child's public key and
    chain code (`child` holds `ChildKeyInfo` fields, as the coordinator's `derive` answers)."""
    if child.get("key_id") != master.key_id or child.get("scheme") != master.scheme:
        raise InvalidInput("the derived key does not belong to this key")
    return KeyInfo(key_id=master.key_id, scheme=master.scheme, public_key=bytes(child["public_key"]),
                   threshold=master.threshold, parties=master.parties, chain_code=bytes(child["chain_code"]))


def key_info_from_status(key_id: str, status: dict, parties: int) -> KeyInfo:
    """A `KeyInfo` from the coordinator's status (ECDSA and FROST keys report their public key there)."""
    entry = status.get("keys", {}).get(key_id)
    if entry is None:
        raise InvalidInput(f"unknown key {key_id!r}")
    pk = bytes.fromhex(entry["public_key"])
    scheme = entry.get("scheme") or ("ecdsa-secp256k1" if len(pk) == 33 else None)
    if scheme is None:
        raise InvalidInput(f"key {key_id!r}: the coordinator does not report its scheme")
    committee = len(status.get("parties", ())) or parties  # every key of a committee spans all its parties
    return KeyInfo(key_id=key_id, scheme=scheme, public_key=pk, threshold=int(entry["threshold"]),
                   parties=int(entry.get("parties", committee)))
