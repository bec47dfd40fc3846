"""benchmarks/run_all.py: discovers bench_*.py, passes --quick where a script takes it, and writes one report with
the machine, a summary table (a failed script is marked, the others still run), each script's tables and a plot."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

RUN_ALL = Path(__file__).resolve().parents[2] / "benchmarks" / "run_all.py"


def load_runner():
    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_suite_report_from_discovered_scripts(tmp_path, capsys):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "bench_alpha.py").write_text(
        "import sys\nassert sys.argv[1:] == ['--quick']  # this script mentions --quick\n"
        "print('# Alpha\\n\\n| what | ms |\\n|---|---|\\n| sign | 4.2 |')\n")
    (bench / "bench_broken.py").write_text("import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n")
    (bench / "helper.py").write_text("raise SystemExit('not a benchmark: never run')\n")
    out = tmp_path / "out"
    runner = load_runner()
    results = tmp_path / "results"
    results.mkdir()
    (results / "alpha-old.md").write_text("an earlier full run")
    runner.RESULTS = results  # the scripts' own results folder (benchmarks/results in real runs)
    (bench / "bench_alpha.py").write_text((bench / "bench_alpha.py").read_text() + (
        f"from pathlib import Path\nPath({str(results)!r}, 'alpha-old.md').write_text('quick')\n"))
    assert runner.main(["--bench-dir", str(bench), "--quick", "--no-load", "--out-dir", str(out)]) == 1
    (suite,) = out.glob("suite-*-quick")
    md = suite / "report.md"
    text = md.read_text()
    assert (results / "alpha-old.md").read_text() == "an earlier full run"  # not overwritten by the quick run
    assert (suite / "alpha-old.md").read_text() == "quick"  # the script's output kept with the suite
    assert "| cores |" in text and "| date |" in text
    assert "| bench_alpha.py | --quick | ok |" in text
    assert "| bench_broken.py | - | failed (exit 3) |" in text and "boom" in text
    assert "### Alpha" in text and "| sign | 4.2 |" in text  # the script's table, nested under its section
    assert "helper.py" not in text
    assert (suite / "suite.png").stat().st_size > 1000
    data = json.loads((suite / "suite.json").read_text())
    assert [s["script"] for s in data["scripts"]] == ["bench_alpha.py", "bench_broken.py"]
    capsys.readouterr()
    assert runner.main(["--bench-dir", str(bench), "--list", "--quick", "--no-load"]) == 0
    assert capsys.readouterr().out.split("\n")[:2] == ["bench_alpha.py --quick", "bench_broken.py"]
