"""The holder side of the key lifecycle: epochs, refresh and resharing sessions, two-phase commit, and the
destruction of everything of an old epoch.

`KeyLifecycle` runs the protocols in `LIFECYCLE_PROTOCOLS` (the holder's protocol table, node/sessions.py) and
serves the holder's `lifecycle_*`, `key_epoch` and `extend_directory` entry points. Presigning takes the current
epoch's share and stores its result under the lifecycle lock (node/ecdsa_holder.py `presignature_guard`).

Epochs. Every key has an epoch (0 from key generation), kept in the store entry `epoch-<key_id>`. A refresh or
resharing to epoch e runs as protocol sessions whose context binds the key, e and the committee:

- "refresh" (ECDSA): `protocols.ecdsa.refresh.RefreshParty`: zero-sharing plus new aux info, every party.
- "reshare" (ECDSA and FROST; a FROST refresh is a resharing onto the same committee): `ReshareParty`, params
  `scheme`, `dealers`, `new_parties`, `new_threshold` and `old_public`, the old public package as the
  coordinator relays it. A dealer refuses to begin unless that package is exactly its own view of the key, and
  the package goes into the session context, so every participant sees the same one (echo). An ECDSA key's
  protocol travels the same way (param `protocol`, absent for CGGMP21): a holder of the key refuses another one, it
  goes into the context, and a new member records it with its pending share, so it runs the key's DKLs23 setup.
- "reshare-aux" (ECDSA): aux-info setup among the new committee, attached to the pending resharing.

Phase one: each session's result is stored *pending* (`pending-<key_id>`), next to the current epoch, and the
holder returns the digest of the new public package. Phase two: every member of the new committee signs a
confirmation of (key, epoch, digest) with its node identity (`confirm`), once it holds everything it needs
(share, and aux info for ECDSA). `commit` checks the confirmations of *every* new member against the
directory - so a coordinator cannot make old holders delete their shares before the new committee holds its
own - and then, under the node's exclusive lifecycle lock:
1. consumes in the ledger, and deletes, every pooled presignature (ECDSA) or nonce pair (FROST) of the key: they
   belong to the old epoch, and once in the ledger nothing (a restored backup included) can bring them back;
2. writes the new share, aux info and public package, or deletes the share of a removed holder;
3. records the epoch and drops the pending entry. `commit` is idempotent, so a coordinator retries it freely.
Presign workers (other processes on the node) take a shared lock to store a presignature and refuse to store
one made with a share that is no longer the stored one, so no presignature of an old epoch survives a commit.

Forward secrecy: the direct messages of these sessions (zero-shares, sub-shares) are sealed under per-session
ephemeral X25519 keys, announced in each party's signed round-1 broadcast and erased when the session ends
(node/envelope.py); `commit` and `discard` also drop any abandoned session of the key (`end_sessions`). A later
break-in finds nothing that opens a recorded refresh, so it learns the new share and no old one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..crypto.frost_suites import SECP256K1, get_suite
from ..crypto.params import level as as_level
from ..crypto.secp256k1 import Point
from ..errors import HolderNotReady, InvalidInput, PolicyDenied, ProtocolAbort, ProtocolMismatch
from ..errors import StaleEpoch  # noqa: F401  (old import path)
from ..schemes import FROST_SCHEMES
from ..protocols.base import RoundParty
from ..protocols.common import same_bytes
from ..protocols.ecdsa.aux_info import AuxInfoParty
from ..protocols.ecdsa.keygen import KeyShare
from ..protocols.ecdsa.refresh import RefreshParty
from ..protocols.reshare import OldCommittee, ReshareOutput, ReshareParty, ecdsa_key_share, frost_output
from ..protocols.wire import WireError, decode, encode
from ..requests.admin import directory_params  # moved there (clients build it); old import path
from .frost_holder import frost_public_entry, nonce_kind
from .frost_records import (
    key_package_from_bytes,
    key_package_to_bytes,
    public_package_from_bytes,
    public_package_to_bytes,
)
from .holder_state import (
    HolderState,
    Session,
    check_key_id,
    ecdsa_key_entry,
    epoch_entry,
    frost_key_entry,
    key_aux_entry,
    key_protocol_entry,
    presig_kind,
)
from .identity import NodeIdentityPublic
from .principals import RequestKind
from .records import CGGMP21, aux_to_bytes, key_from_bytes, key_to_bytes

if TYPE_CHECKING:
    from .authorized import Authorization
    from .sessions import BeginRequest

__all__ = ["KeyLifecycle", "ecdsa_public_from_bytes", "directory_params", "frost_public_entry", "epoch_entry"]

ECDSA = "ecdsa-secp256k1"
LIFECYCLE_PROTOCOLS = ("refresh", "reshare", "reshare-aux")
_CONFIRM_DOMAIN = b"mpc-ray/lifecycle/confirm/v1"
_DIGEST_DOMAIN = b"mpc-ray/lifecycle/epoch-digest/v1"
aux_entry = key_aux_entry  # old name


def pending_entry(key_id: str) -> str:
    return f"pending-{key_id}"


def _int(value: Any, what: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidInput(f"{what} must be an integer >= {minimum}")
    return value


def _int_list(value: Any, what: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or not value:
        raise InvalidInput(f"{what} must be a non-empty list of party indices")
    out = [_int(v, what, 1) for v in value]
    if len(set(out)) != len(out):
        raise InvalidInput(f"{what} has duplicates")
    return sorted(out)


# records ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EcdsaPublicRecord:
    """The public side of an ECDSA key: what new holders are told, and what dealers check it against."""

    public_key: Point
    threshold: int
    parties: list[int]
    shares: list[Point]
    chain_code: bytes  # public BIP32 chain code when the key has one, else b""


def ecdsa_public_bytes(key: KeyShare) -> bytes:
    return encode(EcdsaPublicRecord(key.public_key, key.threshold, list(key.parties),
                                    [key.public_shares[j] for j in key.parties], getattr(key, "chain_code", b"")))


def ecdsa_public_from_bytes(data: bytes) -> tuple[OldCommittee, KeyShare]:
    """(the committee, a share template without secret) from a public record; InvalidInput if malformed."""
    try:
        r = decode(data, EcdsaPublicRecord)
    except WireError as exc:
        raise InvalidInput(f"malformed public key record: {exc}") from None
    if (len(r.parties) != len(r.shares) or r.parties != sorted(set(r.parties)) or not r.parties
            or r.parties[0] < 1 or not 1 <= r.threshold <= len(r.parties)
            or r.public_key.is_identity or any(s.is_identity for s in r.shares)):
        raise InvalidInput("public key record: bad parties, threshold or points")
    shares = dict(zip(r.parties, r.shares))
    template = KeyShare(0, r.threshold, r.parties, 0, r.public_key, shares)
    if r.chain_code and "chain_code" in KeyShare.__slots__:
        template.chain_code = r.chain_code  # type: ignore[attr-defined]
    return OldCommittee(r.public_key, r.threshold, shares), template


@dataclass(frozen=True)
class PendingRecord:
    """A phase-one result: the next epoch of a key at this holder, not yet in use. Secret (holds the share)."""

    epoch: int
    scheme: str
    parties: list[int]  # the new committee
    threshold: int
    digest: bytes  # epoch_digest of (key, epoch, scheme, public)
    public: bytes  # new public package (ECDSA: EcdsaPublicRecord; FROST: public key package record)
    share: bytes  # new share record, or b"" for a holder that leaves the key
    aux: bytes  # ECDSA: new aux info record (b"" until the aux session of a resharing is done)

    def __repr__(self) -> str:
        return f"PendingRecord(epoch={self.epoch}, scheme={self.scheme}, parties={self.parties}, <redacted>)"


def epoch_digest(key_id: str, epoch: int, scheme: str, public: bytes) -> bytes:
    """What the new committee confirms: the key, the epoch, the scheme and the new public package."""
    h = hashlib.sha256(_DIGEST_DOMAIN)
    for part in (key_id.encode(), str(epoch).encode(), scheme.encode(), public):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.digest()


def confirmation_message(key_id: str, epoch: int, digest: bytes, party: int) -> bytes:
    h = [_CONFIRM_DOMAIN, key_id.encode(), str(epoch).encode(), digest, str(party).encode()]
    return b"".join(len(p).to_bytes(8, "big") + p for p in h)


# the holder part ------------------------------------------------------------------------------------------------
def _bound_sid(sid: bytes, key_id: str, epoch: int) -> bytes:
    return sid + b"|" + key_id.encode() + b"|" + str(epoch).encode()


def _public_only(out: Any) -> Any:
    """A ReshareOutput-like view with a placeholder share, to build a public record for a departing holder."""
    return ReshareOutput(0, out.public_key, out.threshold, out.public_shares, 0, out.digest)


class KeyLifecycle:
    """Epochs, refresh and resharing sessions, two-phase commit and new committee members, on `state` (holders
    only: presign workers take no part)."""

    PROTOCOLS = LIFECYCLE_PROTOCOLS

    def __init__(self, state: HolderState, authorization: Authorization) -> None:
        self.state = state
        self._auth = authorization

    # epochs -------------------------------------------------------------------------------------------------
    def epoch(self, key_id: str) -> int:
        """The key's epoch at this holder: 0 from key generation, +1 per refresh or resharing."""
        return self.state.epoch(check_key_id(key_id))

    def scheme_of(self, key_id: str) -> str | None:
        """"ecdsa-secp256k1", a FROST scheme, or None when this holder has no share of the key."""
        st = self.state
        if st.store.exists(ecdsa_key_entry(key_id)):
            return ECDSA
        if st.store.exists(frost_key_entry(key_id)):
            return st.keys.frost(key_id).suite_key
        return None

    def pending(self, key_id: str) -> PendingRecord | None:
        """The key's phase-one result at this holder, if one waits for its commit."""
        raw = self.state.store.get(pending_entry(key_id))
        return decode(raw, PendingRecord) if raw is not None else None

    # phase one: sessions ------------------------------------------------------------------------------------
    def _check_next_epoch(self, key_id: str, epoch: int) -> None:
        now = self.state.epoch(key_id)
        if epoch != now + 1:
            raise InvalidInput(f"key {key_id!r} is at epoch {now}; cannot move to {epoch}")

    def _old_committee(self, key_id: str, scheme: str, old_public: bytes,
                       is_holder: bool) -> tuple[OldCommittee, Any, int | None]:
        """(old committee, template, own old share) from the relayed public package, checked against this holder's
        own view when it holds a share of the key."""
        st = self.state
        if scheme == ECDSA:
            old, template = ecdsa_public_from_bytes(old_public)
            if not is_holder:
                return old, template, None
            key = st.keys.key(key_id)
            if not same_bytes(ecdsa_public_bytes(key), old_public):
                raise InvalidInput("the relayed public key record differs from this holder's")
            return old, key, key.x
        try:
            pub = public_package_from_bytes(old_public)
        except InvalidInput as exc:
            raise InvalidInput(f"malformed public key package: {exc}") from None
        if pub.suite_key != scheme:
            raise InvalidInput("public key package of another scheme")
        old = OldCommittee(pub.group_key, pub.threshold, dict(pub.verifying_shares))
        if not is_holder:
            return old, None, None
        kp = st.keys.frost(key_id)
        if (kp.suite_key != scheme or kp.group_key != pub.group_key or kp.threshold != pub.threshold
                or pub.verifying_shares.get(st.party) != kp.verifying_share):
            raise InvalidInput("the relayed public key package differs from this holder's share")
        return old, None, kp.signing_share

    def machine(self, req: BeginRequest) -> RoundParty:
        """The RoundParty of a lifecycle session."""
        st = self.state
        st.require_holder("presign workers take no part in the key lifecycle")
        p = req.params
        key_id = check_key_id(p.get("key_id"))
        epoch = _int(p.get("epoch"), "epoch", 1)
        approval = self._approve(req, key_id)  # the admin quorum approved exactly this action: before anything else
        if st.store.exists(pending_entry(key_id)) and req.protocol != "reshare-aux":
            raise InvalidInput(f"key {key_id!r} has a pending epoch: commit or discard it first")
        if req.protocol == "refresh":
            key = st.keys.key(key_id)
            self._check_next_epoch(key_id, epoch)
            if sorted(req.parties) != list(key.parties):
                raise InvalidInput("a refresh runs among every party of the key")
            old_aux = st.keys.key_aux(key_id)
            return RefreshParty(req.sid, key, old_aux, old_aux.level, epoch=epoch, allow_test_keys=st.allow_test_keys)
        if req.protocol == "reshare":
            scheme = p.get("scheme")
            if scheme != ECDSA and scheme not in FROST_SCHEMES:
                raise InvalidInput(f"unknown scheme {scheme!r}")
            dealers, new_parties = _int_list(p.get("dealers"), "dealers"), _int_list(p.get("new_parties"),
                                                                                     "new_parties")
            if sorted(set(dealers) | set(new_parties)) != sorted(req.parties):
                raise InvalidInput("session parties must be the dealers and the new committee")
            old_public = p.get("old_public")
            if not isinstance(old_public, bytes):
                raise InvalidInput("old_public must be bytes")
            is_dealer = st.party in dealers
            have = self.scheme_of(key_id)
            if is_dealer and have != scheme:
                raise InvalidInput(f"this holder has no {scheme} share of key {key_id!r}")
            if have is not None:
                self._check_next_epoch(key_id, epoch)
            elif epoch <= st.epoch(key_id):
                raise InvalidInput("epochs only move forward")
            protocol = self._reshared_protocol(req, key_id, scheme, have is not None)
            # every holder of the key (dealing or not) checks the relayed package against its own view
            old, _, share = self._old_committee(key_id, scheme, old_public, have is not None)
            if approval is RequestKind.REFRESH_KEY and (  # a FROST refresh is a resharing onto the same committee
                    sorted(new_parties) != sorted(old.parties) or _int(p.get("new_threshold"), "new_threshold", 1)
                    != old.threshold):
                raise PolicyDenied("admin.params", "a refresh keeps the key's committee and threshold")
            share = share if is_dealer else None
            context = hashlib.sha256(b"mpc-ray/lifecycle/reshare-context/v1" + len(key_id).to_bytes(2, "big")
                                     + key_id.encode() + scheme.encode() + b"\x00" + old_public
                                     + (b"\x00" + protocol.encode() if protocol != CGGMP21 else b"")).digest()
            group = SECP256K1 if scheme == ECDSA else get_suite(scheme).group
            return ReshareParty(req.sid, st.party, group=group, old=old, dealers=dealers, new_parties=new_parties,
                                new_threshold=_int(p.get("new_threshold"), "new_threshold", 1), epoch=epoch,
                                share=share, context=context)
        pending = self.pending(key_id)  # "reshare-aux"
        if pending is None or pending.epoch != epoch or pending.scheme != ECDSA:
            raise InvalidInput("no pending ECDSA resharing of this key at this epoch")
        if sorted(req.parties) != pending.parties or st.party not in pending.parties:
            raise InvalidInput("aux info is made among the new committee")
        level = as_level(p.get("level", "128"))
        return AuxInfoParty(_bound_sid(req.sid, key_id, epoch), st.party, req.parties, level,
                            allow_test_keys=st.allow_test_keys)

    def _reshared_protocol(self, req: BeginRequest, key_id: str, scheme: str, holds_key: bool) -> str:
        """The ECDSA protocol the resharing declares (CGGMP21 if none): a holder of the key refuses another than
        its own; "" for FROST."""
        from ..protocols.ecdsa_protocols import ecdsa_protocol

        declared = req.params.get("protocol", CGGMP21 if scheme == ECDSA else "")
        if scheme != ECDSA:
            if declared:
                raise InvalidInput("a FROST key has no ECDSA protocol")
            return ""
        ecdsa_protocol(declared)  # InvalidInput for an unknown one
        if holds_key and declared != self.state.keys.protocol(key_id):
            raise ProtocolMismatch(f"key {key_id!r} signs with {self.state.keys.protocol(key_id)}, not {declared}")
        return declared

    def _approve(self, req: BeginRequest, key_id: str) -> RequestKind | None:
        """Check the admin approval a refresh or resharing session carries (node/authorized.py `approve`); returns
        its kind. A resharing's aux-info session needs none: it runs only for an approved, pending resharing."""
        if req.protocol == "reshare-aux":
            return None
        approval = req.params.get("approval")
        kind = getattr(approval, "kind", None)
        if req.protocol == "refresh" or kind is RequestKind.REFRESH_KEY:
            self._auth.approve(approval, RequestKind.REFRESH_KEY, {"key_id": key_id})
            return RequestKind.REFRESH_KEY
        params = {"key_id": key_id, "parties": sorted(_int_list(req.params.get("new_parties"), "new_parties")),
                  "threshold": _int(req.params.get("new_threshold"), "new_threshold", 1)}
        self._auth.approve(approval, RequestKind.RESHARE_KEY, params)
        return RequestKind.RESHARE_KEY

    def _put_pending(self, key_id: str, rec: PendingRecord) -> dict:
        self.state.store.put(pending_entry(key_id), encode(rec))
        return {"epoch": rec.epoch, "digest": rec.digest, "member": bool(rec.share), "public": rec.public,
                "parties": list(rec.parties), "threshold": rec.threshold}

    def finish(self, session: Session) -> dict:
        """Store the session's result as pending and return public values."""
        st = self.state
        p, out = session.params, session.machine.output
        key_id, epoch = p["key_id"], p["epoch"]
        if session.protocol == "refresh":
            public = ecdsa_public_bytes(out.key)
            rec = PendingRecord(epoch, ECDSA, list(out.key.parties), out.key.threshold,
                                epoch_digest(key_id, epoch, ECDSA, public), public, key_to_bytes(out.key),
                                aux_to_bytes(out.aux))
            return self._put_pending(key_id, rec)
        if session.protocol == "reshare":
            scheme = p["scheme"]
            if scheme == ECDSA:
                _, template = ecdsa_public_from_bytes(p["old_public"])
                if st.party in out.parties:
                    new_key = ecdsa_key_share(template, out)
                    share, public = key_to_bytes(new_key), ecdsa_public_bytes(new_key)
                    protocol = p.get("protocol", CGGMP21)
                    if st.keys.protocol(key_id) != protocol:  # a new member (checked in `machine`): before the share
                        st.store.put(key_protocol_entry(key_id), protocol.encode())
                        st.keys.forget(key_id)
                else:
                    share = b""
                    public = ecdsa_public_bytes(ecdsa_key_share(template, _public_only(out)))
            else:
                template = public_package_from_bytes(p["old_public"])
                pub = dataclasses.replace(template, verifying_shares=dict(out.public_shares), threshold=out.threshold)
                public = public_package_to_bytes(pub)
                share = (key_package_to_bytes(frost_output(scheme, out, template).key_package)
                         if out.share is not None else b"")
            rec = PendingRecord(epoch, scheme, list(out.parties), out.threshold,
                                epoch_digest(key_id, epoch, scheme, public), public, share, b"")
            return self._put_pending(key_id, rec)
        pending = self.pending(key_id)  # "reshare-aux"
        if pending is None or pending.epoch != epoch:
            raise StaleEpoch("the pending resharing changed during the aux-info session")
        if self.scheme_of(key_id) == ECDSA:  # a continuing holder knows the old committee's moduli
            old = {int(a.n) for a in st.keys.key_aux(key_id).public.values()}
            for j in sorted(out.public):
                if j != st.party and int(out.public[j].n) in old:
                    raise ProtocolAbort(j, "reshare-aux.stale_modulus", "a Paillier modulus of the old committee",
                                        reporter=st.party)
        return self._put_pending(key_id, dataclasses.replace(pending, aux=aux_to_bytes(out)))

    def discard(self, key_id: str, epoch: int) -> bool:
        """Drop a pending epoch the coordinator abandoned (the current epoch stays in use). True if one was
        dropped."""
        check_key_id(key_id)
        self.end_sessions(key_id, epoch)
        pending = self.pending(key_id)
        if pending is None or pending.epoch != epoch:
            return False
        return self.state.store.delete(pending_entry(key_id))

    def end_sessions(self, key_id: str, epoch: int) -> None:
        """Drop every lifecycle session of the key to `epoch` or earlier still open here (one the coordinator
        abandoned mid-way), which erases its ephemeral session keys: none outlives the commit or discard of its
        epoch."""
        self.state.sessions.drop_where(
            lambda s: s.protocol in LIFECYCLE_PROTOCOLS and s.params.get("key_id") == key_id
            and isinstance(s.params.get("epoch"), int) and s.params["epoch"] <= epoch)

    # phase two: confirm and commit --------------------------------------------------------------------------
    def confirm(self, key_id: str, epoch: int) -> dict:
        """A new member's signed statement that it holds everything of the pending epoch: {party, digest,
        signature}."""
        st = self.state
        check_key_id(key_id)
        pending = self.pending(key_id)
        if pending is None or pending.epoch != epoch:
            raise InvalidInput("no pending epoch to confirm")
        if st.party not in pending.parties or not pending.share:
            raise InvalidInput("only a member of the new committee confirms")
        if pending.scheme == ECDSA and not pending.aux:
            raise InvalidInput("the new committee's aux info is not set up yet")
        sig = st.identity.sign(confirmation_message(key_id, epoch, pending.digest, st.party))
        return {"party": st.party, "digest": pending.digest, "signature": sig}

    def _verify_confirmations(self, key_id: str, pending: PendingRecord, confirmations: Mapping[int, bytes]) -> None:
        for party in pending.parties:
            ident: NodeIdentityPublic | None = self.state.directory.get(party)
            sig = confirmations.get(party)
            msg = confirmation_message(key_id, pending.epoch, pending.digest, party)
            if ident is None or not isinstance(sig, bytes) or not ident.verify(msg, sig):
                raise InvalidInput(f"no valid confirmation from new member {party}: the old share is kept")

    def commit(self, key_id: str, epoch: int, digest: bytes, confirmations: Mapping[int, bytes]) -> dict:
        """Switch the key to the pending epoch once every new member confirmed it (see the module docstring)."""
        st = self.state
        check_key_id(key_id)
        _int(epoch, "epoch", 1)
        if not isinstance(digest, bytes) or not isinstance(confirmations, Mapping):
            raise InvalidInput("digest must be bytes and confirmations a mapping of party to signature")
        pending = self.pending(key_id)
        if pending is None:
            if st.epoch(key_id) == epoch and same_bytes(st.epoch_record(key_id).get("digest", "").encode(),
                                                        digest.hex().encode()):
                self.end_sessions(key_id, epoch)
                return {"epoch": epoch, "destroyed": 0, "member": self.scheme_of(key_id) is not None}
            raise InvalidInput("no pending epoch to commit")
        if pending.epoch != epoch or not same_bytes(pending.digest, digest):
            raise InvalidInput("the commit is for another epoch or public package")
        self._verify_confirmations(key_id, pending, confirmations)
        with st.lifecycle_lock(exclusive=True):
            destroyed = self.destroy_one_time_secrets(key_id)
            self._install(key_id, pending)
            st.store.put(epoch_entry(key_id), json.dumps(
                {"epoch": epoch, "scheme": pending.scheme, "digest": digest.hex(),
                 "member": bool(pending.share)}).encode())
            st.store.delete(pending_entry(key_id))
        self.end_sessions(key_id, epoch)
        return {"epoch": epoch, "destroyed": destroyed, "member": bool(pending.share)}

    def destroy_one_time_secrets(self, key_id: str) -> int:
        """Consume in the ledger, then delete, every pooled presignature and nonce pair of the key. Returns how many
        were still unspent."""
        store = self.state.store
        names = store.names(f"{presig_kind(key_id)}.") + store.names(f"{nonce_kind(key_id)}.")
        return self.state.consume_and_delete(names)

    def _install(self, key_id: str, pending: PendingRecord) -> None:
        st = self.state
        st.keys.forget(key_id)
        ecdsa = pending.scheme == ECDSA
        # the share last: it is written after, and deleted before, the aux info (ECDSA) or public package beside it
        entries = ({key_aux_entry(key_id): pending.aux, ecdsa_key_entry(key_id): pending.share} if ecdsa else
                   {frost_public_entry(key_id): pending.public, frost_key_entry(key_id): pending.share})
        if not pending.share:  # a holder that leaves the key
            st.store.delete_many(list(reversed(entries)))
            return
        for name, data in entries.items():
            st.store.put(name, data)
        if ecdsa:
            st.keys.set_key(key_id, key_from_bytes(pending.share))
        else:
            st.keys.set_frost(key_id, key_package_from_bytes(pending.share))

    # public views and the committee directory ---------------------------------------------------------------
    def public_view(self, key_id: str) -> dict:
        """What the coordinator relays to new holders: the key's public package (no secret) and its epoch."""
        st = self.state
        check_key_id(key_id)
        scheme = self.scheme_of(key_id)
        if scheme is None:
            raise HolderNotReady(f"no share of key {key_id!r}")
        if scheme == ECDSA:
            public = ecdsa_public_bytes(st.keys.key(key_id))
            # the protocol it signs with ("cggmp21" or "dkls23"): a restarted coordinator runs its presigning
            return {"scheme": scheme, "epoch": st.epoch(key_id), "public": public,
                    "protocol": st.keys.protocol(key_id)}
        raw = st.store.get(frost_public_entry(key_id))
        public = raw if raw is not None else b""  # keys from a DKG: the coordinator holds the package
        return {"scheme": scheme, "epoch": st.epoch(key_id), "public": public}

    def extend_directory(self, request: Any, entries: Sequence[NodeIdentityPublic]) -> None:
        """Add new committee members' identities, as approved by the admin quorum (an ``extend_directory`` request
        naming each new member and its identity keys). Existing entries never change (trust on first use, as
        `set_directory`); an entry that contradicts one is refused and nothing is added."""
        st = self.state
        if not isinstance(entries, (list, tuple)) or not all(isinstance(e, NodeIdentityPublic) for e in entries):
            raise InvalidInput("directory entries must be NodeIdentityPublic")
        added = [e for e in entries if e.party not in st.directory]
        self._auth.approve(request, RequestKind.EXTEND_DIRECTORY, directory_params(added))
        new = dict(st.directory)
        for e in entries:
            if e.party in new and new[e.party] != e:
                raise InvalidInput(f"party {e.party} is already in the directory with another identity")
            new[e.party] = e
        if not st.directory:
            raise InvalidInput("set the directory first")
        if new != st.directory:
            st.put_directory(new)
