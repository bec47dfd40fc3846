"""Everything a share holder does on a principal's word: signing under policy, operator batches, admin approvals.

Three kinds of request reach it, each signed by principals of the holder's own registry:
- an agent's ``sign`` request (a transaction, typed data, a PSBT, ...): decoded, decided and audited here (below);
- an operator's ``raw_batch`` (`sign_raw`, `frost_raw`): opaque messages the operator's policy allows as
  ``raw_digest``; each message is signed at most 3 times per holder under one request (retries after a
  co-signer failed), each with a fresh one-time secret, each call audited;
- an admin-quorum request naming one action and its parameters (`approve`): key creation, refresh, resharing, new
  members, backup, restore; policies and registries have their own entry points (`set_policy`, `set_principals`).

Every request is signed by a principal; this holder verifies it, decodes the transaction itself, computes the digest
itself, evaluates the policy of (key, principal) on its own spend state, and only then consumes a presignature and
returns sigma_i (a DKLs23 key: its online share, node/hd.py `ecdsa_online`) over the digest it computed — so a
compromised agent or coordinator cannot get a partial signature outside policy. Order: verify -> binding -> decode -> evaluate -> consume -> count the spend -> sign -> audit.

Two durable writes per decision (or per batch). The request nonce reaches its ledger's file once the request is
verified and before its body is decoded, so a body that crashes the process cannot crash it again when resent (it is
a replay then). The audit record (fsync'd before sigma_i leaves) is the journal of the decision: it carries the
request nonce's ledger id, the presignature id and the intent with its spends. The presignature is consumed in memory
at once (a duplicate fails immediately) and reaches its ledger's file, with the audit checkpoint and a snapshot of
the spend state, in a background flush right after. When the holder opens, it
replays the audit records after the last snapshot into the ledgers and the spend state, so a crash between the
audit fsync and that flush loses nothing: a replayed request is still refused, a consumed presignature stays
consumed and a cap still counts what was signed. A denial is journaled the same way (its nonce is spent).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, NoReturn

from ..errors import HolderNotReady, InvalidInput, MpcError, PolicyDenied, Unauthorized
from .audit import AuditEntry, AuditLog
from .frost_holder import FrostSigner
from .hd import ecdsa_online, ecdsa_tweak
from .holder_state import HolderState, presig_kind
from .policy import (
    Intent,
    Policy,
    TxType,
    PolicyEngine,
    SpendState,
    check_binding,
    check_chain_families,
    check_derivation_path,
    intent_from_request,
    policy_from_request,
    policy_store_name,
    spend_store_name,
)
from .principals import (
    NOT_REFUSALS,
    PrincipalRegistry,
    RequestFormat,
    RequestKind,
    RequestVerifier,
    Role,
    SignedRequest,
    registry_from_request,
)
from .raw_batch import decode_raw_batch
from .session_gate import SessionGate
from .store import ConsumedLedger

log = logging.getLogger(__name__)


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

MAX_BATCH = 1024  # requests in one `sign_many` call
REQUEST_NONCES = "request-nonces.ledger"  # beside the store: the ledger of spent request nonces
AUDIT_LOG = "audit.jsonl"
SNAPSHOT_ENTRY = "authz-snapshot"  # EncryptedStore entry: spend states and the journal position they cover


class JournalFlusher:
    """Background thread that writes what the audit journal already made durable: the deferred ledger ids, the
    audit checkpoint and the spend snapshot. It waits for a quiet moment (`QUIET_S` without a decision) so that its
    fsyncs never queue in front of a decision's own, but never lags more than `MAX_LAG_S` behind."""

    QUIET_S = 0.05
    MAX_LAG_S = 1.0

    def __init__(self, auth: AuthorizedSigning) -> None:
        self._auth = auth
        self._cv = threading.Condition()
        self._first = self._last = 0.0  # monotonic times of the first and last decision not yet flushed
        self._stopped = False
        threading.Thread(target=self._run, daemon=True, name="authz-journal-flusher").start()

    def poke(self) -> None:
        with self._cv:
            now = time.monotonic()
            if not self._first:
                self._first = now
                self._cv.notify()
            self._last = now

    def stop(self) -> None:
        """No more flushes after the one in progress (a holder closing, or a test simulating a crash)."""
        with self._cv:
            self._stopped = True
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopped:
                    if self._first:
                        now = time.monotonic()
                        due = min(self._last + self.QUIET_S, self._first + self.MAX_LAG_S)
                        if now >= due:
                            break
                        self._cv.wait(due - now)
                    else:
                        self._cv.wait()
                if self._stopped:
                    return
                self._first = self._last = 0.0
            try:
                self._auth.save_snapshot()
            except Exception as exc:  # noqa: BLE001 - the audit log still holds everything; retried next time
                log.warning("journal flush failed: %s", type(exc).__name__)


class AuthorizedSigning:
    """A holder's (role "holder") principals, request nonces, policies, spend state and audit log, and every
    decision made on a principal's word. `frost` makes the FROST shares it allows."""

    def __init__(self, state: HolderState, frost: FrostSigner) -> None:
        self.state, self.frost = state, frost
        self.nonces = ConsumedLedger(state.dir / REQUEST_NONCES)
        try:
            self.audit = AuditLog(state.dir / AUDIT_LOG, state.identity)
        except BaseException:
            self.nonces.close()  # a log that does not open must not leave the ledger locked for the next attempt
            raise
        self.lock = threading.Lock()  # one decision at a time: spend state must not race
        raw = state.store.get("principals")
        self.verifier = RequestVerifier.from_registry(PrincipalRegistry.from_bytes(raw), self.nonces) if raw else None
        self.spend: dict[str, SpendState] = {}
        self.policies: dict[str, Policy | None] = {}  # parsed policies by store name; set_policy replaces them
        # admin approvals (digest -> (expiry, params)) and operator batches verified here, kept until they expire
        self._approved: OrderedDict[bytes, tuple[float, Any]] = OrderedDict()
        self._batches: OrderedDict[bytes, _Batch] = OrderedDict()
        self._replay_journal()
        self.flusher = JournalFlusher(self)

    # journal ------------------------------------------------------------------------------------------
    def _replay_journal(self) -> None:
        """Load the spend snapshot and apply the audit records after it: ledger ids and allowed spends."""
        index, offset = 0, 0
        raw = self.state.store.get(SNAPSHOT_ENTRY)
        if raw is not None:
            doc = json.loads(raw)
            index, offset = doc["index"], doc["offset"]
            self.spend = {name: SpendState.from_bytes(state.encode()) for name, state in doc["spend"].items()}
        nonce_ids, presig_ids = [], []
        for rec in self.audit.records_since(offset, index):
            if rec.get("nonce_id"):
                nid = bytes.fromhex(rec["nonce_id"])
                if nid not in self.nonces:
                    nonce_ids.append(nid)
            intent = rec.get("intent")
            listed = intent.get("presignature_ids", []) if isinstance(intent, dict) else []
            for pid in [bytes.fromhex(x) for x in listed] or (
                    [bytes.fromhex(rec["presignature_id"])] if rec.get("presignature_id") else []):
                if pid not in self.state.ledger:
                    presig_ids.append(pid)
            if rec["decision"] == "allow" and rec["kind"] == "sign" and intent:
                name = spend_store_name(rec["key_id"], rec["principal"])
                spends = [(asset, int(amount)) for asset, amount in intent["spends"]]
                for _ in range(intent.get("requests_counted", 1)):  # a raw batch counts its messages once
                    self.spend.setdefault(name, SpendState()).record(spends, rec["time"])
        if nonce_ids:
            self.nonces.consume_many(nonce_ids)
        if presig_ids:
            self.state.ledger.consume_many(presig_ids)
        if nonce_ids or presig_ids:
            log.warning("journal replay restored %d nonce and %d presignature ids", len(nonce_ids), len(presig_ids))
        self.audit.write_checkpoint()

    def flush_journal(self) -> None:
        self.nonces.flush()
        self.state.ledger.flush()
        self.audit.write_checkpoint()

    def save_snapshot(self) -> None:
        """Persist the spend states with the journal position they include (records before it are applied)."""
        with self.lock:  # a consistent cut: no decision in flight
            index, offset = self.audit.position()
            doc = {"index": index, "offset": offset,
                   "spend": {name: st.to_bytes().decode() for name, st in sorted(self.spend.items())}}
        self.flush_journal()  # every id of a record before the cut is in its ledger's file before the snapshot is
        self.state.store.put(SNAPSHOT_ENTRY, json.dumps(doc, separators=(",", ":")).encode())

    # requests -----------------------------------------------------------------------------------------
    def bootstrap_principals(self, registry: bytes) -> None:
        """Set the first principals (admins from the deployment). Later changes go through admin-signed requests."""
        reg = PrincipalRegistry.from_bytes(registry)
        existing = self.state.store.get("principals")
        if existing is not None:
            if existing != reg.to_bytes():
                raise Unauthorized("auth.bootstrapped", "principals are already set; change them with an "
                                   "admin-quorum set_principals request")
            return
        self.state.store.put("principals", reg.to_bytes())
        self.verifier = RequestVerifier.from_registry(reg, self.nonces)

    def _verifier(self) -> RequestVerifier:
        if self.verifier is None:
            raise Unauthorized("auth.unknown_principal", "no principals are configured on this node")
        return self.verifier

    def set_policy(self, request: SignedRequest, now: float | None = None) -> None:
        """Store an admin-signed policy of (key, principal). Refused, and audited: another kind of request
        (``auth.wrong_kind``, nothing spent), a version not above the stored policy's (``admin.stale_version``: a
        held-back older policy cannot undo a newer one), a policy the key cannot enforce, or one that allows another
        Solana / Bitcoin network than a policy of another principal on the same key (`check_chain_families`)."""
        now = time.time() if now is None else now
        with self.lock:
            nonce_id = None
            try:
                verified = self._verifier().verify(request, now, kinds=(RequestKind.SET_POLICY,))
                nonce_id = verified.nonce_id
                policy = policy_from_request(verified)
                threshold, parties = self._committee(policy.key_id)
                policy.validate_for_key(threshold, parties)
                name = policy_store_name(policy.key_id, policy.principal_id)
                current = self.policy(name)
                if current is not None and policy.version <= current.version:
                    raise PolicyDenied("admin.stale_version", f"policy version {policy.version} is not above the "
                                                              f"version {current.version} this node has")
                others = [self.policy(n) for n in self.state.store.names(f"policy.{policy.key_id}.") if n != name]
                check_chain_families([policy, *(o for o in others if o is not None)])
                self.state.store.put(name, policy.to_bytes())
                self.policies[name] = policy
            except BaseException as exc:
                self._refuse_admin(request, exc, nonce_id, now)
            self.audit.append(self._admin_entry(verified, f"policy of ({policy.key_id}, {policy.principal_id}) set",
                                                {"policy_sha256": _sha256_hex(policy.to_bytes())}), now=now)

    def set_principals(self, request: SignedRequest, now: float | None = None) -> None:
        """Replace the principal registry: an admin request meeting the *current* registry's admin quorum, whose
        registry has a higher `PrincipalRegistry.version` than the current one (else ``admin.stale_version``)."""
        now = time.time() if now is None else now
        with self.lock:
            nonce_id = None
            try:
                verifier = self._verifier()
                verified = verifier.verify(request, now, kinds=(RequestKind.SET_PRINCIPALS,))
                nonce_id = verified.nonce_id
                registry = registry_from_request(verified)
                if registry.version <= verifier.registry.version:  # a held-back older registry: no revoked comeback
                    raise PolicyDenied("admin.stale_version", f"registry version {registry.version} is not above the "
                                                              f"version {verifier.registry.version} this node has")
                self.state.store.put("principals", registry.to_bytes())
                verifier.update_registry(registry)
            except BaseException as exc:
                self._refuse_admin(request, exc, nonce_id, now)
            summary = {"principals": sorted(f"{p.id}:{p.role.value}" for p in registry.principals),
                       "admin_quorum": registry.admin_quorum, "registry_sha256": _sha256_hex(registry.to_bytes())}
            self.audit.append(self._admin_entry(verified, "principal registry replaced", summary), now=now)

    def _refuse_admin(self, request: Any, exc: BaseException, nonce_id: bytes | None, now: float) -> NoReturn:
        """Raise the refusal of an admin request, audited: a denial always (the principal is the claimed one before
        verification), any other error once the nonce is spent. Anything untyped (the body's decoders raise
        InvalidInput themselves: a disk error, a bug) is refused as MpcError."""
        if isinstance(exc, NOT_REFUSALS):
            raise exc
        err = exc if isinstance(exc, MpcError) else MpcError(f"the request failed ({type(exc).__name__})")
        if isinstance(request, SignedRequest):
            if isinstance(err, PolicyDenied):
                self.audit.append(AuditEntry.for_denial(request, err, nonce_id=nonce_id), now=now)
            elif nonce_id is not None:
                self.audit.append(self._error_entry(request, err, nonce_id), now=now)
        if err is exc:
            raise exc
        raise err from None

    @staticmethod
    def _admin_entry(verified, reason: str, summary: dict) -> AuditEntry:
        req = verified.request
        return AuditEntry(decision="allow", request_digest=verified.request_digest, principal=verified.principal.id,
                          kind=req.kind.value, key_id=req.key_id or None, intent={**summary,
                                                                                  "signers": list(verified.signers)},
                          reason=reason, nonce_id=verified.nonce_id)

    def sign(self, request: SignedRequest, presignature_id: bytes, now: float | None = None) -> tuple[int, bytes]:
        """(sigma_i, digest): the partial over the digest this node computed from the request, if the node's policy
        allows it, and that digest, so a combiner need not decode the request again (it trusts the digest only if
        the combined signature verifies under it)."""
        (outcome,) = self.sign_many([(request, presignature_id)], now)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def sign_many(self, items: list[tuple[SignedRequest, bytes]],
                  now: float | None = None) -> list[tuple[int, bytes] | MpcError]:
        """`sign` for several (request, presignature id) pairs, decided in order (each sees the spends of those
        before it) with one durable write for all their audit records (group commit). Each item is answered on its
        own: (sigma_i, digest), or the error that refused it (a denial is audited and spends the request's nonce, as in
        `sign`). Nothing leaves before the batch's records are fsync'd."""
        now = time.time() if now is None else now
        if not isinstance(items, (list, tuple)) or not items or len(items) > MAX_BATCH:
            raise InvalidInput(f"a batch holds 1 to {MAX_BATCH} (request, presignature id) pairs")
        if not all(isinstance(it, (list, tuple)) and len(it) == 2 and isinstance(it[1], bytes) and len(it[1]) == 32
                   for it in items):  # the coordinator's part, checked before any request's nonce is spent
            raise InvalidInput("each batch item is (signed request, 32-byte presignature id)")
        with self.lock:
            decided = self._decide_many([(request, *self._ecdsa_steps(pid)) for request, pid in items], now)
            # the durable point: no sigma_i leaves before these records are fsync'd
            self._journal([entry for entry, _ in decided if entry is not None], now)
        spent: dict[str, list[bytes]] = {}
        for (request, pid), (_, outcome) in zip(items, decided):
            if not isinstance(outcome, BaseException):
                spent.setdefault(presig_kind(request.key_id), []).append(pid)
        for kind, ids in spent.items():
            self.state.spent(kind, ids)
        return [outcome for _, outcome in decided]

    def _decide_many(self, jobs: list[tuple[Any, Callable, Callable]],
                     now: float) -> list[tuple[AuditEntry | None, Any]]:
        """`_decide` for each (request, prepare, consume_and_sign), in order, with the lock held. Every request is
        admitted first (`_admit`) and the nonces they spend are written to the ledger with one fsync before any body
        is decoded, so a body that kills the process in a decoder is refused as replayed after the restart instead
        of killing it again; the decisions' records follow in one more write (the caller's journal)."""
        admitted = [self._admit(request, now) for request, _, _ in jobs]
        self.nonces.flush()
        return [self._decide(request, now, prepare, consume_and_sign, admitted=a)
                for (request, prepare, consume_and_sign), a in zip(jobs, admitted)]

    def _admit(self, request: Any, now: float) -> tuple[Any, Policy] | tuple[AuditEntry | None, MpcError]:
        """The checks before a sign request's body is read: its kind, the principal's signatures, expiry and nonce
        (consumed in memory; the caller writes it before decoding), the policy binding and the derivation path.
        (verified request, policy), or the refusal: (its audit record, or None where nothing was spent, the error)."""
        if not isinstance(request, SignedRequest):  # nobody to name in an audit record
            return None, Unauthorized("auth.unsigned", "signing needs a principal's signed request")
        nonce_id = None
        try:
            # sign requests only: an admin request relayed here is refused before its nonce is spent
            verified = self._verifier().verify(request, now, durable=False, kinds=(RequestKind.SIGN,))
            nonce_id = verified.nonce_id
            policy = check_binding(self.policy(policy_store_name(request.key_id, verified.principal.id)), verified)
            check_derivation_path(policy, request)  # HD: the signed path must be one the policy pins
            return verified, policy
        except PolicyDenied as exc:
            return AuditEntry.for_denial(request, exc, nonce_id=nonce_id), exc
        except NOT_REFUSALS:
            raise
        except BaseException as exc:  # noqa: BLE001 - a typed refusal of this request alone, whatever went wrong
            err = exc if isinstance(exc, MpcError) else InvalidInput(f"the request could not be checked "
                                                                     f"({type(exc).__name__})")
            return (None if nonce_id is None else self._error_entry(request, err, nonce_id)), err

    def _decide(self, request: SignedRequest, now: float, prepare: Callable, consume_and_sign: Callable,
                admitted: Any = None) -> tuple[AuditEntry | None, Any]:
        """One decision, with the lock held: (the audit record to journal, the answer or the refusal). The skeleton
        every scheme shares: verify the principal's signature and nonce -> policy binding -> derivation path
        (`_admit`; `admitted` is its answer when `_decide_many` admitted a whole batch first, else it runs here and
        the nonce is written to the ledger before the body is read) -> `prepare(request)` (decode, scheme checks:
        (intent, threshold, parties, context)) -> evaluate the policy on this node's spend state ->
        `consume_and_sign(request, intent, context)` (consume the one-time secrets, compute the partials: (answer,
        consumed id, signature bytes for the record, intent for the record)) -> count the spend. Nothing is released
        here; the caller journals the record before the answer leaves. Nothing raised in here escapes but
        KeyboardInterrupt, SystemExit and GeneratorExit: a decoder's native panic (a BaseException) is this request's
        InvalidInput, and the rest of a batch is decided on its own."""
        if admitted is None:
            admitted = self._admit(request, now)
            self.nonces.flush()  # durable before the body is decoded (see `_decide_many`)
        if not isinstance(admitted[1], Policy):
            return admitted  # refused before the body was read
        verified, policy = admitted
        nonce_id = verified.nonce_id
        intent = None
        signing = False
        try:
            intent, threshold, parties, context = prepare(request)
            name = spend_store_name(request.key_id, verified.principal.id)
            state = self.spend.get(name) or SpendState()
            decision = PolicyEngine(policy, state, threshold=threshold, parties=parties).evaluate(intent, now)
            decision.raise_if_denied()
            signing = True
            answer, consumed_id, signature, logged_intent = consume_and_sign(request, intent, context)
        except PolicyDenied as exc:
            return AuditEntry.for_denial(request, exc, intent, nonce_id=nonce_id), exc
        except MpcError as exc:
            # the spent nonce is journaled, with what went wrong (no secrets)
            return self._error_entry(request, exc, nonce_id), exc
        except NOT_REFUSALS:
            raise
        except BaseException as exc:  # noqa: BLE001 - e.g. pyo3's PanicException from solders: refuse this one
            err = (MpcError(f"internal error while signing ({type(exc).__name__})") if signing else
                   InvalidInput(f"the request body could not be decoded or checked ({type(exc).__name__})"))
            return self._error_entry(request, err, nonce_id), err
        state.record(intent.spends, now)
        self.spend[name] = state
        entry = AuditEntry.for_decision(verified, decision, presignature_id=consumed_id, signature=signature)
        if logged_intent is not intent:
            entry = dataclasses.replace(entry, intent=logged_intent)
        return entry, answer

    def _ecdsa_steps(self, presignature_id: bytes) -> tuple[Callable, Callable]:
        """`_decide`'s ECDSA steps: the holder's key share (and an HD child's tweak), then one presignature consumed
        in memory (the audit record is its journal) and sigma_i over the digest this node computed."""
        def prepare(request: SignedRequest) -> tuple[Any, int, int, Any]:
            intent = intent_from_request(request)
            key, protocol = self.state.keys.key(request.key_id), self.state.keys.protocol(request.key_id)
            tweak = ecdsa_tweak(key, request.derivation_path) if request.derivation_path else None  # HD
            return intent, key.threshold, len(key.parties), (key, protocol, tweak)

        def consume_and_sign(request: SignedRequest, intent: Any,
                             context: Any) -> tuple[tuple[Any, bytes], bytes, bytes, Any]:
            key, protocol, tweak = context
            data = self.state.vault.take_many(presig_kind(request.key_id), [presignature_id], delete=False,
                                              durable=False)[0]
            # CGGMP21: sigma_i; DKLs23: its OnlineShare; re-randomised either way (node/hd.py)
            answer, logged = ecdsa_online(data, protocol, key, intent.digest, tweak)
            return (answer, intent.digest), presignature_id, logged, intent

        return prepare, consume_and_sign

    def _committee(self, key_id: str) -> tuple[int, int]:
        """(threshold, number of parties) of an ECDSA or FROST key held here."""
        try:
            key = self.state.keys.key(key_id)
            return key.threshold, len(key.parties)
        except HolderNotReady:
            pub = self.frost.public_package(key_id)
            return pub.threshold, len(pub.parties)

    def frost_sign(self, request: SignedRequest, nonce_id: bytes | list[bytes], commitment_list: bytes | list[bytes],
                   now: float | None = None) -> tuple[int, bytes] | list[tuple[int, bytes]]:
        """(z_i, R) for a principal-signed request on a FROST key (Ed25519: a Solana transfer; BIP340: a Taproot
        key-path PSBT; either suite: a raw 32-byte message if the policy allows raw_digest), after the same checks
        as `sign`, the derivation path included. The message is the one this node decoded; a Solana transfer or a
        PSBT must spend from this key's own address. The nonce pairs are consumed durably before any share is
        computed; the audit record follows before the shares leave.

        ``btc_psbt`` (node/bitcoin_policy.py) signs one BIP341 hash per input, for the key's BIP341 output key
        (empty script tree): `nonce_id` and `commitment_list` are then sequences with one entry per input, in input
        order, and the answer is the list of (z_i, R), one per input. The whole PSBT and the policy are checked
        once. Lists of unequal length are refused before the request is verified (nothing is spent); lists that do
        not match the PSBT's inputs, after it (the request's nonce is spent, as for any refusal after verification,
        and journaled), but before any nonce pair is consumed."""
        now = time.time() if now is None else now
        psbt = isinstance(request, SignedRequest) and request.format is RequestFormat.BTC_PSBT
        # the coordinator's part of the call, checked before the request is verified: a malformed one burns nothing
        nonce_ids, lists = _frost_call(nonce_id, commitment_list, psbt)

        def prepare(req: SignedRequest) -> tuple[Any, int, int, Any]:
            pub = self.frost.public_package(req.key_id)
            intent, messages, tap_tweak = self._frost_intent(req, pub, len(nonce_ids))
            return intent, pub.threshold, len(pub.parties), (pub, messages, tap_tweak)

        def consume_and_sign(req: SignedRequest, intent: Any, context: Any) -> tuple[Any, bytes, bytes, Any]:
            pub, messages, tap_tweak = context
            path = req.derivation_path or None  # the nonce pairs are consumed durably before any share is computed
            shares = self.frost.sign(req.key_id, [(n, m, cl, tap_tweak, path) for n, m, cl in
                                                  zip(nonce_ids, messages, lists)], with_group_commitment=True)
            size = pub.suite.group.scalar_size
            signature = b"".join(int(z).to_bytes(size, "big") for z, _ in shares)
            if len(nonce_ids) > 1:  # the record lists every nonce pair this decision consumed, in input order
                intent = dataclasses.replace(intent, details=(*intent.details, (
                    "nonce_ids", ",".join(n.hex() for n in nonce_ids))))
            return (shares if psbt else shares[0]), nonce_ids[0], signature, intent

        with self.lock:
            entry, outcome = self._decide(request, now, prepare, consume_and_sign)
            if entry is not None:
                self._journal(entry, now)  # before the shares leave
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _frost_intent(self, request: SignedRequest, pub: Any,
                      calls: int) -> tuple[Any, list[bytes], bytes | None]:
        """(intent, the messages to sign, the Taproot tweak) of a FROST request, after the format and sender checks
        (a format the key's suite cannot sign is InvalidInput; a foreign sender is PolicyDenied policy.sender)."""
        from ..protocols.frost.keys import public_key_bytes
        from .principals import RequestFormat

        fmt, suite = request.format, pub.suite_key
        if not (fmt is RequestFormat.RAW_DIGEST or (fmt is RequestFormat.SOLANA_TX and suite == "eddsa-ed25519")
                or (fmt is RequestFormat.BTC_PSBT and suite == "schnorr-bip340")):
            raise InvalidInput(f"format {fmt.value} cannot be signed with a {suite} key")
        intent = intent_from_request(request)
        if fmt is RequestFormat.SOLANA_TX:
            from solders.pubkey import Pubkey

            own = str(Pubkey(public_key_bytes(pub.suite, pub.group_key)))
            if dict(intent.details).get("fee_payer") != own:
                raise PolicyDenied("policy.sender", "the transaction does not spend from this key's address")
        if fmt is not RequestFormat.BTC_PSBT:
            if calls != 1:
                raise InvalidInput("one nonce and one commitment list sign this request")
            return intent, [intent.digest], None
        from .bitcoin_policy import check_sender, split_sighashes
        from .hd import frost_tweak

        hd = frost_tweak(pub.group_key, pub.chain_code, request.derivation_path) if request.derivation_path else None
        check_sender(intent, public_key_bytes(pub.suite, pub.group_key, b"", hd))  # BIP86: empty script tree
        sighashes = split_sighashes(intent.digest)
        if len(sighashes) != calls:
            raise InvalidInput(f"the PSBT has {len(sighashes)} inputs but {calls} nonces and commitment lists came")
        return intent, sighashes, b""

    # admin approvals -------------------------------------------------------------------------------------
    def approve(self, request: Any, kind: RequestKind, params: dict[str, Any], now: float | None = None, *,
                registry: PrincipalRegistry | None = None) -> None:
        """Check that `request` is an admin request of `kind`, meeting the registry's admin quorum, whose JSON body
        is exactly `params`: the action and its parameters as this holder is about to carry them out (committee,
        threshold, key id, ...). Audited. The first showing verifies it in full and spends its nonce; one action may
        take several calls on a holder (a resharing's sessions), so the same approval is accepted again for the
        same action until it expires. Unauthorized (missing, wrong kind, signatures, quorum, replay),
        PolicyDenied ``admin.params`` (the body names another action); nothing is changed by a refusal.
        `registry`: check against it instead of this node's (a fresh node restoring a backup)."""
        now = time.time() if now is None else now
        if not isinstance(request, SignedRequest):
            raise Unauthorized("auth.unsigned", f"{kind.value} needs a request signed by the admin quorum")
        if request.kind is not kind:  # before verify: a request relayed to the wrong entry point burns nothing
            raise Unauthorized("auth.wrong_kind", f"expected a {kind.value} request, got {request.kind.value}")
        expected = json.loads(json.dumps(params, sort_keys=True))
        digest = request.digest()
        with self.lock:
            self._prune_approvals(now)
            seen = self._approved.get(digest)
            if seen is not None:
                if seen[1] != expected:
                    raise PolicyDenied("admin.params", f"this {kind.value} approval is for another action")
                return
            nonce_id = None
            try:
                verifier = self._verifier() if registry is None else RequestVerifier.from_registry(registry,
                                                                                                   self.nonces)
                verified = verifier.verify(request, now)
                nonce_id = verified.nonce_id
                if request.format is not RequestFormat.JSON or request.body_json() != expected:
                    raise PolicyDenied("admin.params", f"the approved {kind.value} names other parameters")
            except PolicyDenied as exc:
                self.audit.append(AuditEntry.for_denial(request, exc, nonce_id=nonce_id), now=now)
                raise
            except InvalidInput as exc:
                self.audit.append(self._error_entry(request, exc, nonce_id), now=now)
                raise
            self._approved[digest] = (float(request.expiry), expected)
            self.audit.append(self._admin_entry(verified, f"{kind.value} approved", {"params": expected}), now=now)

    def check_approved(self, request: Any, kind: RequestKind, covers: Callable[[Any], bool]) -> None:
        """A follow-up step of an action this holder approved already (`approve`): the same request, not expired,
        whose approved parameters `covers` the step. Unauthorized otherwise."""
        with self.lock:
            self._prune_approvals(time.time())
            seen = self._approved.get(request.digest()) if isinstance(request, SignedRequest) else None
        if seen is None or request.kind is not kind or not covers(seen[1]):
            raise Unauthorized("auth.unsigned", f"this step needs a {kind.value} approval this node accepted")

    def _prune_approvals(self, now: float) -> None:
        for digest in [d for d, (expiry, *_) in self._approved.items() if expiry <= now]:
            del self._approved[digest]
        # batches arrive on every signature: drop expired ones from the oldest end only (O(1) per call); one that
        # outlives its neighbours holds the rest back a while, and `_raw_batch` never uses an expired one
        while self._batches:
            oldest = next(iter(self._batches.values()))
            if oldest.expiry > now:
                break
            self._batches.popitem(last=False)

    # operator batches (raw_batch) ----------------------------------------------------------------------------
    def sign_raw(self, request: Any, items: Any, now: float | None = None) -> list[int]:
        """sigma_i for each (message index, presignature id) of an operator's ``raw_batch`` request on an ECDSA key:
        each message of the request is signed at most MAX_SIGNINGS_PER_MESSAGE times on this holder (`_raw_batch`)."""
        items = _raw_items(items, 2)

        def consume_and_sign(book: _Batch, chosen: list[tuple[int, bytes, tuple]]) -> tuple[list, list[bytes], bytes]:
            key, protocol = self.state.keys.key(book.key_id), self.state.keys.protocol(book.key_id)
            tweak = ecdsa_tweak(key, book.path) if book.path else None  # HD: node/hd.py
            pids = [item[1] for _, _, item in chosen]
            raw = self.state.vault.take_many(presig_kind(book.key_id), pids, delete=False, durable=False)
            # CGGMP21: sigma_i; DKLs23: its OnlineShare (node/hd.py `ecdsa_online`)
            answers = [ecdsa_online(data, protocol, key, msg, tweak) for data, (_, msg, _) in zip(raw, chosen)]
            self.state.spent(presig_kind(book.key_id), pids)
            return [a for a, _ in answers], pids, b"".join(b for _, b in answers)

        def committee(key_id: str) -> tuple[int, int]:
            key = self.state.keys.key(key_id)
            return key.threshold, len(key.parties)

        return self._raw_batch(request, items, now, committee, consume_and_sign, ecdsa=True)

    def frost_raw(self, request: Any, items: Any, now: float | None = None) -> list[tuple[int, bytes]]:
        """(z_i, R) for each (message index, nonce id, commitment list) of an operator's ``raw_batch`` request on a
        FROST key (the request's tap_tweak and derivation path apply to every message); nonce pairs are consumed
        durably before any share is computed."""
        items = _raw_items(items, 3)

        def consume_and_sign(book: _Batch, chosen: list[tuple[int, bytes, tuple]]) -> tuple[list, list[bytes], bytes]:
            pub = self.frost.public_package(book.key_id)
            shares = self.frost.sign(book.key_id, [(item[1], msg, item[2], book.tap_tweak, book.path)
                                                   for _, msg, item in chosen], with_group_commitment=True)
            size = pub.suite.group.scalar_size
            return shares, [item[1] for _, _, item in chosen], b"".join(int(z).to_bytes(size, "big")
                                                                         for z, _ in shares)

        def committee(key_id: str) -> tuple[int, int]:
            pub = self.frost.public_package(key_id)
            return pub.threshold, len(pub.parties)

        return self._raw_batch(request, items, now, committee, consume_and_sign, ecdsa=False)

    def _raw_batch(self, request: Any, items: list[tuple], now: float | None, committee: Callable,
                   consume_and_sign: Callable, *, ecdsa: bool) -> list:
        """The skeleton of an operator batch. First showing on this holder: verify the operator's signature and nonce,
        the policy binding and derivation path, decode the batch and let the policy decide every message (opaque:
        ``raw_digest``), counting each as one request; a refusal refuses the whole request (audited). Every call,
        the first included: the indices asked for must be messages of the request not signed here too often, the
        principal and its policy still the ones that approved it; then the one-time secrets are consumed and the
        call's audit record (each index, message hash and consumed id) is fsync'd before the partials leave."""
        now = time.time() if now is None else now
        if not isinstance(request, SignedRequest):
            raise Unauthorized("auth.unsigned", "signing needs a request signed by an operator")
        if request.kind is not RequestKind.SIGN or request.format is not RequestFormat.RAW_BATCH:
            raise Unauthorized("auth.wrong_kind", "this entry point signs raw_batch requests only")
        digest = request.digest()
        with self.lock:
            self._prune_approvals(now)
            book = self._batches.get(digest)
            first = book is None or book.expiry <= now
            if first:  # an expired one is verified again, and refused as expired
                book = self._open_batch(request, now, committee, ecdsa)  # audits and raises a refusal
            try:
                chosen = book.take(items, self._verifier().registry, self.policy(book.policy_name))
                answers, consumed, signature = consume_and_sign(book, chosen)
            except MpcError as exc:
                if first:  # the nonce is spent: journal it with what went wrong
                    self._journal(self._error_entry(request, exc, book.nonce_id), now)
                raise
            entry = AuditEntry(
                decision="allow", request_digest=digest, principal=request.principal_id, kind="sign",
                key_id=request.key_id, reason=f"{len(chosen)} of {len(book.messages)} messages",
                intent={"type": "raw_batch", "chain": request.chain or None, "spends": [],
                        "path": book.path, "count": len(chosen),
                        "requests_counted": len(book.messages) if first else 0,
                        "signed": [[i, hashlib.sha256(m).hexdigest()] for i, m, _ in chosen],
                        "presignature_ids" if ecdsa else "nonce_ids": [c.hex() for c in consumed]},
                nonce_id=book.nonce_id if first else None, presignature_id=consumed[0] if ecdsa else None,
                signature=signature)
            self._journal(entry, now)  # before any partial leaves
        return answers

    def _open_batch(self, request: SignedRequest, now: float, committee: Callable, ecdsa: bool) -> _Batch:
        nonce_id = None
        try:
            verified = self._verifier().verify(request, now, durable=False)  # journaled by the first call's record
            nonce_id = verified.nonce_id
            if verified.principal.role is not Role.OPERATOR:
                raise Unauthorized("auth.not_operator", "raw_batch requests are for operators")
            name = policy_store_name(request.key_id, verified.principal.id)
            policy = check_binding(self.policy(name), verified)
            check_derivation_path(policy, request)
            batch = decode_raw_batch(request.body)
            if ecdsa and (batch.tap_tweak is not None or not all(len(m) == 32 for m in batch.messages)):
                raise InvalidInput("ECDSA signs 32-byte digests (and takes no tap_tweak)")
            threshold, parties = committee(request.key_id)
            spend_name = spend_store_name(request.key_id, verified.principal.id)
            state = self.spend.get(spend_name) or SpendState()
            engine = PolicyEngine(policy, state, threshold=threshold, parties=parties)
            for message in batch.messages:  # each message counts as one request (rate limits)
                engine.authorize(Intent(TxType.RAW_DIGEST, request.chain or None, message), now)
        except PolicyDenied as exc:
            self._journal(AuditEntry.for_denial(request, exc, nonce_id=nonce_id), now)
            raise
        except MpcError as exc:
            if nonce_id is not None:
                self._journal(self._error_entry(request, exc, nonce_id), now)
            raise
        self.spend[spend_name] = state
        book = _Batch(request.key_id, float(request.expiry), batch.messages, batch.tap_tweak,
                      request.derivation_path or None, verified.principal, name, policy, nonce_id)
        self._batches[request.digest()] = book
        return book

    def policy(self, name: str) -> Policy | None:
        """The stored policy `name` (policy_store_name), parsed once; None if there is none."""
        if name not in self.policies:
            raw = self.state.store.get(name)
            self.policies[name] = Policy.from_bytes(raw) if raw else None
        return self.policies[name]

    def _journal(self, entries: AuditEntry | list[AuditEntry], now: float) -> None:
        """Append the decision records with one fsync (the checkpoint and ledgers follow in the background flush)."""
        entries = [entries] if isinstance(entries, AuditEntry) else entries
        if entries:
            self.audit.append_many(entries, now=now, checkpoint=False)
            self.flusher.poke()

    @staticmethod
    def _error_entry(request: SignedRequest, exc: MpcError, nonce_id: bytes) -> AuditEntry:
        return AuditEntry(decision="error", request_digest=request.digest(), principal=request.principal_id,
                          kind=request.kind.value, key_id=request.key_id or None, rule=type(exc).__name__,
                          reason=str(exc)[:300], nonce_id=nonce_id)

    def close(self) -> None:
        """Stop the flusher, flush, save the snapshot and release the files."""
        self.flusher.stop()
        self.save_snapshot()
        self.nonces.close()
        self.audit.close()

    def status(self) -> dict[str, Any]:
        count, _ = self.audit.position()
        return {"audit_records": count, "spend_states": len(self.spend)}


class Authorization:
    """The holder part that decides who may do what: the coordinator's session grants (`gate`, node/session_gate.py;
    holder and presign workers) and, on the holder only, everything done on a principal's word (`signing`, an
    `AuthorizedSigning` opened on first use: opening it replays the audit journal into the ledgers)."""

    def __init__(self, state: HolderState, frost: FrostSigner) -> None:
        self.state, self._frost = state, frost
        self.gate = SessionGate(state)
        self._signing: AuthorizedSigning | None = None

    @property
    def signing(self) -> AuthorizedSigning:
        self.state.require_holder("only the holder signs")
        if self._signing is None:
            self._signing = AuthorizedSigning(self.state, self._frost)
        return self._signing

    @property
    def opened(self) -> AuthorizedSigning | None:
        """The signing part if it is open (its ledger and lock are then the ones to use), else None."""
        return self._signing

    def admit_begin(self, requests: list, grant: Any) -> None:
        self.gate.admit_begin(requests, grant)

    def approve(self, request: Any, kind: RequestKind, params: dict[str, Any]) -> None:
        self.signing.approve(request, kind, params)

    def check_approved(self, request: Any, kind: RequestKind, covers: Callable[[Any], bool]) -> None:
        self.signing.check_approved(request, kind, covers)

    def close(self) -> None:
        """Flush and close the signing part, if open; it opens again (replaying the journal) on next use."""
        signing, self._signing = self._signing, None
        if signing is not None:
            signing.close()

    def restart(self) -> None:
        """As after a process restart: the signing part closed (reopened from disk on next use), the grant gate
        empty (no remembered ids, full buckets)."""
        self.close()
        self.gate = SessionGate(self.state)


# How often one holder signs one message of an operator's batch, each time with a fresh presignature or nonce:
# once, plus retries after a co-signer failed or was excluded (each audited). Signing a message again with a fresh
# one-time secret reveals nothing; the cap only bounds what one request can be made to yield.
MAX_SIGNINGS_PER_MESSAGE = 3


@dataclass
class _Batch:
    """An operator's raw_batch request this holder accepted: what it may still sign, until it expires."""

    key_id: str
    expiry: float
    messages: tuple[bytes, ...]
    tap_tweak: bytes | None
    path: str | None
    principal: Any  # the Principal that signed it, as the registry had it
    policy_name: str
    policy: Policy  # the policy that approved it: a replaced policy stops the rest of the batch
    nonce_id: bytes
    signed: dict[int, int] = dataclasses.field(default_factory=dict)  # message index -> signings on this holder

    def take(self, items: list[tuple], registry: Any, policy: Policy | None) -> list[tuple[int, bytes, tuple]]:
        """(index, message, item) for each item; refuses indices outside the batch or signed here before, and a
        batch whose principal or policy changed since it was approved. Marks them signed."""
        if registry.get(self.principal.id) != self.principal:
            raise Unauthorized("auth.unknown_principal", "the operator of this batch is no longer registered")
        if policy is not self.policy:
            raise PolicyDenied("policy.changed", "the policy changed since this batch was approved: sign it again")
        indices = [item[0] for item in items]
        if any(i >= len(self.messages) for i in indices):
            raise InvalidInput("a message index is outside the batch")
        if any(self.signed.get(i, 0) >= MAX_SIGNINGS_PER_MESSAGE for i in indices):
            raise Unauthorized("auth.replayed", "a message of this batch was signed on this node "
                                                f"{MAX_SIGNINGS_PER_MESSAGE} times already")
        for i in indices:
            self.signed[i] = self.signed.get(i, 0) + 1
        return [(item[0], self.messages[item[0]], item) for item in items]


def _raw_items(items: Any, width: int) -> list[tuple]:
    """Shape checks of the coordinator's part of a raw_batch call, before anything is verified or consumed:
    (index, 32-byte id[, commitment list bytes]) with distinct indices and ids."""
    if not isinstance(items, (list, tuple)) or not 1 <= len(items) <= MAX_BATCH:
        raise InvalidInput(f"a call signs 1 to {MAX_BATCH} messages of a batch")
    out = []
    for it in items:
        if (not isinstance(it, (list, tuple)) or len(it) != width or type(it[0]) is not int or it[0] < 0
                or not isinstance(it[1], bytes) or len(it[1]) != 32
                or (width == 3 and not isinstance(it[2], (bytes, bytearray)))):
            raise InvalidInput("each item is (message index, 32-byte id" + (", commitment list)" if width == 3 else ")"))
        out.append(tuple(it))
    if len({it[0] for it in out}) != len(out) or len({it[1] for it in out}) != len(out):
        raise InvalidInput("message indices and ids within a call are distinct")
    return out


def _frost_call(nonce_id: Any, commitment_list: Any, per_input: bool) -> tuple[list[bytes], list[bytes]]:
    """The coordinator's nonce ids and commitment lists of a `frost_sign` call as two equal lists: one of each, or
    (``btc_psbt``) sequences of one per input. Shapes only; the holder checks the contents before consuming."""
    if not per_input:
        return [nonce_id], [commitment_list]
    from .bitcoin_policy import MAX_INPUTS

    if (not isinstance(nonce_id, (list, tuple)) or not isinstance(commitment_list, (list, tuple))
            or not 1 <= len(nonce_id) <= MAX_INPUTS or len(nonce_id) != len(commitment_list)):
        raise InvalidInput("a PSBT request takes equal lists of nonce ids and commitment lists, one per input")
    if not all(isinstance(x, (bytes, bytearray)) for x in (*nonce_id, *commitment_list)):
        raise InvalidInput("nonce ids and commitment lists are bytes")
    return [bytes(x) for x in nonce_id], [bytes(x) for x in commitment_list]
