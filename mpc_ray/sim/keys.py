"""The keys of the in-process simulation (mpc_ray.sim re-exports them): ECDSA (CGGMP21) and FROST keys for n
parties, aux info and key generation, every message through `run_parties`."""


from __future__ import annotations

import secrets
from typing import Mapping, Sequence

import nacl.exceptions
import nacl.signing

from ..crypto import bip32
from ..crypto.paillier import PaillierSecretKey
from ..crypto.params import level as as_level
from ..errors import InvalidInput
from ..protocols.ecdsa.aux_info import AuxInfo, AuxInfoParty
from ..protocols.ecdsa.keygen import KeygenParty, KeyShare
from ..protocols.ecdsa.identify import IdentifyParty
from ..protocols.ecdsa.presign import (
    MessageAttestor,
    PresignaturePublic,
    PresignatureShare,
    PresignInconsistent,
    PresignParty,
)
from ..protocols.ecdsa.sign import combine, digest_to_int, partial_sign, rerandomize_for
from ..schemes import SCHEMES, Scheme
from ..types import KeyInfo, Signature
from .router import Tamper, run_parties


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


def attestors(parties: Sequence[int]) -> dict[int, MessageAttestor]:
    """Fresh in-process Ed25519 keys, one per party, standing in for the node identities that sign MtA messages on
    a node: party i's attestor signs with i's key and checks every party's signature against its verify key."""
    keys = {i: nacl.signing.SigningKey.generate() for i in parties}
    verify_keys = {i: k.verify_key for i, k in keys.items()}

    def verify(party: int, data: bytes, signature: bytes) -> bool:
        vk = verify_keys.get(party)
        if vk is None or not isinstance(signature, bytes) or len(signature) != 64:
            return False
        try:
            vk.verify(data, signature)
        except nacl.exceptions.BadSignatureError:
            return False
        return True

    return {i: MessageAttestor(lambda data, k=k: k.sign(data).signature, verify) for i, k in keys.items()}


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
        self.chain_code = any_share.chain_code
        self.attestors = attestors(self.parties)  # the parties' message-signing keys (node identities on Ray)

    @property
    def public_key(self) -> bytes:
        return self.public_point.to_bytes()

    def info(self, key_id: str = "sim") -> KeyInfo:
        return KeyInfo(
            key_id=key_id, scheme=self.scheme, public_key=self.public_key,
            threshold=self.threshold, parties=len(self.parties), chain_code=self.chain_code,
        )

    def derive(self, path: str) -> bip32.ChildKey:
        """The BIP32 child at a non-hardened `path` ("m/0/7"): public key, chain code, tweak."""
        return bip32.derive(self.public_point, self.chain_code, path)

    def child_public_key(self, path: str) -> bytes:
        """33-byte compressed public key of the child at `path`."""
        return self.derive(path).public_key_bytes

    def _signers(self, signers: Sequence[int] | None) -> list[int]:
        chosen = sorted(signers) if signers is not None else list(self.parties[: self.threshold])
        if len(chosen) != self.threshold or not set(chosen) <= set(self.parties) or len(set(chosen)) != len(chosen):
            raise InvalidInput(f"choose {self.threshold} distinct signers among {list(self.parties)}")
        return chosen

    def presign(self, signers: Sequence[int] | None = None, tamper: Tamper | None = None) -> dict[int, PresignatureShare]:
        chosen = self._signers(signers)
        sid = _sid("presign")
        machines = {i: PresignParty(sid, self.shares[i], self.aux[i], chosen, attestor=self.attestors[i])
                    for i in chosen}
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

    def sign_with(self, presignatures: Mapping[int, PresignatureShare], digest: bytes,
                  path: str | None = None) -> Signature:
        public: PresignaturePublic = next(iter(presignatures.values())).public
        # always re-randomised: tweak 0 for the master key (protocols/ecdsa/sign.py)
        child = rerandomize_for(public, self.public_point, 0 if path is None else self.derive(path).tweak, digest)
        partials = {i: partial_sign(p, digest, child) for i, p in presignatures.items()}
        return combine(public, self.public_point, digest, partials, child)

    def sign(self, message: bytes, signers: Sequence[int] | None = None, path: str | None = None) -> Signature:
        """Presign among `signers` (default: the first `threshold`), then sign the 32-byte digest; with `path`
        ("m/0/7") for the BIP32 child key, with the presignature re-randomised (protocols/ecdsa/sign.py)."""
        digest_to_int(message)  # reject a bad digest before spending a presignature
        if path is not None:
            self.derive(path)  # reject a bad path before spending a presignature
        return self.sign_with(self.presign(signers), message, path)


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
        self.chain_code: bytes = self.public_package.chain_code

    def info(self, key_id: str = "sim") -> KeyInfo:
        return KeyInfo(key_id=key_id, scheme=self.scheme, public_key=self.public_key,
                       threshold=self.threshold, parties=len(self.parties),
                       chain_code=self.chain_code if self.scheme == "schnorr-bip340" else b"")

    def derive(self, path: str) -> bip32.ChildKey:
        """BIP340 keys only: the BIP32 child at `path`, derived from the even-Y lift of the x-only key; the child's
        BIP340 key is `.xonly` (crypto/bip32.py)."""
        if self.scheme != "schnorr-bip340":
            raise InvalidInput(f"{self.scheme} keys have no BIP32 derivation")
        return bip32.derive_bip340(self.public_key, self.chain_code, path)

    def child_public_key(self, path: str) -> bytes:
        """32-byte x-only BIP340 key of the child at `path`."""
        return self.derive(path).xonly

    def sign(self, message: bytes, signers: Sequence[int] | None = None, tamper: Tamper | None = None,
             path: str | None = None) -> Signature:
        """Two-round FROST among `signers` (default: the first `threshold`); the message bytes are signed. BIP340:
        with `path` the signature verifies under `child_public_key(path)`."""
        from ..protocols.frost import SignParty

        hd_tweak = None if path is None else self.derive(path).tweak

        chosen = sorted(signers) if signers is not None else list(self.parties[: self.threshold])
        if len(chosen) < self.threshold or not set(chosen) <= set(self.parties) or len(set(chosen)) != len(chosen):
            raise InvalidInput(f"choose at least {self.threshold} distinct signers among {list(self.parties)}")
        sid = _sid("frost-sign")
        machines = {
            i: SignParty(self.suite, self.outputs[i].key_package, self.public_package, bytes(message), sid, chosen,
                         hd_tweak=hd_tweak)
            for i in chosen
        }
        out = run_parties(machines, tamper)
        return Signature(self.scheme, out[chosen[0]].to_bytes())


def keygen(
    scheme: Scheme | str = Scheme.ECDSA_SECP256K1,
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
    if scheme in SCHEMES:
        scheme = Scheme(scheme).value  # a member or its string: keys and signatures keep the plain string
    if scheme == "ecdsa-secp256k1":
        aux = dict(aux) if aux is not None else aux_info(ids, security, paillier_keys=paillier_keys)
        return SimEcdsaKey(run_keygen(ids, threshold), aux)
    if scheme in ("eddsa-ed25519", "schnorr-bip340"):
        from ..protocols.frost import SUITES, DkgParty

        sid = _sid("frost-dkg")
        outputs = run_parties({i: DkgParty(SUITES[scheme], sid, i, ids, threshold) for i in ids})
        return SimFrostKey(scheme, outputs)
    raise InvalidInput(f"unknown scheme {scheme!r}")

