"""The vault's added cost per call: the same holder calls through a Ray actor that holds the holder (isolation
"actor") and through a proxy actor that forwards them to a vault process (isolation "process").

Two 2-of-2 committees on one local Ray node: A's holders are `HolderActor`s, B's are `VaultProxy`s in front of
vault subprocesses. After aux-info, keygen and presigning on both, the script alternates, one call at a time, a
ping of party 1 (A, then B) and a one-hop sign (both parties' `partial_sign` on one presignature, as the client's
fast path sends it, then combine and verify), so that load on a shared machine falls on both alike. The difference
of the medians is the proxy's cost per hop (a one-hop sign's two hops run in parallel). Target: under 0.3 ms.

    python benchmarks/bench_vault.py [--pings 400] [--signs 40]

Writes a Markdown table to stdout and to benchmarks/results/vault-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ray  # noqa: E402

from common import cpu_model, pct  # noqa: E402  (benchmarks/common.py)
from mpc_ray.coordinator.sessions import finished, new_sid, route  # noqa: E402
from mpc_ray.crypto.secp256k1 import Point  # noqa: E402
from mpc_ray.node.actor import HolderActor  # noqa: E402
from mpc_ray.node.holder import BeginRequest  # noqa: E402
from mpc_ray.node.vault import start_vault  # noqa: E402
from mpc_ray.node.vault_proxy import VaultProxy  # noqa: E402
from mpc_ray.protocols.ecdsa.presign import PresignaturePublic  # noqa: E402
from mpc_ray.protocols.ecdsa.sign import combine, rerandomize_for  # noqa: E402
from mpc_ray.protocols.wire import decode  # noqa: E402
from tests.support.authz import TestPrincipals  # noqa: E402

PARTIES = [1, 2]


class Committee:
    """Two holders as Ray actors, driven as the coordinator drives them."""

    def __init__(self, name: str, root: Path, isolation: str) -> None:
        self.name, self.principals, self.vaults = name, TestPrincipals(), []
        options = dict(num_cpus=0, max_concurrency=1, max_task_retries=0)
        self.holders = {}
        for p in PARTIES:
            state = root / f"{name}-{p}"
            if isolation == "actor":
                self.holders[p] = ray.remote(HolderActor).options(**options).remote(p, str(state), kdf="min")
            else:
                vault = start_vault(p, state, kdf="min")
                self.vaults.append(vault)
                self.holders[p] = ray.remote(VaultProxy).options(**options).remote(p, str(vault.socket_path))

    def all(self, method: str, *args, parties=PARTIES) -> dict:
        refs = {p: getattr(self.holders[p], method).remote(*args) for p in parties}
        return dict(zip(refs, ray.get(list(refs.values()))))

    def run(self, protocol: str, params: dict, count: int = 1) -> dict:
        sids = [new_sid(protocol) for _ in range(count)]
        reqs = [BeginRequest(protocol, s, PARTIES, params) for s in sids]
        res = self.all("begin", reqs, self.principals.grant(reqs))
        while (done := finished(PARTIES, sids, res)) is None:
            inputs = route(PARTIES, sids, res)
            refs = {p: self.holders[p].step.remote(inputs[p]) for p in PARTIES}
            res = dict(zip(refs, ray.get(list(refs.values()))))
        return done

    def setup(self, presignatures: int) -> None:
        ids = list(self.all("public_identity").values())
        self.all("set_directory", ids, self.principals.coordinator.verify_key)
        self.all("bootstrap_principals", self.principals.creds.registry().to_bytes())
        self.run("aux", {"level": "112"})
        out = self.run("keygen", self.principals.keygen_params("k1", 2, PARTIES))
        self.public_key = Point.from_bytes(next(iter(out.values()))[1]["public_key"])
        self.all("set_policy", self.principals.creds.operator_policy_request("k1"))
        self.pubs = [decode(next(iter(r.values())), PresignaturePublic)
                     for r in self.run("presign", {"key_id": "k1"}, presignatures).values()]

    def sign_one_hop(self, i: int) -> None:
        """What the client's fast path does: one request, each signer's partial in parallel, combine, verify."""
        digest = hashlib.sha256(b"bench vault %d" % i).digest()
        pub = self.pubs.pop()
        request = self.principals.raw("k1", [digest])
        partials = self.all("partial_sign", request, [(0, pub.presignature_id)])
        child = rerandomize_for(pub, self.public_key, 0, digest)
        combine(pub, self.public_key, digest, {p: v[0] for p, v in partials.items()}, child)  # verifies


def _ms(samples: list[float]) -> str:
    return f"{pct(samples, 50) * 1e3:.3f} / {pct(samples, 90) * 1e3:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pings", type=int, default=400)
    parser.add_argument("--signs", type=int, default=40)
    args = parser.parse_args()
    started, load0 = time.time(), os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="bv-"))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never another cluster
    committees = {}
    try:
        for name, isolation in (("actor", "actor"), ("process", "process")):
            t = time.monotonic()
            committees[name] = Committee(name, root, isolation)
            committees[name].setup(args.signs)
            print(f"{name}: set up in {time.monotonic() - t:.0f} s", file=sys.stderr)
        pings: dict[str, list[float]] = {n: [] for n in committees}
        signs: dict[str, list[float]] = {n: [] for n in committees}
        for c in committees.values():  # warm: connections open, code paths loaded
            for _ in range(20):
                ray.get(c.holders[1].ping.remote())
        for i in range(args.pings):
            for name, c in committees.items():
                t = time.perf_counter()
                ray.get(c.holders[1].ping.remote())
                pings[name].append(time.perf_counter() - t)
        for i in range(args.signs):
            for name, c in committees.items():
                t = time.perf_counter()
                c.sign_one_hop(i)
                signs[name].append(time.perf_counter() - t)
    finally:
        ray.shutdown()
        for c in committees.values():
            for v in c.vaults:
                v.stop()
        shutil.rmtree(root, ignore_errors=True)

    ping_cost = pct(pings["process"], 50) - pct(pings["actor"], 50)
    sign_cost = pct(signs["process"], 50) - pct(signs["actor"], 50)
    lines = [
        f"# Vault proxy cost, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores; Python {platform.python_version()}, Ray {ray.__version__}",
        f"- load average {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; {time.time() - started:.0f} s",
        f"- {args.pings} pings and {args.signs} one-hop signs per isolation, alternated one call at a time",
        "",
        "| call | actor (holder in the actor) p50 / p90 ms | process (proxy + vault) p50 / p90 ms | added per hop, p50 |",
        "|---|---|---|---|",
        f"| ping (one hop) | {_ms(pings['actor'])} | {_ms(pings['process'])} | {ping_cost * 1e3:.3f} ms |",
        f"| one-hop sign (2 hops in parallel) | {_ms(signs['actor'])} | {_ms(signs['process'])} | "
        f"{sign_cost * 1e3:.3f} ms |",
        "",
        f"Target: under 0.3 ms per hop: {'met' if max(ping_cost, sign_cost) < 0.3e-3 else 'NOT met'} on this run.",
    ]
    report = "\n".join(lines) + "\n"
    (ROOT / "benchmarks" / "results" / f"vault-{datetime.date.today()}.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
