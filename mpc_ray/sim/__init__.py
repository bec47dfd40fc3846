"""Run the protocols for n parties (numbered 1..n) inside one process, without Ray.

For tests, notebooks and benchmarks::

    from mpc_ray import sim
    key = sim.keygen("ecdsa-secp256k1", parties=3, threshold=2, security="112")
    sig = key.sign(digest)                      # presign + sign among the first `threshold` parties
    sig = key.sign(digest, signers=[1, 3])
    child = key.derive("m/0/7")                 # BIP32 child: .public_key_bytes, .chain_code, .tweak, .xpub()
    sig = key.sign(digest, path="m/0/7")        # verifies under child.public_key_bytes (re-randomised presignature)

Every message still travels as bytes through `run_parties`, so decoding and validation are exercised as on Ray.
Presigning's MtA messages are signed with in-process Ed25519 keys per party (`attestors`, standing in for the node
identities), so a failed presigning's identification checks the same evidence as on a node.
"""

from .keys import SimEcdsaKey, SimFrostKey, attestors, aux_info, keygen, run_keygen
from .lifecycle import refresh, reshare
from .router import Tamper, run_parties

__all__ = ["attestors", "aux_info", "keygen", "refresh", "reshare", "run_keygen", "run_parties", "SimEcdsaKey",
           "SimFrostKey", "Tamper"]
