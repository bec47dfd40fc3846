#!/usr/bin/env python
"""Benchmarks for the threshold-ECDSA core (CGGMP21): presigning per party against an exponentiation floor,
key generation, online signing, aux-info setup and safe-prime generation.

    python benchmarks/bench_ecdsa.py            # full run, ~5-8 minutes on 2 cores
    python benchmarks/bench_ecdsa.py --quick    # smoke run, under a minute
    python benchmarks/bench_ecdsa.py --precompute 7   # presignature latency with a full Paillier-nonce pool vs.
                                                      # none, 2 signers at levels 112 and 128, 7 pairs each

Prints a Markdown report and writes it to benchmarks/results/ecdsa-<date>.md (ecdsa-<date>-quick.md with --quick).

How the numbers are taken
-------------------------
* CPU time is `time.process_time()` (this process only, so other jobs on the machine inflate it less than wall
  time). A small driver (`drive`) does exactly what `mpc_ray.sim.router.run_parties` does (start every party,
  then deliver each round's envelopes) and wraps every `start()` / `receive()` call of party i in process_time,
  so each party's CPU is its own. Routing between calls is not attributed to anyone (it is microseconds).
* Paillier keys are the TEST ONLY fixture keys of `tests/support/primes.py`; only the safe-prime benchmark
  generates primes.
* Floor (see BENCHMARKS.md): one extra, instrumented presignature per configuration records, per party, every
  `gmpy2.powmod(base, exp, mod)` call and every fixed-base ring-Pedersen commitment (`rp_commit`), by kind
  (exponent size x modulus). The recorded operations of party 1 are then replayed with plain `gmpy2.powmod`
  (and the original `rp_commit`) in the same process: "as executed" is the replay of exactly those calls, the
  "floor" replays the same calls at the cheapest size the party is entitled to (own-key work through CRT with
  exponents reduced modulo the group order, r^N by the CRT shortcut; peer-key work as is).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as _dt
import importlib.metadata
import os
import platform
import pstats
import secrets
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import gmpy2
from gmpy2 import mpz

from mpc_ray.crypto import ring_pedersen
from mpc_ray.crypto.params import level as as_level
from mpc_ray.crypto.primes import generate_safe_prime
from mpc_ray.crypto.zk import pi_aff_g
from mpc_ray.protocols.ecdsa.aux_info import AuxInfoParty
from mpc_ray.protocols.ecdsa.keygen import KeygenParty
from mpc_ray.protocols.ecdsa.precompute import PaillierRandomness
from mpc_ray.protocols.ecdsa.presign import PresignatureShare, PresignParty
from mpc_ray.protocols.ecdsa.sign import combine, partial_sign, rerandomize_for
from tests.support.primes import fixture_paillier_key  # TEST ONLY keys

PT = time.process_time
_ORIG_POWMOD = gmpy2.powmod
# the fixed-base ring-Pedersen commitment s^a t^b mod N-hat (moved from pi_aff_g to ring_pedersen at some point)
# (None if it is gone: then nothing is wrapped and the report warns that the floor misses those commitments)
_ORIG_RP_COMMIT = getattr(ring_pedersen, "rp_commit", None) or getattr(pi_aff_g, "rp_commit", None)

# --------------------------------------------------------------------------------------------------------------
# timing driver: run_parties with per-party CPU attribution
# --------------------------------------------------------------------------------------------------------------

_CURRENT: list[int | None] = [None]  # the party whose start()/receive() is running (for the instrumentation)


def _sid(tag: str) -> bytes:
    return f"bench/{tag}:".encode() + secrets.token_bytes(16)


def drive(parties: dict) -> tuple[dict[int, Any], dict[int, list[float]], float]:
    """Same delivery as `run_parties` (no tamper). Returns (outputs, per-party CPU seconds per call, wall s).

    cpu[i][0] is round 1 (start), cpu[i][r] the call that handles round r's messages."""
    cpu: dict[int, list[float]] = {i: [] for i in parties}
    w0 = time.perf_counter()
    in_flight = []
    for i, party in parties.items():
        _CURRENT[0] = i
        t0 = PT()
        out = party.start()
        cpu[i].append(PT() - t0)
        in_flight.extend(out)
    _CURRENT[0] = None
    while not all(p.done for p in parties.values()):
        inboxes: dict[int, list] = {i: [] for i in parties}
        for env in in_flight:
            targets = [env.recipient] if env.recipient is not None else [i for i in parties if i != env.sender]
            for t in targets:
                if t in inboxes:
                    inboxes[t].append(env)
        in_flight = []
        for i, party in parties.items():
            _CURRENT[0] = i
            t0 = PT()
            out = party.receive(inboxes[i])
            cpu[i].append(PT() - t0)
            in_flight.extend(out)
        _CURRENT[0] = None
    wall = time.perf_counter() - w0
    return {i: p.output for i, p in parties.items()}, cpu, wall


def run_aux(level: str, n: int):
    ids = list(range(1, n + 1))
    lv = as_level(level)
    sid = _sid("aux")
    machines = {
        i: AuxInfoParty(sid, i, ids, lv, fixture_paillier_key(level, i - 1), allow_test_keys=True) for i in ids
    }
    return drive(machines)


def run_keygen(n: int, threshold: int):
    ids = list(range(1, n + 1))
    sid = _sid("keygen")
    return drive({i: KeygenParty(sid, i, ids, threshold) for i in ids})


def run_presign(shares, aux, signers, pools: dict[int, PaillierRandomness] | None = None):
    sid = _sid("presign")
    from mpc_ray.sim import attestors  # MtA messages are signed (node identities on Ray)

    att = attestors(signers)
    pools = pools or {}
    return drive({i: PresignParty(sid, shares[i], aux[i], signers, attestor=att[i], randomness=pools.get(i))
                  for i in signers})


# --------------------------------------------------------------------------------------------------------------
# instrumentation: record every big exponentiation, by party
# --------------------------------------------------------------------------------------------------------------


class Recorder:
    """Wraps gmpy2.powmod and every module-level binding of rp_commit inside mpc_ray.

    Records (party, "powmod", (base, exp, mod)) and (party, "rp_commit", (params, a, b)). Exponentiations made
    inside rp_commit (table building, the too-large-exponent fallback) belong to that commitment and are not
    recorded separately."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, tuple, str]] = []
        self._depth = 0
        self._patched: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> Recorder:
        rec = self

        def powmod(b, e, m):
            if rec._depth == 0 and _CURRENT[0] is not None:
                rec.calls.append((_CURRENT[0], "powmod", (b, e, m), _call_site()))
            return _ORIG_POWMOD(b, e, m)

        def rp_commit(params, a, b):
            if rec._depth == 0 and _CURRENT[0] is not None:
                rec.calls.append((_CURRENT[0], "rp_commit", (params, a, b), _call_site()))
            rec._depth += 1
            try:
                return _ORIG_RP_COMMIT(params, a, b)
            finally:
                rec._depth -= 1

        self._patched.append((gmpy2, "powmod", _ORIG_POWMOD))
        gmpy2.powmod = powmod
        for name, mod in list(sys.modules.items()):
            if (_ORIG_RP_COMMIT is not None and name.startswith("mpc_ray")
                    and getattr(mod, "rp_commit", None) is _ORIG_RP_COMMIT):
                self._patched.append((mod, "rp_commit", _ORIG_RP_COMMIT))
                mod.rp_commit = rp_commit
        return self

    def __exit__(self, *exc) -> None:
        for obj, attr, orig in reversed(self._patched):
            setattr(obj, attr, orig)
        self._patched.clear()

    def of(self, party: int) -> list[tuple[str, tuple, str]]:
        return [(kind, args, site) for p, kind, args, site in self.calls if p == party]


_SITE_DEPTH = 3


def _call_site() -> str:
    """The innermost mpc_ray frames above the wrapper, outermost first: 'pi_aff_g._verify>ModN2.pow_n'."""
    f = sys._getframe(2)
    names: list[str] = []
    while f is not None and len(names) < _SITE_DEPTH:
        code = f.f_code
        path = code.co_filename.replace(os.sep, "/")
        if "/mpc_ray/" not in path:
            if names:
                break
        elif not (path.endswith("/protocols/base.py") or "<lambda>" in code.co_qualname
                  or code.co_name in ("guarded", "crt_powmod")):
            qn = code.co_qualname
            names.append(qn if "." in qn else f"{Path(path).stem}.{qn}")
        f = f.f_back
    return ">".join(reversed(names)) or "?"


def _bits(x) -> int:
    return int(abs(mpz(x)).bit_length())


class Classifier:
    """Names moduli and exponent sizes from party i's point of view."""

    def __init__(self, aux_i, level: str) -> None:
        sk = aux_i.paillier
        self.p, self.q, self.n = mpz(sk.p), mpz(sk.q), mpz(sk.public.n)
        self.lv = as_level(level)
        P, N = self.lv.prime_bits, 2 * self.lv.prime_bits
        self.P, self.N = P, N
        self.mod_class: dict[mpz, str] = {
            self.p: "own p, q (CRT half mod N)",
            self.q: "own p, q (CRT half mod N)",
            self.p * self.p: "own p^2, q^2 (CRT half mod N^2)",
            self.q * self.q: "own p^2, q^2 (CRT half mod N^2)",
            self.n: "own N = own N-hat, no CRT",
            self.n * self.n: "own N^2, no CRT",
        }
        for pub in aux_i.public.values():
            nj = mpz(pub.n)
            if nj != self.n:
                self.mod_class[nj] = "peer N_j = N-hat_j"
                self.mod_class[nj * nj] = "peer N_j^2"
        lv = self.lv
        self.named = [
            (256, "256 (e, k, gamma, w)"),
            (lv.ell + lv.eps, f"{lv.ell + lv.eps} (ell+eps)"),
            (lv.ell_prime + lv.eps, f"{lv.ell_prime + lv.eps} (ell'+eps)"),
            (lv.ell_prime, f"{lv.ell_prime} (ell')"),
            (P, f"{P} (prime size: p-1, q mod p-1, p)"),
            (N, f"{N} (N-size)"),
            (N + lv.ell, f"{N + lv.ell} (ell N-hat)"),
            (N + lv.ell + lv.eps, f"{N + lv.ell + lv.eps} ((ell+eps) N-hat)"),
        ]

    def exp_label(self, bits: int) -> str:
        for ref, name in self.named:
            if abs(bits - ref) <= 12:
                return name
        return f"~{round(bits / 32) * 32}"

    def modulus(self, m) -> str:
        return self.mod_class.get(mpz(m), f"other ({_bits(m)}-bit)")

    def key(self, kind: str, args: tuple) -> tuple[str, str]:
        if kind == "powmod":
            b, e, m = args
            e, m = mpz(e), mpz(m)
            mbits = -(-_bits(m) // 64) * 64  # 4095- and 4096-bit N^2 are the same kind
            label = f"exp {self.exp_label(_bits(e))}"
            p, q, n = self.p, self.q, self.n
            for r, o in ((p, q), (q, p)):
                if m == r * r and e == r - 1:
                    label = "exp p-1 (decryption)"
                elif m == r * r and e == r:
                    label = "exp p (r^N shortcut, step 2)"
                elif m == r and e == o % (r - 1):
                    label = "exp q mod p-1 (r^N shortcut, step 1)"
                elif m == r * r and e == n % (r * (r - 1)):
                    label = "exp N mod p(p-1) (r^N, no shortcut)"
            if m == n * n and e == n:
                label = "exp N (r^N)"
            elif m != n * n and m != p * p and m != q * q and gmpy2.is_square(m) and e == gmpy2.isqrt(m):
                label = "exp N_j (r^N_j)"
            return (f"mod {self.modulus(m)} [{mbits}-bit]", label)
        params, a, b = args
        owner = "own" if mpz(params.n) == self.n else "peer"
        return (
            f"s^a t^b mod {owner} N-hat [{_bits(params.n)}-bit], fixed-base tables",
            f"|a| {self.exp_label(_bits(a))}, |b| {self.exp_label(_bits(b))}",
        )

    def floor_ops(self, kind: str, args: tuple) -> list[tuple[Callable, tuple]]:
        """The cheapest way party i may do this operation (what the floor charges for it)."""
        if kind == "rp_commit":
            return [(_ORIG_RP_COMMIT, args)]
        b, e, m = args
        b, e, m = mpz(b), mpz(e), mpz(m)
        p, q, n = self.p, self.q, self.n

        def rn_half(r, other):  # (b^N mod r^2) = ((b mod r)^(other mod r-1) mod r)^r mod r^2
            return [(_ORIG_POWMOD, (b % r, other % (r - 1), r)), (_ORIG_POWMOD, (b, r, r * r))]

        def reduced(exp, order):
            """The exponent's representative mod the group order of least absolute value: a huge exponent shrinks
            to the order's size, and a small negative one (e, z1 < 0) stays small (one inversion, then a short
            power) even if the code already reduced it to a long positive one. Bases are units here."""
            r = exp % order
            if order - r < r and gmpy2.gcd(b, m) == 1:
                return r - order
            return r

        if m == p or m == q:
            return [(_ORIG_POWMOD, (b, reduced(e, m - 1), m))]
        if m == p * p or m == q * q:
            r, other = (p, q) if m == p * p else (q, p)
            order = r * (r - 1)
            if e % order == n % order:
                return rn_half(r, other)
            return [(_ORIG_POWMOD, (b, reduced(e, order), m))]
        if m == n:
            return [(_ORIG_POWMOD, (b % p, reduced(e, p - 1), p)), (_ORIG_POWMOD, (b % q, reduced(e, q - 1), q))]
        if m == n * n:
            if e == n:
                return rn_half(p, q) + rn_half(q, p)
            return [
                (_ORIG_POWMOD, (b, reduced(e, p * (p - 1)), p * p)),
                (_ORIG_POWMOD, (b, reduced(e, q * (q - 1)), q * q)),
            ]
        return [(_ORIG_POWMOD, (b, e, m))]


def _time_ops(ops: list[tuple[Callable, tuple]]) -> float:
    t0 = PT()
    for fn, args in ops:
        fn(*args)
    return PT() - t0


def _same_ops(a: list[tuple[Callable, tuple]], b: list[tuple[Callable, tuple]]) -> bool:
    return len(a) == len(b) and all(
        fa is fb and len(xa) == len(xb) and all(u is v or u == v for u, v in zip(xa, xb))
        for (fa, xa), (fb, xb) in zip(a, b)
    )


class FloorReplay:
    """Party `party`'s recorded operations grouped by kind, ready to be replayed (as executed and at floor)."""

    def __init__(self, rec: Recorder, aux_i, level: str, party: int) -> None:
        cl = Classifier(aux_i, level)
        groups: dict[tuple[str, str], list[tuple[str, tuple, str]]] = defaultdict(list)
        for kind, args, site in rec.of(party):
            groups[cl.key(kind, args)].append((kind, args, site))
        self.groups = []
        for gkey in sorted(groups):
            calls = groups[gkey]
            executed = [(_ORIG_POWMOD if k == "powmod" else _ORIG_RP_COMMIT, a) for k, a, _ in calls]
            floor = [op for k, a, _ in calls for op in cl.floor_ops(k, a)]
            sites: dict[str, int] = defaultdict(int)
            for _, _, site in calls:
                sites[site] += 1
            self.groups.append({
                "modulus": gkey[0], "exp": gkey[1], "count": len(calls),
                "sites": sorted(sites.items(), key=lambda kv: -kv[1]),
                "executed": executed,
                "floor": floor,
                "same": _same_ops(executed, floor),
                "rp": [a for k, a, _ in calls if k == "rp_commit"],
                "t_exec": [], "t_floor": [], "t_plain": None,
            })
        self.n_ops = sum(g["count"] for g in self.groups)

    def replay(self) -> tuple[float, float]:
        """Time every group once, as executed and at floor; returns the totals of this replay."""
        te = tf = 0.0
        for g in self.groups:
            a = _time_ops(g["executed"])
            # the floor is the cheaper of the two ways (the executed one is always allowed); where the floor does
            # the very same operations, the one measurement serves both
            b = a if g["same"] else min(a, _time_ops(g["floor"]))
            g["t_exec"].append(a)
            g["t_floor"].append(b)
            te, tf = te + a, tf + b
        return te, tf

    def plain_equivalent(self) -> None:
        """The fixed-base commitments as two plain powmods each (RingPedersenParams.commit), once."""
        for g in self.groups:
            if g["rp"]:
                g["t_plain"] = _time_ops([(a[0].commit, (a[1], a[2])) for a in g["rp"]])


# --------------------------------------------------------------------------------------------------------------
# benchmarks
# --------------------------------------------------------------------------------------------------------------


def med(xs) -> float:
    return statistics.median(xs)


def ms(x: float) -> str:
    return f"{x * 1e3:,.1f}"


def bench_presign_config(level: str, n: int, count: int, plain_equiv: bool, log) -> dict:
    ids = list(range(1, n + 1))
    aux_out, aux_cpu, aux_wall = run_aux(level, n)
    log(f"  aux-info {level}/n={n}: {sum(map(sum, aux_cpu.values())):.1f} s CPU")
    shares, _, _ = run_keygen(n, n)
    # instrumented presignature: doubles as the warm-up (fixed-base tables for every N-hat get built here)
    with Recorder() as rec:
        _ = run_presign(shares, aux_out, ids)
    counts = {i: len(rec.of(i)) for i in ids}
    fr = FloorReplay(rec, aux_out[1], level, 1)
    del rec
    per_party: dict[int, list[float]] = {i: [] for i in ids}
    per_round: dict[int, list[list[float]]] = {i: [] for i in ids}
    totals, walls, exec_tot, floor_tot, last = [], [], [], [], None
    for _k in range(count):
        outs, cpu, wall = run_presign(shares, aux_out, ids)
        for i in ids:
            per_party[i].append(sum(cpu[i]))
            per_round[i].append(cpu[i])
        totals.append(sum(sum(c) for c in cpu.values()))
        walls.append(wall)
        last = outs
        # replay party 1's exponentiations right after the sample, so both see the same machine load
        te, tf = fr.replay()
        exec_tot.append(te)
        floor_tot.append(tf)
    if plain_equiv:
        fr.plain_equivalent()
    warnings = []
    if not any(g["rp"] for g in fr.groups):
        warnings.append(f"{level}/n={n}: no fixed-base ring-Pedersen commitment was recorded; the floor misses them "
                        "(has rp_commit moved?)")
    if med(per_party[1]) > 1.5 * med(exec_tot):
        warnings.append(f"{level}/n={n}: party 1 spends over 1.5x the replayed exponentiations; some exponentiation "
                        "path may not be instrumented")
    party_meds = {i: med(v) for i, v in per_party.items()}
    rounds = [med([r[k] for i in ids for r in per_round[i]]) for k in range(len(per_round[1][0]))]
    ratios = [m / f for m, f in zip(per_party[1], floor_tot)]
    log(f"  presign {level}/n={n}: party 1 median {ms(party_meds[1])} ms CPU, floor {ms(med(floor_tot))} ms, "
        f"ratio {med(ratios):.2f}")
    return {
        "level": level, "n": n, "count": count, "aux_cpu": aux_cpu, "aux_wall": aux_wall,
        "party_meds": party_meds, "rounds": rounds, "total_med": med(totals), "wall_med": med(walls),
        "floor": fr, "exec_med": med(exec_tot), "floor_med": med(floor_tot), "ratio": med(ratios),
        "ratio_exec": med(m / e for m, e in zip(per_party[1], exec_tot)),
        "ratio_range": (min(ratios), max(ratios)), "ratio_best": min(per_party[1]) / min(floor_tot),
        "op_counts": counts,
        "presignatures": last, "shares": shares, "aux": aux_out, "warnings": warnings,
    }


def bench_precompute(level: str, pairs: int, log) -> dict:
    """One presignature of a 2-of-2 key (both signers in this process, one after the other), with every Paillier
    nonce it needs precomputed (protocols/ecdsa/precompute.py: depth-1 pools, filled right before the run and timed
    apart) vs. none, alternating which goes first. With 2 parties the pools hold exactly what one run takes, so
    fill + run with pools is the CPU of the same work as the run without."""
    ids = [1, 2]
    aux_out, _, _ = run_aux(level, 2)
    shares, _, _ = run_keygen(2, 2)
    run_presign(shares, aux_out, ids)  # warm-up: fixed-base tables of every N-hat
    pools = {i: PaillierRandomness(1) for i in ids}
    for i in ids:
        pools[i].target([(aux_out[i], 1)])
    rows: dict[str, list[tuple[float, float]]] = {"none": [], "pool": []}  # (both signers' CPU, wall)
    fills: list[float] = []
    for k in range(pairs):
        for mode in (("none", "pool") if k % 2 == 0 else ("pool", "none")):
            if mode == "pool":
                t0 = PT()
                for i in ids:
                    pools[i].fill()
                fills.append(PT() - t0)
            _, cpu, wall = run_presign(shares, aux_out, ids, pools if mode == "pool" else None)
            rows[mode].append((sum(sum(c) for c in cpu.values()), wall))
            if mode == "pool":
                assert all(p.size() == 0 for p in pools.values()), "a run left precomputed nonces unused"
    out = {"level": level, "pairs": pairs, "fill": med(fills)}
    for mode, vals in rows.items():
        out[mode] = (med(v[0] for v in vals), med(v[1] for v in vals))
    log(f"  precompute {level}: none {ms(out['none'][0])} ms CPU / {ms(out['none'][1])} ms wall, full pool "
        f"{ms(out['pool'][0])} / {ms(out['pool'][1])} ms, fill {ms(out['fill'])} ms CPU")
    return out


def bench_batch_ab(level: str, pairs: int, log) -> dict:
    """Per-party CPU of one presignature of n = 3 (fixture keys) with round 3's Paillier equations batched per
    modulus (crypto/zk/batch.py, as shipped) vs. checked proof by proof (the fall-back path alone: what presigning
    did before the batch), alternating which goes first, in one process."""
    from mpc_ray.crypto.secp256k1 import Point
    from mpc_ray.crypto.zk import pi_aff_g, pi_log_star
    from mpc_ray.protocols.ecdsa import presign as presign_mod

    ids = [1, 2, 3]
    aux_out, _, _ = run_aux(level, 3)
    shares, _, _ = run_keygen(3, 3)
    run_presign(shares, aux_out, ids)  # warm-up: fixed-base tables of every N-hat
    batched = presign_mod.PresignParty._verify_round2_proofs

    def one_by_one(self, j, b, d):  # presign.py's fall-back alone (what round 3 did before the batch)
        own_pk, own_rp, pk_j = self.aux.paillier.public, self.aux.rp(self.party), self.aux.paillier_pk(j)
        pi_aff_g.verify(self._tr("pi_aff_g/gamma", j, self.party), d.psi, pk0=own_pk, pk1=pk_j, verifier_rp=own_rp,
                        C=self._K, D=d.D, Y=d.F, X=b.Gamma, level=self.level)
        pi_aff_g.verify(self._tr("pi_aff_g/x", j, self.party), d.psi_hat, pk0=own_pk, pk1=pk_j, verifier_rp=own_rp,
                        C=self._K, D=d.D_hat, Y=d.F_hat, X=self._W[j], level=self.level)
        pi_log_star.verify(self._tr("pi_log_star/gamma", j, self.party), d.psi_log, prover_pk=pk_j,
                           verifier_rp=own_rp, C=self._r1[j].G, X=b.Gamma, base=Point.generator(), level=self.level)

    rows: dict[str, list[float]] = {"batched": [], "one by one": []}
    try:
        for k in range(pairs):
            for mode in (("batched", "one by one") if k % 2 == 0 else ("one by one", "batched")):
                presign_mod.PresignParty._verify_round2_proofs = batched if mode == "batched" else one_by_one
                _, cpu, _ = run_presign(shares, aux_out, ids)
                rows[mode].append(sum(sum(c) for c in cpu.values()) / len(ids))
    finally:
        presign_mod.PresignParty._verify_round2_proofs = batched
    out = {"level": level, "pairs": pairs, **{m: med(v) for m, v in rows.items()}}
    log(f"  batch A/B {level}: per party batched {ms(out['batched'])} ms, one by one {ms(out['one by one'])} ms CPU "
        f"({100 * (out['batched'] / out['one by one'] - 1):+.1f}%)")
    return out


def render_precompute(rows: list[dict], started: str, load_start, load_end, elapsed: float, pairs: int) -> str:
    L = ["# CGGMP21 presignature latency with precomputed Paillier randomness", "",
         f"- Date: {started} (UTC)", *machine_info(source_state()),
         f"- Load average (1/5/15 min) at start: {'/'.join(f'{x:.2f}' for x in load_start)}, at end: "
         f"{'/'.join(f'{x:.2f}' for x in load_end)} (other jobs share this machine)",
         f"- Command: `python benchmarks/bench_ecdsa.py --precompute {pairs}`; run took {elapsed:.0f} s wall",
         "- One presignature of a 2-of-2 key, both signers in one process one after the other (so wall ~ both "
         "signers' CPU); medians over alternating runs; TEST ONLY fixture Paillier keys", "",
         "| level | pairs | no pool: both signers CPU ms | wall ms | full pool: CPU ms | wall ms | latency "
         "saved | filling the pools, CPU ms | pool run + fill vs. no pool |",
         "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        (c0, w0), (c1, w1) = r["none"], r["pool"]
        L.append(f"| {r['level']} | {r['pairs']} | {ms(c0)} | {ms(w0)} | {ms(c1)} | {ms(w1)} | "
                 f"{(1 - w1 / w0) * 100:.0f}% | {ms(r['fill'])} | {(c1 + r['fill']) / c0:.2f}x |")
    return "\n".join(L) + "\n"


def bench_aux_extra(level: str, n: int, extra: int) -> list[dict[int, list[float]]]:
    return [run_aux(level, n)[1] for _ in range(extra)]


def bench_keygen(n: int, reps: int) -> dict:
    per_party, totals = [], []
    for _ in range(reps):
        _, cpu, _ = run_keygen(n, n)
        per_party.extend(sum(c) for c in cpu.values())
        totals.append(sum(sum(c) for c in cpu.values()))
    return {"n": n, "per_party": med(per_party), "total": med(totals), "reps": reps}


def bench_sign(presignatures: dict[int, PresignatureShare], public_key, batch: int, batches: int) -> dict:
    """partial_sign and combine. Clones of each share sign the SAME digest, so no two different signatures ever
    come from one presignature (the clones exist only to repeat the measurement)."""
    digest = secrets.token_bytes(32)
    shares = list(presignatures.values())
    public = shares[0].public
    partial_times, combine_times = [], []
    master = rerandomize_for(public, public_key, 0, digest)  # every signature is re-randomised (tweak 0)
    for _ in range(batches):
        clones = [PresignatureShare(s.party, s.public, *s.secret_values()) for s in shares for _ in range(batch)]
        t0 = PT()
        for c in clones:
            partial_sign(c, digest, master)
        partial_times.append((PT() - t0) / len(clones))
    partials = {s.party: partial_sign(PresignatureShare(s.party, s.public, *s.secret_values()), digest, master)
                for s in shares}
    sig = combine(public, public_key, digest, partials, master)
    assert sig.r == master.r
    for _ in range(batches):
        t0 = PT()
        for _ in range(batch):
            combine(public, public_key, digest, partials, master)
        combine_times.append((PT() - t0) / batch)
    return {"partial": med(partial_times), "combine": med(combine_times)}


def bench_primes(bits: int, samples: int, log) -> list[float]:
    out = []
    for _ in range(samples):
        t0 = PT()
        generate_safe_prime(bits)
        out.append(PT() - t0)
        log(f"  safe prime {bits}: {out[-1]:.2f} s")
    return out


_PROFILE_COMPONENTS = [
    # (file suffixes, function names in order of preference, label): cumulative time in the profile of one
    # presignature. The first name found in a matching file is used (verify may wrap _verify: no double count);
    # several functions of that name (methods of two classes) add up.
    (("protocols/ecdsa/presign.py",), ("round1",), "PresignParty.round1 (K, G, pi_enc proofs)"),
    (("protocols/ecdsa/presign.py",), ("round2",), "PresignParty.round2 (check pi_enc; MtA; pi_aff_g x2, pi_log*)"),
    (("protocols/ecdsa/presign.py",), ("round3",), "PresignParty.round3 (check pi_aff_g x2, pi_log*; decrypt; pi_log*)"),
    (("protocols/ecdsa/presign.py",), ("round4",), "PresignParty.round4 (check pi_log*; output)"),
    (("crypto/zk/pi_enc.py",), ("prove",), "pi_enc.prove"),
    (("crypto/zk/pi_enc.py",), ("verify", "_verify"), "pi_enc.verify"),
    (("crypto/zk/pi_aff_g.py",), ("prove",), "pi_aff_g.prove"),
    (("crypto/zk/pi_aff_g.py",), ("verify", "_verify"), "pi_aff_g.verify"),
    (("crypto/zk/pi_log_star.py",), ("prove",), "pi_log_star.prove"),
    (("crypto/zk/pi_log_star.py",), ("verify", "_verify"), "pi_log_star.verify"),
    (("crypto/paillier.py",), ("r_pow_n",), "r^N mod N^2 (own key: CRT shortcut; peer key: plain)"),
    (("crypto/paillier.py",), ("decrypt",), "PaillierSecretKey.decrypt"),
    (("crypto/paillier.py",), ("mul",), "PaillierPublicKey.mul (K_j^gamma, K_j^w)"),
    (("crypto/ring_pedersen.py", "crypto/zk/pi_aff_g.py"), ("rp_commit",), "rp_commit (fixed-base s^a t^b, peer N-hat)"),
    (("crypto/ring_pedersen.py",), ("commit",), "RingPedersenSecret.commit (CRT, own N-hat)"),
    (("protocols/wire.py",), ("encode",), "wire.encode"),
    (("protocols/wire.py",), ("decode",), "wire.decode"),
    (("crypto/transcript.py",), ("challenge_signed_q",), "Fiat-Shamir challenges"),
]


def _fname(fname: str, line: int, func: str) -> str:
    if fname == "~":
        return func
    try:
        return f"{Path(fname).resolve().relative_to(REPO)}:{line} {func}"
    except ValueError:
        return f"{Path(fname).name}:{line} {func}"


def profile_presign(shares, aux, ids, top: int) -> dict:
    prof = cProfile.Profile()
    prof.enable()
    run_presign(shares, aux, ids)
    prof.disable()
    st = pstats.Stats(prof)
    total = st.total_tt
    rows = []
    powmod_callers: dict[str, float] = defaultdict(float)
    components: dict[str, float] = defaultdict(float)
    for (fname, line, func), (cc, nc, tt, ct, callers) in st.stats.items():
        rows.append((tt, ct, nc, _fname(fname, line, func)))
        if fname == "~" and func.endswith("gmpy2.powmod>"):
            for (cf, cl, cfn), cstats in callers.items():
                powmod_callers[_fname(cf, cl, cfn)] += cstats[2]
    for suffixes, names, label in _PROFILE_COMPONENTS:
        for name in names:
            hits = [ct for (fname, _, func), (_, _, _, ct, _) in st.stats.items()
                    if func == name and fname.replace(os.sep, "/").endswith(suffixes)]
            if hits:
                components[label] = sum(hits)
                break
    rows.sort(reverse=True)
    return {
        "rows": rows[:top], "total": total,
        "powmod_callers": sorted(powmod_callers.items(), key=lambda kv: -kv[1]),
        "components": [(label, components[label]) for _, _, label in _PROFILE_COMPONENTS if label in components],
    }


# --------------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------------


def source_state() -> str:
    """Commit, dirty files under mpc_ray/ and a digest of the mpc_ray sources, taken when the run starts (the code
    is imported then; other people may be editing the tree while the benchmark runs)."""
    import hashlib

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "--no-optional-locks", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=10, check=False).stdout.rstrip("\n")
        except Exception:  # noqa: BLE001
            return "?"

    h = hashlib.sha256()
    for f in sorted((REPO / "mpc_ray").rglob("*.py")):
        h.update(str(f.relative_to(REPO)).encode() + b"\0" + f.read_bytes())
    dirty = [ln[3:] for ln in git("status", "--porcelain", "--", "mpc_ray").splitlines() if ln]
    return (f"- Code: commit {git('rev-parse', '--short', 'HEAD')}"
            + (f", uncommitted changes in {len(dirty)} path(s) under mpc_ray/ ({', '.join(dirty[:6])}"
               f"{', ...' if len(dirty) > 6 else ''})" if dirty else ", mpc_ray/ clean")
            + f"; sha256 of mpc_ray/**/*.py at start: {h.hexdigest()[:16]}")


def machine_info(res_source: str) -> list[str]:
    model, cores = "unknown", os.cpu_count()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    return [
        f"- CPU: {model}, {cores} logical cores ({platform.machine()}, Linux {platform.release()})",
        (f"- Python {platform.python_version()}, gmpy2 {gmpy2.version()} ({gmpy2.mp_version()}), "
         f"coincurve {importlib.metadata.version('coincurve')}"),
        res_source,
    ]


def render(res: dict, args, started: str, load_start, load_end, elapsed: float) -> str:
    L: list[str] = []
    mode = "quick (smoke) run" if args.quick else "full run"
    L.append(f"# Threshold-ECDSA benchmarks ({mode})")
    L.append("")
    L.append(f"- Date: {started} (UTC)")
    L.extend(machine_info(res['source']))
    L.append(f"- Load average (1/5/15 min) at start: {'/'.join(f'{x:.2f}' for x in load_start)}, at end: "
             f"{'/'.join(f'{x:.2f}' for x in load_end)} (other jobs share this machine)")
    L.append(f"- Command: `python benchmarks/bench_ecdsa.py{' --quick' if args.quick else ''}`; "
             f"run took {elapsed:.0f} s wall")
    L.append("- Paillier keys: TEST ONLY fixture primes (tests/support/primes.py); CPU = time.process_time(); "
             "threshold = n (all n parties sign)")
    L.append("")

    for c in res["presign"]:
        for w in c["warnings"]:
            L.append(f"> WARNING: {w}")
            L.append("")
    # 1 + 2: presign vs floor ---------------------------------------------------------------------------------
    L.append("## Presigning: CPU per party per presignature vs. the exponentiation floor")
    L.append("")
    L.append("| level | n | presigs | per party ms, median (min-max over parties) | party 1 ms | "
             "party 1 exps as executed ms | party 1 floor ms | **measured / floor** (min-max) | "
             "best-of ratio | measured / as executed | all parties CPU ms | wall ms |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for c in res["presign"]:
        pm = c["party_meds"]
        lo, hi = c["ratio_range"]
        L.append(
            f"| {c['level']} | {c['n']} | {c['count']} | {ms(med(pm.values()))} ({ms(min(pm.values()))}-"
            f"{ms(max(pm.values()))}) | {ms(pm[1])} | {ms(c['exec_med'])} | {ms(c['floor_med'])} | "
            f"**{c['ratio']:.2f}x** ({lo:.2f}-{hi:.2f}) | {c['ratio_best']:.2f}x | {c['ratio_exec']:.2f}x | {ms(c['total_med'])} | "
            f"{ms(c['wall_med'])} |"
        )
    L.append("")
    L.append("Target: measured / floor <= 1.5x. Ratios are medians of per-presignature ratios: after every timed "
             "presignature, party 1's recorded exponentiations are replayed once as executed and once at floor "
             "(see BENCHMARKS.md, \"How the floor is computed\"). Best-of ratio: fastest party-1 presignature over "
             "fastest floor replay (least disturbed by other jobs on the machine).")
    L.append("")
    L.append("Per-round CPU per party (median ms; round 1 = start(), round k = handling round k-1's messages):")
    L.append("")
    nr = max(len(c["rounds"]) for c in res["presign"])
    L.append("| level | n | " + " | ".join(f"round {k + 1}" for k in range(nr)) + " |")
    L.append("|---|---|" + "---|" * nr)
    for c in res["presign"]:
        L.append(f"| {c['level']} | {c['n']} | " + " | ".join(ms(x) for x in c["rounds"]) + " |")
    L.append("")

    for c in res["presign"]:
        fr = c["floor"]
        L.append(f"### Exponentiations of one party per presignature: level {c['level']}, n = {c['n']}")
        L.append("")
        L.append(f"Party 1 made {fr.n_ops} recorded operations (per party: "
                 f"{', '.join(f'{i}: {v}' for i, v in c['op_counts'].items())}); times are medians over "
                 f"{c['count']} replays.")
        L.append("")
        L.append("| modulus | exponent bits | count | as executed us/op | as executed ms | floor us/op | floor ms | "
                 "call sites (count) |")
        L.append("|---|---|---|---|---|---|---|---|")
        tot_e = tot_f = 0.0
        for g in fr.groups:
            te, tf = med(g["t_exec"]), med(g["t_floor"])
            tot_e, tot_f = tot_e + te, tot_f + tf
            sites = "; ".join(f"{site} ({k})" for site, k in g["sites"][:4])
            if len(g["sites"]) > 4:
                sites += "; ..."
            L.append(
                f"| {g['modulus']} | {g['exp']} | {g['count']} | {te / g['count'] * 1e6:,.0f} | {ms(te)} | "
                f"{tf / g['count'] * 1e6:,.0f} | {ms(tf)} | {sites} |"
            )
        L.append(f"| **total** | | {fr.n_ops} | | **{ms(tot_e)}** | | **{ms(tot_f)}** | |")
        L.append("")
        rp = [g for g in fr.groups if g["t_plain"] is not None]
        if rp:
            plain = sum(g["t_plain"] for g in rp)
            table = sum(med(g["t_exec"]) for g in rp)
            L.append(
                f"Fixed-base ring-Pedersen commitments: these {sum(g['count'] for g in rp)} commitments as two "
                f"plain gmpy2.powmod each would cost {ms(plain)} ms instead of {ms(table)} ms; a floor that "
                f"charged them as plain powmods would be {ms(tot_f - table + plain)} ms (measured / that = "
                f"{c['party_meds'][1] / (tot_f - table + plain):.2f}x)."
            )
            L.append("")

    # 3: keygen, sign, aux, primes ----------------------------------------------------------------------------
    L.append("## Key generation (aux info ready), threshold = n")
    L.append("")
    L.append("| n | runs | per party ms (median) | all parties ms (median) |")
    L.append("|---|---|---|---|")
    for k in res["keygen"]:
        L.append(f"| {k['n']} | {k['reps']} | {k['per_party'] * 1e3:.2f} | {k['total'] * 1e3:.2f} |")
    L.append("")
    L.append("## Online signing (presignature ready)")
    L.append("")
    L.append("| n | partial_sign per party us | combine (sum, low-s, verify) us |")
    L.append("|---|---|---|")
    for s in res["sign"]:
        L.append(f"| {s['n']} | {s['partial'] * 1e6:.1f} | {s['combine'] * 1e6:.1f} |")
    L.append("")
    L.append("## Aux-info setup (fixture primes, i.e. without safe-prime generation)")
    L.append("")
    L.append("| level | n | runs | per party s, median (min-max) | all parties s | per-round per party s (median) |")
    L.append("|---|---|---|---|---|---|")
    for a in res["aux"]:
        pp = [sum(c) for run in a["runs"] for c in run.values()]
        tot = [sum(sum(c) for c in run.values()) for run in a["runs"]]
        nrr = len(next(iter(a["runs"][0].values())))
        rr = [med([c[k] for run in a["runs"] for c in run.values()]) for k in range(nrr)]
        L.append(f"| {a['level']} | {a['n']} | {len(a['runs'])} | {med(pp):.2f} ({min(pp):.2f}-{max(pp):.2f}) | "
                 f"{med(tot):.2f} | {' / '.join(f'{x:.2f}' for x in rr)} |")
    L.append("")
    L.append("With fresh primes every party also generates two safe primes of the level's size (next table).")
    L.append("")
    L.append("## Safe-prime generation (CPU s per prime)")
    L.append("")
    L.append("| bits | samples | median | mean | min | max |")
    L.append("|---|---|---|---|---|---|")
    for bits, xs in res["primes"].items():
        if xs:
            L.append(f"| {bits} | {len(xs)} | {med(xs):.2f} | {statistics.mean(xs):.2f} | {min(xs):.2f} | "
                     f"{max(xs):.2f} |")
    L.append("")

    # profile ---------------------------------------------------------------------------------------------------
    if res.get("profile"):
        pr = res["profile"]
        total = pr["total"]
        L.append(f"## Profile: one presignature, level {pr['level']}, n = {pr['n']}, all parties (cProfile)")
        L.append("")
        L.append(f"Total under cProfile: {total:.2f} s (all {pr['n']} parties).")
        L.append("")
        L.append("Top functions by own time:")
        L.append("")
        L.append("| own time s | % | cumulative s | calls | function |")
        L.append("|---|---|---|---|---|")
        for tt, ct, nc, name in pr["rows"]:
            L.append(f"| {tt:.3f} | {100 * tt / total:.1f} | {ct:.3f} | {nc} | `{name}` |")
        L.append("")
        L.append("gmpy2.powmod own time by immediate caller:")
        L.append("")
        L.append("| s | % of total | caller |")
        L.append("|---|---|---|")
        for name, t in pr["powmod_callers"][:12]:
            L.append(f"| {t:.3f} | {100 * t / total:.1f} | `{name}` |")
        L.append("")
        L.append("Cumulative time by component (components nest, so rows overlap):")
        L.append("")
        L.append("| s | % of total | component |")
        L.append("|---|---|---|")
        for label, t in pr["components"]:
            L.append(f"| {t:.3f} | {100 * t / total:.1f} | {label} |")
        L.append("")
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts, a smoke run under about a minute")
    ap.add_argument("--out", type=Path, help="report path (default benchmarks/results/ecdsa-<date>[-quick].md)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--precompute", type=int, metavar="PAIRS",
                    help="only the presignature latency with full Paillier-nonce pools vs. none, PAIRS runs each")
    ap.add_argument("--batch-ab", type=int, metavar="PAIRS",
                    help="only round 3's batched check vs. proof by proof, per-party presignature CPU, PAIRS runs each")
    args = ap.parse_args()

    started_dt = _dt.datetime.now(_dt.UTC)
    started = started_dt.strftime("%Y-%m-%d %H:%M")
    load_start = os.getloadavg()
    w0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - w0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    if args.batch_ab:
        for level in ("112", "128"):
            log(f"batch A/B level {level}, {args.batch_ab} pairs (load {os.getloadavg()[0]:.2f})")
            bench_batch_ab(level, args.batch_ab, log)
        log(f"load at the end {os.getloadavg()[0]:.2f}")
        return

    if args.precompute:
        rows = []
        for level in ("112", "128"):
            log(f"precompute level {level}, {args.precompute} pairs")
            rows.append(bench_precompute(level, args.precompute, log))
        report = render_precompute(rows, started, load_start, os.getloadavg(), time.perf_counter() - w0,
                                   args.precompute)
        print(report)
        if not args.no_write:
            out = args.out or REPO / "benchmarks" / "results" / f"ecdsa-precompute-{started_dt.date().isoformat()}.md"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(report)
            log(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
        return

    if args.quick:
        configs = [("112", 3, 2), ("128", 3, 1), ("112", 5, 1)]
        aux_extra, keygen_reps, sign_batch, sign_batches = 0, 5, 50, 3
        prime_samples = {1024: 2, 1536: 0}
        plain_equiv, profile_cfg = False, ("112", 3)
    else:
        configs = [("112", 3, 9), ("128", 3, 7), ("112", 5, 7), ("128", 5, 5)]
        aux_extra, keygen_reps, sign_batch, sign_batches = 1, 20, 400, 5
        prime_samples = {1024: 15, 1536: 9}
        plain_equiv, profile_cfg = True, ("128", 3)

    res: dict[str, Any] = {"presign": [], "aux": [], "keygen": [], "sign": [], "primes": {},
                           "source": source_state(), "warnings": []}
    by_cfg = {}
    for level, n, count in configs:
        log(f"presign level {level}, n = {n}, {count} timed presignatures")
        c = bench_presign_config(level, n, count, plain_equiv, log)
        res["presign"].append(c)
        by_cfg[(level, n)] = c
        if (level, n) == profile_cfg:
            log(f"profile presign {profile_cfg}")
            res["profile"] = {**profile_presign(c["shares"], c["aux"], list(range(1, n + 1)), 20), "level": level,
                              "n": n}
        runs = [c["aux_cpu"]]
        if n == 3 and aux_extra:
            runs += bench_aux_extra(level, n, aux_extra)
        res["aux"].append({"level": level, "n": n, "runs": runs})

    for n in sorted({n for _, n, _ in configs}):
        log(f"keygen n = {n}")
        res["keygen"].append(bench_keygen(n, keygen_reps))
        c = next(c for c in res["presign"] if c["n"] == n)
        key_pub = next(iter(c["shares"].values())).public_key
        res["sign"].append({"n": n, **bench_sign(c["presignatures"], key_pub, sign_batch, sign_batches)})

    for bits, k in prime_samples.items():
        if k:
            log(f"safe primes {bits} bits x {k}")
            res["primes"][bits] = bench_primes(bits, k, log)

    report = render(res, args, started, load_start, os.getloadavg(), time.perf_counter() - w0)
    print(report)
    if not args.no_write:
        out = args.out or REPO / "benchmarks" / "results" / (
            f"ecdsa-{started_dt.date().isoformat()}{'-quick' if args.quick else ''}.md")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
        log(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")


if __name__ == "__main__":
    main()
