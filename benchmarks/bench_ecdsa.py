#!/usr/bin/env python
"""Benchmarks for the threshold-ECDSA core (CGGMP21): presigning per party against an exponentiation floor,
key generation, online signing, aux-info setup and safe-prime generation.

    python benchmarks/bench_ecdsa.py            # full run, ~5-8 minutes on 2 cores
    python benchmarks/bench_ecdsa.py --quick    # smoke run, under a minute

Prints a Markdown report and writes it to benchmarks/results/ecdsa-<date>.md (ecdsa-<date>-quick.md with --quick).

How the numbers are taken
-------------------------
* CPU time is `time.process_time()` (this process only, so other jobs on the machine inflate it less than wall
  time). A small driver (`drive`) does exactly what `mpc_ray.sim.router.run_parties` does (start every party,
  then deliver each round's envelopes) and wraps every `start()` / `receive()` call of party i in process_time,
  so each party's CPU is its own. Routing between calls is not attributed to anyone (it is microseconds).
* Paillier keys are the TEST ONLY fixture keys of `tests/fixture_primes.py`; only the safe-prime benchmark
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
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import gmpy2  # noqa: E402
from gmpy2 import mpz  # noqa: E402

from mpc_ray.crypto.params import level as as_level  # noqa: E402
from mpc_ray.crypto.primes import generate_safe_prime  # noqa: E402
from mpc_ray.crypto.zk import pi_aff_g  # noqa: E402
from mpc_ray.protocols.ecdsa.aux_info import AuxInfoParty  # noqa: E402
from mpc_ray.protocols.ecdsa.keygen import KeygenParty  # noqa: E402
from mpc_ray.protocols.ecdsa.presign import PresignatureShare, PresignParty  # noqa: E402
from mpc_ray.protocols.ecdsa.sign import combine, partial_sign  # noqa: E402
from tests.fixture_primes import fixture_paillier_key  # noqa: E402  (TEST ONLY keys)

PT = time.process_time
_ORIG_POWMOD = gmpy2.powmod
_ORIG_RP_COMMIT = pi_aff_g.rp_commit

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


def run_presign(shares, aux, signers):
    sid = _sid("presign")
    return drive({i: PresignParty(sid, shares[i], aux[i], signers) for i in signers})


# --------------------------------------------------------------------------------------------------------------
# instrumentation: record every big exponentiation, by party
# --------------------------------------------------------------------------------------------------------------


class Recorder:
    """Wraps gmpy2.powmod and every module-level binding of pi_aff_g.rp_commit inside mpc_ray.

    Records (party, "powmod", (base, exp, mod)) and (party, "rp_commit", (params, a, b)). Exponentiations made
    inside rp_commit (table building, the too-large-exponent fallback) belong to that commitment and are not
    recorded separately."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, tuple]] = []
        self._depth = 0
        self._patched: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> "Recorder":
        rec = self

        def powmod(b, e, m):
            if rec._depth == 0 and _CURRENT[0] is not None:
                rec.calls.append((_CURRENT[0], "powmod", (b, e, m)))
            return _ORIG_POWMOD(b, e, m)

        def rp_commit(params, a, b):
            if rec._depth == 0 and _CURRENT[0] is not None:
                rec.calls.append((_CURRENT[0], "rp_commit", (params, a, b)))
            rec._depth += 1
            try:
                return _ORIG_RP_COMMIT(params, a, b)
            finally:
                rec._depth -= 1

        self._patched.append((gmpy2, "powmod", _ORIG_POWMOD))
        gmpy2.powmod = powmod
        for name, mod in list(sys.modules.items()):
            if name.startswith("mpc_ray") and getattr(mod, "rp_commit", None) is _ORIG_RP_COMMIT:
                self._patched.append((mod, "rp_commit", _ORIG_RP_COMMIT))
                setattr(mod, "rp_commit", rp_commit)
        return self

    def __exit__(self, *exc) -> None:
        for obj, attr, orig in reversed(self._patched):
            setattr(obj, attr, orig)
        self._patched.clear()

    def of(self, party: int) -> list[tuple[str, tuple]]:
        return [(kind, args) for p, kind, args in self.calls if p == party]


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
        for j, pub in aux_i.public.items():
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
            return (f"mod {self.modulus(m)} [{_bits(m)}-bit]", f"exp {self.exp_label(_bits(e))}")
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

        if m == p or m == q:
            return [(_ORIG_POWMOD, (b, e % (m - 1), m))]
        if m == p * p or m == q * q:
            r, other = (p, q) if m == p * p else (q, p)
            order = r * (r - 1)
            if e % order == n % order:
                return rn_half(r, other)
            return [(_ORIG_POWMOD, (b, e % order, m))]
        if m == n:
            return [(_ORIG_POWMOD, (b % p, e % (p - 1), p)), (_ORIG_POWMOD, (b % q, e % (q - 1), q))]
        if m == n * n:
            if e == n:
                return rn_half(p, q) + rn_half(q, p)
            return [
                (_ORIG_POWMOD, (b, e % (p * (p - 1)), p * p)),
                (_ORIG_POWMOD, (b, e % (q * (q - 1)), q * q)),
            ]
        return [(_ORIG_POWMOD, (b, e, m))]


def _time_ops(ops: list[tuple[Callable, tuple]], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = PT()
        for fn, args in ops:
            fn(*args)
        best = min(best, PT() - t0)
    return best


def floor_table(rec: Recorder, aux_i, level: str, party: int, repeats: int, plain_equiv: bool) -> dict:
    """Group party `party`'s recorded operations by kind; time them as executed and at floor."""
    cl = Classifier(aux_i, level)
    groups: dict[tuple[str, str], list[tuple[str, tuple]]] = defaultdict(list)
    for kind, args in rec.of(party):
        groups[cl.key(kind, args)].append((kind, args))
    rows = []
    for gkey in sorted(groups, key=lambda k: (k[0], k[1])):
        calls = groups[gkey]
        executed = [(_ORIG_POWMOD if k == "powmod" else _ORIG_RP_COMMIT, a) for k, a in calls]
        floor = [op for k, a in calls for op in cl.floor_ops(k, a)]
        t_exec = _time_ops(executed, repeats)
        t_floor = _time_ops(floor, repeats)
        t_plain = None
        if plain_equiv and calls[0][0] == "rp_commit":
            # the same commitments as two plain powmods each (RingPedersenParams.commit)
            t_plain = _time_ops([(a[0].commit, (a[1], a[2])) for _, a in calls], 1)
        rows.append(
            {"modulus": gkey[0], "exp": gkey[1], "count": len(calls), "exec": t_exec, "floor": t_floor,
             "plain": t_plain}
        )
    return {
        "rows": rows,
        "exec": sum(r["exec"] for r in rows),
        "floor": sum(r["floor"] for r in rows),
        "n_ops": sum(r["count"] for r in rows),
        "plain_delta": sum((r["plain"] - r["exec"]) for r in rows if r["plain"] is not None),
    }


# --------------------------------------------------------------------------------------------------------------
# benchmarks
# --------------------------------------------------------------------------------------------------------------


def med(xs) -> float:
    return statistics.median(xs)


def ms(x: float) -> str:
    return f"{x * 1e3:,.1f}"


def bench_presign_config(level: str, n: int, count: int, repeats: int, plain_equiv: bool, log) -> dict:
    ids = list(range(1, n + 1))
    aux_out, aux_cpu, aux_wall = run_aux(level, n)
    log(f"  aux-info {level}/n={n}: {sum(map(sum, aux_cpu.values())):.1f} s CPU")
    shares, _, _ = run_keygen(n, n)
    # instrumented presignature: doubles as the warm-up (fixed-base tables for every N-hat get built here)
    with Recorder() as rec:
        _ = run_presign(shares, aux_out, ids)
    per_party: dict[int, list[float]] = {i: [] for i in ids}
    per_round: dict[int, list[list[float]]] = {i: [] for i in ids}
    totals, walls, last = [], [], None
    for _k in range(count):
        outs, cpu, wall = run_presign(shares, aux_out, ids)
        for i in ids:
            per_party[i].append(sum(cpu[i]))
            per_round[i].append(cpu[i])
        totals.append(sum(sum(c) for c in cpu.values()))
        walls.append(wall)
        last = outs
    party_meds = {i: med(v) for i, v in per_party.items()}
    rounds = [med([r[k] for i in ids for r in per_round[i]]) for k in range(len(per_round[1][0]))]
    counts = {i: len(rec.of(i)) for i in ids}
    ft = floor_table(rec, aux_out[1], level, 1, repeats, plain_equiv)
    log(f"  presign {level}/n={n}: party 1 median {ms(party_meds[1])} ms CPU, floor {ms(ft['floor'])} ms")
    return {
        "level": level, "n": n, "count": count, "aux_cpu": aux_cpu, "aux_wall": aux_wall,
        "party_meds": party_meds, "all_samples": [x for v in per_party.values() for x in v],
        "rounds": rounds, "total_med": med(totals), "wall_med": med(walls), "floor": ft, "op_counts": counts,
        "presignatures": last, "shares": shares, "aux": aux_out,
    }


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
    for _ in range(batches):
        clones = [PresignatureShare(s.party, s.public, *s.secret_values()) for s in shares for _ in range(batch)]
        t0 = PT()
        for c in clones:
            partial_sign(c, digest)
        partial_times.append((PT() - t0) / len(clones))
    partials = {s.party: partial_sign(PresignatureShare(s.party, s.public, *s.secret_values()), digest)
                for s in shares}
    sig = combine(public, public_key, digest, partials)
    assert sig.r == public.r
    for _ in range(batches):
        t0 = PT()
        for _ in range(batch):
            combine(public, public_key, digest, partials)
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


def profile_presign(shares, aux, ids, top: int) -> tuple[list[tuple], float]:
    prof = cProfile.Profile()
    prof.enable()
    run_presign(shares, aux, ids)
    prof.disable()
    st = pstats.Stats(prof)
    total = st.total_tt
    rows = []
    for (fname, line, func), (cc, nc, tt, ct, _callers) in st.stats.items():
        short = func if fname == "~" else f"{Path(fname).name}:{line} {func}"
        if "site-packages" not in fname and fname != "~":
            try:
                short = f"{Path(fname).resolve().relative_to(REPO)}:{line} {func}"
            except ValueError:
                pass
        rows.append((tt, ct, nc, short))
    rows.sort(reverse=True)
    return rows[:top], total


# --------------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------------


def machine_info() -> list[str]:
    model, cores = "unknown", os.cpu_count()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "--no-optional-locks", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001
            return "?"

    dirty = [ln[3:] for ln in git("status", "--porcelain", "--", "mpc_ray").splitlines() if ln]
    return [
        f"- CPU: {model}, {cores} logical cores ({platform.machine()}, Linux {platform.release()})",
        f"- Python {platform.python_version()}, gmpy2 {gmpy2.version()} ({gmpy2.mp_version()}), "
        f"coincurve {importlib.metadata.version('coincurve')}",
        f"- Code: commit {git('rev-parse', '--short', 'HEAD')}"
        + (f", with uncommitted changes in: {', '.join(dirty)}" if dirty else ", clean mpc_ray/"),
    ]


def render(res: dict, args, started: str, load_start, load_end, elapsed: float) -> str:
    L: list[str] = []
    mode = "quick (smoke) run" if args.quick else "full run"
    L.append(f"# Threshold-ECDSA benchmarks ({mode})")
    L.append("")
    L.append(f"- Date: {started} (UTC)")
    L.extend(machine_info())
    L.append(f"- Load average (1/5/15 min) at start: {'/'.join(f'{x:.2f}' for x in load_start)}, at end: "
             f"{'/'.join(f'{x:.2f}' for x in load_end)} (other jobs share this machine)")
    L.append(f"- Command: `python benchmarks/bench_ecdsa.py{' --quick' if args.quick else ''}`; "
             f"run took {elapsed:.0f} s wall")
    L.append("- Paillier keys: TEST ONLY fixture primes (tests/fixture_primes.py); CPU = time.process_time(); "
             "threshold = n (all n parties sign)")
    L.append("")

    # 1 + 2: presign vs floor ---------------------------------------------------------------------------------
    L.append("## Presigning: CPU per party per presignature vs. the exponentiation floor")
    L.append("")
    L.append("| level | n | presigs | per party, median (min-max over parties) ms | party 1 ms | "
             "exps as executed ms | floor ms | ratio measured/floor | ratio measured/as-executed | "
             "all parties CPU ms | wall ms |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in res["presign"]:
        pm = c["party_meds"]
        m1, fl = pm[1], c["floor"]
        L.append(
            f"| {c['level']} | {c['n']} | {c['count']} | {ms(med(pm.values()))} ({ms(min(pm.values()))}-"
            f"{ms(max(pm.values()))}) | {ms(m1)} | {ms(fl['exec'])} | {ms(fl['floor'])} | "
            f"**{m1 / fl['floor']:.2f}x** | {m1 / fl['exec']:.2f}x | {ms(c['total_med'])} | {ms(c['wall_med'])} |"
        )
    L.append("")
    L.append("Target: measured/floor <= 1.5x. \"exps as executed\" replays party 1's recorded exponentiations "
             "exactly as the code made them; \"floor\" replays them at the cheapest size party 1 is entitled to "
             "(see BENCHMARKS.md).")
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
        fl = c["floor"]
        L.append(f"### Exponentiations of one party per presignature: level {c['level']}, n = {c['n']}")
        L.append("")
        L.append(f"Party 1 made {fl['n_ops']} recorded operations (operations per party: "
                 f"{', '.join(f'{i}: {v}' for i, v in c['op_counts'].items())}).")
        L.append("")
        L.append("| modulus | exponent bits | count | as executed us/op | as executed ms | floor us/op | floor ms |")
        L.append("|---|---|---|---|---|---|---|")
        for r in fl["rows"]:
            L.append(
                f"| {r['modulus']} | {r['exp']} | {r['count']} | {r['exec'] / r['count'] * 1e6:,.0f} | "
                f"{ms(r['exec'])} | {r['floor'] / r['count'] * 1e6:,.0f} | {ms(r['floor'])} |"
            )
        L.append(f"| **total** | | {fl['n_ops']} | | **{ms(fl['exec'])}** | | **{ms(fl['floor'])}** |")
        L.append("")
        plain_rows = [r for r in fl["rows"] if r["plain"] is not None]
        if plain_rows:
            L.append(
                f"Fixed-base ring-Pedersen commitments: the same {sum(r['count'] for r in plain_rows)} commitments "
                f"as two plain gmpy2.powmod each would cost "
                f"{ms(sum(r['plain'] for r in plain_rows))} ms instead of "
                f"{ms(sum(r['exec'] for r in plain_rows))} ms (a floor built from plain powmods only would be "
                f"{ms(fl['floor'] + fl['plain_delta'])} ms, ratio {c['party_meds'][1] / (fl['floor'] + fl['plain_delta']):.2f}x)."
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
        prof_rows, prof_total, plevel, pn = res["profile"]
        L.append(f"## Profile: one presignature, level {plevel}, n = {pn}, all parties (cProfile, by own time)")
        L.append("")
        L.append(f"Total under cProfile: {prof_total:.2f} s.")
        L.append("")
        L.append("| own time s | % | cumulative s | calls | function |")
        L.append("|---|---|---|---|---|")
        for tt, ct, nc, name in prof_rows:
            L.append(f"| {tt:.3f} | {100 * tt / prof_total:.1f} | {ct:.3f} | {nc} | `{name}` |")
        L.append("")
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts, a smoke run under about a minute")
    ap.add_argument("--out", type=Path, help="report path (default benchmarks/results/ecdsa-<date>[-quick].md)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()

    started_dt = _dt.datetime.now(_dt.timezone.utc)
    started = started_dt.strftime("%Y-%m-%d %H:%M")
    load_start = os.getloadavg()
    w0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - w0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    if args.quick:
        configs = [("112", 3, 2), ("128", 3, 1), ("112", 5, 1)]
        aux_extra, keygen_reps, sign_batch, sign_batches = 0, 5, 50, 3
        prime_samples = {1024: 2, 1536: 0}
        replay_repeats, plain_equiv, profile_cfg = 1, False, ("112", 3)
    else:
        configs = [("112", 3, 9), ("128", 3, 7), ("112", 5, 7), ("128", 5, 5)]
        aux_extra, keygen_reps, sign_batch, sign_batches = 1, 20, 400, 5
        prime_samples = {1024: 11, 1536: 5}
        replay_repeats, plain_equiv, profile_cfg = 2, True, ("128", 3)

    res: dict[str, Any] = {"presign": [], "aux": [], "keygen": [], "sign": [], "primes": {}}
    by_cfg = {}
    for level, n, count in configs:
        log(f"presign level {level}, n = {n}, {count} timed presignatures")
        c = bench_presign_config(level, n, count, replay_repeats, plain_equiv, log)
        res["presign"].append(c)
        by_cfg[(level, n)] = c
        if (level, n) == profile_cfg:
            log(f"profile presign {profile_cfg}")
            rows, total = profile_presign(c["shares"], c["aux"], list(range(1, n + 1)), 25)
            res["profile"] = (rows, total, level, n)
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
