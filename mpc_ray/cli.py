"""The `mpc-ray` command line."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time


def _demo(args: argparse.Namespace) -> int:
    import coincurve

    import mpc_ray

    say = (lambda *a, **k: None) if args.json else print
    report: dict = {}
    t0 = time.perf_counter()
    say(f"starting an embedded Ray cluster: a head node and {args.parties} party nodes (labels mpc-party, region) ...")
    with mpc_ray.local_cluster(parties=args.parties, threshold=args.threshold, security=args.security,
                               pool_depth=16) as mpc:
        report["cluster_start_s"] = round(time.perf_counter() - t0, 2)
        say(f"  up in {report['cluster_start_s']} s; share holders pinned one per node; aux-info done "
            f"(Paillier-Blum moduli from fresh safe primes, level {args.security}, every proof checked)")
        key = mpc.create_key("ecdsa-secp256k1")
        from eth_keys import keys as eth_keys

        address = eth_keys.PublicKey(coincurve.PublicKey(key.public_key).format(compressed=False)[1:]).to_checksum_address()
        report.update(key_id=key.key_id, public_key=key.public_key.hex(), address=address)
        say(f"key {key.key_id}: {key.threshold}-of-{key.parties}, public key {key.public_key.hex()}")
        say(f"  EVM address {address} (the full private key never exists anywhere)")
        pub = coincurve.PublicKey(key.public_key)
        s0 = time.perf_counter()
        depths = mpc.wait_for_pools(key.key_id, 8)
        report["pool_warmup_s"] = round(time.perf_counter() - s0, 2)
        say(f"  presignature pools warmed in the background ({report['pool_warmup_s']} s): {depths}")
        for i in range(3):
            digest = hashlib.sha256(f"x402 payment #{i}: 0.01 USDC".encode()).digest()
            s0 = time.perf_counter()
            sig = mpc.sign(key.key_id, digest)
            ok = pub.verify(sig.der(), digest, hasher=None)
            say(f"  signed payment #{i}: r={sig.r:#066x}"[:40] + f"... verified={ok} ({(time.perf_counter() - s0) * 1e3:.0f} ms)")
        mpc.wait_for_pools(key.key_id, 8)
        digests = [hashlib.sha256(b"batch %d" % i).digest() for i in range(16)]
        s0 = time.perf_counter()
        sigs = mpc.sign_many(key.key_id, digests)
        dt = time.perf_counter() - s0
        assert all(pub.verify(s.der(), d, hasher=None) for s, d in zip(sigs, digests))
        report["sign_many_64_s"] = round(dt, 3)
        say(f"  sign_many: {len(sigs)} signatures in {dt * 1e3:.0f} ms, all verified")
        say(f"fault drill: killing party {args.parties}'s node ...")
        mpc.kill_node(args.parties)
        s0 = time.perf_counter()
        digest = hashlib.sha256(b"after the outage").digest()
        sig = mpc.sign(key.key_id, digest)
        report["sign_after_kill_s"] = round(time.perf_counter() - s0, 3)
        say(f"  signed with the remaining parties in {report['sign_after_kill_s']} s, "
            f"verified={pub.verify(sig.der(), digest, hasher=None)}")
        mpc.restart_node(args.parties)
        say(f"  party {args.parties}'s node restarted; its holder reloads its shares from its encrypted store")
        report["pools"] = mpc.pool_depths()
        say(f"presignature pools: {report['pools']}")
    report["total_s"] = round(time.perf_counter() - t0, 2)
    say(f"done in {report['total_s']} s")
    if args.json:
        print(json.dumps(report))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from .node.audit import export_jsonl, verify_chain

    key = bytes.fromhex(args.verify_key)
    report = export_jsonl(args.log, args.out, key) if args.action == "export" else verify_chain(args.log, key)
    if args.json:
        print(json.dumps({"ok": report.ok, "records": report.records, "first_break_index": report.first_break_index,
                          "problem": report.problem}))
    elif report.ok:
        print(f"OK: {report.records} records, chain and node signatures intact")
    else:
        print(f"BROKEN at record {report.first_break_index}: {report.problem} ({report.records} records verified)")
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mpc-ray", description="Self-hosted threshold signing on Ray.")
    sub = ap.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run keygen, signing and a node-kill drill on an embedded local Ray cluster")
    demo.add_argument("--parties", type=int, default=3)
    demo.add_argument("--threshold", type=int, default=2)
    demo.add_argument("--security", choices=["112", "128"], default="112",
                      help="Paillier security level (128 takes about a minute longer for aux-info on 2 cores)")
    demo.add_argument("--json", action="store_true", help="print one JSON report instead of prose")
    demo.set_defaults(func=_demo)
    audit = sub.add_parser("audit", help="check a holder's audit log (hash chain and node signatures), or export it")
    audit.add_argument("action", choices=["verify", "export"])
    audit.add_argument("log", help="the node's audit.jsonl (beside its store)")
    audit.add_argument("--verify-key", required=True, help="the node's Ed25519 public key, hex")
    audit.add_argument("--out", help="export: JSON Lines file for the verified records")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(func=_audit)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
