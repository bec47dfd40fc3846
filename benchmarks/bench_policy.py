"""Policy and audit overhead per signature, on one share holder in process.

    python benchmarks/bench_policy.py [--n 200]

Compares a holder's plain `partial_sign` (presignature consumed with one ledger fsync, sigma_i) with `sign_request`
for an agent-signed EIP-1559 USDC transfer (signature and nonce check, transaction decoding, policy, spend counted,
presignature consumed, sigma_i, and the audit record appended with one fsync: the record is the decision's journal,
so ledgers, checkpoint and spend snapshot are written off the signing path). Writes
benchmarks/results/policy-<date>.md. `bench_runtime.py` measures the same overhead end to end on Ray.
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

from mpc_ray.node.principals import Principal, PrincipalRegistry, sign_request  # noqa: E402
from tests.test_holder_inprocess import Committee, presign  # noqa: E402
from tests.test_policy import ALICE, BASE, base_policy, usdc_transfer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--gap-ms", type=float, default=3.0,
                    help="idle time before each call, as between real requests (0: back to back, caches hot)")
    args = ap.parse_args()
    c = Committee(Path(tempfile.mkdtemp(prefix="bench-policy-")))
    c.run("aux", [1, 2, 3], {"level": "112"})
    c.run("keygen", [1, 2, 3], {"key_id": "k1", "threshold": 2})
    admin, agent = nacl.signing.SigningKey.generate(), nacl.signing.SigningKey.generate()
    reg = PrincipalRegistry(principals=(Principal.from_signing_key("root", "admin", admin),
                                        Principal.from_signing_key("bot", "agent", agent)))
    h = c.holders[1]
    h.bootstrap_principals(reg.to_bytes())
    policy = base_policy(rate_limits=())  # the measured stream must not hit the rate limit
    h.set_policy(sign_request(admin, principal_id="root", kind="set_policy", format="json", body=policy.to_bytes(),
                              key_id="k1", now=time.time()))
    pubs = presign(c, [1, 2], 2 * args.n)
    digest = bytes(32)
    plain, policed = [], []
    body = usdc_transfer(to=ALICE, amount=1_000)
    for i in range(args.n):
        time.sleep(args.gap_ms / 1e3)
        t = time.perf_counter()
        h.partial_sign("k1", [(pubs[i].presignature_id, digest)])
        plain.append(time.perf_counter() - t)
        req = sign_request(agent, principal_id="bot", kind="sign", format="evm_tx", body=body, key_id="k1",
                           chain=BASE, now=time.time())
        time.sleep(args.gap_ms / 1e3)
        t = time.perf_counter()
        h.sign_request(req, pubs[args.n + i].presignature_id)
        policed.append(time.perf_counter() - t)
    p50, q50 = statistics.median(plain), statistics.median(policed)
    rows = [
        ("holder partial_sign, plain (consume + sigma_i)", f"{p50 * 1e3:.3f} ms"),
        ("holder sign_request (verify, decode, policy, spend state, audit, consume, sigma_i)", f"{q50 * 1e3:.3f} ms"),
        ("policy + audit overhead per signature", f"{(q50 - p50) * 1e3:.3f} ms"),
    ]
    head = (f"Policy overhead, {datetime.date.today()}, {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, load {os.getloadavg()[0]:.2f}, n={args.n}, "
            f"{args.gap_ms:g} ms idle before each call")
    text = head + "\n\n| measure | median |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
    print(text)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"policy-{datetime.date.today()}.md").write_text(text)


if __name__ == "__main__":
    main()
