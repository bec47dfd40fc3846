#!/usr/bin/env python
"""Benchmarks for DKLs23, in process: the pairwise base-OT setup (batched Verified Simplest OT, 256 OTs per
direction), one random vector-OLE multiplication (KOS extension of 416 OTs with its check, the Protocol 5.2 check,
ELL = 2), one 2-of-3 presignature (Protocol 3.6 rounds 1-2, both signers' CPU) and one online signature (both
signers' shares, re-randomised, and the combiner's verification).

    python benchmarks/bench_dkls23.py            # 5 setups, 30 multiplications, 20 presignatures, 200 signatures
    python benchmarks/bench_dkls23.py --quick    # 2 setups, 5 multiplications, 3 presignatures, 20 signatures

CPU time is `time.process_time()` per side (this process only). Messages go through the wire encoding as they would
between nodes; their sizes are printed too. Nothing is written to disk.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import cpu_model, pct  # noqa: E402
from mpc_ray.protocols.dkls23 import sign as dsign  # noqa: E402
from mpc_ray.protocols.dkls23.setup import DKLs23Setup  # noqa: E402
from mpc_ray.protocols.ecdsa.sign import verify_ecdsa  # noqa: E402
from mpc_ray.sim import run_keygen, run_parties  # noqa: E402
from mpc_ray.crypto.ot import base_ot as bo  # noqa: E402
from mpc_ray.crypto.ot.kos import OTEReceiverSetup, OTESenderSetup  # noqa: E402
from mpc_ray.crypto.secp256k1 import Q, random_scalar  # noqa: E402
from mpc_ray.protocols.dkls23.rvole import RVOLEReceiver, RVOLERequest, RVOLEResponse, rvole_respond  # noqa: E402
from mpc_ray.protocols.wire import decode, encode  # noqa: E402


class Clock:
    """process_time per side."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def run(self, side: str, fn, *args):
        t = time.process_time()
        out = fn(*args)
        self.spent[side] = self.spent.get(side, 0.0) + time.process_time() - t
        return out


def one_setup(sid: bytes) -> tuple[dict[str, float], tuple[OTEReceiverSetup, OTESenderSetup]]:
    """One direction of the pairwise setup (a committee pair runs two)."""
    c = Clock()
    snd, rcv = bo.BaseOTSender(sid, 1, 2), bo.BaseOTReceiver(sid, 2, 1)
    m1 = decode(encode(c.run("sender", snd.message1)), bo.BaseOTMsg1)
    m2 = decode(encode(c.run("receiver", rcv.message2, m1)), bo.BaseOTMsg2)
    m3 = decode(encode(c.run("sender", snd.message3, m2)), bo.BaseOTMsg3)
    m4 = decode(encode(c.run("receiver", rcv.message4, m3)), bo.BaseOTMsg4)
    m5 = decode(encode(c.run("sender", snd.message5, m4)), bo.BaseOTMsg5)
    c.run("receiver", rcv.finish, m5)
    seeds0, seeds1 = snd.output()
    delta, pads = rcv.output()
    return c.spent, (OTEReceiverSetup(sid, 1, 2, seeds0, seeds1), OTESenderSetup(sid, 2, 1, delta, pads))


def one_multiplication(bob: OTEReceiverSetup, alice: OTESenderSetup, sid: bytes) -> tuple[dict[str, float], int]:
    c = Clock()
    a = [random_scalar(), random_scalar()]
    rcv = c.run("bob", RVOLEReceiver, bob, sid)
    req_bytes = encode(rcv.request())
    resp, out_a = c.run("alice", rvole_respond, alice, sid, a, decode(req_bytes, RVOLERequest))
    resp_bytes = encode(resp)
    out_b = c.run("bob", rcv.finish, decode(resp_bytes, RVOLEResponse))
    assert all((x + y) % Q == ai * rcv.b % Q for x, y, ai in zip(out_a, out_b, a))
    return c.spent, len(req_bytes) + len(resp_bytes)


def one_presignature(key, committee, signers, sid: bytes) -> tuple[dict[int, float], dict, int]:
    """Rounds 1-2 and the finish, every party's steps timed on its own clock; envelopes are bytes already."""
    c = Clock()
    parties = {p: dsign.DKLs23PresignParty(sid, key[p], committee[p], signers) for p in signers}
    flight = [e for p, party in parties.items() for e in c.run(p, party.start)]
    wire = 0
    while not all(party.done for party in parties.values()):
        wire += sum(len(e.payload) * (1 if e.recipient is not None else len(signers) - 1) for e in flight)
        inbox = {p: [e for e in flight if e.sender != p and e.recipient in (None, p)] for p in signers}
        flight = [e for p, party in parties.items() for e in c.run(p, party.receive, inbox[p])]
    return c.spent, {p: party.output for p, party in parties.items()}, wire


def one_online(shares: dict, public_key, digest: bytes) -> tuple[float, float]:
    """Wall time of the online round in process: each signer's re-randomised share, then combine (verifies)."""
    t = time.perf_counter()
    partials = {}
    for p, share in shares.items():
        child = dsign.rerandomize_for(share.public, public_key, 0, digest)
        partials[p] = dsign.partial_sign(share, digest, child)
    t_shares = time.perf_counter()
    sig = dsign.combine(next(iter(shares.values())).public, public_key, digest, partials)
    t_end = time.perf_counter()
    assert verify_ecdsa(public_key, digest, sig.r, sig.s)
    return t_shares - t, t_end - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_setup, n_mul, n_pre, n_sig = (2, 5, 3, 20) if args.quick else (5, 30, 20, 200)
    print(f"# DKLs23 ({cpu_model()}, Python {sys.version.split()[0]})\n")
    setups, pair = [], None
    for k in range(n_setup):
        spent, pair = one_setup(b"bench-setup-%d" % k)
        setups.append(spent)
    for side in ("sender", "receiver"):
        vals = [s[side] * 1e3 for s in setups]
        print(f"base OT setup, one direction, {side}: median {statistics.median(vals):.1f} ms CPU")
    muls, size = [], 0
    for k in range(n_mul):
        spent, size = one_multiplication(pair[0], pair[1], b"bench-mul-%d" % k)
        muls.append(spent)
    for side in ("bob", "alice"):
        vals = [s[side] * 1e3 for s in muls]
        print(f"multiplication, {side}: median {statistics.median(vals):.1f} ms, p90 {pct(vals, 90):.1f} ms CPU")
    total = [(s["bob"] + s["alice"]) * 1e3 for s in muls]
    print(f"multiplication, both sides: median {statistics.median(total):.1f} ms CPU; {size / 1024:.1f} KiB on the wire")

    key = run_keygen((1, 2, 3), 2)
    committee = run_parties({p: DKLs23Setup(b"bench-committee", p, (1, 2, 3)) for p in (1, 2, 3)})
    signers = (1, 2)
    pres, wire, pool = [], 0, []
    for k in range(n_pre + n_sig):
        spent, shares, wire = one_presignature(key, committee, signers, b"bench-presign-%d" % k)
        pres.append(spent)
        pool.append(shares)
    for p in signers:
        vals = [s[p] * 1e3 for s in pres]
        print(f"presignature 2-of-3, signer {p}: median {statistics.median(vals):.1f} ms CPU")
    both = [sum(s.values()) * 1e3 for s in pres]
    print(f"presignature 2-of-3, both signers: median {statistics.median(both):.1f} ms, p90 {pct(both, 90):.1f} ms CPU; "
          f"{wire / 1024:.1f} KiB on the wire")
    online = [one_online(shares, key[1].public_key, b"%032d" % k) for k, shares in enumerate(pool[:n_sig])]
    share_us = [a * 1e6 for a, _ in online]
    total_us = [b * 1e6 for _, b in online]
    print(f"online signature 2-of-3 in process: both shares median {statistics.median(share_us):.0f} us; with combine "
          f"and verify median {statistics.median(total_us):.0f} us, p90 {pct(total_us, 90):.0f} us")


if __name__ == "__main__":
    main()
