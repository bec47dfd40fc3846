#!/usr/bin/env python
"""Run the whole benchmark suite with one command and write one report: machine, date, every script's figures,
a load ramp on the embedded cluster and a plot.

    python benchmarks/run_all.py                  # full suite (tens of minutes on 2 cores)
    python benchmarks/run_all.py --quick          # every script's smoke mode (a few minutes)
    python benchmarks/run_all.py --list           # what would run, with the arguments
    python benchmarks/run_all.py --only runtime,policy --update-benchmarks

Every `benchmarks/bench_*.py` is discovered and run in its own process (the scripts start and stop their own Ray
clusters), one after the other so that they do not compete for the cores. A script whose source mentions
`--quick` gets it in quick mode; the others get the small arguments in QUICK_ARGS, or none. Each script's stdout is
its Markdown report; the suite report puts them together under a summary table (status, wall time, report file)
and the machine description. The built-in `load` step ramps concurrency on an embedded 2-of-3 cluster
(mpc_ray.loadtest, the same code as `mpc-ray bench` and notebooks/load_test.ipynb) and plots latency percentiles and
throughput against concurrency.

Writes benchmarks/results/suite-<date>[-quick]/ (report.md, suite.json, suite.png and the results file each script
wrote, moved there so that a suite run never overwrites another run's file in benchmarks/results/); with
--update-benchmarks, also replaces the "Full suite (latest run)" section of BENCHMARKS.md (between the suite
markers) with the summary and the load table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from common import cpu_model  # noqa: E402  (benchmarks/common.py)

# small arguments for scripts without a --quick flag
QUICK_ARGS: dict[str, list[str]] = {
    "bench_policy.py": ["--n", "20"],
    "bench_agents.py": ["--n", "5", "--concurrent", "50"],
}
BEGIN, END = "<!-- suite:begin (benchmarks/run_all.py --update-benchmarks rewrites this section) -->", "<!-- suite:end -->"


def discover(only: list[str] | None, bench_dir: Path = HERE) -> list[Path]:
    scripts = sorted(bench_dir.glob("bench_*.py"))
    if only:
        wanted = {o.removeprefix("bench_").removesuffix(".py") for o in only}
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    return scripts


def script_args(script: Path, quick: bool) -> list[str]:
    if not quick:
        return []
    if "--quick" in script.read_text():
        return ["--quick"]
    return QUICK_ARGS.get(script.name, [])


def machine() -> dict[str, str]:
    import importlib.metadata as md

    def version(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "-"

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "mpc_ray"], cwd=REPO, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "-", ""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "ray": version("ray"),
        "gmpy2": version("gmpy2"),
        "commit": commit + (" (with uncommitted changes in mpc_ray/)" if dirty else ""),
        "load_at_start": f"{os.getloadavg()[0]:.2f}",
    }


def _result_files() -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in RESULTS.iterdir() if p.is_file()} if RESULTS.is_dir() else {}


def _collect_outputs(before: dict[Path, bytes], into: Path) -> list[str]:
    """Move what a script wrote into benchmarks/results/ to the suite's folder and put back what was there, so a
    suite run (a quick one above all) never overwrites another run's results file."""
    moved = []
    for path, data in _result_files().items():
        if before.get(path) == data:
            continue
        into.mkdir(parents=True, exist_ok=True)
        (into / path.name).write_bytes(data)
        if path in before:
            path.write_bytes(before[path])
        else:
            path.unlink()
        moved.append(os.path.relpath(into / path.name, REPO))
    return sorted(moved)


def run_script(script: Path, args: list[str], timeout: float, outputs: Path) -> dict:
    before = _result_files()
    t0 = time.perf_counter()
    try:
        res = subprocess.run([sys.executable, str(script), *args], cwd=REPO, capture_output=True, text=True,
                             timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO)})
        status = "ok" if res.returncode == 0 else f"failed (exit {res.returncode})"
        out, err = res.stdout, res.stderr
    except subprocess.TimeoutExpired as exc:
        status = f"timed out after {timeout:.0f} s"
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    report_file = ", ".join(_collect_outputs(before, outputs)) or None  # the script's own file(s)
    return {"script": script.name, "args": args, "status": status, "wall_s": round(time.perf_counter() - t0, 1),
            "report": out.strip(), "stderr_tail": err.strip()[-2000:], "report_file": report_file}


def load_ramp(levels: list[int], step_s: float, security: str, pool_depth: int) -> dict:
    """Latency percentiles and throughput per concurrency level on an embedded 2-of-3 cluster (warm pools)."""
    import mpc_ray
    from mpc_ray import loadtest

    rows = []
    with mpc_ray.local_cluster(parties=3, threshold=2, security=security, kdf="min", pool_depth=pool_depth,
                               pool_low_water=pool_depth // 2) as mpc:
        key = mpc.create_key("ecdsa-secp256k1")
        for level in levels:
            mpc.wait_for_pools(key.key_id, pool_depth // 2 + 1)
            t0 = time.perf_counter()
            samples = loadtest.run_load(mpc, key.key_id, concurrency=level, duration_s=step_s)
            rows.append({"concurrency": level, **loadtest.summary(samples, time.perf_counter() - t0)})
    return {"security": security, "pool_depth": pool_depth, "step_s": step_s, "rows": rows}


def load_table(load: dict) -> str:
    lines = [f"Embedded 2-of-3 cluster, security {load['security']}, pools {load['pool_depth']} deep, "
             f"{load['step_s']:.0f} s per level (ECDSA `sign`, one request per client thread in flight):", "",
             "| concurrency | requests | errors | signatures/s | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
    for r in load["rows"]:
        lines.append(f"| {r['concurrency']} | {r['requests']} | {r['errors']} | {r['throughput_per_s']} | "
                     f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} |")
    return "\n".join(lines)


def plot(load: dict | None, results: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = 2 if load else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4))
    axes = list(axes) if panels > 1 else [axes]
    if load:
        ax = axes[0]
        c = [r["concurrency"] for r in load["rows"]]
        for q, style in (("p50_ms", "o-"), ("p95_ms", "s--"), ("p99_ms", "^:")):
            ax.plot(c, [r[q] for r in load["rows"]], style, label=q.replace("_ms", ""))
        ax.set_xlabel("requests in flight")
        ax.set_ylabel("sign latency (ms)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")  # p50 (warm pool) and p99 (pool ran dry) differ by orders of magnitude
        ax2 = ax.twinx()
        ax2.bar(c, [r["throughput_per_s"] for r in load["rows"]], width=[x * 0.3 for x in c], alpha=0.25,
                color="tab:green", label="signatures/s")
        ax2.set_ylabel("signatures/s")
        ax.legend(loc="upper left")
        ax.set_title("ECDSA sign on the embedded cluster")
    ax = axes[-1]
    ax.barh([r["script"] for r in results], [r["wall_s"] for r in results],
            color=["tab:blue" if r["status"] == "ok" else "tab:red" for r in results])
    ax.set_xlabel("wall time (s)")
    ax.set_title("benchmark scripts (red: failed)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def render(info: dict, results: list[dict], load: dict | None, png: str | None, quick: bool) -> str:
    lines = [f"# Benchmark suite ({'quick' if quick else 'full'} run, benchmarks/run_all.py)", "",
             "| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += ["", "## Summary", "", "| script | arguments | status | wall s | report |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['script']} | {' '.join(r['args']) or '-'} | {r['status']} | {r['wall_s']} | "
                     f"{r['report_file'] or '-'} |")
    if load:
        lines += ["", "## Load ramp", "", load_table(load)]
    if png:
        lines += ["", f"![suite plot]({png})"]
    for r in results:
        lines += ["", f"## {r['script']}", ""]
        if r["status"] != "ok":
            lines += ["```", r["stderr_tail"] or "(no stderr)", "```", ""]
        # demote the script's own headings so that they nest under this one
        lines.append(re.sub(r"(?m)^(#+) ", lambda m: "#" * min(6, len(m.group(1)) + 2) + " ", r["report"]))
    return "\n".join(lines) + "\n"


def _links(report_file: str | None, suite_rel: str) -> str:
    if not report_file or report_file.startswith("("):
        return report_file or "-"
    names = [f.strip() for f in report_file.split(",")]
    return ", ".join(f"[{Path(n).name}]({n if '/' in n else suite_rel + '/' + n})" for n in names)


def update_benchmarks_md(info: dict, results: list[dict], load: dict | None, report_rel: str, png_rel: str | None,
                         quick: bool = False) -> None:
    path = REPO / "BENCHMARKS.md"
    text = path.read_text()
    suite_rel = str(Path(report_rel).parent)
    body = [BEGIN, "## Full suite (latest run)", "",
            f"`python benchmarks/run_all.py{' --quick' if quick else ''}` on {info['date']}: {info['cpu']}, "
            f"{info['cores']} cores, Python "
            f"{info['python']}, Ray {info['ray']}, commit {info['commit']}, load {info['load_at_start']} at start. "
            f"Full report: [{report_rel}]({report_rel}).", "",
            "| script | status | wall s | report |", "|---|---|---|---|"]
    body += [f"| {r['script']} | {r['status']} | {r['wall_s']} | {_links(r['report_file'], suite_rel)} |"
             for r in results]
    if load:
        body += ["", load_table(load), "",
                 "p50 is a signature with a presignature at hand; the high percentiles appear once a pool runs dry and "
                 "a request waits for presigning, so the sustained rate at high concurrency is the presigning rate."]
    if png_rel:
        body += ["", f"![suite plot]({png_rel})"]
    body.append(END)
    block = "\n".join(body)
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="every script's smoke mode and a short load ramp")
    ap.add_argument("--only", help="comma-separated script names (runtime, bench_policy, ...); 'none' for none")
    ap.add_argument("--list", action="store_true", help="print what would run and exit")
    ap.add_argument("--no-load", action="store_true", help="skip the built-in load ramp")
    ap.add_argument("--timeout", type=float, default=None, help="per script, seconds (default 3600; quick 900)")
    ap.add_argument("--update-benchmarks", action="store_true", help="rewrite the suite section of BENCHMARKS.md")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    ap.add_argument("--bench-dir", type=Path, default=HERE, help=argparse.SUPPRESS)  # tests run fake scripts
    args = ap.parse_args(argv)
    only = None if args.only is None else [o for o in args.only.split(",") if o and o != "none"]
    scripts = discover(only, args.bench_dir)
    if args.list:
        for s in scripts:
            print(f"{s.name} {' '.join(script_args(s, args.quick))}".rstrip())
        if not args.no_load:
            print("load (built in: embedded cluster ramp)")
        return 0
    timeout = args.timeout or (900.0 if args.quick else 3600.0)
    info = machine()
    stem = f"suite-{datetime.date.today()}{'-quick' if args.quick else ''}"
    suite_dir = args.out_dir / stem  # this run's files: report, json, plot and every script's own results file
    results = []
    from tqdm import tqdm

    steps = len(scripts) + (0 if args.no_load else 1)
    # a bar over the steps on a terminal; one line per step in a log
    bar = tqdm(total=steps, unit="step", file=sys.stderr, disable=not sys.stderr.isatty(),
               bar_format="{desc:<40} {n}/{total} [{elapsed}]")
    for s in scripts:
        bar.set_description_str(s.name)
        if bar.disable:
            print(f"[run_all] {s.name} {' '.join(script_args(s, args.quick))}", file=sys.stderr, flush=True)
        r = run_script(s, script_args(s, args.quick), timeout, suite_dir)
        (bar.write if not bar.disable else lambda m: print(m, file=sys.stderr, flush=True))(
            f"[run_all] {s.name}: {r['status']} in {r['wall_s']} s")
        bar.update(1)
        results.append(r)
    load = None
    if not args.no_load:
        bar.set_description_str("load ramp on the embedded cluster")
        if bar.disable:
            print("[run_all] load ramp on the embedded cluster", file=sys.stderr, flush=True)
        levels = [1, 2, 4] if args.quick else [1, 2, 4, 8, 16]
        load = load_ramp(levels, 3.0 if args.quick else 15.0, "112", 16 if args.quick else 128)
        bar.update(1)
    bar.close()
    suite_dir.mkdir(parents=True, exist_ok=True)
    png_path = suite_dir / "suite.png"
    png = png_path.name if plot(load, results, png_path) else None
    report = render(info, results, load, png, args.quick)
    md_path = suite_dir / "report.md"
    md_path.write_text(report)
    (suite_dir / "suite.json").write_text(json.dumps({"machine": info, "load": load, "scripts": [
        {k: v for k, v in r.items() if k != "report"} for r in results]}, indent=2))
    print(report)
    print(f"[run_all] wrote {md_path}" + (f" and {png_path}" if png else ""), file=sys.stderr)
    if args.update_benchmarks:
        rel = os.path.relpath(md_path, REPO)
        update_benchmarks_md(info, results, load, rel, os.path.relpath(png_path, REPO) if png else None, args.quick)
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
