"""FROST signing as round parties.

`SignParty` (two rounds): round 1 broadcasts nonce commitments (fresh, or a precomputed `SigningNonces` handed
in), round 2 broadcasts the signature share; every party aggregates and verifies. `PrecommittedSignParty` (one
round) starts from a commitment list agreed beforehand (a pool of precomputed round-one outputs), so a
signature needs a single message exchange.

Every party checks each peer's message and raises ProtocolAbort naming the peer:
- "frost.sign.identifier"        the message's identifier is not its sender
- "frost.sign.commitment_point"  a nonce commitment is not a valid, non-identity point of the prime-order group
- "frost.sign.message"           the peer signs another message or tweak
- "frost.sign.commitment_list"   the echoed commitment list is not sorted by distinct identifiers of the signers
- "frost.sign.echo"              the echoed commitment list differs from ours (someone equivocated; we name the
                                 party whose echo differs: without signed envelopes we cannot tell more)
- "frost.sign.share"             the share is not a canonical scalar, or fails verify_signature_share
- "frost.sign.nonce_reuse"       this party was handed nonces that are already spent (culprit: itself)
- "frost.decode"                 the payload does not decode
"""

from __future__ import annotations

import hashlib
from typing import Mapping, Sequence, cast

from ...crypto.frost_suites import Ciphersuite, get_suite
from ...errors import InvalidInput, ProtocolAbort
from ..base import Inbound, Outbox
from ..common import same_bytes
from ._party import FrostRoundParty
from .keys import KeyPackage, PublicKeyPackage, key_adjust
from .messages import CommitmentMsg, ShareMsg
from .signing import (
    FrostSignature,
    NonceReuseError,
    SigningCommitments,
    SigningNonces,
    SigningSession,
    aggregate,
    commit,
    prepare,
    sign,
)


def signing_context(suite: Ciphersuite, msg: bytes, tap_tweak: bytes | None, hd_tweak: int | None = None) -> bytes:
    """Digest of what is being signed, so parties given different messages, tweaks or derivation paths find out by
    name."""
    h = hashlib.sha256()
    for part in (b"mpc-ray/frost/sign-context/v1", suite.context, bytes(msg)):
        h.update(len(part).to_bytes(8, "big") + part)
    h.update(b"\x00" if tap_tweak is None else b"\x01" + len(tap_tweak).to_bytes(1, "big") + bytes(tap_tweak))
    if hd_tweak is not None:  # absent for underived keys: their context is unchanged
        h.update(b"\x02" + hd_tweak.to_bytes(32, "big"))
    return h.digest()


class _SignCore(FrostRoundParty):
    NAME = "frost.sign"

    def _setup(
        self,
        suite: Ciphersuite | str,
        key_package: KeyPackage,
        public_package: PublicKeyPackage,
        message: bytes,
        signers: Sequence[int],
        nonces: SigningNonces | None,
        tap_tweak: bytes | None,
        hd_tweak: int | None = None,
    ) -> None:
        self.suite = get_suite(suite)
        if key_package.suite_key != self.suite.key or public_package.suite_key != self.suite.key:
            raise InvalidInput("key packages belong to another suite")
        if key_package.group_key != public_package.group_key:
            raise InvalidInput("key package and public key package disagree on the group key")
        n = len(public_package.verifying_shares)
        if set(public_package.verifying_shares) != set(range(1, n + 1)):
            raise InvalidInput("verifying shares must be indexed 1..n")
        if not set(signers) <= set(public_package.verifying_shares):
            raise InvalidInput(f"signers must be identifiers in 1..{n}")
        if len(signers) < public_package.threshold:
            raise InvalidInput(f"need at least {public_package.threshold} signers")
        if not isinstance(message, (bytes, bytearray)):
            raise InvalidInput("message must be bytes")
        if nonces is not None:
            if nonces.used:
                raise NonceReuseError(f"nonces of party {nonces.identifier} were already used")
            if nonces.identifier != self.party or nonces.suite_key != self.suite.key:
                raise InvalidInput("nonces belong to another party or suite")
        key_adjust(self.suite, public_package.group_key, tap_tweak, hd_tweak)  # validates the tweaks now, not mid-run
        self.key_package = key_package
        self.public_package = public_package
        self.message = bytes(message)
        self.tap_tweak = tap_tweak
        self.hd_tweak = hd_tweak
        self._context = signing_context(self.suite, self.message, tap_tweak, hd_tweak)
        self._nonces = nonces
        self._session: SigningSession | None = None
        self._echo: list[CommitmentMsg] = []

    def _wire(self, c: SigningCommitments) -> CommitmentMsg:
        g = self.suite.group
        return CommitmentMsg(c.identifier, g.serialize_element(c.hiding), g.serialize_element(c.binding))

    def _share_message(self, commitments: list[SigningCommitments]) -> ShareMsg:
        """Compute our share over the sorted commitment list; spends the nonces."""
        assert self._nonces is not None
        commitments = sorted(commitments, key=lambda c: c.identifier)  # by identifier value (RFC)
        # Every element was validated on receipt and identifiers are the distinct signers, so prepare() can
        # only fail on an identity group commitment (probability ~2^-252), as InvalidInput.
        self._session = prepare(self.suite, self.public_package.group_key, commitments, self.message, self.tap_tweak,
                                self.hd_tweak)
        try:
            z = sign(self.suite, self.key_package, self._nonces, self.message, self._session)
        except NonceReuseError:
            raise self.abort(self.party, "nonce_reuse", "handed nonces that were already used") from None
        self._echo = [self._wire(c) for c in commitments]
        share = self.suite.group.serialize_scalar(z)
        return ShareMsg(self.party, self._context, list(self._echo), share)

    def _finish(self, inbox: Mapping[int, Inbound], own: ShareMsg) -> FrostSignature:
        """Check every peer's share message, aggregate, verify; blame a bad share by name."""
        assert self._session is not None
        g = self.suite.group
        ids = [c.identifier for c in self._session.commitments]
        shares = {self.party: g.deserialize_scalar(own.share)}
        for sender in sorted(inbox):
            msg = cast(ShareMsg, inbox[sender].broadcast)
            if msg.identifier != sender:
                raise self.abort(sender, "identifier", f"message claims identifier {msg.identifier}")
            if not same_bytes(msg.context, self._context):
                raise self.abort(sender, "message", "signs a different message or tweak")
            echoed = [e.identifier for e in msg.commitments]
            if echoed != ids:
                raise self.abort(sender, "commitment_list", "not the signers sorted by distinct identifiers")
            for theirs, ours in zip(msg.commitments, self._echo):
                if not (same_bytes(theirs.hiding, ours.hiding) and same_bytes(theirs.binding, ours.binding)):
                    raise self.abort(sender, "echo", f"commitments of party {ours.identifier} differ")
            shares[sender] = self._scalar(sender, msg.share, "share")
        try:
            return aggregate(
                self.suite,
                self._session,
                self.message,
                self.public_package.group_key,
                shares,
                self.public_package.verifying_shares,
                reporter=self.party,
            )
        except ProtocolAbort as exc:
            raise ProtocolAbort(exc.culprit, exc.check, exc.detail, self.party) from None


class SignParty(_SignCore):
    """Two-round FROST signing for one signer set. Output: the verified `FrostSignature`."""

    ROUNDS = ((CommitmentMsg, None), (ShareMsg, None))

    def __init__(
        self,
        suite: Ciphersuite | str,
        key_package: KeyPackage,
        public_package: PublicKeyPackage,
        message: bytes,
        sid: bytes,
        signers: Sequence[int],
        *,
        nonces: SigningNonces | None = None,
        tap_tweak: bytes | None = None,
        hd_tweak: int | None = None,
    ) -> None:
        super().__init__(sid, key_package.identifier, signers)
        self._setup(suite, key_package, public_package, message, self.parties, nonces, tap_tweak, hd_tweak)
        self._own: ShareMsg | None = None

    def round1(self) -> Outbox:
        if self._nonces is None:
            self._nonces = commit(self.suite, self.party, self.key_package.signing_share)
        return Outbox(broadcast=self._wire(self._nonces.commitments))

    def round2(self, inbox: Mapping[int, Inbound]) -> Outbox:
        assert self._nonces is not None
        commitments = [self._nonces.commitments]
        for sender in sorted(inbox):
            msg = cast(CommitmentMsg, inbox[sender].broadcast)
            if msg.identifier != sender:
                raise self.abort(sender, "identifier", f"message claims identifier {msg.identifier}")
            d = self._element(sender, msg.hiding, "commitment_point")
            e = self._element(sender, msg.binding, "commitment_point")
            commitments.append(SigningCommitments(sender, d, e))
        self._own = self._share_message(commitments)
        return Outbox(broadcast=self._own)

    def round3(self, inbox: Mapping[int, Inbound]) -> FrostSignature:
        assert self._own is not None
        return self._finish(inbox, self._own)


class PrecommittedSignParty(_SignCore):
    """One-round FROST signing from a commitment list fixed in advance (each signer's round-one output, taken
    from a pool). `nonces` must be this party's unused pair whose commitments are in the list."""

    ROUNDS = ((ShareMsg, None),)

    def __init__(
        self,
        suite: Ciphersuite | str,
        key_package: KeyPackage,
        public_package: PublicKeyPackage,
        message: bytes,
        sid: bytes,
        commitments: Sequence[SigningCommitments],
        nonces: SigningNonces,
        *,
        tap_tweak: bytes | None = None,
        hd_tweak: int | None = None,
    ) -> None:
        signers = [c.identifier for c in commitments]
        if len(set(signers)) != len(signers):
            raise InvalidInput("commitment list has duplicate identifiers")
        super().__init__(sid, key_package.identifier, signers)
        self._setup(suite, key_package, public_package, message, self.parties, nonces, tap_tweak, hd_tweak)
        mine = [c for c in commitments if c.identifier == self.party]
        if mine != [nonces.commitments]:
            raise InvalidInput("own commitment missing or changed in the commitment list")
        self._commitments = list(commitments)
        self._own: ShareMsg | None = None

    def round1(self) -> Outbox:
        self._own = self._share_message(self._commitments)
        return Outbox(broadcast=self._own)

    def round2(self, inbox: Mapping[int, Inbound]) -> FrostSignature:
        assert self._own is not None
        return self._finish(inbox, self._own)
