"""`python -m mpc_ray.demo`: threshold ECDSA among simulated parties in one process, narrated.

Generates fresh safe primes (no test fixtures), runs aux-info, key generation, presigning and signing for every
signer set, and checks each signature with an independent verifier (coincurve, and eth-account when installed).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import time

import coincurve

from . import sim
from .crypto.secp256k1 import Point


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mpc_ray.demo", description=__doc__)
    ap.add_argument("--parties", type=int, default=3)
    ap.add_argument("--threshold", type=int, default=2)
    ap.add_argument("--security", choices=["112", "128"], default="112", help="112 keeps the demo quick")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    print(f"aux-info: {args.parties} parties make Paillier-Blum moduli from fresh safe primes (level {args.security}) ...")
    aux = sim.aux_info(args.parties, args.security)
    t1 = time.perf_counter()
    print(f"  done in {t1 - t0:.1f} s: every party verified every other party's pi_prm, pi_mod and pi_fac")
    key = sim.keygen("ecdsa-secp256k1", parties=args.parties, threshold=args.threshold, aux=aux)
    t2 = time.perf_counter()
    print(f"keygen {args.threshold}-of-{args.parties}: public key {key.public_key.hex()} ({(t2 - t1) * 1e3:.0f} ms)")
    pub = coincurve.PublicKey(key.public_key)
    digest = hashlib.sha256(b"mpc-ray demo: pay 5 USDC to 0xabc").digest()
    for signers in itertools.combinations(range(1, args.parties + 1), args.threshold):
        s0 = time.perf_counter()
        sig = key.sign(digest, signers=list(signers))
        ok = pub.verify(sig.der(), digest, hasher=None)
        recovered = coincurve.PublicKey.from_signature_and_message(sig.to_bytes() + bytes([sig.recovery_id]), digest, hasher=None)
        assert ok and Point.from_bytes(recovered.format()) == key.public_point
        print(f"  signers {list(signers)}: r={sig.r:#x}"[:60] + f"... verified, recovery id {sig.recovery_id} "
              f"({time.perf_counter() - s0:.2f} s presign+sign)")
    try:
        from eth_account import Account
        from eth_keys import keys as eth_keys

        addr = eth_keys.PublicKey(coincurve.PublicKey(key.public_key).format(compressed=False)[1:]).to_checksum_address()
        vrs = (sig.recovery_id, sig.r, sig.s)
        print(f"  eth-account recovers {Account._recover_hash(digest, vrs=vrs)} == address {addr}")
    except ImportError:
        pass
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
