"""The holder side of DKLs23 ECDSA sessions (protocols/dkls23, docs/dkls23.md): the pairwise setup and presigning.

Protocols "dkls23-setup" and "dkls23-presign" (node/sessions.py's table), for keys made with ``protocol="dkls23"``
(node/ecdsa_holder.py: the same Feldman DKG as CGGMP21, no aux info). Signing with the stored presignatures is
node/authorized.py's, on a principal's request, as for CGGMP21 (node/hd.py `ecdsa_online`).

- **Setup**, once per key and epoch, among every party of the key, holders only: base OTs both ways per pair, the
  OT-extension setups and the zero-sharing seeds, kept in the encrypted store (`DKLs23SetupRecord`, explicit
  serialisation) with the key's epoch. A refresh or resharing moves the epoch: presigning then waits for a new setup.
  Every executor reads the record from the store for every session, so it follows a new epoch's setup and the
  retired pairs at once (workers re-read the key share when the epoch moved: EcdsaHolder.current_key); only the
  parse is kept, for as long as the stored bytes stay the same (any write of the record changes them).
- **Presigning**, on the coordinator's grant, on the holder or on presign worker k of every signer's node: rounds 1-2
  of DKLs23 among a signer set; the presignature goes to the vault (a worker: to the store entry the holder's vault
  reads) under the key's presignature kind, tagged "dkls23", with the same guard against an epoch switch as
  CGGMP21's.
- **Correlation reuse**: a KOS extension id used twice with one setup reveals the choice bits (and the sender's
  pads). Every executor of a node (the holder, each presign worker) loads the same stored setup, so the guard is:
  1. each executor has its own durable record of the sessions it ran: the holder's ledger, or worker k's own ledger
     file that only it writes (`HolderState.executor_ledger`);
  2. a session's presignature id, which is the DKLs23 machine's session id and so fixes every extension id of the
     session (protocols/dkls23/sign.py: ``dkls23/rvole/`` + H(presignature id, signers), the pair and direction in
     the OT context), is `presignature_id` (session id, {signer: executor}): each side puts its own true executor
     name in and takes the peers' from the session's declared ``executor`` param (InvalidInput if the declaration
     names another executor for this one);
  3. before round 1 leaves, the executor consumes `extension_guard_id` (presignature id) in its own record (one
     fsync per ``begin`` call, node/sessions.py), AlreadyConsumed if it is there already.
  So two sessions of one party with an equal extension id toward a peer have an equal presignature id, hence the
  same session id run on the same executor (its own name is in the hash), whose record refuses the second, also
  after a restart; a session id sent to the holder and to a worker (or to two workers) gives two presignature ids
  and so different extension ids. A declaration that differs between the signers gives them different machine
  session ids: the base class refuses the first message of another session (``dkls23.sign.wrong_session``) before
  any OT check runs, so a coordinator cannot make an honest pair fail a check and retire.
- **Backups** carry no DKLs23 setup (backup.py leaves the ``dkls23-setup-`` entries out, and a restore ignores
  them): the workers' records are not in a backup, nor the holder's ids consumed after it, so a restored setup could
  meet a replayed session id. A restore onto the same disk keeps the node's own setup and records; onto a new disk the
  key presigns with DKLs23 again after its next setup (a refresh runs one).
- **Retirement**: a failed KOS or multiplication check (``dkls23.ote.kos_check``, ``dkls23.rvole.check``) retires
  the pair with the culprit in the stored setup, by whichever executor saw it (all of them share the pair's OT
  secrets), under the node's exclusive lifecycle lock (a read-modify-write: no retirement lost to a concurrent one)
  and only if the record still holds the setup the session used (a newer setup is not retired for an old one's
  failure). It is not offered another guess after a restart, nor on another executor; the key presigns without that
  peer until a new setup. Sessions already past round 1 with that peer finish or fail on their own copy: at most the
  sessions in flight (a begin batch per executor) get a guess each.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Mapping

from ..crypto.ot._common import hash_parts, u32
from ..errors import HolderNotReady, InvalidInput, ProtocolAbort, StaleEpoch
from ..protocols.base import RoundParty
from ..protocols.dkls23.setup import DKLs23Setup, SetupOutput
from ..protocols.dkls23.sign import DKLs23PresignParty
from ..protocols.ecdsa.keygen import KeyShare
from ..protocols.wire import encode, decode
from .holder_state import HolderState, Session, check_key_id
from .records import DKLS23, DKLs23SetupRecord, dkls23_presignature_to_bytes

if TYPE_CHECKING:
    from .ecdsa_holder import EcdsaHolder
    from .sessions import BeginRequest

SETUP, PRESIGN = "dkls23-setup", "dkls23-presign"
# a failure of these lets the culprit learn a bit of the honest side's OT secrets: no second try with this setup
RETIRING_CHECKS = frozenset({"dkls23.ote.kos_check", "dkls23.rvole.check"})


def setup_entry(key_id: str) -> str:
    return f"dkls23-setup-{key_id}"


def presignature_id(sid: bytes, executors: Mapping[int, str]) -> bytes:
    """The 32-byte presignature id (and the DKLs23 machine's session id) of a presigning session `sid` run by
    `executors` ({signer: "holder" | "worker-<k>"}): it fixes the session's OT-extension ids (module docstring)."""
    return hash_parts(b"mpc-ray/dkls23-presignature-id", sid,
                      *(u32(p) + executors[p].encode() for p in sorted(executors)))


def extension_guard_id(pid: bytes) -> bytes:
    """The ledger id that marks presignature id `pid` as used with this node's OT-extension setups."""
    return hashlib.sha256(b"mpc-ray/dkls23-extension-ids" + pid).digest()


def declared_executors(req: BeginRequest, me: str | None) -> dict[int, str]:
    """{signer: executor} of a presigning session: the ``executor`` param (default "holder") names the executor of
    every signer's node; InvalidInput unless it names this one (`me`)."""
    declared = req.params.get("executor", "holder")
    if me is None or declared != me:
        raise InvalidInput(f"the session is declared for another executor than this one ({me})")
    return {p: declared for p in req.parties}


def _setup_sid(sid: bytes, key_id: str, epoch: int) -> bytes:
    """The setup id inside every OT context: bound to the key and epoch (at most 255 bytes: kos.py)."""
    return b"dkls23-setup|" + hashlib.sha256(sid).digest() + b"|" + key_id.encode() + b"|" + str(epoch).encode()


class _HolderPresign(DKLs23PresignParty):
    """`DKLs23PresignParty` on a holder: retires the pair with a peer whose OT or multiplication check failed, and
    wipes its secrets when the session is dropped."""

    def __init__(self, part: DKLs23Holder, key_id: str, pid: bytes, key: KeyShare, setup: SetupOutput,
                 stamp: bytes, signers: list[int]) -> None:
        super().__init__(pid, key, setup, signers)
        self.key_id, self.key = key_id, key
        self._part, self._stamp = part, stamp

    def receive(self, envelopes):
        try:
            return super().receive(envelopes)
        except ProtocolAbort as exc:
            if exc.check in RETIRING_CHECKS and exc.culprit in self.others:
                self._part.retire(self.key_id, exc.culprit, self._stamp)
            raise

    def wipe(self) -> None:
        for name in ("_r", "_phi", "_sk", "_c_u", "_c_v", "_bob"):
            if hasattr(self, name):
                setattr(self, name, None)


class DKLs23Holder:
    """Runs "dkls23-setup" (holder only) and "dkls23-presign" (holder or presign worker) sessions on `state`."""

    PROTOCOLS = (SETUP, PRESIGN)

    def __init__(self, state: HolderState, ecdsa: EcdsaHolder) -> None:
        self.state = state
        self._ecdsa = ecdsa  # its epoch guard around storing a presignature
        # key id -> (the stored record's digest, its epoch, its setup less retired pairs, its stamp): the last parse
        # (a digest, not the decrypted record: one copy of the OT secrets in memory is enough)
        self._parsed: dict[str, tuple[bytes, int, SetupOutput, bytes]] = {}

    # sessions -------------------------------------------------------------------------------------------------
    def machine(self, req: BeginRequest) -> RoundParty:
        from .ecdsa_holder import require_protocol

        st = self.state
        key_id = check_key_id(req.params.get("key_id"))
        key = self._ecdsa.current_key(key_id)
        require_protocol(st, key_id, DKLS23)
        if req.protocol == SETUP:
            st.require_holder("the DKLs23 setup is the holder's: presign workers read it from the store")
            if sorted(req.parties) != list(key.parties):
                raise InvalidInput("a DKLs23 setup runs among every party of the key")
            epoch, rec = st.epoch(key_id), self._record(key_id)
            if rec is not None and rec.epoch == epoch and not rec.retired:
                raise InvalidInput("the key has a DKLs23 setup for its epoch already")
            return DKLs23Setup(_setup_sid(req.sid, key_id, epoch), st.party, req.parties)
        pid = presignature_id(req.sid, declared_executors(req, st.executor))
        ledger = st.executor_ledger()
        setup, stamp = self._current_setup(key_id)
        machine = _HolderPresign(self, key_id, pid, key, setup, stamp, list(req.parties))  # its checks first
        # AlreadyConsumed if reused; written with the others of this begin call before round 1 leaves (sessions.py)
        ledger.consume_many([extension_guard_id(pid)], durable=False)
        return machine

    def finish(self, session: Session) -> Any:
        st, out = self.state, session.machine.output
        key_id = session.params["key_id"]
        if session.protocol == SETUP:
            epoch = int(session.machine.sid.rsplit(b"|", 1)[1])
            with st.lifecycle_lock(exclusive=False):
                if st.epoch(key_id) != epoch:
                    raise StaleEpoch("the key moved to a new epoch during its DKLs23 setup; run it again")
                parties = sorted(session.machine.parties)
                st.store.put(setup_entry(key_id), encode(DKLs23SetupRecord(epoch, parties, out.to_secret_bytes(), [])))
            return {"key_id": key_id, "epoch": epoch, "parties": parties}
        m: _HolderPresign = session.machine
        self._ecdsa.store_presignature(key_id, m.key, out.public.presignature_id, dkls23_presignature_to_bytes(out))
        return encode(out.public)

    # the stored setup ------------------------------------------------------------------------------------------
    def _record(self, key_id: str) -> DKLs23SetupRecord | None:
        raw = self.state.store.get(setup_entry(key_id))
        return decode(raw, DKLs23SetupRecord) if raw is not None else None

    def has_setup(self, key_id: str) -> bool:
        """True if the key has a DKLs23 setup for its current epoch."""
        rec = self._record(check_key_id(key_id))
        return rec is not None and rec.epoch == self.state.epoch(key_id)

    def setup(self, key_id: str) -> SetupOutput:
        """The key's setup for its current epoch, read from the store (each session gets its own copy: the
        in-memory record of used extension ids is per object, the durable one is the executor's ledger), less
        retired pairs."""
        return self._current_setup(key_id)[0]

    def _current_setup(self, key_id: str) -> tuple[SetupOutput, bytes]:
        """(`setup`, a digest naming the stored setup it came from). The record is read for every session (another
        executor may have retired a pair or stored a new setup); it is parsed again only when its bytes changed."""
        raw, epoch = self.state.store.get(setup_entry(key_id)), self.state.epoch(key_id)
        digest = hashlib.sha256(raw).digest() if raw is not None else b""
        parsed = self._parsed.get(key_id)
        if parsed is None or parsed[0] != digest:
            self._parsed.pop(key_id, None)
            rec = decode(raw, DKLs23SetupRecord) if raw is not None else None
            if rec is not None and rec.epoch == epoch:
                setup = SetupOutput.from_secret_bytes(rec.setup)
                if setup.party != self.state.party:
                    raise InvalidInput("the stored DKLs23 setup is another party's")
                parsed = self._parsed[key_id] = (digest, rec.epoch,
                                                 setup.without(rec.retired) if rec.retired else setup, _stamp(rec))
        if parsed is None or parsed[0] != digest or parsed[1] != epoch:
            raise HolderNotReady(f"no DKLs23 setup of key {key_id!r} for its current epoch: run dkls23-setup")
        return parsed[2].fresh(), parsed[3]  # each session its own record of used extension ids

    def retire(self, key_id: str, peer: int, stamp: bytes | None = None) -> None:
        """Retire the pair with `peer` in the stored setup (after a failed OT-extension or multiplication check);
        with `stamp`, only if the store still holds that setup. Any executor of the node may: exclusive lock."""
        with self.state.lifecycle_lock(exclusive=True):
            rec = self._record(key_id)
            if rec is not None and peer not in rec.retired and stamp in (None, _stamp(rec)):
                retired = sorted({*rec.retired, peer})
                self.state.store.put(setup_entry(key_id), encode(DKLs23SetupRecord(rec.epoch, rec.parties, rec.setup,
                                                                                  retired)))


def _stamp(rec: DKLs23SetupRecord) -> bytes:
    return hashlib.sha256(b"mpc-ray/dkls23-setup-stamp" + rec.setup).digest()
