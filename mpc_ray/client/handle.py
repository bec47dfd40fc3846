"""`SignHandle`: what a Ray driver hands to its wallets: the coordinator, a timeout, and optionally an agent key.

Every call has a timeout and raises only `mpc_ray.errors` types: a Ray task error is unwrapped to the typed error the
coordinator or a holder raised, a coordinator that is gone or a holder that dropped out is `QuorumUnavailable`, and a
call that runs past its timeout is `RequestTimeout`. The async twin (`handle.aio`, client/aio.py) awaits the same
ObjectRefs on an event loop instead of blocking a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ray.exceptions import RayError

from ..errors import InvalidInput, MpcError
from ..requests import SignedRequest
from ..types import KeyInfo, Signature
from ..requests.raw_batch import raw_chunks
from .raycall import get, signature_from_wire, typed_error
from .signer import (
    POLICY_SCHEMES,
    Agent,
    Payload,
    RequestTimeout,
    check_payload,
    child_key_info,
    key_info_from_status,
)
from .wallets import WalletFactory

if TYPE_CHECKING:
    from .aio import AsyncSignHandle

__all__ = ["RequestTimeout", "SignHandle", "typed_error"]

DEFAULT_TIMEOUT_S = 60.0


class SignHandle(WalletFactory):
    """A committee's signing calls with a timeout and typed errors; with `agent`, every signature goes through the
    policy-enforced path as a request signed by that agent."""

    def __init__(self, coordinator: Any, *, agent: Agent | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 parties: int = 0, credentials: Any = None) -> None:
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise InvalidInput("timeout must be a positive number of seconds")
        if agent is not None and not isinstance(agent, Agent):
            raise InvalidInput("agent must be an mpc_ray.client.signer.Agent")
        self._coordinator = coordinator
        self.agent = agent
        self.timeout = float(timeout)
        self._parties = parties
        self._keys: dict[tuple[str, str | None], KeyInfo] = {}  # (key id, derivation path or None)
        self._lock = threading.Lock()
        self._aio: AsyncSignHandle | None = None
        self._leases: Any = None  # PresignatureLeases, made on the first agent request
        self._credentials = credentials  # client/credentials.py: the operator that signs direct signatures

    # plumbing ---------------------------------------------------------------------------------------------
    def _get(self, ref: Any, timeout: float | None = None) -> Any:
        return get(ref, self.timeout if timeout is None else timeout)

    def _remember(self, info: KeyInfo, path: str | None = None) -> KeyInfo:
        with self._lock:
            self._keys[(info.key_id, path)] = info
        return info

    def cached_key(self, key_id: str, path: str | None = None) -> KeyInfo | None:
        with self._lock:
            return self._keys.get((key_id, path))

    @property
    def coordinator(self) -> Any:
        return self._coordinator

    @property
    def aio(self) -> AsyncSignHandle:
        """The asyncio twin of this handle (same coordinator, agent, timeout and key cache)."""
        if self._aio is None:
            from .aio import AsyncSignHandle

            self._aio = AsyncSignHandle(self)
        return self._aio

    # calls ------------------------------------------------------------------------------------------------
    def key_info(self, key_id: str, path: str | None = None) -> KeyInfo:
        """Public description of `key_id`, or of its BIP32 child at `path` (cached: a key never changes)."""
        info = self.cached_key(key_id, path)
        if info is None:
            master = self.cached_key(key_id) or self._remember(key_info_from_status(
                key_id, self._get(self._coordinator.status.remote()), self._parties))
            if path is None:
                return master
            info = self._remember(child_key_info(master, self._get(self._coordinator.derive.remote(key_id, path))),
                                  path)
        return info

    def sign(self, key_id: str, message: bytes, *, tap_tweak: bytes | None = None,
             path: str | None = None) -> Signature:
        """Direct signing (no agent request): ECDSA a 32-byte digest, FROST the message bytes; `path`: as that
        BIP32 child."""
        return self.sign_many(key_id, [message], tap_tweak=tap_tweak, path=path)[0]

    # the digest-level calls `SimSigner` offers too (direct signing; an agent handle refuses them)
    def sign_digest(self, key_id: str, digest: bytes, *, path: str | None = None) -> Signature:
        return self.sign(key_id, digest, path=path)

    def sign_message(self, key_id: str, message: bytes, *, tap_tweak: bytes | None = None,
                     path: str | None = None) -> Signature:
        return self.sign(key_id, message, tap_tweak=tap_tweak, path=path)

    def sign_many(self, key_id: str, messages: Sequence[bytes], *, tap_tweak: bytes | None = None,
                  path: str | None = None) -> list[Signature]:
        scheme, msgs = self._direct_args(key_id, messages, tap_tweak)
        refs = [self._direct_ref(key_id, msgs[lo:hi], tap_tweak, path) for lo, hi in raw_chunks(msgs)]
        outs, first = [], None
        for ref in refs:  # every chunk's answer is fetched before a failure is raised (none is logged unhandled)
            try:
                outs.append(self._get(ref))
            except MpcError as exc:
                first = first or exc
        if first is not None:
            raise first
        return [signature_from_wire(scheme, s) for out in outs for s in out]

    def sign_request(self, request: SignedRequest) -> Signature:
        """Submit a principal-signed request as is; every signer verifies it and applies its own policy."""
        return self._policed(request, "ecdsa-secp256k1")

    def sign_payload(self, payload: Payload) -> Signature:
        info = self.key_info(payload.key_id)
        check_payload(info, payload)
        if self.agent is not None:
            return self._policed(self._agent_request(info, payload), info.scheme, payload.message)
        out = self._get(self._direct_ref(payload.key_id, [payload.message], payload.tap_tweak, payload.path))
        return signature_from_wire(info.scheme, out[0])

    async def sign_payload_async(self, payload: Payload) -> Signature:
        return await self.aio.sign_payload(payload)

    # shared with the async handle -------------------------------------------------------------------------
    def _direct_args(self, key_id: str, messages: Sequence[bytes], tap_tweak: bytes | None) -> tuple[str, list[bytes]]:
        if self.agent is not None:
            raise InvalidInput("this handle signs as an agent: use a wallet or sign_payload (the nodes decode "
                               "the transaction and apply the policy), not bare digests")
        if isinstance(messages, (bytes, str)) or not all(isinstance(m, (bytes, bytearray)) for m in messages):
            raise InvalidInput("messages must be a list of bytes (ECDSA: 32-byte digests)")
        info = self.cached_key(key_id)
        return (info.scheme if info else ""), [bytes(m) for m in messages]

    def _direct_ref(self, key_id: str, messages: list[bytes], tap_tweak: bytes | None, path: str | None = None) -> Any:
        """One `sign_many` call: `messages` must fit one operator request (`raw_chunks`)."""
        if path is not None and not isinstance(path, str):
            raise InvalidInput("a derivation path is a string like 'm/0/7'")
        if self._credentials is None:
            raise InvalidInput("direct signing needs an operator key: a handle from a client with credentials "
                               "(mpc_ray/client/credentials.py)")
        request = self._credentials.operator_request(key_id, messages, path=path,
                                                     tap_tweak=None if tap_tweak is None else bytes(tap_tweak))
        return self._coordinator.sign_many.remote(key_id, request)

    def _policed(self, request: SignedRequest, scheme: str, digest: bytes | None = None) -> Signature:
        """One hop to the signers when a leased presignature is at hand (client/fastpath.py), else the coordinator.
        `digest`: what the wallet computed itself (the signature is checked against it; the nodes compute their own)."""
        if not isinstance(request, SignedRequest):
            raise InvalidInput("expected a SignedRequest (mpc_ray.requests.sign_request)")
        if self._leases is None:
            from .fastpath import PresignatureLeases

            self._leases = PresignatureLeases(self._coordinator)
        try:
            fast = self._leases.sign_request(request, digest if scheme == "ecdsa-secp256k1" else None)
        except (RayError, MpcError) as exc:
            raise typed_error(exc) from None
        if fast is not None:
            return signature_from_wire("ecdsa-secp256k1", fast)
        return signature_from_wire(scheme, self._get(self._coordinator.sign_request.remote(request)))

    def _agent_request(self, info: KeyInfo, payload: Payload) -> SignedRequest:
        assert self.agent is not None
        if info.scheme not in POLICY_SCHEMES:
            # BIP340 keys sign for an agent only whole PSBTs (TaprootWallet.sign_psbt: a btc_psbt request the nodes
            # decode); a bare hash or tweak has nothing a node could check, and unpoliced signing would hand the
            # agent a key with no policy at all.
            raise InvalidInput(f"policy-enforced signing is not available for {info.scheme} keys on this committee")
        return self.agent.sign(payload)


