"""The Ray actor in front of a party's vault: the holder's entry points, each forwarded over the vault's socket.

`VaultProxy` takes the place of `HolderActor` (node/actor.py) where the holder runs in a vault (node/vault.py): the
same names (`ENTRY_POINTS`), pinned to the party's node the same way, restarted by Ray the same way. It holds the
party number, the socket path and a connection, nothing secret, so code that Ray runs in or beside it finds nothing
to take. `node_labels` is answered here: the proxy is what Ray placed on the node.

`VaultClient` is the connection (also used without Ray: tests, benchmarks, `start_vault`). One call at a time;
each waits up to `timeout_s` for its answer. A connection the vault closed (it restarted) is noticed before the next
request is sent and opened again; a call is never sent twice, so a signature that may have happened is reported as
`PartyUnavailable`, never retried. Errors come back as their own types (node/vault_codec.py).
"""

from __future__ import annotations

import select
import socket
import threading
import time
from typing import Any, Callable

from ..errors import InvalidInput, PartyUnavailable
from .actor import ENTRY_POINTS
from .actor_runtime import settle_gc_for_latency
from .holder import ShareHolder
from .vault_codec import MAX_FRAME, bind, decode_response, encode_request, recv_frame, send_frame

__all__ = ["VaultClient", "VaultProxy"]

DEFAULT_TIMEOUT_S = 900.0  # an aux-info round at level 128 takes minutes on a busy node; the caller's own timeout
CONNECT_WAIT_S = 2.0  # how long a call waits for a vault that is (re)starting before it reports the party down


class VaultClient:
    """Calls on the vault of `party` at `path`."""

    def __init__(self, path: str, party: int, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 connect_wait_s: float = CONNECT_WAIT_S) -> None:
        self.path, self.party = path, party
        self._timeout_s, self._connect_wait_s = timeout_s, connect_wait_s
        self._sock: socket.socket | None = None
        self._next_id = 0
        self._lock = threading.Lock()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        positional = bind(method, args, kwargs)  # InvalidInput for an unknown method or arguments that do not fit
        with self._lock:
            self._next_id += 1
            call_id = self._next_id
            body = encode_request(call_id, method, positional)
            if len(body) > MAX_FRAME:
                raise InvalidInput(f"{method}: the request is over the vault's frame limit of {MAX_FRAME} bytes")
            ok, value = self._exchange(call_id, method, body)
        if not ok:
            raise value
        return value

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _exchange(self, call_id: int, method: str, body: bytes) -> tuple[bool, Any]:
        if self._sock is not None and not _idle(self._sock):
            self._drop()  # the vault closed it (it restarted) since the last call
        if self._sock is None:
            self._sock = self._connect()
            ok, party = self._roundtrip(0, "ping", encode_request(0, "ping", []))
            if not ok or party != self.party:  # a socket path that leads to another party's vault
                self._drop()
                raise party if not ok else InvalidInput(f"the vault at {self.path} serves party {party}")
        return self._roundtrip(call_id, method, body)

    def _roundtrip(self, call_id: int, method: str, body: bytes) -> tuple[bool, Any]:
        try:
            send_frame(self._sock, body)
            answer = recv_frame(self._sock)
            if answer is None:
                raise ConnectionResetError("closed")
            return decode_response(answer, call_id, method)
        except (OSError, InvalidInput) as exc:  # gone or out of step: the next call opens another connection
            self._drop()
            raise PartyUnavailable(self.party, f"its vault did not answer {method} ({type(exc).__name__})") from None

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + self._connect_wait_s
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
                sock.settimeout(self._timeout_s)
                return sock
            except OSError as exc:
                sock.close()
                if time.monotonic() >= deadline:
                    raise PartyUnavailable(self.party, f"its vault is not reachable ({type(exc).__name__})") from None
                time.sleep(0.05)

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _idle(sock: socket.socket) -> bool:
    """True while nothing can be read from the connection between calls; readable means the vault closed it (or
    sent something nobody asked for)."""
    poller = select.poll()  # not select(): a Ray worker's descriptors may be numbered past FD_SETSIZE
    poller.register(sock, select.POLLIN)
    return not poller.poll(0)


def _forward(name: str) -> Callable[..., Any]:
    def call(self: VaultProxy, *args: Any, **kwargs: Any) -> Any:
        return self._client.call(name, *args, **kwargs)

    call.__name__ = name
    call.__doc__ = getattr(ShareHolder, name).__doc__
    return call


class VaultProxy:
    """The entry points of party `party`'s holder, served by its vault at `socket_path` (wrap with `ray.remote`)."""

    def __init__(self, party: int, socket_path: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._client = VaultClient(socket_path, party, timeout_s=timeout_s)
        settle_gc_for_latency()

    node_labels = ShareHolder.node_labels  # where Ray placed this proxy; it uses nothing of the holder


for _name in ENTRY_POINTS:
    if _name != "node_labels":
        setattr(VaultProxy, _name, _forward(_name))
