"""A holder's protocol sessions: begin, step, finish and drop, through a table of protocols.

Each protocol name maps to the part of the holder that runs it (`HolderProtocol`): it builds the round machine
from a `BeginRequest` (after its own checks and approvals) and, when the machine is done, stores what it made and
returns the public result. The runner does what every session shares: shape checks, the coordinator's grant, the
committee check, sealing and opening envelopes (under per-session ephemeral keys for `FORWARD_SECURE` protocols),
and wiping a session however it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from ..errors import HolderNotReady, InvalidInput
from ..protocols.base import RoundParty
from .envelope import SealedEnvelope, SessionKeys, open_envelope, seal
from .holder_state import HolderState, Session, check_sid

MAX_OPEN_SESSIONS = 1024
MAX_SESSION_PARTIES = 256
# Sessions whose direct messages carry shares or sub-shares: sealed under per-session ephemeral keys, so that a
# later break-in cannot open their recorded transcript and undo a refresh (node/envelope.py, "Forward secrecy").
# Each has a broadcast-only round 1, which announces the keys.
FORWARD_SECURE = frozenset({"keygen", "frost-dkg", "refresh", "reshare", "reshare-aux"})
# what presign workers run (and identify their failed CGGMP21 runs)
WORKER_PROTOCOLS = ("presign", "dkls23-presign", "identify")


@dataclass
class BeginRequest:
    """Start one protocol session on this holder. `params` holds only public values."""

    protocol: str  # "aux" | "keygen" | "presign" | "identify" | ...
    sid: bytes
    parties: list[int]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepResult:
    sid: bytes
    envelopes: list[SealedEnvelope]
    done: bool = False
    result: Any = None  # public output when done


def check_begin_request(req: Any) -> BeginRequest:
    """Shape checks on a `BeginRequest` from the coordinator. It arrives unpickled, so its dataclass constructor never
    ran: without these, a malformed one would fail later with an untyped error (or hash a list). InvalidInput."""
    if not isinstance(req, BeginRequest):
        raise InvalidInput("expected a BeginRequest")
    check_sid(req.sid)
    if not isinstance(req.protocol, str) or not 0 < len(req.protocol) <= 32:
        raise InvalidInput("protocol must be a short string")
    parties = req.parties
    if (not isinstance(parties, (list, tuple)) or not 1 <= len(parties) <= MAX_SESSION_PARTIES
            or not all(type(p) is int and p >= 1 for p in parties) or len(set(parties)) != len(parties)):
        raise InvalidInput("parties must be a list of distinct party numbers (integers >= 1)")
    if not isinstance(req.params, dict) or not all(isinstance(k, str) for k in req.params):
        raise InvalidInput("params must be a dict with string keys")
    return req


class HolderProtocol(Protocol):
    """A part of the holder that runs protocol sessions (an entry of the protocol table)."""

    def machine(self, req: BeginRequest) -> RoundParty:
        """The round machine of a new session, after this part's own checks (InvalidInput, Unauthorized, ...)."""

    def finish(self, session: Session) -> Any:
        """Store what the finished session made; its public result."""


# (sid, session, error) -> the step result that replaces the error, or None to let it propagate
FailureHandler = Callable[[bytes, Session, BaseException], "StepResult | None"]


class SessionRunner:
    """Runs the sessions of one holder (or presign worker) on `state`, dispatching through `protocols`."""

    def __init__(self, state: HolderState, protocols: Mapping[str, HolderProtocol],
                 admit: Callable[[list[BeginRequest], Any], None], after_failure: FailureHandler) -> None:
        self.state = state
        self.protocols = dict(protocols)  # public: a test may wrap one protocol's machine
        self._admit = admit
        self._after_failure = after_failure

    def begin(self, requests: list[BeginRequest], grant: Any = None) -> list[StepResult]:
        if not isinstance(requests, (list, tuple)) or len(requests) > MAX_OPEN_SESSIONS:
            raise InvalidInput(f"begin takes a list of at most {MAX_OPEN_SESSIONS} requests")
        self._admit([check_begin_request(r) for r in requests], grant)
        try:
            return [self._begin_one(r) for r in requests]
        finally:  # ids a part consumed for these sessions (durable=False): one fsync for all of them, before any
            self.state.flush_ledgers()  # first-round message leaves, also when a later request is refused

    def step(self, batches: list[tuple[bytes, list[SealedEnvelope]]]) -> list[StepResult]:
        return [self._step_one(sid, envs) for sid, envs in batches]

    def drop(self, sids: list[bytes]) -> None:
        for sid in sids:
            self.state.sessions.drop(sid)

    def _begin_one(self, req: BeginRequest) -> StepResult:
        check_begin_request(req)
        st = self.state
        if st.role == "worker" and not set(req.parties) <= set(st.directory):
            st.load_directory()  # the holder may have set it, or added members, after this worker started
        if not st.directory:
            raise HolderNotReady("committee directory not set")
        if st.role == "worker" and req.protocol not in WORKER_PROTOCOLS:
            raise InvalidInput("presign workers run presigning (and identify their failed runs) only")
        if req.sid in st.sessions:
            raise InvalidInput("session id already in use")
        if len(st.sessions) >= MAX_OPEN_SESSIONS:  # whoever can call the actor cannot exhaust this node's memory
            raise InvalidInput(f"{MAX_OPEN_SESSIONS} sessions are open on this holder: finish or drop some first")
        if not set(req.parties) <= set(st.directory) or st.party not in req.parties:
            raise InvalidInput("session parties must be committee members including this holder")
        part = self.protocols.get(req.protocol)
        if part is None:
            raise InvalidInput(f"unknown protocol {req.protocol!r}")
        machine = part.machine(req)
        keys = SessionKeys() if req.protocol in FORWARD_SECURE else None
        st.sessions[req.sid] = Session(req.protocol, machine, dict(req.params), keys)
        return StepResult(req.sid, self._seal(req.protocol, machine.start(), keys))

    def _seal(self, protocol: str, envelopes, keys: SessionKeys | None = None) -> list[SealedEnvelope]:
        st = self.state
        return [
            seal(st.identity, e, protocol, None if e.recipient is None else st.directory[e.recipient], keys)
            for e in envelopes
        ]

    def _step_one(self, sid: bytes, sealed: list[SealedEnvelope]) -> StepResult:
        if not isinstance(sealed, (list, tuple)):
            raise InvalidInput("a step carries a list of sealed envelopes")
        st = self.state
        session = st.sessions.get(check_sid(sid))
        if session is None:
            raise HolderNotReady("unknown or expired session (the holder may have restarted)")
        try:
            envs = [open_envelope(s, me=st.identity, directory=st.directory, expected_protocol=session.protocol,
                                  session=session.keys) for s in sealed]
            out = session.machine.receive(envs)
            if not session.machine.done:
                return StepResult(sid, self._seal(session.protocol, out, session.keys))
            result = self.protocols[session.protocol].finish(session)
        except BaseException as exc:
            answer = self._after_failure(sid, session, exc)  # identification keeps a failed presigning
            if answer is None:
                st.sessions.drop(sid)
                raise
            return answer
        st.sessions.drop(sid)
        return StepResult(sid, [], done=True, result=result)
