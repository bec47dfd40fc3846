"""FROST threshold Schnorr (RFC 9591): Pedersen DKG and two-round (or one-round, precommitted) signing.

Suites (`SUITES`, keyed by the service's scheme names):
    "eddsa-ed25519"    FROST(Ed25519, SHA-512): RFC 8032 signatures, 32-byte keys
    "schnorr-bip340"   FROST(secp256k1, SHA-256) Taproot variant: BIP340 signatures, 32-byte x-only keys,
                       optional BIP341 tweak (`tap_tweak`: b"" = key path only, or a 32-byte merkle root)
    "frost-secp256k1"  FROST(secp256k1, SHA-256) as in the RFC: 65-byte signatures, 33-byte keys

Call sequence (every party runs its own object; `mpc_ray.sim.router.run_parties` or the actors move envelopes):

    from mpc_ray.protocols.frost import SUITES, DkgParty, SignParty, public_key_bytes
    suite = SUITES["eddsa-ed25519"]

    # 1. key generation, parties 1..n, threshold t = number of signers needed
    dkg = {i: DkgParty(suite, sid, i, range(1, n + 1), t) for i in range(1, n + 1)}
    outs = run_parties(dkg)                    # {i: DkgOutput}
    key_i = outs[i].key_package                # secret share of party i: store encrypted
    pub = outs[i].public_package               # same at every party: group key + verifying shares
    pk = public_key_bytes(suite, pub.group_key)  # 32 bytes (Ed25519 / x-only BIP340), 33 for frost-secp256k1

    # 2. signing by any signer set S with |S| >= t (sid fresh per signature)
    signers = [1, 3]
    parties = {i: SignParty(suite, outs[i].key_package, pub, message, sid2, signers) for i in signers}
    sig = run_parties(parties)[1].to_bytes()   # every signer outputs the same verified FrostSignature
    # BIP340 with a Taproot output key: SignParty(..., tap_tweak=b"") and public_key_bytes(suite, Y, b"")
    # BIP340 BIP32 child (crypto/bip32.py): t = bip32.derive_bip340(pk, outs[i].chain_code, "m/0/7").tweak, then
    # SignParty(..., hd_tweak=t) verifies under public_key_bytes(suite, Y, None, t) (= that child's x-only key)

    # 2'. precomputed round one (message-independent): pool nonces, then sign in one round
    nonces = commit(suite, i, key_i.signing_share)          # secret, single-use, stays on party i
    # ...publish nonces.commitments (SigningCommitments) to the coordinator's pool; when a message arrives:
    p = PrecommittedSignParty(suite, key_i, pub, message, sid3, commitment_list, nonces)
    # or hand the pooled pair to the two-round party: SignParty(..., nonces=nonces)

A failure raises `mpc_ray.errors.ProtocolAbort` with `.culprit` (the party at fault) and `.check`:
"frost.dkg.{identifier,commitment_count,commitment_point,pok,echo,share}",
"frost.sign.{identifier,commitment_point,message,commitment_list,echo,share,nonce_reuse}", "frost.decode".
Reusing spent nonces outside a party raises `NonceReuseError`; bad local arguments raise `InvalidInput`.
"""

from __future__ import annotations

from ...crypto.frost_suites import (
    ED25519_SHA512,
    SECP256K1_SHA256,
    SECP256K1_TR,
    SUITES,
    Ciphersuite,
    get_suite,
)
from .dkg import DkgOutput, DkgParty
from .keys import KeyPackage, PublicKeyPackage, public_key_bytes, split_secret
from .sign_party import PrecommittedSignParty, SignParty
from .signing import (
    FrostSignature,
    NonceReuseError,
    SigningCommitments,
    SigningNonces,
    aggregate,
    commit,
    compute_binding_factors,
    compute_challenge,
    compute_group_commitment,
    nonce_generate,
    prepare,
    sign,
    verify_signature,
    verify_signature_share,
)

__all__ = [
    "ED25519_SHA512",
    "SECP256K1_SHA256",
    "SECP256K1_TR",
    "SUITES",
    "Ciphersuite",
    "DkgOutput",
    "DkgParty",
    "FrostSignature",
    "KeyPackage",
    "NonceReuseError",
    "PrecommittedSignParty",
    "PublicKeyPackage",
    "SignParty",
    "SigningCommitments",
    "SigningNonces",
    "aggregate",
    "commit",
    "compute_binding_factors",
    "compute_challenge",
    "compute_group_commitment",
    "get_suite",
    "nonce_generate",
    "prepare",
    "public_key_bytes",
    "sign",
    "split_secret",
    "verify_signature",
    "verify_signature_share",
]
