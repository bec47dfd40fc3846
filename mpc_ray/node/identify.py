"""Identification on a node: keep a failed presigning, run `IdentifyParty` on it, report whom it names.

When round 4 of a presigning finds its sums wrong although every proof held (`PresignInconsistent`), the holder
(or presign worker) that ran it does not wipe it: identification needs the run whole, its MtA randomness included.
It answers the session with a `PresignFailed` marker instead of an error, so that the other sessions of the batch
go on, and keeps the run for `KEEP_S` seconds at most (`MAX_KEPT` runs at most). The coordinator then begins an
``identify`` session among the same signers (params ``{"presign_sid": <the failed sid>}``, a fresh sid of its
own); it takes the kept run, so each run is identified at most once. Its result is an `IdentifyReport`: the peer
whose values the proofs showed wrong, and the check, or no culprit. A kept run is wiped when identification ends
(however it ends), when the coordinator drops the session, or when `KEEP_S` passes, whichever comes first.

A report is evidence for this party only: the coordinator weighs the reports of all signers
(coordinator/identify.py).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..errors import HolderNotReady, InvalidInput, ProtocolAbort
from ..protocols.ecdsa.identify import IdentifyParty
from ..protocols.ecdsa.presign import PresignInconsistent, PresignParty
from .holder_state import HolderState, Session, check_sid
from .sessions import StepResult

if TYPE_CHECKING:
    from .sessions import BeginRequest

KEEP_S = 120.0  # long enough for the coordinator's identify session right after the presign batch
MAX_KEPT = 64  # a presign batch is 8 sessions; a cheater can fail each of them


@dataclass(frozen=True)
class PresignFailed:
    """A presigning session's result when its round-4 sums failed (`check`, e.g. ``presign.delta_mismatch``)
    although every proof verified: the run is kept here for identification. Public."""

    check: str


@dataclass(frozen=True)
class IdentifyReport:
    """An identify session's result at one party: the peer its checks name (`culprit`, with the failed `check`),
    or None when every peer's values were proven right. Public."""

    culprit: int | None
    check: str = ""
    detail: str = ""


class KeptPresign:
    """A failed `PresignParty` kept unwiped for identification. It takes no more messages: stepping its session
    is refused (and wipes it)."""

    def __init__(self, failed: PresignParty) -> None:
        self.failed = failed
        self.done = False

    def receive(self, envelopes) -> list:
        raise InvalidInput("this presigning failed: only an identify session may use it")

    def wipe(self) -> None:
        self.failed.wipe()


class NodeIdentify(IdentifyParty):
    """`IdentifyParty` whose session wipe (`SessionTable.drop`) also wipes the failed run it identifies."""

    def wipe(self) -> None:
        self.p.wipe()


class Identification:
    """Runs "identify" sessions on `state` (holder or presign worker), and keeps failed presignings for them."""

    PROTOCOLS = ("identify",)

    def __init__(self, state: HolderState) -> None:
        self.state = state
        self._expiry: _Expiry | None = None  # its thread starts with the first kept run

    def after_failure(self, sid: bytes, session: Session, exc: BaseException) -> StepResult | None:
        """The step result that replaces a session's error, or None to let the error propagate: a presigning that
        failed with PresignInconsistent is kept (PresignFailed); an identify session that named a culprit reports
        it."""
        if session.protocol == "presign" and isinstance(exc, PresignInconsistent) \
                and isinstance(session.machine, PresignParty):
            self._keep(sid, session)
            return StepResult(sid, [], done=True, result=PresignFailed(exc.check))
        if session.protocol == "identify" and isinstance(exc, ProtocolAbort):
            self.state.sessions.drop(sid)  # wipes the identified run
            return StepResult(sid, [], done=True, result=IdentifyReport(exc.culprit, exc.check, exc.detail))
        return None

    def _keep(self, sid: bytes, session: Session) -> None:
        sessions = self.state.sessions
        kept = KeptPresign(session.machine)  # type: ignore[arg-type]
        session.machine = kept  # type: ignore[assignment]  # still open under its sid: drop_sessions wipes it
        older = [s for s, x in list(sessions.items()) if isinstance(x.machine, KeptPresign) and s != sid]
        for s in older[: max(0, len(older) + 1 - MAX_KEPT)]:
            sessions.drop(s)
        if self._expiry is None:
            self._expiry = _Expiry(self.expire)
        self._expiry.add(sid, kept)

    def expire(self, sid: bytes, kept: KeptPresign) -> None:
        """Wipe the kept run `kept` of `sid`, unless it was taken or dropped (what the KEEP_S timer does)."""
        session = self.state.sessions.get(sid)
        if session is not None and session.machine is kept:
            self.state.sessions.drop(sid)

    def machine(self, req: BeginRequest) -> NodeIdentify:
        """The identify session for the kept run ``req.params["presign_sid"]``, among exactly its signers."""
        sessions = self.state.sessions
        presign_sid = check_sid(req.params.get("presign_sid"))
        # taken out first (atomic), so that the expiry timer cannot wipe it under the identify session
        session = sessions.pop(presign_sid, None)
        if session is None or not isinstance(session.machine, KeptPresign):
            if session is not None:
                sessions[presign_sid] = session  # a live session of that id: not ours to take
            raise HolderNotReady("no failed presigning of that id is kept here (identified, expired or never failed)")
        failed = session.machine.failed
        if tuple(sorted(req.parties)) != failed.parties:
            sessions[presign_sid] = session
            raise InvalidInput("identification runs among the signers of the failed presigning")
        return NodeIdentify(failed)  # now the identify session's: its end (result, error or drop) wipes it

    def finish(self, session: Session) -> Any:
        """Every peer's values were proven right (from this party's view the fault is its own)."""
        return IdentifyReport(None)


class _Expiry:
    """One thread per holder that wipes each kept run KEEP_S after it failed, unless it was taken or dropped."""

    def __init__(self, expire: Callable[[bytes, KeptPresign], None]) -> None:
        self._expire, self._due, self._n = expire, [], itertools.count()
        self._cv = threading.Condition()
        threading.Thread(target=self._run, daemon=True, name="kept-presign-expiry").start()

    def add(self, sid: bytes, kept: KeptPresign) -> None:
        with self._cv:
            heapq.heappush(self._due, (time.monotonic() + KEEP_S, next(self._n), sid, kept))
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._cv.wait(None if not self._due else self._due[0][0] - time.monotonic())
                _, _, sid, kept = heapq.heappop(self._due)
            try:
                self._expire(sid, kept)
            except Exception:  # noqa: BLE001 - the next runs must still expire; this one's session is gone anyway
                pass
