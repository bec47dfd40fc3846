"""Policy and audit overhead per signature, on one share holder in process.

    python benchmarks/bench_policy.py [--n 200]

Compares a holder's `partial_sign` of an operator's one-digest ``raw_batch`` request (signature and nonce check,
the operator's raw-digest policy, presignature consumed, sigma_i, audit record with one fsync: what `mpc.sign` costs
a holder) with `sign_request` for an agent-signed EIP-1559 USDC transfer (the same checks plus transaction decoding,
the agent's policy and its spend counted; the audit record is the decision's journal, so ledgers, checkpoint and
spend snapshot are written off the signing path). In the same run it times each piece of
that work on its own (request check, transaction decoding, policy evaluation, audit record) and the primitives the
work cannot do without (one Ed25519 verification, one Ed25519 signature, keccak-256 of the transaction, one fsync),
with the same idle gaps: our cost against its floor. Writes benchmarks/results/policy-<date>.md. `bench_runtime.py`
measures the same overhead end to end on Ray.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nacl.signing  # noqa: E402

from mpc_ray.node.principals import Principal, PrincipalRegistry, RequestKind, sign_request  # noqa: E402
from tests.support.committee import Committee  # noqa: E402
from tests.support.policies import ALICE, BASE, base_policy, usdc_transfer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--gap-ms", type=float, default=3.0,
                    help="idle time before each call, as between real requests (0: back to back, caches hot)")
    args = ap.parse_args()
    c = Committee(Path(tempfile.mkdtemp(prefix="bench-policy-")))
    c.run("aux", [1, 2, 3], {"level": "112"})
    c.run("keygen", [1, 2, 3], c.principals.keygen_params("k1", 2, [1, 2, 3]))  # approved by the committee's admin
    admin, agent = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    h = c.holders[1]
    # the committee's admin and operator (tests/support/authz.py), plus an admin and the agent of this benchmark
    reg = PrincipalRegistry(principals=(*c.principals.creds.principals(),
                                        Principal.from_signing_key("root", "admin", admin),
                                        Principal.from_signing_key("bot", "agent", agent)), version=2)
    h.set_principals(c.principals.creds.admin_request(RequestKind.SET_PRINCIPALS, body=reg.to_bytes()))
    c.principals.allow_operator([h], "k1")  # raw digests of k1, for the operator
    policy = base_policy(rate_limits=())  # the measured stream must not hit the rate limit
    h.set_policy(sign_request(admin, principal_id="root", kind="set_policy", format="json", body=policy.to_bytes(),
                              key_id="k1", now=time.time()))
    pubs = c.presign("k1", [1, 2], 2 * args.n)
    digest = bytes(32)
    plain, policed = [], []
    body = usdc_transfer(to=ALICE, amount=1_000)
    for i in range(args.n):
        raw = c.principals.raw("k1", [digest])  # what `mpc.sign` sends: the operator's one-digest batch
        time.sleep(args.gap_ms / 1e3)
        t = time.perf_counter()
        h.partial_sign(raw, [(0, pubs[i].presignature_id)])
        plain.append(time.perf_counter() - t)
        req = sign_request(agent, principal_id="bot", kind="sign", format="evm_tx", body=body, key_id="k1",
                           chain=BASE, now=time.time())
        time.sleep(args.gap_ms / 1e3)
        t = time.perf_counter()
        h.sign_request(req, pubs[args.n + i].presignature_id)
        policed.append(time.perf_counter() - t)
    p50, q50 = statistics.median(plain), statistics.median(policed)
    rows = [
        ("holder partial_sign, operator raw_batch of one digest (verify, policy, audit, consume, sigma_i)",
         f"{p50 * 1e3:.3f} ms"),
        ("holder sign_request (verify, decode, policy, spend state, audit, consume, sigma_i)", f"{q50 * 1e3:.3f} ms"),
        ("agent request over raw batch (decoding, agent policy, spend state)", f"{(q50 - p50) * 1e3:.3f} ms"),
    ]
    pieces, floor = _pieces(h, agent, body, policy, args.n, args.gap_ms / 1e3)
    rows += [(f"piece: {name}", f"{v * 1e3:.3f} ms") for name, v in pieces.items()]
    rows += [(f"floor: {name}", f"{v * 1e3:.3f} ms") for name, v in floor.items()]
    rows.append(("pieces / floor", f"{sum(pieces.values()) / sum(floor.values()):.2f}x"))
    head = (f"Policy overhead, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}, n={args.n}, "
            f"{args.gap_ms:g} ms idle before each call")
    text = head + "\n\n| measure | median |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
    print(text)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"policy-{datetime.date.today()}.md").write_text(text)


def _pieces(h, agent, body: bytes, policy, n: int, gap: float) -> tuple[dict[str, float], dict[str, float]]:
    """Medians of each piece of a decision on its own, and of the primitives it needs, with `gap` idle before each
    call (fresh requests; a separate nonce ledger and audit log, so the holder's state is untouched)."""
    import hashlib

    from eth_utils import keccak

    from mpc_ray.node.audit import AuditEntry, AuditLog
    from mpc_ray.node.policy import PolicyEngine, SpendState, intent_from_request
    from mpc_ray.node.principals import RequestVerifier
    from mpc_ray.node.store import ConsumedLedger

    tmp = Path(tempfile.mkdtemp(prefix="bench-policy-pieces-"))
    verifier = RequestVerifier.from_registry(h.authorization.signing.verifier.registry, ConsumedLedger(tmp / "nonces"))
    log = AuditLog(tmp / "audit.jsonl", h.identity)
    engine = PolicyEngine(policy, SpendState(), threshold=2, parties=3)
    times: dict[str, list[float]] = {}

    def timed(name: str, fn, *a, **kw):
        time.sleep(gap)
        t = time.perf_counter()
        out = fn(*a, **kw)
        times.setdefault(name, []).append(time.perf_counter() - t)
        return out

    signing_key = nacl.signing.SigningKey.generate()
    fd = os.open(tmp / "fsync", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for _ in range(n):
        req = sign_request(agent, principal_id="bot", kind="sign", format="evm_tx", body=body, key_id="k1",
                           chain=BASE, now=time.time())
        now = time.time()
        verified = timed("request check (signature, expiry, nonce)", verifier.verify, req, now, durable=False)
        intent = timed("transaction decoding and digest (eth-account sedes, eth-abi, keccak)", intent_from_request,
                       req)
        decision = timed("policy evaluation", engine.evaluate, intent, now)
        entry = AuditEntry.for_decision(verified, decision, presignature_id=bytes(32), signature=bytes(32))
        timed("audit record (canonical JSON, SHA-256, Ed25519, append, fsync)", log.append_many, [entry], now=now,
              checkpoint=False)
        data = req.signing_bytes()
        sig = agent.sign(data).signature
        timed("Ed25519 verification", agent.verify_key.verify, data, sig)
        timed("Ed25519 signature", signing_key.sign, hashlib.sha256(data).digest())
        timed("keccak-256 of the transaction", keccak, body)
        os.write(fd, b"x" * 700)
        timed("fsync of an appended record", os.fsync, fd)
    os.close(fd)
    log.close()
    med = {name: statistics.median(v) for name, v in times.items()}
    floor_names = ("Ed25519 verification", "Ed25519 signature", "keccak-256 of the transaction",
                   "fsync of an appended record")
    return ({k: v for k, v in med.items() if k not in floor_names}, {k: med[k] for k in floor_names})


if __name__ == "__main__":
    main()
