"""`AsyncSignHandle`: the asyncio twin of `SignHandle`.

Ray ObjectRefs are awaitable, so each call submits the actor task and awaits its ref under `asyncio.wait_for`: no
thread per call, and hundreds of signings can be in flight from one event loop. Same timeouts, typed errors, agent
and key cache as the sync handle it is made from (`handle.aio`).

Direct signatures (no agent) that coroutines ask for in the same turn of the event loop are coalesced: the first one
schedules a flush with `loop.call_soon`, every `sign` for the same key (and tweak) made before the loop comes round
joins it, and the flush sends them as one `sign_many` (the coordinator's batched path: one presignature or nonce
batch, one durable write per holder) instead of one coordinator call each. It adds no waiting: a lone `sign` is
flushed on the next loop iteration. Each message is validated before it joins a batch, so one bad input cannot fail
its neighbours. Agent requests made in the same turn are coalesced the same way into one `sign_requests` call: each
is still signed by the agent, and every node checks and audits each on its own (one audit fsync for the batch), and
each coroutine gets its own answer: its signature or the error that refused its request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ray.exceptions import RayError

from ..errors import InvalidInput, MpcError
from ..requests import SignedRequest
from ..requests.raw_batch import raw_chunks
from ..types import KeyInfo, Signature
from .raycall import signature_from_wire, typed_error
from .signer import Payload, RequestTimeout, check_payload, child_key_info, key_info_from_status

if TYPE_CHECKING:
    from .bitcoin import TaprootWallet
    from .evm import EvmWallet
    from .handle import SignHandle
    from .solana import SolanaWallet

__all__ = ["AsyncSignHandle"]

MAX_BATCH = 256  # messages per coalesced sign_many call


class AsyncSignHandle:
    """Every call of `SignHandle` as a coroutine."""

    def __init__(self, handle: SignHandle) -> None:
        self._h = handle
        # (loop, key id, tap tweak, path) -> messages waiting for this turn's flush, each with the future it resolves
        self._pending: dict[tuple[Any, str, bytes | None, str | None], list[tuple[bytes, asyncio.Future]]] = {}
        # loop -> agent requests waiting for this turn's flush, each with its key's scheme and the future it resolves
        self._pending_requests: dict[Any, list[tuple[SignedRequest, str, asyncio.Future]]] = {}
        # flushed batches still running: held here (the loop keeps only weak references to tasks), awaited by __aexit__
        self._tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> AsyncSignHandle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Waits for the coalesced batches this handle flushed on this loop, so that none is left running (and
        unfetched) when the block ends; it holds no connection of its own (Ray's belong to the driver)."""
        loop = asyncio.get_running_loop()
        while tasks := [t for t in list(self._tasks) if t.get_loop() is loop and not t.done()]:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _track(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    async def key_info(self, key_id: str, path: str | None = None) -> KeyInfo:
        info = self._h.cached_key(key_id, path)
        if info is None:
            master = self._h.cached_key(key_id)
            if master is None:
                status = await self._await(self._h.coordinator.status.remote())
                master = self._h._remember(key_info_from_status(key_id, status, self._h._parties))
            if path is None:
                return master
            child = await self._await(self._h.coordinator.derive.remote(key_id, path))
            info = self._h._remember(child_key_info(master, child), path)
        return info

    async def sign(self, key_id: str, message: bytes, *, tap_tweak: bytes | None = None,
                   path: str | None = None) -> Signature:
        """Direct signing (see `SignHandle.sign`); concurrent calls are coalesced into one `sign_many`."""
        _, (msg,) = self._h._direct_args(key_id, [message], tap_tweak)
        info = await self.key_info(key_id)
        check_payload(info, Payload(key_id, msg, None, tap_tweak=tap_tweak, path=path))
        return await self._coalesced(info.scheme, key_id, msg, tap_tweak, path)

    async def sign_digest(self, key_id: str, digest: bytes, *, path: str | None = None) -> Signature:
        return await self.sign(key_id, digest, path=path)

    async def sign_message(self, key_id: str, message: bytes, *, tap_tweak: bytes | None = None,
                           path: str | None = None) -> Signature:
        return await self.sign(key_id, message, tap_tweak=tap_tweak, path=path)

    async def _coalesced(self, scheme: str, key_id: str, message: bytes, tap_tweak: bytes | None,
                         path: str | None) -> Signature:
        loop = asyncio.get_running_loop()
        slot = (loop, key_id, None if tap_tweak is None else bytes(tap_tweak), path)
        future: asyncio.Future = loop.create_future()
        batch = self._pending.get(slot)
        if batch is None:
            batch = self._pending[slot] = []
            loop.call_soon(self._flush, slot, scheme)
        batch.append((message, future))
        try:
            return await asyncio.wait_for(future, self._h.timeout)  # a timeout cancels only this waiter
        except TimeoutError:
            raise RequestTimeout("the committee did not answer in time") from None

    def _flush(self, slot: tuple[Any, str, bytes | None, str | None], scheme: str) -> None:
        loop, key_id, tap_tweak, path = slot
        batch = self._pending.pop(slot, [])
        for lo, hi in raw_chunks([m for m, _ in batch], MAX_BATCH):  # each fits one operator request
            self._track(loop.create_task(self._sign_batch(scheme, key_id, tap_tweak, path, batch[lo:hi])))

    async def _sign_batch(self, scheme: str, key_id: str, tap_tweak: bytes | None, path: str | None,
                          batch: list[tuple[bytes, asyncio.Future]]) -> None:
        try:
            out = await self._await(self._h._direct_ref(key_id, [m for m, _ in batch], tap_tweak, path))
            results: list[Any] = [signature_from_wire(scheme, s) for s in out]
        except Exception as exc:  # noqa: BLE001 - handed to every waiter of the batch, as a typed error
            results = [typed_error(exc)] * len(batch)
        _resolve([f for _, f in batch], results)

    async def _coalesced_request(self, request: SignedRequest, scheme: str) -> Signature:
        if not isinstance(request, SignedRequest):
            raise InvalidInput("expected a SignedRequest (mpc_ray.requests.sign_request)")
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        batch = self._pending_requests.get(loop)
        if batch is None:
            batch = self._pending_requests[loop] = []
            loop.call_soon(self._flush_requests, loop)
        batch.append((request, scheme, future))
        try:
            return await asyncio.wait_for(future, self._h.timeout)
        except TimeoutError:
            raise RequestTimeout("the committee did not answer in time") from None

    def _flush_requests(self, loop: Any) -> None:
        batch = self._pending_requests.pop(loop, [])
        for lo in range(0, len(batch), MAX_BATCH):
            self._track(loop.create_task(self._sign_request_batch(batch[lo:lo + MAX_BATCH])))

    async def _sign_request_batch(self, batch: list[tuple[SignedRequest, str, asyncio.Future]]) -> None:
        try:
            out = await self._await(self._h.coordinator.sign_requests.remote([r for r, _, _ in batch]))
            results: list[Any] = [typed_error(o) if isinstance(o, BaseException) else signature_from_wire(scheme, o)
                                  for o, (_, scheme, _) in zip(out, batch)]
        except Exception as exc:  # noqa: BLE001 - the whole call failed: every waiter gets it, as a typed error
            results = [typed_error(exc)] * len(batch)
        _resolve([f for _, _, f in batch], results)

    async def sign_many(self, key_id: str, messages: Sequence[bytes], *,
                        tap_tweak: bytes | None = None, path: str | None = None) -> list[Signature]:
        scheme, msgs = self._h._direct_args(key_id, messages, tap_tweak)
        # every chunk is awaited before the first failure is raised: a dropped failed ref is logged as unhandled
        outs = await asyncio.gather(*(self._await(self._h._direct_ref(key_id, msgs[lo:hi], tap_tweak, path))
                                      for lo, hi in raw_chunks(msgs)), return_exceptions=True)
        for out in outs:
            if isinstance(out, BaseException):
                raise out
        return [signature_from_wire(scheme, s) for out in outs for s in out]

    async def sign_request(self, request: SignedRequest) -> Signature:
        """A principal-signed request; concurrent ones are coalesced into one `sign_requests` call."""
        return await self._coalesced_request(request, "ecdsa-secp256k1")

    async def sign_payload(self, payload: Payload) -> Signature:
        info = await self.key_info(payload.key_id)
        check_payload(info, payload)
        if self._h.agent is not None:
            return await self._coalesced_request(self._h._agent_request(info, payload), info.scheme)
        return await self._coalesced(info.scheme, payload.key_id, payload.message, payload.tap_tweak, payload.path)

    async def sign_payload_async(self, payload: Payload) -> Signature:
        return await self.sign_payload(payload)

    # wallets (their *_async methods run on this loop; they share the sync handle) ----------------------------
    def evm_wallet(self, key_id: str, *, path: str | None = None) -> EvmWallet:
        return self._h.evm_wallet(key_id, path=path)

    def solana_wallet(self, key_id: str, *, chain: str | None = None) -> SolanaWallet:
        return self._h.solana_wallet(key_id, chain=chain)

    def taproot_wallet(self, key_id: str, *, network: str = "mainnet", path: str | None = None) -> TaprootWallet:
        return self._h.taproot_wallet(key_id, network=network, path=path)


def _resolve(futures: list[asyncio.Future], results: list[Any]) -> None:
    for future, result in zip(futures, results):
        if future.done():
            continue  # its waiter timed out (cancelled)
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


async def _awaitable(ref: Any) -> Any:
    return await ref
