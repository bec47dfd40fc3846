"""Run the protocols for n parties (numbered 1..n) inside one process, without Ray.

For tests, notebooks and benchmarks::

    from mpc_ray import sim
    key = sim.keygen("ecdsa-secp256k1", parties=3, threshold=2, security="112")
    sig = key.sign(digest)                      # presign + sign among the first `threshold` parties
    sig = key.sign(digest, signers=[1, 3])

Every message still travels as bytes through `run_parties`, so decoding and validation are exercised as on Ray.
"""

from __future__ import annotations

import secrets
from typing import Mapping, Sequence

from ..crypto.paillier import PaillierSecretKey
from ..crypto.params import level as as_level
from ..errors import InvalidInput
from ..protocols.ecdsa.aux_info import AuxInfo, AuxInfoParty
from ..protocols.ecdsa.keygen import KeygenParty, KeyShare
from ..protocols.ecdsa.identify import IdentifyParty
from ..protocols.ecdsa.presign import PresignaturePublic, PresignatureShare, PresignInconsistent, PresignParty
from ..protocols.ecdsa.sign import combine, digest_to_int, partial_sign
from ..types import KeyInfo, Signature
from .router import Tamper, run_parties

__all__ = ["aux_info", "keygen", "refresh", "reshare", "run_parties", "SimEcdsaKey", "SimFrostKey"]


def _sid(tag: str) -> bytes:
    return tag.encode() + b":" + secrets.token_bytes(16)


def aux_info(
    parties: int | Sequence[int],
    security: str = "128",
    *,
    paillier_keys: Mapping[int, PaillierSecretKey] | None = None,
    tamper: Tamper | None = None,
) -> dict[int, AuxInfo]:
    """Aux-info setup for a committee. Without `paillier_keys` every party generates fresh safe primes."""
    ids = list(range(1, parties + 1)) if isinstance(parties, int) else sorted(parties)
    lv = as_level(security)
    sid = _sid("aux")
    keys = dict(paillier_keys or {})
    allow_test = any(k.test_only for k in keys.values())
    machines = {i: AuxInfoParty(sid, i, ids, lv, keys.get(i), allow_test_keys=allow_test) for i in ids}
    return run_parties(machines, tamper)  # type: ignore[return-value]


def run_keygen(parties: Sequence[int], threshold: int, tamper: Tamper | None = None) -> dict[int, KeyShare]:
    sid = _sid("keygen")
    return run_parties({i: KeygenParty(sid, i, parties, threshold) for i in parties}, tamper)  # type: ignore


class SimEcdsaKey:
    """A threshold ECDSA key whose shares all live in this process (simulation only)."""

    scheme = "ecdsa-secp256k1"

    def __init__(self, shares: Mapping[int, KeyShare], aux: Mapping[int, AuxInfo]) -> None:
        self.shares, self.aux = dict(shares), dict(aux)
        any_share = next(iter(self.shares.values()))
        self.threshold, self.parties = any_share.threshold, any_share.parties
        self.public_point = any_share.public_key

    @property
    def public_key(self) -> bytes:
        return self.public_point.to_bytes()

    def info(self, key_id: str = "sim") -> KeyInfo:
        return KeyInfo(
            key_id=key_id, scheme=self.scheme, public_key=self.public_key,
            threshold=self.threshold, parties=len(self.parties),
        )

    def _signers(self, signers: Sequence[int] | None) -> list[int]:
        chosen = sorted(signers) if signers is not None else list(self.parties[: self.threshold])
        if len(chosen) != self.threshold or not set(chosen) <= set(self.parties) or len(set(chosen)) != len(chosen):
            raise InvalidInput(f"choose {self.threshold} distinct signers among {list(self.parties)}")
        return chosen

    def presign(self, signers: Sequence[int] | None = None, tamper: Tamper | None = None) -> dict[int, PresignatureShare]:
        chosen = self._signers(signers)
        sid = _sid("presign")
        machines = {i: PresignParty(sid, self.shares[i], self.aux[i], chosen) for i in chosen}
        try:
            out = run_parties(machines, tamper)
        except PresignInconsistent:
            # every proof held but the sums did not: run the identification round, which names the culprit
            run_parties({i: IdentifyParty(m) for i, m in machines.items()}, tamper)
            raise
        finally:
            for m in machines.values():
                m.wipe()
        return out  # type: ignore[return-value]

    def sign_with(self, presignatures: Mapping[int, PresignatureShare], digest: bytes) -> Signature:
        public: PresignaturePublic = next(iter(presignatures.values())).public
        partials = {i: partial_sign(p, digest) for i, p in presignatures.items()}
        return combine(public, self.public_point, digest, partials)

    def sign(self, message: bytes, signers: Sequence[int] | None = None) -> Signature:
        """Presign among `signers` (default: the first `threshold`), then sign the 32-byte digest."""
        digest_to_int(message)  # reject a bad digest before spending a presignature
        return self.sign_with(self.presign(signers), message)


class SimFrostKey:
    """A FROST key (Ed25519 or BIP340) whose shares all live in this process (simulation only)."""

    def __init__(self, scheme: str, outputs: Mapping[int, object]) -> None:
        from ..protocols.frost import SUITES, public_key_bytes

        self.scheme, self.suite = scheme, SUITES[scheme]
        self.outputs = dict(outputs)
        any_out = next(iter(self.outputs.values()))
        self.public_package = any_out.public_package
        self.parties = tuple(sorted(self.outputs))
        self.threshold: int = any_out.key_package.threshold
        self.public_key = public_key_bytes(self.suite, self.public_package.group_key)

    def info(self, key_id: str = "sim") -> KeyInfo:
        return KeyInfo(key_id=key_id, scheme=self.scheme, public_key=self.public_key,
                       threshold=self.threshold, parties=len(self.parties))

    def sign(self, message: bytes, signers: Sequence[int] | None = None, tamper: Tamper | None = None) -> Signature:
        """Two-round FROST among `signers` (default: the first `threshold`); the message bytes are signed."""
        from ..protocols.frost import SignParty

        chosen = sorted(signers) if signers is not None else list(self.parties[: self.threshold])
        if len(chosen) < self.threshold or not set(chosen) <= set(self.parties) or len(set(chosen)) != len(chosen):
            raise InvalidInput(f"choose at least {self.threshold} distinct signers among {list(self.parties)}")
        sid = _sid("frost-sign")
        machines = {
            i: SignParty(self.suite, self.outputs[i].key_package, self.public_package, bytes(message), sid, chosen)
            for i in chosen
        }
        out = run_parties(machines, tamper)
        return Signature(self.scheme, out[chosen[0]].to_bytes())


def keygen(
    scheme: str = "ecdsa-secp256k1",
    *,
    parties: int = 3,
    threshold: int = 2,
    security: str = "128",
    paillier_keys: Mapping[int, PaillierSecretKey] | None = None,
    aux: Mapping[int, AuxInfo] | None = None,
) -> SimEcdsaKey:
    """Generate a key among parties 1..n: "ecdsa-secp256k1" (with the committee's aux info unless given),
    "eddsa-ed25519" or "schnorr-bip340" (FROST, Pedersen DKG)."""
    if not 1 <= threshold <= parties:
        raise InvalidInput("need 1 <= threshold <= parties")
    ids = list(range(1, parties + 1))
    if scheme == "ecdsa-secp256k1":
        aux = dict(aux) if aux is not None else aux_info(ids, security, paillier_keys=paillier_keys)
        return SimEcdsaKey(run_keygen(ids, threshold), aux)
    if scheme in ("eddsa-ed25519", "schnorr-bip340"):
        from ..protocols.frost import SUITES, DkgParty

        sid = _sid("frost-dkg")
        outputs = run_parties({i: DkgParty(SUITES[scheme], sid, i, ids, threshold) for i in ids})
        return SimFrostKey(scheme, outputs)
    raise InvalidInput(f"unknown scheme {scheme!r}")


from .lifecycle import refresh, reshare  # noqa: E402  (key lifecycle; imports the classes above)
