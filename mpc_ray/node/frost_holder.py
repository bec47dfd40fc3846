"""The holder side of FROST (RFC 9591) on the runtime: key generation, nonce pools and signing.

`FrostHolder` runs the "frost-dkg" sessions of the holder's protocol table (node/sessions.py) and serves its
`frost_commit` entry point; `FrostSigner` makes the signature shares, which node/authorized.py asks for once a
principal's request is allowed. Only the holder of a node serves FROST: presign workers have no ledger and must
never hold or spend nonces.

- "frost-dkg" (a protocol session like "keygen"): params `key_id`, `scheme` in FROST_SCHEMES, `threshold`. The
  key package is stored encrypted under `frost-<key_id>`; the public result is the canonical public key package
  bytes and the user-facing public key (32-byte Ed25519 / 32-byte x-only BIP340, untweaked).
- `commit(key_id, count)`: fresh nonce pairs, each put in the vault (kind `nonce_kind(key_id)`, id = `nonce_id`,
  a hash of its commitment entry) before only the public commitment entries are returned.
- `sign(key_id, requests)`: requests are (nonce id, message, commitment list[, tap_tweak[, derivation path]]);
  with a path (BIP340 keys) the share is for that BIP32 child, the tweak computed here from the stored chain code
  (node/hd.py, `protocols.frost.keys.key_adjust`). Everything public is
  checked first, for every request (shapes, the list order, that the signer's own entry hashes to the nonce id,
  that the nonce is stored and unconsumed, every peer commitment point), so bad input consumes nothing. Then all
  nonces are consumed durably with `vault.take_many` (one ledger fsync) before any share is computed. Then, per
  request, the RFC `sign` runs on a prepared session. The spent (already unusable) files are unlinked by the
  holder's deleter thread after the answer, as for presignatures.

Work split for speed (same result as `prepare`, proven by the tests): the peers' part of the group commitment,
sum_j (D_j + rho_j E_j) for j != i, is computed before the nonces are taken (the multiplication by rho_j also
validates E_j: libsodium refuses non-canonical, small-order and off-subgroup points); the own part D_i + rho_i E_i
is computed after the take as (d_i + rho_i e_i) G, one fixed-base multiplication instead of a variable-base one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from nacl import bindings as _nacl

from ..crypto.ed25519 import FIELD_P, EdPoint, L
from ..crypto.frost_suites import Element, KeyAdjust, get_suite
from ..errors import HolderNotReady, InvalidInput, MpcError
from ..schemes import FROST_SCHEMES
from ..protocols.frost import (
    DkgParty,
    KeyPackage,
    PublicKeyPackage,
    SigningCommitments,
    compute_binding_factors,
    public_key_bytes,
)
from ..protocols.frost import sign as rfc_sign
from ..protocols.frost.keys import key_adjust as frost_key_adjust
from ..protocols.frost.signing import SigningSession
from .frost_records import (
    commitment_from_trusted_bytes,
    key_package_to_bytes,
    new_nonce_record,
    nonce_id,
    nonce_record_from_bytes,
    public_package_from_bytes,
    public_package_to_bytes,
    restore_nonces,
    split_commitment_list,
)
from .hd import frost_tweak
from .holder_state import HolderState, Session, check_key_id, frost_key_entry
from .principals import RequestKind
from .store import ID_BYTES, AlreadyConsumed, SecretNotFound, SecretVault

if TYPE_CHECKING:
    from .authorized import Authorization
    from .sessions import BeginRequest

MAX_COMMIT = 4096  # nonce pairs per frost_commit call (a holder serves one call at a time)
MAX_SIGN_BATCH = 65536
MAX_STORED_NONCES = 20_000  # per key: far above any pool depth
_KIND_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")
_NOT_ON_WORKERS = "presign workers do not serve FROST"

key_entry_name = frost_key_entry  # old name


def frost_public_entry(key_id: str) -> str:
    """The key's public package (public: lets a restarted coordinator re-adopt the key, and policies check it)."""
    return f"frostpub-{key_id}"


def nonce_kind(key_id: str) -> str:
    """The vault kind of a key's nonces: `nonce-<key_id>` when that fits the vault's kind rule ([a-z0-9_-], at
    most 32 characters); otherwise `nonceh-` + 25 hex digits of a hash of the key id (key ids may hold capitals
    and run to 64 characters). The two forms never collide ("nonce-" vs "nonceh")."""
    kind = f"nonce-{key_id}"
    if len(kind) <= 32 and set(key_id) <= _KIND_CHARS:
        return kind
    return "nonceh-" + hashlib.sha256(b"mpc-ray/frost/nonce-kind\x00" + key_id.encode()).hexdigest()[:25]


class FrostSigner:
    """Signature shares of the FROST keys held on `state`, each nonce pair consumed durably first. Only
    node/authorized.py asks for shares, once a principal's request is allowed."""

    def __init__(self, state: HolderState) -> None:
        self.state = state
        # (key id, tap tweak, HD tweak) -> (the key package it is for, adjustment, adjusted group key)
        self._adjust: dict[tuple[str, bytes | None, int | None], tuple[KeyPackage, KeyAdjust, Element]] = {}

    def key_package(self, key_id: str) -> KeyPackage:
        return self.state.keys.frost(key_id)

    def public_package(self, key_id: str) -> PublicKeyPackage:
        """The key's stored public package; HolderNotReady without a share of the key (or for a key made before
        the package was stored)."""
        self.key_package(key_id)  # HolderNotReady if this holder has no share of it
        raw = self.state.store.get(frost_public_entry(key_id))
        if raw is None:
            raise HolderNotReady(f"key {key_id!r} predates policy support for FROST (no public package stored)")
        return public_package_from_bytes(raw)

    def _adjusted(self, key_id: str, kp: KeyPackage, tap_tweak: bytes | None,
                  hd_tweak: int | None = None) -> tuple[KeyAdjust, Element]:
        hit = self._adjust.get((key_id, tap_tweak, hd_tweak))
        if hit is None or hit[0] is not kp:  # another package (a new epoch) makes the entry stale
            suite = kp.suite
            # InvalidInput for a bad tweak / a non-BIP340 suite; hd_tweak: the BIP32 child's key (keys.key_adjust)
            adjust = frost_key_adjust(suite, kp.group_key, tap_tweak, hd_tweak)
            hit = (kp, adjust, adjust.point(suite.group, kp.group_key))
            if len(self._adjust) > 1024:
                self._adjust.clear()
            self._adjust[(key_id, tap_tweak, hd_tweak)] = hit
        return hit[1], hit[2]

    def nonce_count(self, key_id: str) -> int:
        """Stored, unconsumed nonce pairs of a key (lists the store: for tests and operators, not the hot path)."""
        self.state.require_holder(_NOT_ON_WORKERS)
        return self.state.vault.count(nonce_kind(check_key_id(key_id)))

    # signing ----------------------------------------------------------------------------------------------
    def sign(self, key_id: str, requests: Sequence[Any], *, with_group_commitment: bool = False) -> list:
        """Signature shares z_i, one per request, in order (with `with_group_commitment`: (z_i, SerializeElement(R))
        pairs, R being the group commitment this signer computed; the coordinator uses it to skip recomputing R).
        Only node/authorized.py calls this, once a principal's request is allowed."""
        st = self.state
        st.require_holder(_NOT_ON_WORKERS)
        kp = self.key_package(key_id)
        if not isinstance(requests, (list, tuple)) or len(requests) > MAX_SIGN_BATCH:
            raise InvalidInput(f"requests must be a list of at most {MAX_SIGN_BATCH}")
        if not requests:
            return []
        kind = nonce_kind(key_id)
        seen: set[bytes] = set()
        prepared = [self._parse_request(key_id, kp, r, seen) for r in requests]
        for p in prepared:  # cheap early refusals; take_many checks both again under its lock
            if st.ledger.contains(p.nid):
                raise AlreadyConsumed(p.nid)
            if not st.store.exists(SecretVault.entry_name(kind, p.nid)):
                raise SecretNotFound(f"no nonce with id {p.nid.hex()[:16]}..")
        # --- point of no return: every nonce is consumed durably before any share is computed ---
        ids = [p.nid for p in prepared]
        records = st.vault.take_many(kind, ids, delete=False)
        try:
            return _shares(kp, key_id, prepared, records, with_group_commitment)
        finally:  # consumed files are unusable already; unlinking them is off the signing path
            st.spent(kind, ids)

    def _parse_request(self, key_id: str, kp: KeyPackage, req: Any, seen: set[bytes]) -> _Prepared:
        suite, g = kp.suite, kp.suite.group
        if not isinstance(req, (tuple, list)) or len(req) not in (3, 4, 5):
            raise InvalidInput("each request is (nonce id, message, commitment list[, tap_tweak[, derivation path]])")
        nid, msg, clist = req[0], req[1], req[2]
        tap_tweak = req[3] if len(req) >= 4 else None
        hd_tweak = _hd_tweak(kp, req[4]) if len(req) == 5 else None
        if not isinstance(nid, (bytes, bytearray)) or len(nid) != ID_BYTES:
            raise InvalidInput(f"nonce ids are {ID_BYTES} bytes")
        if not isinstance(msg, (bytes, bytearray)):
            raise InvalidInput("message must be bytes")
        if tap_tweak is not None and not isinstance(tap_tweak, (bytes, bytearray)):
            raise InvalidInput("tap_tweak must be bytes or None")
        nid, msg = bytes(nid), bytes(msg)
        tap_tweak = None if tap_tweak is None else bytes(tap_tweak)
        if nid in seen:
            raise AlreadyConsumed(nid, "the same nonce id appears twice in one request batch")
        seen.add(nid)
        entries = split_commitment_list(suite, clist)
        if len(entries) < kp.threshold:
            raise InvalidInput(f"need commitments of at least {kp.threshold} signers")
        if not {i for i, _ in entries} <= set(self.state.directory):
            raise InvalidInput("commitment list names a party outside the committee")
        own = next((e for i, e in entries if i == kp.identifier), None)
        if own is None or nonce_id(suite, key_id, own) != nid:
            raise InvalidInput("own commitment missing or changed in the commitment list")
        adjust, y = self._adjusted(key_id, kp, tap_tweak, hd_tweak)
        ed = g.name == "ed25519"
        es, ss = g.element_size, g.scalar_size
        coms: list[SigningCommitments] = []
        for i, e in entries:
            if i == kp.identifier:
                # this holder's own entry (it hashes to a nonce id); compared with the vault record after the take
                coms.append(commitment_from_trusted_bytes(suite, e))
                continue
            try:
                d_j = g.deserialize_element(e[ss : ss + es])
                # Ed25519: E_j is validated by the multiplication below, before anything is consumed
                e_j = EdPoint(e[ss + es :]) if ed else g.deserialize_element(e[ss + es :])
            except ValueError as exc:
                raise InvalidInput(f"commitment of party {i}: {exc}") from None
            coms.append(SigningCommitments(i, d_j, e_j))
        rho = compute_binding_factors(suite, y, coms, msg)  # hashes the list bytes (identity encodings refused)
        peers = []
        for c in coms:
            if c.identifier == kp.identifier:
                continue
            try:
                e_rho = _ed25519_mul_validating(c.binding.to_bytes(), rho[c.identifier]) if ed else \
                    c.binding * rho[c.identifier]
            except ValueError as exc:
                raise InvalidInput(f"commitment of party {c.identifier}: {exc}") from None
            peers.append(c.hiding + e_rho)
        return _Prepared(nid, msg, own, tuple(coms), rho, g.sum(peers), adjust, y)



class FrostHolder:
    """FROST key generation sessions ("frost-dkg") and nonce commitments on one holder; `signer` makes the shares."""

    PROTOCOLS = ("frost-dkg",)

    def __init__(self, state: HolderState, authorization: Authorization, signer: FrostSigner) -> None:
        self.state = state
        self._auth = authorization
        self.signer = signer

    # key generation -------------------------------------------------------------------------------------
    def machine(self, req: BeginRequest) -> DkgParty:
        """The RoundParty of a "frost-dkg" session."""
        st = self.state
        st.require_holder(_NOT_ON_WORKERS)
        key_id = check_key_id(req.params.get("key_id"))
        scheme = req.params.get("scheme")
        if scheme not in FROST_SCHEMES:
            raise InvalidInput(f"frost-dkg scheme must be one of {FROST_SCHEMES}")
        if st.store.get(frost_key_entry(key_id)) is not None:
            raise InvalidInput("key id exists")
        threshold = req.params.get("threshold")
        if not isinstance(threshold, int) or isinstance(threshold, bool):
            raise InvalidInput("threshold must be an integer")
        self._auth.approve(req.params.get("approval"), RequestKind.CREATE_KEY, {
            "key_id": key_id, "scheme": scheme, "threshold": threshold, "parties": sorted(req.parties)})
        return DkgParty(get_suite(scheme), req.sid, st.party, req.parties, threshold)

    def finish(self, session: Session) -> dict:
        """Store the key package (encrypted) and return only public values."""
        st = self.state
        key_id = session.params["key_id"]
        out = session.machine.output
        kp, pub = out.key_package, out.public_package
        st.store.put(frost_key_entry(key_id), key_package_to_bytes(kp))
        st.store.put(frost_public_entry(key_id), public_package_to_bytes(pub))
        st.keys.set_frost(key_id, kp)
        return {
            "scheme": kp.suite_key,
            "public_package": public_package_to_bytes(pub),
            "public_key": public_key_bytes(pub.suite, pub.group_key),
            "chain_code": pub.chain_code,
            "threshold": pub.threshold,
            "parties": list(pub.parties),
        }

    # nonces -----------------------------------------------------------------------------------------------
    def commit(self, key_id: str, count: int, grant: Any = None) -> list[tuple[bytes, bytes]]:
        """`count` fresh nonce pairs: [(nonce id, commitment entry)]. Each secret pair is in the vault first. Only on
        the coordinator's grant for this party, key and count, within the key's rate (node/session_gate.py)."""
        st = self.state
        st.require_holder(_NOT_ON_WORKERS)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COMMIT:
            raise InvalidInput(f"count must be an integer in 1..{MAX_COMMIT}")
        gate = self._auth.gate
        checked = gate.check_commit(check_key_id(key_id), count, grant)  # before anything is read
        kp = self.signer.key_package(key_id)
        suite, kind = kp.suite, nonce_kind(key_id)
        if st.vault.count(kind) + count > MAX_STORED_NONCES:  # a runaway coordinator cannot fill the disk
            raise InvalidInput(f"{MAX_STORED_NONCES} nonce pairs of this key are stored already")
        gate.admit_commit(key_id, count, checked)  # the grant's id remembered, the key's rate counted
        out = []
        for _ in range(count):
            nid, entry, record = new_nonce_record(suite, key_id, kp)
            st.vault.put(kind, nid, record)
            out.append((nid, entry))
        return out


def _hd_tweak(kp: KeyPackage, path: Any) -> int | None:
    """The BIP32 tweak of `path` for a BIP340 key, from this holder's own stored chain code (None: no path)."""
    if path is None:
        return None
    if kp.suite_key != "schnorr-bip340":
        raise InvalidInput(f"{kp.suite_key} keys have no BIP32 derivation")
    return frost_tweak(kp.group_key, kp.chain_code, path)


@dataclass
class _Prepared:
    nid: bytes
    msg: bytes
    own_entry: bytes
    commitments: tuple[SigningCommitments, ...]
    rho: dict[int, int]
    peers_r: Element  # sum over the other signers j of D_j + rho_j E_j
    adjust: KeyAdjust
    y: Element


def _ed25519_mul_validating(enc: bytes, k: int) -> EdPoint:
    """k P for an untrusted encoding of P, refusing what RFC DeserializeElement refuses (ValueError): libsodium's
    variable-base multiplication checks canonical encoding, small order and main-subgroup membership itself, so
    validating E_j costs nothing beyond the multiplication the signer needs anyway."""
    if len(enc) != 32 or int.from_bytes(enc, "little") & ((1 << 255) - 1) >= FIELD_P:
        raise ValueError("non-canonical point encoding")
    k %= L
    if k <= 1:  # libsodium refuses a zero scalar; both cases have probability ~2^-252
        return EdPoint.from_bytes(enc) * k
    try:
        return EdPoint(_nacl.crypto_scalarmult_ed25519_noclamp(k.to_bytes(32, "little"), enc))
    except RuntimeError:
        raise ValueError("not a point of the prime-order subgroup") from None


def _shares(kp: KeyPackage, key_id: str, prepared: list[_Prepared], records: list[bytes],
            with_group_commitment: bool) -> list:
    suite, g = kp.suite, kp.suite.group
    out: list = []
    for p, raw in zip(prepared, records):
        rec = nonce_record_from_bytes(raw)
        if rec.suite != suite.key or rec.key_id != key_id or rec.commitment != p.own_entry:
            raise MpcError("stored nonce record does not match its id")  # consumed: fails safe
        nonces = restore_nonces(rec)
        d, e = g.deserialize_scalar(rec.hiding), g.deserialize_scalar(rec.binding)
        r = p.peers_r + g.base_mul(d + e * p.rho[kp.identifier])  # own D_i + rho_i E_i, one fixed-base mul
        if r.is_identity:
            raise MpcError("group commitment is the identity")  # probability ~2^-252
        session = SigningSession(suite, p.msg, p.commitments, p.adjust, p.y, p.rho, r, suite.nonce_factor(r),
                                 suite.challenge(r, p.y, p.msg))
        z = rfc_sign(suite, kp, nonces, p.msg, session)
        out.append((z, g.serialize_element(r)) if with_group_commitment else z)
    return out
