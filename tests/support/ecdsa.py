"""Shared fixtures for the ECDSA protocol tests: fixture aux info and a message-tampering helper."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from mpc_ray.protocols.base import Envelope
from mpc_ray.protocols.wire import decode, encode


def tamper_message(round_no: int, sender: int, msg_type: type, change: Callable[[Any], Any],
                   recipient: int | None | str = "any") -> Callable[[Envelope], Envelope]:
    """A `run_parties` tamper hook: party `sender` sends `change(message)` instead of its round message."""

    def hook(env: Envelope) -> Envelope:
        if env.round == round_no and env.sender == sender and (recipient == "any" or env.recipient == recipient):
            try:
                msg = decode(env.payload, msg_type)
            except Exception:
                return env  # the other kind (broadcast vs direct) of this round
            return dataclasses.replace(env, payload=encode(change(msg)))
        return env

    return hook


def replace_payload(round_no: int, sender: int, payload: bytes) -> Callable[[Envelope], Envelope]:
    def hook(env: Envelope) -> Envelope:
        if env.round == round_no and env.sender == sender:
            return dataclasses.replace(env, payload=payload)
        return env

    return hook


def with_field(obj: Any, path: str, value: Any) -> Any:
    """dataclasses.replace along a dotted path, e.g. with_field(msg, "proof.z1", 5)."""
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(obj, **{head: value})
    return dataclasses.replace(obj, **{head: with_field(getattr(obj, head), rest, value)})
