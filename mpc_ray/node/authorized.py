"""The policy-enforced ECDSA signing path of a share holder.

Every request is signed by a principal; this holder verifies it, decodes the transaction itself, computes the digest
itself, evaluates the policy of (key, principal) on its own spend state, and only then consumes a presignature and
returns sigma_i over the digest it computed — so a compromised agent or coordinator cannot get a partial signature
outside policy. Order: verify -> binding -> decode -> evaluate -> consume -> count the spend -> sign -> audit.

One durable write per decision. The audit record (fsync'd before sigma_i leaves) is the journal of the decision: it
carries the request nonce's ledger id, the presignature id and the intent with its spends. The nonce and the
presignature are consumed in memory at once (a duplicate fails immediately) and reach their ledgers' files, with the
audit checkpoint and a snapshot of the spend state, in a background flush right after. When the holder opens, it
replays the audit records after the last snapshot into the ledgers and the spend state, so a crash between the
audit fsync and that flush loses nothing: a replayed request is still refused, a consumed presignature stays
consumed and a cap still counts what was signed. A denial is journaled the same way (its nonce is spent).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from typing import Any, Callable

from ..errors import InvalidInput, MpcError, PolicyDenied
from .audit import AuditEntry, AuditLog
from .hd import ecdsa_partial, ecdsa_tweak
from .policy import (
    Policy,
    PolicyEngine,
    SpendState,
    check_binding,
    check_derivation_path,
    intent_from_request,
    policy_from_request,
    policy_store_name,
    spend_store_name,
)
from .principals import (
    PrincipalRegistry,
    RequestKind,
    RequestVerifier,
    SignedRequest,
    registry_from_request,
)
from .records import presignature_from_bytes

log = logging.getLogger(__name__)


def _sha256_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()

MAX_BATCH = 1024  # requests in one `sign_many` call
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
    """Owned by a `ShareHolder` (role "holder"): principals, request nonces, policies, spend state and audit log."""

    def __init__(self, holder) -> None:
        from .store import ConsumedLedger

        self.holder = holder
        self.nonces = ConsumedLedger(holder.dir / "request-nonces.ledger")
        self.audit = AuditLog(holder.dir / "audit.jsonl", holder.identity)
        self.lock = threading.Lock()  # one decision at a time: spend state must not race
        raw = holder.store.get("principals")
        self.verifier = RequestVerifier.from_registry(PrincipalRegistry.from_bytes(raw), self.nonces) if raw else None
        self.spend: dict[str, SpendState] = {}
        self.policies: dict[str, Policy | None] = {}  # parsed policies by store name; set_policy replaces them
        self._replay_journal()
        self.flusher = JournalFlusher(self)

    # journal ------------------------------------------------------------------------------------------
    def _replay_journal(self) -> None:
        """Load the spend snapshot and apply the audit records after it: ledger ids and allowed spends."""
        index, offset = 0, 0
        raw = self.holder.store.get(SNAPSHOT_ENTRY)
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
            if rec.get("presignature_id"):
                pid = bytes.fromhex(rec["presignature_id"])
                if pid not in self.holder.ledger:
                    presig_ids.append(pid)
            intent = rec.get("intent")
            if rec["decision"] == "allow" and rec["kind"] == "sign" and intent:
                name = spend_store_name(rec["key_id"], rec["principal"])
                spends = [(asset, int(amount)) for asset, amount in intent["spends"]]
                self.spend.setdefault(name, SpendState()).record(spends, rec["time"])
        if nonce_ids:
            self.nonces.consume_many(nonce_ids)
        if presig_ids:
            self.holder.ledger.consume_many(presig_ids)
        if nonce_ids or presig_ids:
            log.warning("journal replay restored %d nonce and %d presignature ids", len(nonce_ids), len(presig_ids))
        self.audit.write_checkpoint()

    def flush_journal(self) -> None:
        self.nonces.flush()
        self.holder.ledger.flush()
        self.audit.write_checkpoint()

    def save_snapshot(self) -> None:
        """Persist the spend states with the journal position they include (records before it are applied)."""
        with self.lock:  # a consistent cut: no decision in flight
            index, offset = self.audit.position()
            doc = {"index": index, "offset": offset,
                   "spend": {name: st.to_bytes().decode() for name, st in sorted(self.spend.items())}}
        self.flush_journal()  # every id of a record before the cut is in its ledger's file before the snapshot is
        self.holder.store.put(SNAPSHOT_ENTRY, json.dumps(doc, separators=(",", ":")).encode())

    # requests -----------------------------------------------------------------------------------------
    def bootstrap_principals(self, registry: bytes) -> None:
        """Set the first principals (admins from the deployment). Later changes go through admin-signed requests."""
        reg = PrincipalRegistry.from_bytes(registry)
        existing = self.holder.store.get("principals")
        if existing is not None:
            if existing != reg.to_bytes():
                raise InvalidInput("principals are already set; change them with an admin-signed request")
            return
        self.holder.store.put("principals", reg.to_bytes())
        self.verifier = RequestVerifier.from_registry(reg, self.nonces)

    def _verifier(self) -> RequestVerifier:
        if self.verifier is None:
            raise PolicyDenied("auth.unknown_principal", "no principals are configured on this node")
        return self.verifier

    def set_policy(self, request: SignedRequest, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.lock:
            nonce_id = None
            try:
                verified = self._verifier().verify(request, now)
                nonce_id = verified.nonce_id
                policy = policy_from_request(verified)
                threshold, parties = self._committee(policy.key_id)
                policy.validate_for_key(threshold, parties)
                name = policy_store_name(policy.key_id, policy.principal_id)
                self.holder.store.put(name, policy.to_bytes())
                self.policies[name] = policy
            except PolicyDenied as exc:
                self.audit.append(AuditEntry.for_denial(request, exc, nonce_id=nonce_id), now=now)
                raise
            self.audit.append(self._admin_entry(verified, f"policy of ({policy.key_id}, {policy.principal_id}) set",
                                                {"policy_sha256": _sha256_hex(policy.to_bytes())}), now=now)

    def set_principals(self, request: SignedRequest, now: float | None = None) -> None:
        """Replace the principal registry: an admin request meeting the *current* registry's admin quorum."""
        now = time.time() if now is None else now
        with self.lock:
            nonce_id = None
            try:
                if request.kind is not RequestKind.SET_PRINCIPALS:
                    raise InvalidInput("not a set_principals request")
                verifier = self._verifier()
                verified = verifier.verify(request, now)
                nonce_id = verified.nonce_id
                registry = registry_from_request(verified)
                self.holder.store.put("principals", registry.to_bytes())
                verifier.update_registry(registry)
            except PolicyDenied as exc:
                self.audit.append(AuditEntry.for_denial(request, exc, nonce_id=nonce_id), now=now)
                raise
            summary = {"principals": sorted(f"{p.id}:{p.role.value}" for p in registry.principals),
                       "admin_quorum": registry.admin_quorum, "registry_sha256": _sha256_hex(registry.to_bytes())}
            self.audit.append(self._admin_entry(verified, "principal registry replaced", summary), now=now)

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
            decided = [self._decide(request, now, *self._ecdsa_steps(pid)) for request, pid in items]
            # the durable point: no sigma_i leaves before these records are fsync'd
            self._journal([entry for entry, _ in decided if entry is not None], now)
        spent: dict[str, list[bytes]] = {}
        for (request, pid), (_, outcome) in zip(items, decided):
            if not isinstance(outcome, BaseException):
                spent.setdefault(f"presig-{request.key_id}", []).append(pid)
        for kind, ids in spent.items():
            self.holder._deleter.submit(self.holder.vault.delete_consumed, kind, ids)
        return [outcome for _, outcome in decided]

    def _decide(self, request: SignedRequest, now: float, prepare: Callable, consume_and_sign: Callable
                ) -> tuple[AuditEntry | None, Any]:
        """One decision, with the lock held: (the audit record to journal, the answer or the refusal). The skeleton
        every scheme shares: verify the principal's signature and nonce -> policy binding -> derivation path ->
        `prepare(request)` (decode, scheme checks: (intent, threshold, parties, context)) -> evaluate the policy
        on this node's spend state -> `consume_and_sign(request, intent, context)` (consume the one-time secrets,
        compute the partials: (answer, consumed id, signature bytes for the record, intent for the record)) ->
        count the spend. Nothing is released here; the caller journals the record before the answer leaves."""
        nonce_id = None
        intent = None
        try:
            if not isinstance(request, SignedRequest):
                raise InvalidInput("expected a SignedRequest")
            verified = self._verifier().verify(request, now, durable=False)  # journaled by the audit record
            nonce_id = verified.nonce_id
            policy = check_binding(self._policy(policy_store_name(request.key_id, verified.principal.id)), verified)
            check_derivation_path(policy, request)  # HD: the signed path must be one the policy pins
            intent, threshold, parties, context = prepare(request)
            name = spend_store_name(request.key_id, verified.principal.id)
            state = self.spend.get(name) or SpendState()
            decision = PolicyEngine(policy, state, threshold=threshold, parties=parties).evaluate(intent, now)
            decision.raise_if_denied()
            answer, consumed_id, signature, logged_intent = consume_and_sign(request, intent, context)
        except PolicyDenied as exc:
            return AuditEntry.for_denial(request, exc, intent, nonce_id=nonce_id), exc
        except MpcError as exc:
            # a spent nonce is journaled, with what went wrong (no secrets); before that, nothing happened
            return (None if nonce_id is None else self._error_entry(request, exc, nonce_id)), exc
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
            key = self.holder.key(request.key_id)
            tweak = ecdsa_tweak(key, request.derivation_path) if request.derivation_path else None  # HD
            return intent, key.threshold, len(key.parties), (key, tweak)

        def consume_and_sign(request: SignedRequest, intent: Any,
                             context: Any) -> tuple[tuple[int, bytes], bytes, bytes, Any]:
            key, tweak = context
            data = self.holder.vault.take_many(f"presig-{request.key_id}", [presignature_id], delete=False,
                                               durable=False)[0]
            sigma = ecdsa_partial(presignature_from_bytes(data), key, intent.digest, tweak)  # HD: node/hd.py
            return (sigma, intent.digest), presignature_id, sigma.to_bytes(32, "big"), intent

        return prepare, consume_and_sign

    def _committee(self, key_id: str) -> tuple[int, int]:
        """(threshold, number of parties) of an ECDSA or FROST key held here."""
        from .holder import HolderNotReady

        try:
            key = self.holder.key(key_id)
            return key.threshold, len(key.parties)
        except HolderNotReady:
            pub = self._frost_public(key_id)
            return pub.threshold, len(pub.parties)

    def _frost_public(self, key_id: str):
        from .frost_holder import key_package
        from .frost_records import public_package_from_bytes
        from .holder import HolderNotReady
        from .lifecycle import frost_public_entry

        key_package(self.holder, key_id)  # HolderNotReady if this holder has no share of it
        raw = self.holder.store.get(frost_public_entry(key_id))
        if raw is None:
            raise HolderNotReady(f"key {key_id!r} predates policy support for FROST (no public package stored)")
        return public_package_from_bytes(raw)

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
        from .frost_holder import sign as frost_share
        from .principals import RequestFormat

        now = time.time() if now is None else now
        psbt = isinstance(request, SignedRequest) and request.format is RequestFormat.BTC_PSBT
        # the coordinator's part of the call, checked before the request is verified: a malformed one burns nothing
        nonce_ids, lists = _frost_call(nonce_id, commitment_list, psbt)

        def prepare(req: SignedRequest) -> tuple[Any, int, int, Any]:
            pub = self._frost_public(req.key_id)
            intent, messages, tap_tweak = self._frost_intent(req, pub, len(nonce_ids))
            return intent, pub.threshold, len(pub.parties), (pub, messages, tap_tweak)

        def consume_and_sign(req: SignedRequest, intent: Any, context: Any) -> tuple[Any, bytes, bytes, Any]:
            pub, messages, tap_tweak = context
            path = req.derivation_path or None  # the nonce pairs are consumed durably before any share is computed
            shares = frost_share(self.holder, req.key_id, [(n, m, cl, tap_tweak, path) for n, m, cl in
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

    def _policy(self, name: str) -> Policy | None:
        if name not in self.policies:
            raw = self.holder.store.get(name)
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
