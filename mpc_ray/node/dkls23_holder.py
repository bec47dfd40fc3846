"""The holder side of DKLs23 ECDSA sessions (protocols/dkls23, docs/dkls23.md): the pairwise setup and presigning.

Protocols "dkls23-setup" and "dkls23-presign" (node/sessions.py's table), for keys made with ``protocol="dkls23"``
(node/ecdsa_holder.py: the same Feldman DKG as CGGMP21, no aux info). Signing with the stored presignatures is
node/authorized.py's, on a principal's request, as for CGGMP21 (node/hd.py `ecdsa_online`).

- **Setup**, once per key and epoch, among every party of the key: base OTs both ways per pair, the OT-extension
  setups and the zero-sharing seeds, kept in the encrypted store (`DKLs23SetupRecord`, explicit serialisation) with
  the key's epoch. A refresh or resharing moves the epoch: presigning then waits for a new setup.
- **Presigning**, on the coordinator's grant, holders only (not presign workers): rounds 1-2 of DKLs23 among a signer
  set; the presignature goes to the vault under the key's presignature kind, tagged "dkls23", with the same guard
  against an epoch switch as CGGMP21's. Its id (the machine's session id) is a hash of the session id.
- **Correlation reuse**: a KOS extension id used twice with one setup reveals the choice bits (and the sender's
  pads). The sans-I/O setup refuses that within one process; across restarts (the setup is reloaded from the store)
  the holder consumes an id derived from the presignature id in its durable ledger before round 1 leaves (one
  fsync per ``begin`` call, node/sessions.py), so a replayed session id is refused (AlreadyConsumed) whatever the
  coordinator sends. A restored backup keeps it: the ledger's ids are merged, never dropped.
- **Retirement**: a failed KOS or multiplication check (``dkls23.ote.kos_check``, ``dkls23.rvole.check``) retires
  the pair with the culprit in the stored setup, so it is not offered another guess after a restart either; the key
  presigns without that peer until a new setup.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from ..errors import HolderNotReady, InvalidInput, ProtocolAbort, StaleEpoch
from ..protocols.base import RoundParty
from ..protocols.dkls23.setup import DKLs23Setup, SetupOutput
from ..protocols.dkls23.sign import DKLs23PresignParty
from ..protocols.ecdsa.keygen import KeyShare
from ..protocols.wire import encode, decode
from .holder_state import HolderState, Session, check_key_id, presig_kind
from .records import DKLS23, DKLs23SetupRecord, dkls23_presignature_to_bytes

if TYPE_CHECKING:
    from .ecdsa_holder import EcdsaHolder
    from .sessions import BeginRequest

SETUP, PRESIGN = "dkls23-setup", "dkls23-presign"
# a failure of these lets the culprit learn a bit of the honest side's OT secrets: no second try with this setup
RETIRING_CHECKS = frozenset({"dkls23.ote.kos_check", "dkls23.rvole.check"})


def setup_entry(key_id: str) -> str:
    return f"dkls23-setup-{key_id}"


def presignature_id(sid: bytes) -> bytes:
    """The 32-byte presignature id (and the DKLs23 machine's session id) of a presigning session."""
    return hashlib.sha256(b"mpc-ray/dkls23-presignature-id" + sid).digest()


def extension_guard_id(pid: bytes) -> bytes:
    """The ledger id that marks presignature id `pid` as used with this node's OT-extension setups."""
    return hashlib.sha256(b"mpc-ray/dkls23-extension-ids" + pid).digest()


def _setup_sid(sid: bytes, key_id: str, epoch: int) -> bytes:
    """The setup id inside every OT context: bound to the key and epoch (at most 255 bytes: kos.py)."""
    return b"dkls23-setup|" + hashlib.sha256(sid).digest() + b"|" + key_id.encode() + b"|" + str(epoch).encode()


class _HolderPresign(DKLs23PresignParty):
    """`DKLs23PresignParty` on a holder: retires the pair with a peer whose OT or multiplication check failed, and
    wipes its secrets when the session is dropped."""

    def __init__(self, part: DKLs23Holder, key_id: str, pid: bytes, key: KeyShare, setup: SetupOutput,
                 signers: list[int]) -> None:
        super().__init__(pid, key, setup, signers)
        self.key_id, self.key = key_id, key
        self._part = part

    def receive(self, envelopes):
        try:
            return super().receive(envelopes)
        except ProtocolAbort as exc:
            if exc.check in RETIRING_CHECKS and exc.culprit in self.others:
                self._part.retire(self.key_id, exc.culprit)
            raise

    def wipe(self) -> None:
        for name in ("_r", "_phi", "_sk", "_c_u", "_c_v", "_bob"):
            if hasattr(self, name):
                setattr(self, name, None)


class DKLs23Holder:
    """Runs "dkls23-setup" and "dkls23-presign" sessions on `state` (holder only)."""

    PROTOCOLS = (SETUP, PRESIGN)

    def __init__(self, state: HolderState, ecdsa: EcdsaHolder) -> None:
        self.state = state
        self._ecdsa = ecdsa  # its epoch guard around storing a presignature

    # sessions -------------------------------------------------------------------------------------------------
    def machine(self, req: BeginRequest) -> RoundParty:
        from .ecdsa_holder import require_protocol

        st = self.state
        st.require_holder("presign workers do not run DKLs23: its extension ids are kept in the holder's ledger")
        key_id = check_key_id(req.params.get("key_id"))
        key = st.keys.key(key_id)
        require_protocol(st, key_id, DKLS23)
        if req.protocol == SETUP:
            if sorted(req.parties) != list(key.parties):
                raise InvalidInput("a DKLs23 setup runs among every party of the key")
            epoch, rec = st.epoch(key_id), self._record(key_id)
            if rec is not None and rec.epoch == epoch and not rec.retired:
                raise InvalidInput("the key has a DKLs23 setup for its epoch already")
            return DKLs23Setup(_setup_sid(req.sid, key_id, epoch), st.party, req.parties)
        setup = self.setup(key_id)
        pid = presignature_id(req.sid)
        machine = _HolderPresign(self, key_id, pid, key, setup, list(req.parties))  # its checks before the ledger's
        # AlreadyConsumed if reused; written with the others of this begin call before round 1 leaves (sessions.py)
        st.ledger.consume_many([extension_guard_id(pid)], durable=False)
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
        with self._ecdsa.presignature_guard(key_id, m.key):
            st.vault.put(presig_kind(key_id), out.public.presignature_id, dkls23_presignature_to_bytes(out))
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
        in-memory record of used extension ids is per object, the durable one is the ledger), less retired pairs."""
        rec = self._record(key_id)
        if rec is None or rec.epoch != self.state.epoch(key_id):
            raise HolderNotReady(f"no DKLs23 setup of key {key_id!r} for its current epoch: run dkls23-setup")
        setup = SetupOutput.from_secret_bytes(rec.setup)
        if setup.party != self.state.party:
            raise InvalidInput("the stored DKLs23 setup is another party's")
        return setup.without(rec.retired) if rec.retired else setup

    def retire(self, key_id: str, peer: int) -> None:
        """Retire the pair with `peer` in the stored setup (after a failed OT-extension or multiplication check)."""
        with self.state.lifecycle_lock(exclusive=False):
            rec = self._record(key_id)
            if rec is not None and peer not in rec.retired:
                retired = sorted({*rec.retired, peer})
                self.state.store.put(setup_entry(key_id), encode(DKLs23SetupRecord(rec.epoch, rec.parties, rec.setup,
                                                                                  retired)))
