"""Resharing a threshold key to a new committee, over any prime-order group (sans-I/O).

The same protocol serves ECDSA on secp256k1 (`frost_suites.SECP256K1`, the group of `KeyShare`) and both FROST
suites (`ED25519` for eddsa-ed25519, `SECP256K1` for schnorr-bip340): the key stays the same, the committee and
its threshold change, e.g. 2-of-3 on parties {1, 2, 3} to 3-of-5 on {1, .., 5}, or {1, 2, 3} -> {1, 3, 4}.

Roles: a *dealer* is an old party taking part (at least the old threshold of them); a *receiver* is a member of
the new committee. A party may be both. Dealer j holds x_j; with lambda_j its Lagrange coefficient over the
dealer set D, w_j = lambda_j x_j and sum_j w_j = x. Rounds:

1. dealers broadcast V_j = H(ssid, j, C_j, u_j) (hash commitment; others broadcast an empty commitment), where
   C_j = (g_j0 G, .., g_j(t'-1) G) commits to a fresh polynomial g_j of degree t'-1 with g_j(0) = w_j.
2. dealers broadcast the decommitment and everyone an echo of round 1 (no dealer can show two committees two
   different polynomials); dealers send g_j(k) to each receiver k (the node layer seals them under the session
   ephemeral keys announced in round 1, which is broadcast-only for that reason: node/envelope.py).
3. everyone checks the echo and every decommitment, |C_j| = t', each point, and
   `check_dealer_commitment`: C_j0 == lambda_j X_j, against the *old* public share X_j (the CVE-2025-66017 class
   of bugs: a dealer whose constant term is not its own weighted share could shift or replace the key);
   `check_constant_sum`: sum_j C_j0 == Y. Receivers check each g_j(k) against C_j (`check_subshare`).
   The new public shares X'_k = sum_j C_j(k) and the new public key sum_j C_j0 = Y follow for everyone; each
   receiver k sets x'_k = sum_j g_j(k) and broadcasts a confirmation: the digest of the new public package, X'_k
   and a Schnorr proof of knowledge of x'_k. Non-receivers confirm the digest only.
4. everyone checks every confirmation (same digest, X'_k as computed, proof valid): only then has the new
   committee confirmed, and the node layer may let old holders delete their shares.

Every transcript and commitment hashes the session context (`reshare_context`): the session id, the group, the
epoch, the old public package, the dealer set and the new committee, so nothing carries over between sessions,
epochs, keys or committees. Failures name the culprit: ProtocolAbort(culprit, "reshare.<check>").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence, cast

from ..crypto.frost_suites import Element, Group
from ..crypto.transcript import Transcript
from ..crypto.vss import Polynomial, evaluate_commitments, lagrange_coefficient, random_coefficients
from ..errors import InvalidInput, MpcError, ProofError
from .base import Inbound, Outbox, RoundParty
from .common import echo_digest, hash_commit, is_seed, random_seed, same_bytes

if TYPE_CHECKING:
    from ..crypto.secp256k1 import Point
    from .ecdsa.keygen import KeyShare
    from .frost.dkg import DkgOutput
    from .frost.keys import PublicKeyPackage

TAG = "mpc-ray/reshare"


# public inputs and output -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OldCommittee:
    """What everyone knows of the committee that holds the key now."""

    public_key: Element
    threshold: int
    public_shares: Mapping[int, Element]  # X_j = x_j G of every old party

    @property
    def parties(self) -> tuple[int, ...]:
        return tuple(sorted(self.public_shares))


class ReshareOutput:
    """A participant's result: the new committee's public package and, for a receiver, its new share."""

    __slots__ = ("party", "public_key", "threshold", "parties", "public_shares", "share", "digest")

    def __init__(self, party: int, public_key: Element, threshold: int, public_shares: Mapping[int, Element],
                 share: int | None, digest: bytes) -> None:
        self.party, self.public_key, self.threshold = party, public_key, threshold
        self.public_shares = dict(public_shares)
        self.parties = tuple(sorted(self.public_shares))
        self.share = share
        self.digest = digest

    def __repr__(self) -> str:
        return (f"ReshareOutput(party={self.party}, {self.threshold}-of-{self.parties}, "
                f"share={'<redacted>' if self.share is not None else None})")


# messages (points and scalars in the group's own encoding, decoded and validated by the receiver) -----------
@dataclass(frozen=True)
class Commit:
    v: bytes  # 32 bytes from a dealer, empty from anyone else


@dataclass(frozen=True)
class DealerReveal:
    commitments: list[bytes]  # C_j0 .. C_j(t'-1); empty from a non-dealer
    u: bytes  # the commitment's randomness (32 bytes); empty from a non-dealer


@dataclass(frozen=True)
class Reveal:
    reveal: DealerReveal
    echo: bytes


@dataclass(frozen=True)
class SubShare:
    share: bytes  # g_j(k) from dealer j to receiver k; empty otherwise


@dataclass(frozen=True)
class Confirm:
    digest: bytes  # of the new public package as the sender computed it
    public_share: bytes  # X'_k of a receiver; empty from a non-receiver
    pok_r: bytes
    pok_z: bytes


_EMPTY_REVEAL = DealerReveal([], b"")


# the checks, by name ----------------------------------------------------------------------------------------
def dealer_weight(group: Group, dealer: int, dealers: Sequence[int]) -> int:
    """lambda_j: the Lagrange coefficient at 0 of `dealer` over the dealer set."""
    return lagrange_coefficient(dealer, sorted(dealers), order=group.order)


def check_dealer_commitment(group: Group, old: OldCommittee, dealers: Sequence[int], dealer: int,
                            constant: Element) -> None:
    """C_j0 must be lambda_j X_j, the dealer's *old* public share weighted over the dealer set: a dealer cannot
    deal anything but its own share of the key. Raises ProofError("dealer_commitment")."""
    expected = old.public_shares[dealer] * dealer_weight(group, dealer, dealers)
    if constant != expected:
        raise ProofError("dealer_commitment", "constant term is not lambda_j X_j of the old public share")


def check_constant_sum(group: Group, old: OldCommittee, constants: Mapping[int, Element]) -> None:
    """The dealers' constant terms must sum to the public key: the new sharing is of the same secret.
    Raises ProofError("constant_sum")."""
    if group.sum(constants[j] for j in sorted(constants)) != old.public_key:
        raise ProofError("constant_sum", "constant terms do not sum to the public key")


def check_subshare(group: Group, commitments: Sequence[Element], receiver: int, share: int) -> None:
    """g_j(k) G must equal C_j evaluated at k. Raises ProofError("subshare")."""
    if not 0 <= share < group.order or group.base_mul(share) != evaluate_commitments(commitments, receiver,
                                                                                      group=group):
        raise ProofError("subshare", "share does not match the dealer's commitments")


def check_old_committee(group: Group, old: OldCommittee, dealers: Sequence[int]) -> None:
    """Local input check: the old public shares interpolate to the public key over the dealer set (so a correct
    dealer set can always pass `check_constant_sum`). InvalidInput otherwise."""
    total = group.sum(old.public_shares[j] * dealer_weight(group, j, dealers) for j in sorted(dealers))
    if total != old.public_key:
        raise InvalidInput("old public shares do not interpolate to the public key")


def reshare_context(group: Group, sid: bytes, old: OldCommittee, dealers: Sequence[int], new_parties: Sequence[int],
                    new_threshold: int, epoch: int, context: bytes) -> bytes:
    """32-byte digest of everything public the session is about; every transcript and commitment hashes it."""
    t = Transcript(f"{TAG}/context").append_bytes("group", group.name.encode()).append_bytes("sid", sid)
    t.append_int("epoch", epoch).append_bytes("context", context)
    t.append_bytes("public_key", group.serialize_element(old.public_key)).append_int("threshold", old.threshold)
    for j in old.parties:
        t.append_int("old_party", j).append_bytes("X", group.serialize_element(old.public_shares[j]))
    t.append_ints("dealers", sorted(dealers)).append_ints("new_parties", sorted(new_parties))
    return t.append_int("new_threshold", new_threshold).challenge_bytes("ssid", 32)


def public_package_digest(group: Group, ssid: bytes, public_key: Element, threshold: int,
                          public_shares: Mapping[int, Element]) -> bytes:
    t = Transcript(f"{TAG}/package").append_bytes("ssid", ssid)
    t.append_bytes("Y", group.serialize_element(public_key)).append_int("threshold", threshold)
    for k in sorted(public_shares):
        t.append_int("party", k).append_bytes("X", group.serialize_element(public_shares[k]))
    return t.challenge_bytes("digest", 32)


def _pok_challenge(group: Group, ssid: bytes, party: int, public: Element, r: Element) -> int:
    t = Transcript(f"{TAG}/pok").append_bytes("ssid", ssid).append_int("party", party)
    t.append_bytes("X", group.serialize_element(public)).append_bytes("R", group.serialize_element(r))
    return t.challenge_below("c", group.order)


def prove_share_knowledge(group: Group, ssid: bytes, party: int, share: int, public: Element) -> tuple[bytes, bytes]:
    """Schnorr proof of knowledge of x'_k with X'_k = x'_k G, bound to the session context and the prover."""
    k = group.random_scalar()
    r = group.base_mul(k)
    z = (k + _pok_challenge(group, ssid, party, public, r) * share) % group.order
    return group.serialize_element(r), group.serialize_scalar(z)


def verify_share_knowledge(group: Group, ssid: bytes, party: int, public: Element, r: Element, z: int) -> None:
    if group.base_mul(z) != r + public * _pok_challenge(group, ssid, party, public, r):
        raise ProofError("confirm_pok", "proof of knowledge of the new share does not verify")


# the round party --------------------------------------------------------------------------------------------
class ReshareParty(RoundParty):
    """One participant of a resharing. `share` is this party's old share x_j if it is a dealer, else None."""

    NAME = "reshare"
    ROUNDS = ((Commit, None), (Reveal, SubShare), (Confirm, None))

    def __init__(
        self,
        sid: bytes,
        party: int,
        *,
        group: Group,
        old: OldCommittee,
        dealers: Sequence[int],
        new_parties: Sequence[int],
        new_threshold: int,
        epoch: int,
        share: int | None = None,
        context: bytes = b"",
    ) -> None:
        dealers, new_parties = sorted(set(dealers)), sorted(set(new_parties))
        super().__init__(sid, party, sorted(set(dealers) | set(new_parties)))
        if any(not isinstance(p, int) or isinstance(p, bool) or not 0 < p < group.order for p in self.parties):
            raise InvalidInput("party identifiers must be positive integers below the group order")
        if not set(dealers) <= set(old.public_shares):
            raise InvalidInput("dealers must be members of the old committee")
        if len(dealers) < old.threshold:
            raise InvalidInput(f"need at least {old.threshold} dealers")
        if not isinstance(new_threshold, int) or not 1 <= new_threshold <= len(new_parties):
            raise InvalidInput("need 1 <= new threshold <= number of new parties")
        if not isinstance(epoch, int) or epoch < 0:
            raise InvalidInput("epoch must be a non-negative integer")
        self.is_dealer, self.is_receiver = party in dealers, party in new_parties
        if self.is_dealer != (share is not None):
            raise InvalidInput("a dealer needs its old share, and only a dealer")
        if share is not None and group.base_mul(share) != old.public_shares[party]:  # share given: a dealer
            raise InvalidInput("own share does not match its old public share")
        check_old_committee(group, old, dealers)
        self.group, self.old, self.dealers = group, old, dealers
        self.new_parties, self.new_threshold, self.epoch = new_parties, new_threshold, epoch
        self.ssid = reshare_context(group, self.sid, old, dealers, new_parties, new_threshold, epoch, context)
        self._share = share
        self._poly: Polynomial | None = None
        self._commits: dict[int, Commit] = {}
        self._commitments: dict[int, list[Element]] = {}
        self._subshares: dict[int, int] = {}
        self._new_share: int | None = None

    def __repr__(self) -> str:
        return f"ReshareParty(party={self.party}, dealers={self.dealers}, new={self.new_parties}, <redacted>)"

    # round 1 ----------------------------------------------------------------------------------------------
    def round1(self) -> Outbox:
        if not self.is_dealer:
            self._commits[self.party] = Commit(b"")
            return Outbox(broadcast=self._commits[self.party])
        g = self.group
        assert self._share is not None  # a dealer has its old share (checked in __init__)
        w = dealer_weight(g, self.party, self.dealers) * self._share % g.order
        self._share = None
        self._poly = Polynomial(random_coefficients(self.new_threshold - 1, w, g.order), g.order)
        points = self._poly.commitments(g)
        self._commitments[self.party] = points
        self._reveal = DealerReveal([g.serialize_element(c) for c in points], random_seed())
        self._commits[self.party] = Commit(hash_commit(TAG, self.ssid, self.party, self._reveal))
        return Outbox(broadcast=self._commits[self.party])

    # round 2 ----------------------------------------------------------------------------------------------
    def round2(self, inbox: Mapping[int, Inbound]) -> Outbox:
        for j in self.others:
            msg: Commit = inbox[j].broadcast
            if (j in self.dealers and len(msg.v) != 32) or (j not in self.dealers and msg.v):
                raise self.abort(j, "commit_shape")
            self._commits[j] = msg
        self._echo = echo_digest(TAG, self.ssid, self._commits)
        g = self.group
        direct = {}
        poly = self._poly  # None: not a dealer
        for k in self.others:
            direct[k] = SubShare(g.serialize_scalar(poly(k)) if poly is not None and k in self.new_parties else b"")
        if self._poly is not None:
            if self.is_receiver:
                self._subshares[self.party] = self._poly(self.party)
            self._poly.wipe()
            self._poly = None
        reveal = self._reveal if self.is_dealer else _EMPTY_REVEAL
        return Outbox(broadcast=Reveal(reveal, self._echo), direct=direct)

    # round 3 ----------------------------------------------------------------------------------------------
    def round3(self, inbox: Mapping[int, Inbound]) -> Outbox:
        g = self.group
        for j in self.others:
            msg: Reveal = inbox[j].broadcast
            if not same_bytes(msg.echo, self._echo):
                raise self.abort(j, "echo", "round-1 broadcasts differ")
            if j in self.dealers:
                self._check_dealer(j, msg.reveal)
            elif msg.reveal != _EMPTY_REVEAL:
                raise self.abort(j, "unexpected_reveal")
            raw = inbox[j].direct.share
            if j in self.dealers and self.is_receiver:
                try:
                    value = g.deserialize_scalar(raw)
                except ValueError:
                    raise self.abort(j, "subshare", "not a canonical scalar") from None
                with self.blame(j):
                    check_subshare(g, self._commitments[j], self.party, value)
                self._subshares[j] = value
            elif raw:
                raise self.abort(j, "unexpected_subshare")
        constants = {j: self._commitments[j][0] for j in self.dealers}
        try:
            check_constant_sum(g, self.old, constants)
        except ProofError:  # every dealer passed check_dealer_commitment and the old package interpolates: a bug
            raise MpcError("dealer constants passed one by one but do not sum to the public key") from None
        summed = [g.sum(self._commitments[j][k] for j in self.dealers) for k in range(self.new_threshold)]
        self._public_shares = {k: evaluate_commitments(summed, k, group=g) for k in self.new_parties}
        if summed[0] != self.old.public_key or any(x.is_identity for x in self._public_shares.values()):
            raise MpcError("new public package is degenerate")  # excluded by the checks above, barring a bug
        self._digest = public_package_digest(g, self.ssid, self.old.public_key, self.new_threshold,
                                             self._public_shares)
        if not self.is_receiver:
            return Outbox(broadcast=Confirm(self._digest, b"", b"", b""))
        self._new_share = sum(self._subshares.values()) % g.order
        self._subshares = {}
        mine = self._public_shares[self.party]
        if g.base_mul(self._new_share) != mine:
            raise MpcError("own new share does not match the summed commitments")  # every subshare was checked
        r, z = prove_share_knowledge(g, self.ssid, self.party, self._new_share, mine)
        return Outbox(broadcast=Confirm(self._digest, g.serialize_element(mine), r, z))

    def _check_dealer(self, j: int, reveal: DealerReveal) -> None:
        g = self.group
        if not same_bytes(hash_commit(TAG, self.ssid, j, reveal), self._commits[j].v):
            raise self.abort(j, "decommitment")
        if not is_seed(reveal.u):
            raise self.abort(j, "seed_length")
        if len(reveal.commitments) != self.new_threshold:
            # a longer vector would raise the new threshold, a shorter one lower it
            raise self.abort(j, "commitment_count",
                             f"{len(reveal.commitments)} commitments for threshold {self.new_threshold}")
        try:
            points = [g.deserialize_element(c) for c in reveal.commitments]
        except ValueError as exc:
            raise self.abort(j, "commitment_point", str(exc)) from None
        with self.blame(j):
            check_dealer_commitment(g, self.old, self.dealers, j, points[0])
        self._commitments[j] = points

    # round 4 (output) -------------------------------------------------------------------------------------
    def round4(self, inbox: Mapping[int, Inbound]) -> ReshareOutput:
        g = self.group
        for j in self.others:
            msg: Confirm = inbox[j].broadcast
            if not same_bytes(msg.digest, self._digest):
                raise self.abort(j, "confirm_digest", "computed a different new public package")
            if j not in self.new_parties:
                if msg.public_share or msg.pok_r or msg.pok_z:
                    raise self.abort(j, "confirm_shape")
                continue
            if not same_bytes(msg.public_share, g.serialize_element(self._public_shares[j])):
                raise self.abort(j, "confirm_public_share")
            try:
                r, z = g.deserialize_element(msg.pok_r), g.deserialize_scalar(msg.pok_z)
            except ValueError as exc:
                raise self.abort(j, "confirm_pok", str(exc)) from None
            with self.blame(j):
                verify_share_knowledge(g, self.ssid, j, self._public_shares[j], r, z)
        share = self._new_share if self.is_receiver else None
        self._new_share = None
        return ReshareOutput(self.party, self.old.public_key, self.new_threshold, self._public_shares, share,
                             self._digest)


# results in each scheme's own types ---------------------------------------------------------------------------
def ecdsa_key_share(template: "KeyShare", out: ReshareOutput) -> "KeyShare":
    """The new ECDSA `KeyShare` of receiver `out.party`. `template` is any share (or public record) of the same
    key: copying it keeps every public field it carries beyond the ones set here (e.g. a chain code)."""
    import copy

    if out.share is None:
        raise InvalidInput("only a receiver gets a new share")
    if template.public_key != out.public_key:
        raise InvalidInput("template belongs to another key")
    new = copy.copy(template)
    new.party, new.threshold, new.parties = out.party, out.threshold, out.parties
    new.x, new.public_shares = out.share, dict(cast("Mapping[int, Point]", out.public_shares))  # secp256k1 elements
    return new


def frost_output(suite_key: str, out: ReshareOutput, template: "PublicKeyPackage | None" = None) -> "DkgOutput":
    """The new FROST key package and public key package of receiver `out.party` (same shape as a DKG's).
    `template`, the old public key package, passes on every public field it has beyond the ones set here (e.g. a
    chain code), to the public package and to the key package fields of the same name."""
    import dataclasses

    from .frost.dkg import DkgOutput
    from .frost.keys import KeyPackage, PublicKeyPackage

    if out.share is None:
        raise InvalidInput("only a receiver gets a new share")
    kp = KeyPackage(suite_key, out.party, out.share, out.public_shares[out.party], out.public_key, out.threshold)
    if template is None:
        return DkgOutput(kp, PublicKeyPackage(suite_key, out.public_key, dict(out.public_shares), out.threshold))
    if template.suite_key != suite_key or template.group_key != out.public_key:
        raise InvalidInput("template belongs to another key")
    pub = dataclasses.replace(template, verifying_shares=dict(out.public_shares), threshold=out.threshold)
    own = {f.name for f in dataclasses.fields(KeyPackage)}
    extra = {f.name for f in dataclasses.fields(PublicKeyPackage)} & own - {"suite_key", "group_key", "threshold"}
    return DkgOutput(dataclasses.replace(kp, **{name: getattr(template, name) for name in extra}), pub)
