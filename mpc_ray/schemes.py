"""`Scheme`: the signature schemes a threshold key can have.

A `StrEnum`, so a member is equal to (and hashes like) its string: code and callers that pass
``"ecdsa-secp256k1"`` keep working, and a member can be passed wherever a scheme string is accepted. Pure: no
imports beyond the standard library, so every layer may use it.
"""

from __future__ import annotations

from enum import StrEnum


class Scheme(StrEnum):
    """A key's signature scheme. ECDSA keys are CGGMP21 shares; Ed25519 and BIP340 keys are FROST shares."""

    ECDSA_SECP256K1 = "ecdsa-secp256k1"
    EDDSA_ED25519 = "eddsa-ed25519"  # RFC 8032 Ed25519 (FROST(Ed25519, SHA-512))
    SCHNORR_BIP340 = "schnorr-bip340"  # BIP340 Schnorr on secp256k1 (FROST(secp256k1-TR)), Taproot


SCHEMES: tuple[str, ...] = tuple(s.value for s in Scheme)  # the plain strings, for messages and argparse choices
FROST_SCHEMES: tuple[str, ...] = (Scheme.EDDSA_ED25519.value, Scheme.SCHNORR_BIP340.value)  # FROST keys' schemes
