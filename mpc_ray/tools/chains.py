"""Where the agent tools send what the committee signed: EVM chains through web3, Solana through JSON-RPC.

    EvmChains({8453: Web3(Web3.HTTPProvider(url))})    # or EvmChains.from_urls({8453: url})
    SolanaRpc("https://api.devnet.solana.com")          # getLatestBlockhash, sendTransaction, getSignatureStatuses

Anything the chain says no to (a revert, a fee too low, a bad blockhash, a timeout) is a `ChainError` carrying the
node's own message; those messages hold public chain data only. Solana needs no client library: its JSON-RPC is
three calls over httpx. A `SolanaChain` is anything with ``latest_blockhash()`` and ``send(tx)``: tests pass an
in-process runtime (LiteSVM) the same way.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import httpx
from solders.hash import Hash
from solders.transaction import Transaction, VersionedTransaction

from ..errors import InvalidInput, MpcError
from ..errors import ChainError  # noqa: F401  (old import path)

__all__ = ["ChainError", "EvmChains", "SolanaChain", "SolanaRpc"]


class EvmChains:
    """web3 connections by chain id; each one's ``eth.chain_id`` must be the id it is registered under."""

    def __init__(self, chains: Mapping[int, Any] | None = None) -> None:
        self._chains: dict[int, Any] = {}
        self._checked: set[int] = set()
        for chain_id, w3 in (chains or {}).items():
            if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id < 1:
                raise InvalidInput("EVM chains are registered under their positive integer chain id")
            self._chains[chain_id] = w3

    @classmethod
    def from_urls(cls, urls: Mapping[int, str]) -> EvmChains:
        try:
            from web3 import Web3
        except ImportError:
            raise InvalidInput("sending EVM transactions needs web3 (pip install 'mpc-ray[mcp]')") from None
        return cls({cid: Web3(Web3.HTTPProvider(url)) for cid, url in urls.items()})

    def __contains__(self, chain_id: int) -> bool:
        return chain_id in self._chains

    def ids(self) -> list[int]:
        return sorted(self._chains)

    def get(self, chain_id: int) -> Any:
        """The web3 of `chain_id`, after checking once that the endpoint is that chain (a wrong RPC URL would
        otherwise have us sign for one chain and broadcast to another)."""
        w3 = self._chains.get(chain_id)
        if w3 is None:
            raise InvalidInput(f"no RPC endpoint for chain {chain_id}; configured: {self.ids()}")
        if chain_id not in self._checked:
            actual = evm_call(lambda: int(w3.eth.chain_id))
            if actual != chain_id:
                raise ChainError(f"the endpoint registered for chain {chain_id} serves chain {actual}")
            self._checked.add(chain_id)
        return w3


def evm_call(fn: Any) -> Any:
    """Run one web3 call; what the chain or the connection raises becomes a `ChainError` with its message."""
    try:
        return fn()
    except MpcError:
        raise
    except Exception as e:  # noqa: BLE001 - web3, eth-tester and the providers raise many types
        raise ChainError(f"{type(e).__name__}: {e}"[:2000]) from None


@runtime_checkable
class SolanaChain(Protocol):
    def latest_blockhash(self) -> Hash: ...

    def send(self, tx: Transaction | VersionedTransaction) -> dict[str, Any]:
        """Submit a signed transaction; {"signature": base58, "status": ..., ...} or ChainError."""
        ...


class SolanaRpc:
    """A Solana cluster's JSON-RPC (httpx): the blockhash, sending and confirmation at `commitment`."""

    def __init__(self, url: str, *, commitment: str = "confirmed", timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if commitment not in ("processed", "confirmed", "finalized"):
            raise InvalidInput("commitment is processed, confirmed or finalized")
        self.commitment = commitment
        self.timeout = float(timeout)
        self._http = httpx.Client(base_url=url, timeout=self.timeout, transport=transport)
        self._id = 0

    def _rpc(self, method: str, params: list[Any]) -> Any:
        self._id += 1
        try:
            response = self._http.post("", json={"jsonrpc": "2.0", "id": self._id, "method": method,
                                                 "params": params})
            doc = response.json()
        except (httpx.HTTPError, ValueError) as e:
            raise ChainError(f"Solana RPC {method}: {type(e).__name__}") from None
        if not isinstance(doc, dict) or "error" in doc or "result" not in doc:
            err = doc.get("error") if isinstance(doc, dict) else None
            message = err.get("message") if isinstance(err, dict) else "malformed answer"
            raise ChainError(f"Solana RPC {method}: {str(message)[:2000]}")
        return doc["result"]

    def latest_blockhash(self) -> Hash:
        out = self._rpc("getLatestBlockhash", [{"commitment": self.commitment}])
        try:
            return Hash.from_string(out["value"]["blockhash"])
        except (KeyError, TypeError, ValueError):
            raise ChainError("Solana RPC getLatestBlockhash: malformed answer") from None

    def send(self, tx: Transaction | VersionedTransaction) -> dict[str, Any]:
        wire = base64.b64encode(bytes(tx)).decode()
        signature = self._rpc("sendTransaction", [wire, {"encoding": "base64",
                                                        "preflightCommitment": self.commitment}])
        deadline = time.monotonic() + self.timeout
        while True:
            value = self._rpc("getSignatureStatuses", [[signature], {"searchTransactionHistory": False}])
            status = (value.get("value") or [None])[0] if isinstance(value, dict) else None
            if isinstance(status, dict):
                if status.get("err") is not None:
                    raise ChainError(f"Solana transaction {signature} failed: {status['err']}")
                level = status.get("confirmationStatus")
                order = ("processed", "confirmed", "finalized")
                if level in order and order.index(level) >= order.index(self.commitment):
                    return {"signature": signature, "status": level, "slot": status.get("slot")}
            if time.monotonic() > deadline:
                return {"signature": signature, "status": "pending", "slot": None}
            time.sleep(0.4)

    def close(self) -> None:
        self._http.close()
