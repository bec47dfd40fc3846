"""Typed errors of mpc-ray.

Every failure a caller can see is one of these; none carries secret material. `ProtocolAbort` names the party
at fault (identifiable abort) and the check that failed, so operators can exclude it.
"""

from __future__ import annotations


class MpcError(Exception):
    """Base of every mpc-ray error."""


class InvalidInput(MpcError, ValueError):
    """The caller passed a malformed or out-of-range value; nothing was changed."""


class PolicyDenied(MpcError):
    """A node's policy refused the request; `rule` names the rule that said no."""

    def __init__(self, rule: str, message: str = "") -> None:
        self.rule = rule
        self.message = message
        super().__init__(f"denied by policy rule {rule!r}" + (f": {message}" if message else ""))

    def __reduce__(self):  # keep the fields across pickling (Ray ships exceptions between processes)
        return (self.__class__, (self.rule, self.message))


class Unauthorized(PolicyDenied):
    """No principal this node knows approved the request: unsigned, unknown signer, bad signature, expired, replayed,
    wrong role or kind, too few admins. `rule` is one of the ``auth.*`` rules (node/principals.py)."""


class QuorumUnavailable(MpcError):
    """Fewer than `threshold` parties could take part."""


class ProtocolAbort(MpcError):
    """A protocol run stopped because a party sent a value that failed a check.

    `culprit` is the 1-based index of the party at fault, `check` a stable name of the failed check
    (for example ``"pi_enc.range_z1"``), `reporter` the party that detected it (None for the combiner).
    """

    def __init__(self, culprit: int, check: str, detail: str = "", reporter: int | None = None) -> None:
        self.culprit = culprit
        self.check = check
        self.detail = detail
        self.reporter = reporter
        msg = f"party {culprit} failed check {check!r}"
        if reporter is not None:
            msg += f" (detected by party {reporter})"
        if detail:
            msg += f": {detail}"
        super().__init__(msg)

    def __reduce__(self):
        return (self.__class__, (self.culprit, self.check, self.detail, self.reporter))


class ProofError(MpcError):
    """A zero-knowledge proof failed verification. Raised by `crypto.zk`; protocols turn it into ProtocolAbort."""

    def __init__(self, check: str, detail: str = "") -> None:
        self.check = check
        self.detail = detail
        super().__init__(f"{check}" + (f": {detail}" if detail else ""))

    def __reduce__(self):
        return (self.__class__, (self.check, self.detail))


class TestPrimeRefused(MpcError):
    """A fixed test prime reached a production code path."""

    __test__ = False  # not a pytest test class


# The errors below were defined next to the code that raises them; they live here so that a caller finds every
# catchable error in one module. Their old modules re-export them (old import paths keep working).

# protocols ---------------------------------------------------------------------------------------------------


class PresignatureUsed(MpcError):
    """A presignature share was asked for a second time. Two signatures from one presignature leak the key."""


class PresignInconsistent(MpcError):
    """The aggregate checks of round 4 failed although every proof verified: one party sent a wrong delta_i or
    S_i. Naming it needs the identification round (pi_mul / pi_dec reveal), which the caller runs. `check` is
    ``"presign.<name>"``."""

    def __init__(self, check: str) -> None:
        self.check = f"presign.{check}"
        super().__init__(self.check)

    def __reduce__(self):  # the constructor adds the prefix: pass the name without it
        return (self.__class__, (self.check.removeprefix("presign."),))


class NonceReuseError(MpcError):
    """A signing nonce pair was used (or asked for) a second time. Reuse would reveal the signing share."""


# holders (node/) ---------------------------------------------------------------------------------------------


class HolderNotReady(MpcError):
    """The holder lacks what the request needs (directory, aux info, key)."""


class StaleEpoch(MpcError):
    """A presignature or result of an epoch that is no longer the key's current one: refused, never stored."""


class ProtocolMismatch(InvalidInput):
    """A presignature, session or result of one ECDSA protocol (CGGMP21, DKLs23) offered for a key of the other."""


class PolicyConfigError(InvalidInput):
    """A policy that cannot be enforced as written (its promise cannot hold, or it contradicts itself)."""


class BackupError(MpcError):
    """A backup that does not open (wrong passphrase, tampering, truncation) or does not fit this holder."""


class StoreCorrupted(MpcError):
    """Stored data failed authentication or is malformed: wrong node secret, tampering or disk corruption."""


class StoreLocked(MpcError):
    """Another process (or another open object) holds this ledger; opening it twice could double-spend."""


class AlreadyConsumed(MpcError):
    """A one-time id was consumed before. `id` is the id (ids are not secret)."""

    def __init__(self, id: bytes, message: str = "") -> None:
        self.id = bytes(id)
        super().__init__(message or f"one-time id {self.id.hex()[:16]}.. was already consumed")

    def __reduce__(self):  # keep the id across pickling: Ray ships exceptions between processes
        return (self.__class__, (self.id, self.args[0] if self.args else ""))


class SecretNotFound(MpcError):
    """No stored secret under this kind and id (never put, or lost)."""


# coordinator -------------------------------------------------------------------------------------------------


class PartyUnavailable(QuorumUnavailable):
    """A holder did not answer in time or its actor is down; `party` says which."""

    def __init__(self, party: int, detail: str = "") -> None:
        self.party, self.detail = party, detail
        super().__init__(f"party {party} unavailable" + (f": {detail}" if detail else ""))

    def __reduce__(self):
        return (self.__class__, (self.party, self.detail))


class HolderRefused(MpcError):
    """A holder answered a FROST call with an error (not unavailability): `party` says which."""

    def __init__(self, party: int, detail: str = "") -> None:
        self.party, self.detail = party, detail
        super().__init__(f"party {party} refused: {detail}")

    def __reduce__(self):
        return (self.__class__, (self.party, self.detail))


class LifecycleIncomplete(MpcError):
    """The new epoch is confirmed but some holders have not committed it yet: call again when they are back."""

    def __init__(self, key_id: str, epoch: int, parties: list[int], detail: str = "") -> None:
        self.key_id, self.epoch, self.parties, self.detail = key_id, epoch, parties, detail
        super().__init__(f"key {key_id!r} epoch {epoch}: holders {parties} still to commit" +
                         (f" ({detail})" if detail else ""))

    def __reduce__(self):
        return (self.__class__, (self.key_id, self.epoch, self.parties, self.detail))


# clients and tools -------------------------------------------------------------------------------------------


class RequestTimeout(MpcError, TimeoutError):
    """The committee (or the gateway) did not answer within the caller's timeout. The request may still complete on
    the nodes: an agent must not assume it was not signed (a policy-enforced request's nonce is spent either way)."""


class BadSignature(MpcError):
    """A signature came back that does not verify under the wallet's own key over the payload the wallet built
    (a faulty or malicious coordinator, gateway or signer); the wallet refuses to return it."""


class GatewayUnavailable(MpcError):
    """The gateway could not be reached (connection refused, DNS, TLS)."""


class ChainError(MpcError):
    """The chain refused or failed a transaction that the committee signed (or could not be reached)."""


class ClusterNotRunning(MpcError):
    """No cluster started by `mpc-ray up` is running for this state directory."""


class IsolationUnavailable(MpcError):
    """A process cannot be started as another OS user here (not root, no setpriv or useradd, or that user cannot
    run this Python): the isolation asked for cannot be had, so nothing was started."""
