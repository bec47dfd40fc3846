"""The two threshold-ECDSA protocols of an ``ecdsa-secp256k1`` key, as one table: what the coordinator and the
one-hop client need to presign and combine for a key without knowing which protocol it is.

A key's protocol is chosen at creation (``create_key(..., protocol=...)``) and never changes: both use the same
Feldman DKG shares, public key and chain code, and re-randomise every presignature the same way (a child key's tweak
and the digest hashed into rho), but their presignatures and online answers differ:

- ``cggmp21`` (protocols/ecdsa): Paillier-based, identifiable abort in presigning (aux info needed); the online
  answer is sigma_i; presign workers may run it.
- ``dkls23`` (protocols/dkls23, docs/dkls23.md): OT-based, no aux info, a pairwise setup per key and epoch, security
  with abort; the online answer is an `OnlineShare` (u_i, w_i); presign workers may run it too: its presigning
  sessions name the executor that runs them on every signer's node (param ``executor``, `presign_params`), which
  each executor's own ledger and the OT-extension ids are bound to (node/dkls23_holder.py).

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InvalidInput
from .dkls23 import sign as dkls23_sign
from .ecdsa import presign as cggmp21_presign
from .ecdsa import sign as cggmp21_sign

__all__ = ["CGGMP21", "DEFAULT_ECDSA_PROTOCOL", "DKLS23", "ECDSA_PROTOCOLS", "EcdsaProtocol", "ecdsa_protocol", "protocol_of"]


@dataclass(frozen=True)
class EcdsaProtocol:
    name: str
    presign_session: str  # the holders' session protocol that makes one presignature
    public_type: type  # the presignature's public part (decoded from the presign session's result)
    rerandomize_for: Callable[..., Any]  # (public, master key, tweak, digest) -> Rerandomized
    combine: Callable[..., Any]  # (public, master key, digest, {party: answer}, child) -> Signature
    presign_workers: bool  # whether presign workers may run its presigning
    identifies: bool  # whether a failed presigning runs CGGMP21's identification (coordinator/identify.py)
    setup_session: str | None = None  # run once per key and epoch before presigning, among every party of the key
    names_executor: bool = False  # its presigning sessions declare the executor (holder or worker k) they run on

    def presign_params(self, key_id: str, worker: int | None) -> dict[str, Any]:
        """The params of a presigning session run by the holders (`worker` None) or by presign worker `worker` of
        every signer's node."""
        if not self.names_executor:
            return {"key_id": key_id}
        return {"key_id": key_id, "executor": "holder" if worker is None else f"worker-{worker}"}


CGGMP21 = EcdsaProtocol("cggmp21", "presign", cggmp21_presign.PresignaturePublic, cggmp21_sign.rerandomize_for,
                        cggmp21_sign.combine, presign_workers=True, identifies=True)
DKLS23 = EcdsaProtocol("dkls23", "dkls23-presign", dkls23_sign.PresignaturePublic, dkls23_sign.rerandomize_for,
                       dkls23_sign.combine, presign_workers=True, identifies=False, setup_session="dkls23-setup",
                       names_executor=True)
ECDSA_PROTOCOLS: dict[str, EcdsaProtocol] = {p.name: p for p in (CGGMP21, DKLS23)}
# what a client makes a new key with when it names no protocol, decided by measurement (BENCHMARKS.md, issue 20):
# presignature CPU for both signers ~25 ms vs ~320 ms (level 112) / ~900 ms (128), setup 0.3 s vs aux info 8 s / 43 s.
# Only clients read it: an approval or keygen that names no protocol stays CGGMP21 at the holders (older approvals
# and keys keep their meaning), so a client names any other protocol explicitly.
DEFAULT_ECDSA_PROTOCOL = DKLS23.name
_BY_PUBLIC = {p.public_type: p for p in ECDSA_PROTOCOLS.values()}


def ecdsa_protocol(name: Any) -> EcdsaProtocol:
    """The protocol called `name` (InvalidInput for any other)."""
    proto = ECDSA_PROTOCOLS.get(name) if isinstance(name, str) else None
    if proto is None:
        raise InvalidInput(f"protocol must be one of {sorted(ECDSA_PROTOCOLS)}")
    return proto


def protocol_of(public: Any) -> EcdsaProtocol:
    """The protocol whose presignature `public` is (InvalidInput for anything else)."""
    proto = _BY_PUBLIC.get(type(public))
    if proto is None:
        raise InvalidInput("not the public part of an ECDSA presignature")
    return proto
