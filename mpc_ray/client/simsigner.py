"""`SimSigner`: the `Signer` protocol over `mpc_ray.sim` keys, all in this process (tests, notebooks).

It signs exactly what a committee would: an ECDSA payload's 32-byte digest (presign + sign among the first
`threshold` parties), a FROST payload's message bytes (two-round FROST, with the BIP341 tweak when asked). With an
`Agent` it first checks what every node would check of the request's body: the nodes' own decoder
(`node.policy.intent_from_request`) must arrive at the payload's digest, so wallet encodings are tested against the
node-side decoding without Ray. It enforces no policy (there are no nodes here).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping

from ..errors import InvalidInput
from ..intents import intent_from_request
from ..types import KeyInfo, Signature
from .signer import Agent, Payload, check_payload, child_key_info
from .wallets import WalletFactory

__all__ = ["SimSigner"]


class SimSigner(WalletFactory):
    """Holds `sim` keys by id: ``SimSigner({"evm": sim.keygen(...), "sol": sim.keygen("eddsa-ed25519", ...)})``."""

    simulates_committee = True  # wallets that submit a whole request (TaprootWallet) simulate the nodes for it

    def __init__(self, keys: Mapping[str, object], *, agent: Agent | None = None) -> None:
        self._keys = dict(keys)
        self.agent = agent

    def _key(self, key_id: str):
        key = self._keys.get(key_id)
        if key is None:
            raise InvalidInput(f"unknown key {key_id!r}")
        return key

    def key_info(self, key_id: str, path: str | None = None) -> KeyInfo:
        key = self._key(key_id)
        master = key.info(key_id)
        if path is None:
            return master
        child = key.derive(path)  # InvalidInput for a bad path or an Ed25519 key
        return child_key_info(master, {"key_id": key_id, "scheme": key.scheme, "public_key": key.child_public_key(path),
                                       "chain_code": child.chain_code})

    def sign_digest(self, key_id: str, digest: bytes, *, path: str | None = None) -> Signature:
        key = self._key(key_id)
        if key.scheme != "ecdsa-secp256k1":
            raise InvalidInput("sign_digest is for ECDSA keys; FROST keys sign the message (sign_message)")
        return key.sign(bytes(digest), path=path)

    def sign_message(self, key_id: str, message: bytes, *, tap_tweak: bytes | None = None,
                     path: str | None = None) -> Signature:
        key = self._key(key_id)
        if key.scheme == "ecdsa-secp256k1":
            raise InvalidInput("ECDSA keys sign 32-byte digests (sign_digest)")
        if tap_tweak is None:
            return key.sign(bytes(message), path=path)
        return _frost_sign_tweaked(key, bytes(message), bytes(tap_tweak), path)

    def sign_payload(self, payload: Payload) -> Signature:
        info = self.key_info(payload.key_id)
        check_payload(info, payload)
        if self.agent is not None:
            request = self.agent.sign(payload)  # InvalidInput where no node-side format exists
            if intent_from_request(request).digest != payload.message:
                raise InvalidInput("the nodes would decode this request to another digest")
        if info.scheme == "ecdsa-secp256k1":
            return self.sign_digest(payload.key_id, payload.message, path=payload.path)
        return self.sign_message(payload.key_id, payload.message, tap_tweak=payload.tap_tweak, path=payload.path)

    async def sign_payload_async(self, payload: Payload) -> Signature:
        return await asyncio.to_thread(self.sign_payload, payload)  # the simulation is CPU work; keep the loop free


def _frost_sign_tweaked(key, message: bytes, tap_tweak: bytes, path: str | None) -> Signature:
    """`SimFrostKey.sign` with the BIP341 tweak (on top of the BIP32 child's, with `path`): the same two-round run,
    each party told the tweaks."""
    from ..protocols.frost import SignParty
    from ..sim import run_parties

    chosen = list(key.parties[: key.threshold])
    sid = b"frost-sign:" + secrets.token_bytes(16)
    machines = {
        i: SignParty(key.suite, key.outputs[i].key_package, key.public_package, message, sid, chosen,
                     tap_tweak=tap_tweak, hd_tweak=None if path is None else key.derive(path).tweak)
        for i in chosen
    }
    out = run_parties(machines)
    return Signature(key.scheme, out[chosen[0]].to_bytes())
