"""Helpers shared by the FROST tests (no tests here): run DKG / signing in one process, tamper with envelopes."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from mpc_ray.protocols import wire
from mpc_ray.protocols.base import Envelope
from mpc_ray.protocols.frost import DkgOutput, DkgParty, SignParty, get_suite
from mpc_ray.sim.router import run_parties


def run_dkg(suite_key: str, n: int, t: int, sid: bytes = b"frost-dkg-test", tamper: Any = None) -> dict[int, DkgOutput]:
    suite = get_suite(suite_key)
    parties = {i: DkgParty(suite, sid, i, range(1, n + 1), t) for i in range(1, n + 1)}
    return run_parties(parties, tamper)  # type: ignore[return-value]


def sign_parties(
    outs: dict[int, DkgOutput], signers: list[int], msg: bytes, sid: bytes = b"frost-sign-test", **kw: Any
) -> dict[int, SignParty]:
    pub = outs[signers[0]].public_package
    suite = pub.suite
    return {i: SignParty(suite, outs[i].key_package, pub, msg, sid, signers, **kw) for i in signers}


def tamper_msg(
    sender: int,
    round_: int,
    msg_type: type,
    change: Callable[[Any], Any],
    *,
    direct: bool = False,
    recipient: int | None = None,
) -> Callable[[Envelope], Envelope]:
    """Play a malicious `sender`: decode its round-`round_` payload, apply `change`, re-encode."""

    def hook(env: Envelope) -> Envelope:
        if env.sender != sender or env.round != round_ or (env.recipient is not None) != direct:
            return env
        if recipient is not None and env.recipient != recipient:
            return env
        msg = wire.decode(env.payload, msg_type)
        return dataclasses.replace(env, payload=wire.encode(change(msg)))

    return hook


def replace_payload(sender: int, round_: int, payload: bytes) -> Callable[[Envelope], Envelope]:
    """Replace every payload `sender` sends in `round_` with raw bytes."""

    def hook(env: Envelope) -> Envelope:
        if env.sender == sender and env.round == round_:
            return dataclasses.replace(env, payload=payload)
        return env

    return hook
