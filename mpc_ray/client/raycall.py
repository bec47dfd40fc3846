"""Every Ray call of the client goes through here, so that a caller sees only `mpc_ray.errors` types.

Ray raises a remote failure as ``RayTaskError(<cause>)``: an instance of the cause's class too, but its message is
the remote traceback (with ANSI colours), and a coordinator that re-raised a holder's error nests one wrapper in
another. `typed_error` unwraps to the typed error the coordinator or a holder raised, with its own message and fields
(`rule`, `culprit`, `check`); an actor that is gone is `QuorumUnavailable` naming it, a call past its timeout
`RequestTimeout`, and anything else an `MpcError` naming only the exception's type (its message may echo input).

`gather` fetches every ref of a list before it raises the first failure: Ray logs ``Unhandled error`` for each
ref holding an error that is dropped unfetched, so a refusal every signer gave would otherwise be logged as a failure
by the caller's process although the caller got it, typed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayError, RayTaskError

from ..errors import MpcError, QuorumUnavailable
from ..types import Signature
from .signer import RequestTimeout

__all__ = ["gather", "get", "typed_error", "unwrap"]

COORDINATOR = "the coordinator"


def unwrap(exc: BaseException) -> BaseException:
    """The error inside Ray's wrappers: ``RayTaskError(X)`` is an X whose text is the remote traceback, nested when an
    actor re-raised the error of a call it made itself. A wrapper without a cause is returned as it is."""
    while isinstance(exc, RayTaskError) and isinstance(getattr(exc, "cause", None), BaseException):
        exc = exc.cause
    return exc


def typed_error(exc: BaseException, actor: str = COORDINATOR) -> MpcError:
    """The `mpc_ray.errors` error for an exception that came back from a Ray call to `actor` (for messages)."""
    exc = unwrap(exc)
    if isinstance(exc, RayTaskError):  # no cause to report
        return MpcError(f"{actor} failed")
    if isinstance(exc, MpcError):
        return exc
    if isinstance(exc, GetTimeoutError):
        return RequestTimeout(f"{actor} did not answer in time")
    if isinstance(exc, (RayActorError, ActorUnavailableError)):
        return QuorumUnavailable(f"{actor} is unavailable ({type(exc).__name__})")
    return MpcError(f"{actor} failed: {type(exc).__name__}")  # the type only: a message may echo input


def gather(refs: Sequence[Any], timeout: float | None = None) -> list[Any]:
    """`ray.get(refs)`, but every ref that finished is fetched before the first failure (in `refs` order) is raised
    as Ray raised it; refs still running at `timeout` give `GetTimeoutError`."""
    refs = list(refs)
    deadline = None if timeout is None else time.monotonic() + timeout
    out: list[Any] = []
    first: BaseException | None = None
    for ref in refs:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            out.append(ray.get(ref, timeout=left))
        except GetTimeoutError as exc:
            first = first or exc
            break  # the rest are not waited for: the caller's time is up
        except Exception as exc:  # noqa: BLE001 - every failure is fetched (so not logged), the first one raised
            first = first or exc
            out.append(None)
    if first is not None:
        raise first
    return out


def get(ref: Any, timeout: float | None = None, *, actor: str = COORDINATOR) -> Any:
    """`ray.get` of one ref or a list of them (each fetched, see `gather`), raising only typed errors."""
    try:
        if isinstance(ref, (list, tuple)):
            return gather(ref, timeout)
        return ray.get(ref, timeout=timeout)
    except (RayError, MpcError) as exc:
        raise typed_error(exc, actor) from None


def signature_from_wire(scheme: str, out: Any) -> Signature:
    """The coordinator answers ECDSA with (r||s, recovery id) and FROST with `Signature` objects."""
    if isinstance(out, Signature):
        return out
    raw, recovery_id = out
    return Signature.ecdsa(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"), int(recovery_id))
