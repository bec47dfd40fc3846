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
