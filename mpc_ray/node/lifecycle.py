"""The holder side of the key lifecycle: epochs, refresh and resharing sessions, two-phase commit, and the
destruction of everything of an old epoch.

`ShareHolder` hooks in here: `_machine` / `_finish` dispatch the protocols in `LIFECYCLE_PROTOCOLS`, presigning
takes its inputs from `presign_inputs` and stores its result under `presignature_guard`, and thin methods
delegate to `public_view`, `confirm`, `commit`, `discard`, `extend_directory`.

Epochs. Every key has an epoch (0 from key generation), kept in the store entry `epoch-<key_id>`. A refresh or
resharing to epoch e runs as protocol sessions whose context binds the key, e and the committee:

- "refresh" (ECDSA): `protocols.ecdsa.refresh.RefreshParty`: zero-sharing plus new aux info, every party.
- "reshare" (ECDSA and FROST; a FROST refresh is a resharing onto the same committee): `ReshareParty`, params
  `scheme`, `dealers`, `new_parties`, `new_threshold` and `old_public`, the old public package as the
  coordinator relays it. A dealer refuses to begin unless that package is exactly its own view of the key, and
  the package goes into the session context, so every participant sees the same one (echo).
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
import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from ..crypto.frost_suites import SECP256K1, get_suite
from ..crypto.params import level as as_level
from ..crypto.secp256k1 import Point
from ..errors import InvalidInput, PolicyDenied, ProtocolAbort
from ..errors import StaleEpoch  # noqa: F401  (old import path)
from ..schemes import FROST_SCHEMES
from ..protocols.base import RoundParty
from ..protocols.common import same_bytes
from ..protocols.ecdsa.aux_info import AuxInfo, AuxInfoParty
from ..protocols.ecdsa.keygen import KeyShare
from ..protocols.ecdsa.refresh import RefreshParty
from ..protocols.reshare import OldCommittee, ReshareParty, ecdsa_key_share, frost_output
from ..protocols.wire import WireError, decode, encode
from .frost_records import key_package_to_bytes, public_package_from_bytes, public_package_to_bytes
from .identity import NodeIdentityPublic
from .principals import RequestKind
from .records import aux_from_bytes, aux_to_bytes, key_from_bytes, key_to_bytes

if TYPE_CHECKING:
    from .holder import BeginRequest, ShareHolder

ECDSA = "ecdsa-secp256k1"
LIFECYCLE_PROTOCOLS = ("refresh", "reshare", "reshare-aux")
_CONFIRM_DOMAIN = b"mpc-ray/lifecycle/confirm/v1"
_DIGEST_DOMAIN = b"mpc-ray/lifecycle/epoch-digest/v1"
_LOCK_FILE = "lifecycle.lock"


# store entries ----------------------------------------------------------------------------------------------
def epoch_entry(key_id: str) -> str:
    return f"epoch-{key_id}"


def pending_entry(key_id: str) -> str:
    return f"pending-{key_id}"


def aux_entry(key_id: str) -> str:
    """Per-key aux info: a refresh or resharing gives the key aux info of its own, apart from the committee's."""
    return f"aux-{key_id}"


def frost_public_entry(key_id: str) -> str:
    return f"frostpub-{key_id}"


def _frost_key_entry(key_id: str) -> str:
    from .frost_holder import key_entry_name

    return key_entry_name(key_id)


def _check_key_id(key_id: Any) -> str:
    from .holder import check_key_id

    return check_key_id(key_id)


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


# per-holder state and epochs --------------------------------------------------------------------------------
@dataclass
class _LifecycleState:
    aux: dict[str, AuxInfo] = field(default_factory=dict)
    seen_epoch: dict[str, int] = field(default_factory=dict)  # workers: the epoch their cached share is of
    committee_aux: bytes = b""  # workers: digest of the committee aux info they hold


def _state(holder: "ShareHolder") -> _LifecycleState:
    st = holder.__dict__.get("_lifecycle_state")
    if st is None:
        st = holder._lifecycle_state = _LifecycleState()  # type: ignore[attr-defined]
    return st


def _epoch_record(holder: "ShareHolder", key_id: str) -> dict:
    raw = holder.store.get(epoch_entry(key_id))
    return json.loads(raw) if raw is not None else {"epoch": 0}


def current_epoch(holder: "ShareHolder", key_id: str) -> int:
    """The key's epoch at this holder: 0 from key generation, +1 per refresh or resharing."""
    return int(_epoch_record(holder, key_id)["epoch"])


def scheme_of(holder: "ShareHolder", key_id: str) -> str | None:
    """"ecdsa-secp256k1", a FROST scheme, or None when this holder has no share of the key."""
    if holder.store.exists(f"key-{key_id}"):
        return ECDSA
    if holder.store.exists(_frost_key_entry(key_id)):
        from .frost_holder import key_package

        return key_package(holder, key_id).suite_key
    return None


@contextmanager
def _lifecycle_lock(holder: "ShareHolder", exclusive: bool) -> Iterator[None]:
    """The node's lifecycle lock (a file beside the store): exclusive to switch epochs, shared to store a
    presignature. Workers are separate processes on the same node, so this is an OS lock."""
    fd = os.open(holder.dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def aux_for(holder: "ShareHolder", key_id: str) -> AuxInfo:
    """The aux info presigning for this key uses: the key's own after a refresh or resharing, else the
    committee's."""
    st = _state(holder)
    aux = st.aux.get(key_id)
    if aux is None:
        raw = holder.store.get(aux_entry(key_id))
        if raw is None:
            return holder.aux()
        aux = st.aux[key_id] = aux_from_bytes(raw)
    return aux


def presign_inputs(holder: "ShareHolder", key_id: str) -> tuple[KeyShare, AuxInfo]:
    """(share, aux info) of the key's current epoch. A presign worker re-reads both when the epoch moved (its
    holder switched epochs in another process); the holder's own caches are updated by `commit`."""
    if holder.role == "worker":
        st = _state(holder)
        epoch = current_epoch(holder, key_id)
        if st.seen_epoch.get(key_id) != epoch:
            holder._keys.pop(key_id, None)
            st.aux.pop(key_id, None)
            st.seen_epoch[key_id] = epoch
        raw = holder.store.get("aux")  # the committee's aux info is set up again when members join
        stamp = hashlib.sha256(raw).digest() if raw is not None else b""
        if st.committee_aux != stamp:
            holder._aux = None
            st.committee_aux = stamp
    return holder.key(key_id), aux_for(holder, key_id)


@contextmanager
def presignature_guard(holder: "ShareHolder", key_id: str, key: KeyShare) -> Iterator[None]:
    """Around storing a presignature: refuses (StaleEpoch) one made with a share that is no longer the stored one.
    Under the shared lock, so a commit (exclusive) either sees the presignature and destroys it, or comes first."""
    with _lifecycle_lock(holder, exclusive=False):
        raw = holder.store.get(f"key-{key_id}")
        if raw is None or key_from_bytes(raw).x != key.x:
            raise StaleEpoch("the key moved to a new epoch while this presignature was made; it is discarded")
        yield


# phase one: sessions ----------------------------------------------------------------------------------------
def _bound_sid(sid: bytes, key_id: str, epoch: int) -> bytes:
    return sid + b"|" + key_id.encode() + b"|" + str(epoch).encode()


def _check_next_epoch(holder: "ShareHolder", key_id: str, epoch: int) -> None:
    if epoch != current_epoch(holder, key_id) + 1:
        raise InvalidInput(f"key {key_id!r} is at epoch {current_epoch(holder, key_id)}; cannot move to {epoch}")


def _old_committee(holder: "ShareHolder", key_id: str, scheme: str, old_public: bytes,
                   is_holder: bool) -> tuple[OldCommittee, Any, int | None]:
    """(old committee, template, own old share) from the relayed public package, checked against this holder's
    own view when it holds a share of the key."""
    if scheme == ECDSA:
        old, template = ecdsa_public_from_bytes(old_public)
        if not is_holder:
            return old, template, None
        key = holder.key(key_id)
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
    from .frost_holder import key_package

    kp = key_package(holder, key_id)
    if (kp.suite_key != scheme or kp.group_key != pub.group_key or kp.threshold != pub.threshold
            or pub.verifying_shares.get(holder.party) != kp.verifying_share):
        raise InvalidInput("the relayed public key package differs from this holder's share")
    return old, None, kp.signing_share


def lifecycle_machine(holder: "ShareHolder", req: "BeginRequest") -> RoundParty:
    """The RoundParty of a lifecycle session (called from ShareHolder._machine)."""
    if holder.role != "holder":
        raise InvalidInput("presign workers take no part in the key lifecycle")
    p = req.params
    key_id = _check_key_id(p.get("key_id"))
    epoch = _int(p.get("epoch"), "epoch", 1)
    approval = _approve(holder, req, key_id)  # the admin quorum approved exactly this action: before anything else
    if holder.store.exists(pending_entry(key_id)) and req.protocol != "reshare-aux":
        raise InvalidInput(f"key {key_id!r} has a pending epoch: commit or discard it first")
    if req.protocol == "refresh":
        key = holder.key(key_id)
        _check_next_epoch(holder, key_id, epoch)
        if sorted(req.parties) != list(key.parties):
            raise InvalidInput("a refresh runs among every party of the key")
        old_aux = aux_for(holder, key_id)
        return RefreshParty(req.sid, key, old_aux, old_aux.level, epoch=epoch, allow_test_keys=holder.allow_test_keys)
    if req.protocol == "reshare":
        scheme = p.get("scheme")
        if scheme != ECDSA and scheme not in FROST_SCHEMES:
            raise InvalidInput(f"unknown scheme {scheme!r}")
        dealers, new_parties = _int_list(p.get("dealers"), "dealers"), _int_list(p.get("new_parties"), "new_parties")
        if sorted(set(dealers) | set(new_parties)) != sorted(req.parties):
            raise InvalidInput("session parties must be the dealers and the new committee")
        old_public = p.get("old_public")
        if not isinstance(old_public, bytes):
            raise InvalidInput("old_public must be bytes")
        is_dealer = holder.party in dealers
        have = scheme_of(holder, key_id)
        if is_dealer and have != scheme:
            raise InvalidInput(f"this holder has no {scheme} share of key {key_id!r}")
        if have is not None:
            _check_next_epoch(holder, key_id, epoch)
        elif epoch <= current_epoch(holder, key_id):
            raise InvalidInput("epochs only move forward")
        # every holder of the key (dealing or not) checks the relayed package against its own view
        old, _, share = _old_committee(holder, key_id, scheme, old_public, have is not None)
        if approval is RequestKind.REFRESH_KEY and (  # a FROST refresh is a resharing onto the same committee
                sorted(new_parties) != sorted(old.parties) or _int(p.get("new_threshold"), "new_threshold", 1)
                != old.threshold):
            raise PolicyDenied("admin.params", "a refresh keeps the key's committee and threshold")
        share = share if is_dealer else None
        context = hashlib.sha256(b"mpc-ray/lifecycle/reshare-context/v1" + len(key_id).to_bytes(2, "big")
                                 + key_id.encode() + scheme.encode() + b"\x00" + old_public).digest()
        group = SECP256K1 if scheme == ECDSA else get_suite(scheme).group
        return ReshareParty(req.sid, holder.party, group=group, old=old, dealers=dealers, new_parties=new_parties,
                            new_threshold=_int(p.get("new_threshold"), "new_threshold", 1), epoch=epoch,
                            share=share, context=context)
    if req.protocol == "reshare-aux":
        pending = load_pending(holder, key_id)
        if pending is None or pending.epoch != epoch or pending.scheme != ECDSA:
            raise InvalidInput("no pending ECDSA resharing of this key at this epoch")
        if sorted(req.parties) != pending.parties or holder.party not in pending.parties:
            raise InvalidInput("aux info is made among the new committee")
        level = as_level(p.get("level", "128"))
        return AuxInfoParty(_bound_sid(req.sid, key_id, epoch), holder.party, req.parties, level,
                            allow_test_keys=holder.allow_test_keys)
    raise InvalidInput(f"unknown lifecycle protocol {req.protocol!r}")


def _approve(holder: "ShareHolder", req: "BeginRequest", key_id: str) -> RequestKind | None:
    """Check the admin approval a refresh or resharing session carries (node/authorized.py `approve`); returns
    its kind. A resharing's aux-info session needs none: it runs only for an approved, pending resharing."""
    if req.protocol == "reshare-aux":
        return None
    approval = req.params.get("approval")
    kind = getattr(approval, "kind", None)
    if req.protocol == "refresh" or kind is RequestKind.REFRESH_KEY:
        holder._authorized().approve(approval, RequestKind.REFRESH_KEY, {"key_id": key_id})
        return RequestKind.REFRESH_KEY
    params = {"key_id": key_id, "parties": sorted(_int_list(req.params.get("new_parties"), "new_parties")),
              "threshold": _int(req.params.get("new_threshold"), "new_threshold", 1)}
    holder._authorized().approve(approval, RequestKind.RESHARE_KEY, params)
    return RequestKind.RESHARE_KEY


def load_pending(holder: "ShareHolder", key_id: str) -> PendingRecord | None:
    raw = holder.store.get(pending_entry(key_id))
    return decode(raw, PendingRecord) if raw is not None else None


def _put_pending(holder: "ShareHolder", key_id: str, rec: PendingRecord) -> dict:
    holder.store.put(pending_entry(key_id), encode(rec))
    return {"epoch": rec.epoch, "digest": rec.digest, "member": bool(rec.share), "public": rec.public,
            "parties": list(rec.parties), "threshold": rec.threshold}


def finish_lifecycle(holder: "ShareHolder", session: Any) -> dict:
    """Store the session's result as pending and return public values (called from ShareHolder._finish)."""
    p, out = session.params, session.machine.output
    key_id, epoch = p["key_id"], p["epoch"]
    if session.protocol == "refresh":
        public = ecdsa_public_bytes(out.key)
        rec = PendingRecord(epoch, ECDSA, list(out.key.parties), out.key.threshold,
                            epoch_digest(key_id, epoch, ECDSA, public), public, key_to_bytes(out.key),
                            aux_to_bytes(out.aux))
        return _put_pending(holder, key_id, rec)
    if session.protocol == "reshare":
        scheme = p["scheme"]
        if scheme == ECDSA:
            _, template = ecdsa_public_from_bytes(p["old_public"])
            if holder.party in out.parties:
                new_key = ecdsa_key_share(template, out)
                share, public = key_to_bytes(new_key), ecdsa_public_bytes(new_key)
            else:
                share = b""
                public = ecdsa_public_bytes(ecdsa_key_share(template, _public_only(out)))
        else:
            template = public_package_from_bytes(p["old_public"])
            pub = dataclasses.replace(template, verifying_shares=dict(out.public_shares), threshold=out.threshold)
            public = public_package_to_bytes(pub)
            share = (key_package_to_bytes(frost_output(scheme, out, template).key_package)
                     if out.share is not None else b"")
        rec = PendingRecord(epoch, scheme, list(out.parties), out.threshold, epoch_digest(key_id, epoch, scheme, public),
                            public, share, b"")
        return _put_pending(holder, key_id, rec)
    if session.protocol == "reshare-aux":
        pending = load_pending(holder, key_id)
        if pending is None or pending.epoch != epoch:
            raise StaleEpoch("the pending resharing changed during the aux-info session")
        if scheme_of(holder, key_id) == ECDSA:  # a continuing holder knows the old committee's moduli
            old = {int(a.n) for a in aux_for(holder, key_id).public.values()}
            for j in sorted(out.public):
                if j != holder.party and int(out.public[j].n) in old:
                    raise ProtocolAbort(j, "reshare-aux.stale_modulus", "a Paillier modulus of the old committee",
                                        reporter=holder.party)
        return _put_pending(holder, key_id, dataclasses.replace(pending, aux=aux_to_bytes(out)))
    raise AssertionError(session.protocol)


def _public_only(out: Any) -> Any:
    """A ReshareOutput-like view with a placeholder share, to build a public record for a departing holder."""
    from ..protocols.reshare import ReshareOutput

    return ReshareOutput(0, out.public_key, out.threshold, out.public_shares, 0, out.digest)


def discard(holder: "ShareHolder", key_id: str, epoch: int) -> bool:
    """Drop a pending epoch the coordinator abandoned (the current epoch stays in use). True if one was dropped."""
    _check_key_id(key_id)
    end_sessions(holder, key_id, epoch)
    pending = load_pending(holder, key_id)
    if pending is None or pending.epoch != epoch:
        return False
    return holder.store.delete(pending_entry(key_id))


def end_sessions(holder: "ShareHolder", key_id: str, epoch: int) -> None:
    """Drop every lifecycle session of the key to `epoch` or earlier still open here (one the coordinator abandoned
    mid-way), which erases its ephemeral session keys: none outlives the commit or discard of its epoch."""
    stale = [sid for sid, s in list(holder.sessions.items())
             if s.protocol in LIFECYCLE_PROTOCOLS and s.params.get("key_id") == key_id
             and isinstance(s.params.get("epoch"), int) and s.params["epoch"] <= epoch]
    holder.drop_sessions(stale)


# phase two: confirm and commit ------------------------------------------------------------------------------
def confirm(holder: "ShareHolder", key_id: str, epoch: int) -> dict:
    """A new member's signed statement that it holds everything of the pending epoch: {party, digest, signature}."""
    _check_key_id(key_id)
    pending = load_pending(holder, key_id)
    if pending is None or pending.epoch != epoch:
        raise InvalidInput("no pending epoch to confirm")
    if holder.party not in pending.parties or not pending.share:
        raise InvalidInput("only a member of the new committee confirms")
    if pending.scheme == ECDSA and not pending.aux:
        raise InvalidInput("the new committee's aux info is not set up yet")
    sig = holder.identity.sign(confirmation_message(key_id, epoch, pending.digest, holder.party))
    return {"party": holder.party, "digest": pending.digest, "signature": sig}


def _verify_confirmations(holder: "ShareHolder", key_id: str, pending: PendingRecord,
                          confirmations: Mapping[int, bytes]) -> None:
    for party in pending.parties:
        ident: NodeIdentityPublic | None = holder.directory.get(party)
        sig = confirmations.get(party)
        msg = confirmation_message(key_id, pending.epoch, pending.digest, party)
        if ident is None or not isinstance(sig, bytes) or not ident.verify(msg, sig):
            raise InvalidInput(f"no valid confirmation from new member {party}: the old share is kept")


def commit(holder: "ShareHolder", key_id: str, epoch: int, digest: bytes, confirmations: Mapping[int, bytes]) -> dict:
    """Switch the key to the pending epoch once every new member confirmed it (see the module docstring)."""
    _check_key_id(key_id)
    _int(epoch, "epoch", 1)
    if not isinstance(digest, bytes) or not isinstance(confirmations, Mapping):
        raise InvalidInput("digest must be bytes and confirmations a mapping of party to signature")
    pending = load_pending(holder, key_id)
    if pending is None:
        if current_epoch(holder, key_id) == epoch and same_bytes(_epoch_record(holder, key_id).get("digest", "")
                                                                 .encode(), digest.hex().encode()):
            end_sessions(holder, key_id, epoch)
            return {"epoch": epoch, "destroyed": 0, "member": scheme_of(holder, key_id) is not None}
        raise InvalidInput("no pending epoch to commit")
    if pending.epoch != epoch or not same_bytes(pending.digest, digest):
        raise InvalidInput("the commit is for another epoch or public package")
    _verify_confirmations(holder, key_id, pending, confirmations)
    with _lifecycle_lock(holder, exclusive=True):
        destroyed = destroy_one_time_secrets(holder, key_id)
        _install(holder, key_id, pending)
        holder.store.put(epoch_entry(key_id), json.dumps(
            {"epoch": epoch, "scheme": pending.scheme, "digest": digest.hex(), "member": bool(pending.share)}).encode())
        holder.store.delete(pending_entry(key_id))
    end_sessions(holder, key_id, epoch)
    return {"epoch": epoch, "destroyed": destroyed, "member": bool(pending.share)}


def destroy_one_time_secrets(holder: "ShareHolder", key_id: str) -> int:
    """Consume in the ledger, then delete, every pooled presignature and nonce pair of the key. Returns how many
    were still unspent."""
    from .frost_holder import nonce_kind

    names = holder.store.names(f"presig-{key_id}.") + holder.store.names(f"{nonce_kind(key_id)}.")
    return consume_and_delete(holder, names)


def consume_and_delete(holder: "ShareHolder", names: Sequence[str]) -> int:
    """Vault entries `names` (<kind>.<id hex>) consumed durably in the ledger (those not already), then deleted.
    Returns how many were still unspent."""
    ids = []
    for name in names:
        try:
            ids.append(bytes.fromhex(name.rsplit(".", 1)[1]))
        except (IndexError, ValueError):
            continue
    fresh = [i for i in dict.fromkeys(ids) if len(i) == 32 and not holder.ledger.contains(i)]
    holder.ledger.consume_many(fresh)  # point of no return: a restored file with these ids is refused and deleted
    holder.store.delete_many(names)
    return len(fresh)


def _install(holder: "ShareHolder", key_id: str, pending: PendingRecord) -> None:
    st = _state(holder)
    st.aux.pop(key_id, None)
    holder._keys.pop(key_id, None)
    if pending.scheme == ECDSA:
        if pending.share:
            new_key = key_from_bytes(pending.share)
            holder.store.put(aux_entry(key_id), pending.aux)
            holder.store.put(f"key-{key_id}", pending.share)
            holder._keys[key_id] = new_key
        else:
            holder.store.delete_many([f"key-{key_id}", aux_entry(key_id)])
        return
    from .frost_holder import _state as frost_state
    from .frost_records import key_package_from_bytes

    fs = frost_state(holder)
    fs.keys.pop(key_id, None)
    for k in [k for k in fs.adjust if k[0] == key_id]:
        del fs.adjust[k]
    if pending.share:
        holder.store.put(frost_public_entry(key_id), pending.public)
        holder.store.put(_frost_key_entry(key_id), pending.share)
        fs.keys[key_id] = key_package_from_bytes(pending.share)
    else:
        holder.store.delete_many([_frost_key_entry(key_id), frost_public_entry(key_id)])


# public views and the committee directory -------------------------------------------------------------------
def public_view(holder: "ShareHolder", key_id: str) -> dict:
    """What the coordinator relays to new holders: the key's public package (no secret) and its epoch."""
    _check_key_id(key_id)
    scheme = scheme_of(holder, key_id)
    if scheme is None:
        from .holder import HolderNotReady

        raise HolderNotReady(f"no share of key {key_id!r}")
    if scheme == ECDSA:
        public = ecdsa_public_bytes(holder.key(key_id))
    else:
        raw = holder.store.get(frost_public_entry(key_id))
        public = raw if raw is not None else b""  # keys from a DKG: the coordinator holds the package
    return {"scheme": scheme, "epoch": current_epoch(holder, key_id), "public": public}


def directory_params(entries: Sequence[NodeIdentityPublic]) -> dict:
    """What an admin approves to add members: each new party with its node identity's public keys."""
    return {"members": [[e.party, e.verify_key.hex(), e.box_key.hex()] for e in sorted(entries, key=lambda e: e.party)]}


def extend_directory(holder: "ShareHolder", request: Any, entries: Sequence[NodeIdentityPublic]) -> None:
    """Add new committee members' identities, as approved by the admin quorum (an ``extend_directory`` request
    naming each new member and its identity keys). Existing entries never change (trust on first use, as
    `set_directory`); an entry that contradicts one is refused and nothing is added."""
    if not isinstance(entries, (list, tuple)) or not all(isinstance(e, NodeIdentityPublic) for e in entries):
        raise InvalidInput("directory entries must be NodeIdentityPublic")
    added = [e for e in entries if e.party not in holder.directory]
    holder._authorized().approve(request, RequestKind.EXTEND_DIRECTORY, directory_params(added))
    new = dict(holder.directory)
    for e in entries:
        if e.party in new and new[e.party] != e:
            raise InvalidInput(f"party {e.party} is already in the directory with another identity")
        new[e.party] = e
    if not holder.directory:
        raise InvalidInput("set the directory first")
    if new != holder.directory:
        from .holder import _encode_directory

        holder.store.put("directory", _encode_directory(list(new.values())))
        holder.directory = new
