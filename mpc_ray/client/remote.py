"""`RemoteSigner`: the agent's side of the HTTP gateway, with the same Python API as a Ray handle. No Ray import.

    from mpc_ray.client.remote import RemoteSigner
    from mpc_ray.client.signer import Agent

    mpc = RemoteSigner("https://signer.internal:8000", Agent("bot", agent_signing_key))
    wallet = mpc.evm_wallet(key_id)                 # EvmWallet / SolanaWallet / TaprootWallet, as on Ray
    wallet.sign_transaction(tx); await wallet.sign_transaction_async(tx)

Every request is signed here with the agent's key before it leaves the process (the gateway never signs for
anyone); every answer is checked by the wallet against its own key. Where that key comes from is the one thing the
gateway is otherwise trusted for: pass ``trusted_keys={key_id: KeyInfo}`` (public key and chain code recorded at
deployment) and the client never asks the gateway for those keys, deriving BIP32 children itself
(`mpc_ray.crypto.bip32`), so a compromised gateway cannot swap in an address of its own. Errors are the typed errors the gateway's body
names (`PolicyDenied` with its rule, `InvalidInput`, `QuorumUnavailable`, ...), `RequestTimeout` when the gateway
does not answer in time and `GatewayUnavailable` when it cannot be reached.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Self

import httpx
from pydantic import ValidationError

from ..errors import InvalidInput, MpcError
from ..errors import GatewayUnavailable  # noqa: F401  (old import path)
from ..requests.http import KeyOut, SignatureOut, SignEnvelope, error_from_body
from ..requests import SignedRequest, check_json_bounds
from ..types import KeyInfo, Signature
from .signer import Agent, Payload, RequestTimeout, check_payload
from .wallets import WalletFactory

__all__ = ["GatewayUnavailable", "RemoteSigner"]


class RemoteSigner(WalletFactory):
    """A `Signer` that talks to the gateway at `url` as `agent`. Thread-safe; async calls work from any loop."""

    def __init__(self, url: str, agent: Agent, *, timeout: float = 60.0, headers: dict[str, str] | None = None,
                 trusted_keys: Mapping[str, KeyInfo] | None = None,
                 transport: httpx.BaseTransport | None = None,
                 async_transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not isinstance(agent, Agent):
            raise InvalidInput("the gateway accepts only principal-signed requests: pass an Agent")
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise InvalidInput("timeout must be a positive number of seconds")
        self.url = url.rstrip("/")
        self.agent = agent
        self.timeout = float(timeout)
        self._headers = dict(headers or {})
        self._client = httpx.Client(base_url=self.url, timeout=self.timeout, headers=self._headers,
                                    transport=transport)
        self._async_transport = async_transport
        # one AsyncClient per event loop (their connection pools are bound to the loop that made them)
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = \
            weakref.WeakKeyDictionary()
        self._keys: dict[tuple[str, str | None], KeyInfo] = {}  # (key id, derivation path or None)
        self._lock = threading.Lock()
        self._trusted: dict[str, KeyInfo] = {}
        for key_id, info in (trusted_keys or {}).items():
            if not isinstance(info, KeyInfo) or info.key_id != key_id:
                raise InvalidInput("trusted_keys maps each key id to its KeyInfo")
            self._trusted[key_id] = info

    # plumbing ---------------------------------------------------------------------------------------------
    def _aclient(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async.get(loop)
            if client is None or client.is_closed:
                client = self._async[loop] = httpx.AsyncClient(
                    base_url=self.url, timeout=self.timeout, headers=self._headers, transport=self._async_transport)
            return client

    @staticmethod
    def _answer(response: httpx.Response) -> Any:
        try:
            check_json_bounds(response.content, max_bytes=None)  # json.loads recurses in C: bound the depth first
            payload = response.json()
        except ValueError:  # InvalidInput (too deep) included
            payload = None
        if response.is_success and payload is not None:
            return payload
        raise error_from_body(response.status_code, payload)

    def _send(self, method: str, path: str, **kw: Any) -> Any:
        try:
            return self._answer(self._client.request(method, path, **kw))
        except httpx.TimeoutException:
            raise RequestTimeout("the gateway did not answer in time") from None
        except httpx.TransportError as e:
            raise GatewayUnavailable(f"cannot reach the gateway: {type(e).__name__}") from None

    async def _send_async(self, method: str, path: str, **kw: Any) -> Any:
        try:
            return self._answer(await self._aclient().request(method, path, **kw))
        except httpx.TimeoutException:
            raise RequestTimeout("the gateway did not answer in time") from None
        except httpx.TransportError as e:
            raise GatewayUnavailable(f"cannot reach the gateway: {type(e).__name__}") from None

    @staticmethod
    def _key_path(key_id: str) -> str:
        if not isinstance(key_id, str) or not key_id.isascii() or not key_id.replace("-", "").replace("_", "").isalnum():
            raise InvalidInput("key ids are letters, digits, '-' and '_'")
        return f"/v1/keys/{key_id}"

    @staticmethod
    def _envelope(request: SignedRequest) -> dict[str, Any]:
        if not isinstance(request, SignedRequest):
            raise InvalidInput("expected a SignedRequest")
        return {"content": SignEnvelope(request=request).model_dump_json().encode(),
                "headers": {"content-type": "application/json"}}

    @staticmethod
    def _parse(model: type[Any], payload: Any) -> Any:
        try:
            return model.model_validate(payload)
        except ValidationError:
            raise MpcError(f"the gateway answered with a malformed {model.__name__}") from None

    def _remember(self, payload: Any, key_id: str, path: str | None) -> KeyInfo:
        info = self._parse(KeyOut, payload).to_key_info()
        if info.key_id != key_id:
            raise MpcError("the gateway answered for another key")
        with self._lock:
            self._keys[(key_id, path)] = info
        return info

    @staticmethod
    def _key_query(path: str | None) -> dict[str, Any]:
        if path is None:
            return {}
        if not isinstance(path, str):
            raise InvalidInput("a derivation path is a string like 'm/0/7'")
        return {"params": {"path": path}}

    # the Signer protocol ----------------------------------------------------------------------------------
    def _trusted_key(self, key_id: str, path: str | None) -> KeyInfo | None:
        """A trusted key, or its child derived here (never from the gateway); None for keys not pinned."""
        master = self._trusted.get(key_id)
        if master is None or path is None:
            return master
        from ..crypto import bip32
        from .signer import child_key_info

        if master.scheme == "ecdsa-secp256k1":
            child = bip32.derive(master.public_key, master.chain_code, path)
            public_key = child.public_key_bytes
        elif master.scheme == "schnorr-bip340":
            child = bip32.derive_bip340(master.public_key, master.chain_code, path)
            public_key = child.xonly
        else:
            raise InvalidInput(f"{master.scheme} keys have no BIP32 derivation")
        return child_key_info(master, {"key_id": key_id, "scheme": master.scheme, "public_key": public_key,
                                       "chain_code": child.chain_code})

    def key_info(self, key_id: str, path: str | None = None) -> KeyInfo:
        """The key's public description (with `path`: its BIP32 child's): from `trusted_keys` when pinned there,
        else from the gateway (cached). The wallet checks every signature against it."""
        with self._lock:
            info = self._keys.get((key_id, path))
        if info is None and (info := self._trusted_key(key_id, path)) is not None:
            return info
        return info or self._remember(self._send("GET", self._key_path(key_id), **self._key_query(path)),
                                      key_id, path)

    async def key_info_async(self, key_id: str, path: str | None = None) -> KeyInfo:
        with self._lock:
            info = self._keys.get((key_id, path))
        if info is None and (info := self._trusted_key(key_id, path)) is not None:
            return info
        return info or self._remember(
            await self._send_async("GET", self._key_path(key_id), **self._key_query(path)), key_id, path)

    def sign_request(self, request: SignedRequest) -> Signature:
        """Submit an already signed request as is."""
        return self._parse(SignatureOut, self._send("POST", "/v1/sign", **self._envelope(request))).to_signature()

    async def sign_request_async(self, request: SignedRequest) -> Signature:
        out = await self._send_async("POST", "/v1/sign", **self._envelope(request))
        return self._parse(SignatureOut, out).to_signature()

    def sign_payload(self, payload: Payload) -> Signature:
        check_payload(self.key_info(payload.key_id), payload)
        return self.sign_request(self.agent.sign(payload))

    async def sign_payload_async(self, payload: Payload) -> Signature:
        check_payload(await self.key_info_async(payload.key_id), payload)
        return await self.sign_request_async(self.agent.sign(payload))


    # lifecycle ----------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the sync connection pool (async pools: `aclose` from their loop, or they go with their loop)."""
        self._client.close()

    async def aclose(self) -> None:
        """Close this loop's async connection pool (the next async call on this loop opens a new one)."""
        with self._lock:
            client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Closes this loop's async pool and the sync one."""
        await self.aclose()
        self.close()

    def __repr__(self) -> str:
        return f"RemoteSigner(url={self.url!r}, agent={self.agent!r})"
