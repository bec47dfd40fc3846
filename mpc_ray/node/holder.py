"""The share holder: one per party, a long-lived Ray actor pinned to its party's node.

It owns everything secret of its party — node identity, aux info, key shares, presignature shares — in an
encrypted store on its node, and runs protocol rounds for the coordinator, which only ever sees signed envelopes
(direct ones encrypted to their recipient) and public results. A presignature share is consumed durably in the
ledger before its partial signature leaves this process.

`ShareHolder` is a plain class, so it can be tested without Ray; `mpc_ray.coordinator` wraps it with `ray.remote`.
It is a facade over parts that each own their state and share only a `HolderState` (node/holder_state.py):

- `EcdsaHolder` (ecdsa_holder.py): aux info, key generation and presigning sessions;
- `DKLs23Holder` (dkls23_holder.py): the DKLs23 setup and presigning sessions of keys made for DKLs23;
- `FrostSigner` / `FrostHolder` (frost_holder.py): FROST key generation, nonce commitments and signature shares;
- `KeyLifecycle` (lifecycle.py): epochs, refresh and resharing, commit, new committee members;
- `Authorization` (authorized.py): the coordinator's session grants, principals, policies, audited signing;
- `HolderBackup` (backup.py): encrypted backup and restore;
- `Identification` (identify.py): failed presignings kept and identified;
- `SessionRunner` (sessions.py): begin / step / drop through the table of protocols the parts run.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from ..errors import HolderNotReady, InvalidInput  # noqa: F401  (HolderNotReady: old import path)
from ..protocols.ecdsa.aux_info import AuxInfo
from ..protocols.ecdsa.keygen import KeyShare
from ..requests.grants import check_verify_key
from .actor_runtime import settle_gc_for_latency
from .authorized import Authorization
from .backup import HolderBackup, restore_params
from .dkls23_holder import DKLs23Holder
from .ecdsa_holder import EcdsaHolder
from .envelope import SealedEnvelope
from .frost_holder import FrostHolder, FrostSigner
from .holder_state import HolderState, check_key_id, check_sid, presig_kind
from .identify import Identification
from .identity import NodeIdentityPublic
from .inventory import key_views
from .lifecycle import KeyLifecycle
from .principals import RequestKind
from .sessions import BeginRequest, HolderProtocol, SessionRunner, StepResult

__all__ = ["BeginRequest", "HolderNotReady", "ShareHolder", "StepResult", "check_key_id", "check_sid"]


class ShareHolder:
    """One party's share holder. Its state directory stands for the party's own node disk."""

    def __init__(
        self, party: int, state_dir: str, *, allow_test_keys: bool = False, kdf: str = "interactive", role: str = "holder",
        worker: int | None = None,
    ) -> None:
        if role not in ("holder", "worker"):
            raise InvalidInput("role must be 'holder' or 'worker'")
        self.party, self.role = party, role
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state = st = HolderState(party, self.dir, self._node_secret(), kdf=kdf, role=role,
                                      allow_test_keys=allow_test_keys, worker=worker)
        self.frost_signer = FrostSigner(st)
        self.authorization = Authorization(st, self.frost_signer)
        self.ecdsa = EcdsaHolder(st, self.authorization)
        self.dkls23 = DKLs23Holder(st, self.ecdsa)
        self.frost = FrostHolder(st, self.authorization, self.frost_signer)
        self.lifecycle = KeyLifecycle(st, self.authorization)
        self.identification = Identification(st)
        self.backups = HolderBackup(st, self.authorization)
        parts: tuple[Any, ...] = (self.ecdsa, self.dkls23, self.frost, self.lifecycle, self.identification)
        table: dict[str, HolderProtocol] = {name: part for part in parts for name in part.PROTOCOLS}
        self.sessions_runner = SessionRunner(st, table, self.authorization.admit_begin,
                                             self.identification.after_failure)
        settle_gc_for_latency()  # in a Ray actor only: start-up state out of the collector's scans

    def _node_secret(self) -> bytes:
        """The node's own secret (a file beside the store stands in for the node's secret manager)."""
        env = os.environ.get(f"MPC_RAY_NODE_SECRET_{self.party}")
        if env:
            return bytes.fromhex(env)
        path = self.dir / "node.secret"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
                f.flush()
                os.fsync(f.fileno())
        return path.read_bytes()

    # the state the parts share, as attributes of the holder (tests and tools read them) -------------------
    store = property(lambda self: self.state.store)
    ledger = property(lambda self: self.state.ledger)
    vault = property(lambda self: self.state.vault)
    identity = property(lambda self: self.state.identity)
    directory = property(lambda self: self.state.directory)
    coordinator_key = property(lambda self: self.state.coordinator_key)
    sessions = property(lambda self: self.state.sessions)
    allow_test_keys = property(lambda self: self.state.allow_test_keys)

    @property
    def protocols(self) -> dict[str, HolderProtocol]:
        """The protocol table: protocol name -> the part that builds its round machine and finishes its sessions."""
        return self.sessions_runner.protocols

    def restart(self) -> None:
        """What a restart of this process would do to the holder's memory, its files kept: the authorization part
        flushed and closed (reopened on next use, replaying its journal), the grant gate emptied, the key caches
        dropped and every open session wiped."""
        self.ecdsa.close()  # precomputed Paillier nonces live in memory only: a restart starts without them
        self.authorization.restart()
        self.state.reload()

    def close(self) -> None:
        """Flush and release the holder's files (the authorization part's and the ledger); stop the Paillier
        randomness filler."""
        self.ecdsa.close()
        self.authorization.close()
        self.state.close_ledgers()

    # identity and committee ---------------------------------------------------------------------------
    def public_identity(self) -> NodeIdentityPublic:
        return self.state.identity.public()

    def set_directory(self, entries: list[NodeIdentityPublic], coordinator: bytes | None = None) -> None:
        """Trust on first use: the committee directory is fixed once set; a different one is refused. `coordinator`:
        the coordinator's verify key, announced with it (its grants start presigning, aux-info and identification
        sessions and FROST nonce commitments: node/session_gate.py); also taken on first use, and replaced only by
        an admin-quorum ``set_coordinator`` request."""
        st = self.state
        new = {p.party: p for p in entries}
        if self.party not in new or new[self.party] != st.identity.public():
            raise InvalidInput("directory does not contain this holder's identity")
        if st.directory and st.directory != new:
            raise InvalidInput("a different committee directory is already set")
        if coordinator is not None:
            coordinator = check_verify_key(coordinator)
            if self.role != "holder":
                raise InvalidInput("the holder of this node takes the coordinator key")
            if st.coordinator_key not in (None, coordinator):
                raise InvalidInput("a different coordinator key is set: replacing it takes an admin-quorum "
                                   "set_coordinator request")
        if not st.directory:
            st.put_directory(new)
        if coordinator is not None and st.coordinator_key is None:
            st.put_coordinator_key(coordinator)

    def set_coordinator(self, request: Any, verify_key: bytes) -> None:
        """Replace the coordinator's verify key, as an admin-quorum ``set_coordinator`` request naming it approves
        (audited); grants of the old key are refused from then on."""
        verify_key = check_verify_key(verify_key)
        self.authorization.approve(request, RequestKind.SET_COORDINATOR, {"verify_key": verify_key.hex()})
        self.state.put_coordinator_key(verify_key)

    def reload_coordinator_key(self) -> bool:
        """Read the coordinator key again from the store (a worker: its holder may have replaced it); True if it
        changed."""
        return self.state.reload_coordinator_key()

    def ping(self) -> int:
        return self.party

    def node_labels(self) -> dict[str, str]:
        """Labels of the Ray node this holder runs on (empty outside Ray): shows where it is pinned."""
        try:
            import ray

            node_id = ray.get_runtime_context().get_node_id()
            return next(dict(n.get("Labels", {})) for n in ray.nodes() if n["NodeID"] == node_id)
        except Exception:  # noqa: BLE001 - not inside Ray
            return {}

    # protocol sessions (node/sessions.py) -------------------------------------------------------------
    def begin(self, requests: list[BeginRequest], grant: Any = None) -> list[StepResult]:
        """Start sessions. Presigning, aux-info and identification need `grant`, the coordinator's signed
        `SessionGrant` covering each of them, and are rate-limited per key (node/session_gate.py); a refused grant
        starts nothing and consumes nothing."""
        return self.sessions_runner.begin(requests, grant)

    def step(self, batches: list[tuple[bytes, list[SealedEnvelope]]]) -> list[StepResult]:
        return self.sessions_runner.step(batches)

    def drop_sessions(self, sids: list[bytes]) -> None:
        """Forget (and wipe) sessions the coordinator abandoned."""
        self.sessions_runner.drop(sids)

    # state --------------------------------------------------------------------------------------------
    def aux(self) -> AuxInfo:
        return self.state.keys.aux()

    def key(self, key_id: str) -> KeyShare:
        return self.state.keys.key(key_id)

    def has_aux(self) -> bool:
        return self.state.keys.has_aux()

    def key_views(self) -> dict[str, dict]:
        """Public views of every key held here, for a restarted coordinator (node/inventory.py)."""
        return key_views(self.lifecycle)

    def consumed_ids(self) -> list[bytes]:
        """Every one-time id this holder has consumed, in order (public: ids, not secrets); on a presign worker, the
        ids of its own record (its DKLs23 sessions)."""
        self._journal_replayed()
        return self.state.executor_ledger().all_ids()

    def presignature_count(self, key_id: str) -> int:
        self._journal_replayed()
        return self.state.vault.count(presig_kind(check_key_id(key_id)))

    def _journal_replayed(self) -> None:
        """Ids that decisions consumed reach the ledger's file in a background flush; after a stop before that
        flush, opening the authorization part replays them from the audit journal (authorized.py). The public views
        of the ledger open it first, so a reopened holder never shows a consumed id as unused."""
        if self.role == "holder":
            self.authorization.signing  # noqa: B018 - opening it is the point

    # policy-enforced signing (node/authorized.py) -----------------------------------------------------
    def bootstrap_principals(self, registry: bytes) -> None:
        self.authorization.signing.bootstrap_principals(registry)

    def set_policy(self, request) -> None:
        self.authorization.signing.set_policy(request)

    def set_principals(self, request) -> None:
        self.authorization.signing.set_principals(request)

    def frost_sign_request(self, request, nonce_id: bytes, commitment_list: bytes) -> tuple:
        """(z_i, R) for a principal-signed request on a FROST key, after this node's policy check."""
        return self.authorization.signing.frost_sign(request, nonce_id, commitment_list)

    def sign_request(self, request, presignature_id: bytes) -> tuple[int, bytes]:
        """(sigma_i, the digest this node computed) for a principal-signed request, after this node's own policy
        check (see node/authorized.py)."""
        return self.authorization.signing.sign(request, presignature_id)

    def sign_requests(self, items: list[tuple[Any, bytes]]) -> list:
        """`sign_request` for a batch of (request, presignature id): one audit fsync for all; each item answered with
        (sigma_i, digest) or the error that refused it (node/authorized.py `sign_many`)."""
        return self.authorization.signing.sign_many(items)

    def partial_sign(self, request: Any, items: list[tuple[int, bytes]]) -> list[int]:
        """sigma_i for each (message index, presignature id) of an operator-signed ``raw_batch`` request, after this
        node's own checks (principal, policy, each message once) and audit record (node/authorized.py `sign_raw`).
        Every partial is re-randomised (node/hd.py); presignatures are consumed before any partial is computed."""
        return self.authorization.signing.sign_raw(request, items)

    def frost_commit(self, key_id: str, count: int, grant: Any = None) -> list[tuple[bytes, bytes]]:
        """`count` fresh nonce pairs of a FROST key, each stored in the vault first: [(nonce id, commitment)]. Needs
        the coordinator's `SessionGrant` naming this party, key and count; rate-limited per key."""
        return self.frost.commit(key_id, count, grant)

    def frost_sign(self, request: Any, items: list[tuple[int, bytes, bytes]]) -> list[tuple[int, bytes]]:
        """(z_i, R) for each (message index, nonce id, commitment list) of an operator-signed ``raw_batch`` request on
        a FROST key, after this node's own checks and audit record (node/authorized.py `frost_raw`)."""
        return self.authorization.signing.frost_raw(request, items)

    # key lifecycle (node/lifecycle.py) ----------------------------------------------------------------
    def key_epoch(self, key_id: str) -> int:
        return self.lifecycle.epoch(key_id)

    def lifecycle_public(self, key_id: str) -> dict:
        """The key's public package and epoch (relayed to new holders of a resharing)."""
        return self.lifecycle.public_view(key_id)

    def lifecycle_confirm(self, key_id: str, epoch: int) -> dict:
        """Signed confirmation that this new member holds everything of the pending epoch."""
        return self.lifecycle.confirm(key_id, epoch)

    def lifecycle_commit(self, key_id: str, epoch: int, digest: bytes, confirmations: dict) -> dict:
        """Switch to the pending epoch once every new member confirmed; destroys the old epoch's secrets."""
        return self.lifecycle.commit(key_id, epoch, digest, confirmations)

    def lifecycle_discard(self, key_id: str, epoch: int) -> bool:
        return self.lifecycle.discard(key_id, epoch)

    def extend_directory(self, request: Any, entries: list[NodeIdentityPublic]) -> None:
        """Add new committee members (existing entries never change), as an admin-quorum request approves."""
        self.lifecycle.extend_directory(request, entries)

    # backup and restore (node/backup.py) --------------------------------------------------------------
    def backup(self, request: Any, passphrase: str, kdf: str = "moderate") -> bytes:
        """Encrypted export of this holder's shares and state (no pooled presignatures or nonces), for an
        admin-quorum ``backup`` request naming this party."""
        self.authorization.approve(request, RequestKind.BACKUP, {"party": self.party})
        return self.backups.export(passphrase, kdf=kdf)

    def restore(self, request: Any, blob: bytes, passphrase: str) -> dict:
        """Restore a backup, for an admin-quorum ``restore`` request naming this party and the blob's SHA-256;
        every pooled presignature and nonce is discarded, the consumed ledger only grows."""
        params = restore_params(self.party, blob)
        if self.state.store.get("principals") is not None:
            self.authorization.approve(request, RequestKind.RESTORE, params)
            return self._restored(self.backups.restore(blob, passphrase))
        self.backups.approve_fresh_restore(request, blob, passphrase, params)  # the backup's own admins decide
        had_log = self.backups.has_audit_log()  # signed by the identity the restore replaces
        out = self._restored(self.backups.restore(blob, passphrase))
        self.backups.audit_fresh_restore(request, had_log)
        return out

    def _restored(self, out: dict) -> dict:
        """The store holds the restored entries: read identity, directory and keys back, and reopen the
        authorization part (principals, policies and spend state come back from the store on next use)."""
        self.state.reload()
        self.authorization.close()
        return out
