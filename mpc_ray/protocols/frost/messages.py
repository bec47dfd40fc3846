"""Wire messages of FROST DKG and signing.

Points and scalars travel as `bytes` in the suite's RFC encoding (Ed25519 points are not `Point`s), and the
receiving party decodes and validates each one itself, naming the sender on failure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommitmentMsg:
    """Signing round 1 (broadcast): the nonce commitments (D_i, E_i) of `identifier`."""

    identifier: int
    hiding: bytes
    binding: bytes


@dataclass(frozen=True)
class ShareMsg:
    """Signing round 2 (broadcast): the signature share, the commitment list it was computed over (the RFC's
    coordinator list, echoed so every party sees that all signers used the same one) and a digest of the
    message and tweak."""

    identifier: int
    context: bytes
    commitments: list[CommitmentMsg]
    share: bytes


@dataclass(frozen=True)
class DkgCommitMsg:
    """DKG round 1 (broadcast): Feldman commitments (a_i0 G .. a_i(t-1) G), a PoK (R, mu) of a_i0 and a hash
    commitment to this party's 32-byte contribution to the BIP32 chain code."""

    identifier: int
    commitments: list[bytes]
    pok_r: bytes
    pok_z: bytes
    chain_commit: bytes = b""


@dataclass(frozen=True)
class DkgEchoMsg:
    """DKG round 2 (broadcast): digest of every round-1 broadcast as this party received it, and the opening of
    this party's chain-code contribution."""

    echo: bytes
    chain_seed: bytes = b""


@dataclass(frozen=True)
class DkgShareMsg:
    """DKG round 2 (direct, encrypted by the node layer): f_i(j) for the recipient j."""

    share: bytes
