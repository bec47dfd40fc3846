"""`AsyncSignHandle`: the asyncio twin of `SignHandle`.

Ray ObjectRefs are awaitable, so each call submits the actor task and awaits its ref under `asyncio.wait_for`: no
thread per call, and hundreds of signings can be in flight from one event loop (the coordinator batches nothing
here; it runs up to its `max_concurrency` requests at once and queues the rest). Same timeouts, typed errors, agent
and key cache as the sync handle it is made from (`handle.aio`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ray.exceptions import RayError

from ..errors import MpcError
from ..node.principals import SignedRequest
from ..types import KeyInfo, Signature
from .handle import RequestTimeout, SignHandle, signature_from_wire, typed_error
from .signer import Payload, check_payload, key_info_from_status

if TYPE_CHECKING:
    from .bitcoin import TaprootWallet
    from .evm import EvmWallet
    from .solana import SolanaWallet

__all__ = ["AsyncSignHandle"]


class AsyncSignHandle:
    """Every call of `SignHandle` as a coroutine."""

    def __init__(self, handle: SignHandle) -> None:
        self._h = handle

    @property
    def agent(self):
        return self._h.agent

    @property
    def timeout(self) -> float:
        return self._h.timeout

    async def _await(self, ref: Any) -> Any:
        try:
            return await asyncio.wait_for(_awaitable(ref), self._h.timeout)
        except TimeoutError:
            raise RequestTimeout("the committee did not answer in time") from None
        except (RayError, MpcError) as exc:
            raise typed_error(exc) from None

    async def key_info(self, key_id: str) -> KeyInfo:
        info = self._h.cached_key(key_id)
        if info is None:
            status = await self._await(self._h.coordinator.status.remote())
            info = self._h._remember(key_info_from_status(key_id, status, self._h._parties))
        return info

    async def sign(self, key_id: str, message: bytes, *, tap_tweak: bytes | None = None) -> Signature:
        return (await self.sign_many(key_id, [message], tap_tweak=tap_tweak))[0]

    async def sign_many(self, key_id: str, messages: Sequence[bytes], *,
                        tap_tweak: bytes | None = None) -> list[Signature]:
        if self._h.agent is not None:
            return [await self.sign_payload(Payload(key_id, bytes(m), None)) for m in messages]  # raises InvalidInput
        scheme, msgs = self._h._direct_args(key_id, messages, tap_tweak)
        out = await self._await(self._h._direct_ref(key_id, msgs, tap_tweak))
        return [signature_from_wire(scheme, s) for s in out]

    async def sign_request(self, request: SignedRequest) -> Signature:
        return signature_from_wire("ecdsa-secp256k1", await self._await(self._h._request_ref(request)))

    async def sign_payload(self, payload: Payload) -> Signature:
        info = await self.key_info(payload.key_id)
        check_payload(info, payload)
        if self._h.agent is not None:
            return signature_from_wire(info.scheme, await self._await(self._h._request_ref(
                self._h._agent_request(info, payload))))
        out = await self._await(self._h._direct_ref(payload.key_id, [payload.message], payload.tap_tweak))
        return signature_from_wire(info.scheme, out[0])

    async def sign_payload_async(self, payload: Payload) -> Signature:
        return await self.sign_payload(payload)

    # wallets (their *_async methods run on this loop; they share the sync handle) ----------------------------
    def evm_wallet(self, key_id: str) -> EvmWallet:
        return self._h.evm_wallet(key_id)

    def solana_wallet(self, key_id: str) -> SolanaWallet:
        return self._h.solana_wallet(key_id)

    def taproot_wallet(self, key_id: str, *, network: str = "mainnet") -> TaprootWallet:
        return self._h.taproot_wallet(key_id, network=network)


async def _awaitable(ref: Any) -> Any:
    return await ref
