"""The policy-enforced ECDSA signing path of a share holder.

Every request is signed by a principal; this holder verifies it, decodes the transaction itself, computes the digest
itself, evaluates the policy of (key, principal) on its own spend state, persists that state, and only then consumes
a presignature and returns sigma_i over the digest it computed — so a compromised agent or coordinator cannot get a
partial signature outside policy. Every decision, allowed or denied, is appended to the node's signed, hash-chained
audit log before the answer leaves. Order: verify -> binding -> decode -> authorize -> persist spend -> consume ->
sign -> audit.
"""

from __future__ import annotations

import threading
import time

from ..crypto.secp256k1 import Q
from ..errors import InvalidInput, PolicyDenied
from ..protocols.ecdsa.sign import digest_to_int
from .audit import AuditEntry, AuditLog
from .principals import PrincipalRegistry, RequestVerifier, SignedRequest
from .policy import (
    Policy,
    PolicyEngine,
    SpendState,
    check_binding,
    intent_from_request,
    policy_from_request,
    policy_store_name,
    spend_store_name,
)
from .records import presignature_from_bytes


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
            try:
                verified = self._verifier().verify(request, now)
                policy = policy_from_request(verified)
                key = self.holder.key(policy.key_id)
                policy.validate_for_key(key.threshold, len(key.parties))
                self.holder.store.put(policy_store_name(policy.key_id, policy.principal_id), policy.to_bytes())
            except PolicyDenied as exc:
                self.audit.append(AuditEntry.for_denial(request, exc), now=now)
                raise

    def sign(self, request: SignedRequest, presignature_id: bytes, now: float | None = None) -> int:
        """sigma_i over the digest this node computed from the request, if the node's policy allows it."""
        now = time.time() if now is None else now
        key_id = request.key_id
        with self.lock:
            try:
                verified = self._verifier().verify(request, now)
                raw_policy = self.holder.store.get(policy_store_name(key_id, verified.principal.id))
                policy = check_binding(Policy.from_bytes(raw_policy) if raw_policy else None, verified)
                intent = intent_from_request(request)
                key = self.holder.key(key_id)
                spend_name = spend_store_name(key_id, verified.principal.id)
                raw_spend = self.holder.store.get(spend_name)
                state = SpendState.from_bytes(raw_spend) if raw_spend else SpendState()
                decision = PolicyEngine(policy, state, threshold=key.threshold, parties=len(key.parties)).authorize(
                    intent, now
                )
                self.holder.store.put(spend_name, state.to_bytes())  # before any presignature is consumed
            except PolicyDenied as exc:
                self.audit.append(AuditEntry.for_denial(request, exc), now=now)
                raise
            m = digest_to_int(intent.digest)
            rec = presignature_from_bytes(self.holder.vault.take(f"presig-{key_id}", presignature_id))
            sigma = (rec.k * m + rec.r * rec.chi) % Q
            self.audit.append(
                AuditEntry.for_decision(verified, decision, presignature_id=presignature_id,
                                        signature=sigma.to_bytes(32, "big")),
                now=now,
            )
            return sigma
