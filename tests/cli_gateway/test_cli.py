"""The `mpc-ray` command line as a user runs it: every --help, usage errors, and up / status / keygen / sign /
bench / down against a real local multi-node cluster (token auth) in a subprocess, leaving nothing running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mpc_ray.cli import build_parser, main
from mpc_ray.devcluster import pid_alive

COMMANDS = ["demo", "up", "down", "status", "keygen", "sign", "bench", "audit", "export-audit", "deploy", "node"]


def test_every_command_has_clear_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    top = capsys.readouterr().out
    for cmd in COMMANDS:
        assert cmd in top
    for cmd in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert f"usage: mpc-ray {cmd}" in text and "--json" in text
        sub = build_parser()._subparsers._group_actions[0].choices[cmd]
        assert sub.description, cmd  # a paragraph, not just the usage line
        for action in sub._actions:  # every option says what it does
            assert action.help or action.dest in ("help",), (cmd, action.dest)


def test_usage_errors_and_no_cluster(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sign"])  # KEY_ID missing
    assert exc.value.code == 2
    capsys.readouterr()
    assert main(["status", "--state-dir", str(tmp_path), "--json"]) == 1
    err = json.loads(capsys.readouterr().out)
    assert err["error"] == "ClusterNotRunning" and "mpc-ray up" in err["message"]
    assert main(["down", "--state-dir", str(tmp_path)]) == 0  # nothing to stop is not an error
    assert "nothing to stop" in capsys.readouterr().out
    assert main(["audit", "verify", "--state-dir", str(tmp_path)]) == 1  # neither LOG nor --party
    assert "--party" in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["deploy", "--address", "head", "--parties", "1,2,3"], "--address is HOST:PORT"),
    (["deploy", "--address", "h:6379", "--parties", "1,two,3"], "comma-separated list"),
    (["deploy", "--address", "h:6379", "--parties", "1,1,2"], "distinct"),
    (["deploy", "--address", "h:6379", "--parties", "1,2,3", "--threshold", "4"], "threshold must be between 2 and 3"),
    (["deploy", "--address", "h:6379", "--parties", "1,2,3", "--workers", "-1"], "--workers must be at least 0"),
    (["node", "start", "--state-dir", "D", "--party", "1", "--region", "r"], "--address is HOST:PORT"),
    (["node", "start", "--state-dir", "D", "--address", "h:1", "--region", "r"], "--party I"),
    (["node", "start", "--state-dir", "D", "--address", "h:1", "--head", "--party", "1"], "--party I"),
    (["node", "start", "--state-dir", "D", "--address", "h:1", "--party", "0", "--region", "r", "--allow-root"],
     "--party must be at least 1"),
    (["node", "start", "--state-dir", "D", "--address", "h:1", "--party", "1", "--region", "eu/west",
      "--allow-root"], "--region is a Ray label value"),
    (["node", "start", "--state-dir", "D", "--address", "h:1", "--party", "1", "--region", "r", "--allow-root",
      "--vault-user", "no-such-user-here"], "no user 'no-such-user-here'"),
    (["node", "start", "--state-dir", "D", "--address", "h:1", "--party", "1", "--region", "r", "--allow-root",
      "--ray-args=--labels=a=b"], "--ray-args may not set --labels"),
    (["node", "stop", "--state-dir", "D", "--party", "0"], "--party must be at least 1"),
])
def test_deploy_and_node_argument_errors(argv, says, tmp_path, capsys):
    """One line, exit 1, before Ray is started or connected (and before any process or directory is made)."""
    argv = [str(tmp_path / "d") if a == "D" else a for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: InvalidInput: ") and says in err and err.count("\n") == 1, err
    assert "ray" not in sys.modules or not __import__("ray").is_initialized()
    assert not (tmp_path / "d").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal is of root")
def test_node_start_refuses_root_and_says_why(tmp_path, capsys):
    assert main(["node", "start", "--state-dir", str(tmp_path / "d"), "--address", "h:1", "--party", "1",
                 "--region", "r"]) == 1
    err = capsys.readouterr().err
    assert "refusing to run Ray as root" in err and "--ray-user" in err and "--allow-root" in err
    assert err.count("\n") == 1 and not (tmp_path / "d").exists()


def cli(home: Path, *args: str, timeout: float = 180) -> dict:
    env = {**os.environ, "MPC_RAY_HOME": str(home)}
    env.pop("RAY_AUTH_MODE", None)  # as a user's shell: the CLI must set the mode the cluster uses itself
    res = subprocess.run([sys.executable, "-m", "mpc_ray", *args, "--json"], capture_output=True, text=True,
                         env=env, timeout=timeout)
    assert res.returncode == 0, (args, res.stdout, res.stderr[-3000:])
    return json.loads(res.stdout)


def our_processes(home: Path) -> list[str]:
    """Processes whose command line or environment names this test's state directory."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if str(home).encode() in cmdline or str(home).encode() in environ:
            found.append(f"{pid}: {cmdline[:120]!r}")
    return found


@pytest.mark.ray
def test_up_status_keygen_sign_bench_down(tmp_path):
    home = tmp_path / "mpc-home"
    try:
        up = cli(home, "up", "--security", "112", "--kdf", "min", "--pool-depth", "4", timeout=300)
        assert up["auth"] == "token" and up["parties"] == 3
        assert (home / "auth_token").stat().st_mode & 0o777 == 0o600

        st = cli(home, "status")
        parties = sorted(n["labels"]["mpc-party"] for n in st["nodes"] if "mpc-party" in n["labels"])
        assert parties == ["1", "2", "3"] and all(n["alive"] for n in st["nodes"]) and len(st["nodes"]) == 4
        assert all(h["ok"] and h["node_labels"]["mpc-party"] == str(p) for p, h in
                   ((int(p), h) for p, h in st["holders"].items()))

        key = cli(home, "keygen", "--wait-depth", "2")
        assert key["scheme"] == "ecdsa-secp256k1" and key["evm_address"].startswith("0x")
        assert min(key["pools"].values()) >= 2
        sig = cli(home, "sign", key["key_id"], "--message", "hello", "--hash", "keccak256")
        assert sig["verified"] and sig["signed"] == "keccak256(message)" and len(sig["signature"]) == 128
        bench = cli(home, "bench", "--key", key["key_id"], "--n", "6", "--concurrency", "2")
        assert bench["requests"] == 6 and bench["errors"] == 0 and bench["p50_ms"] > 0

        st = cli(home, "status")
        assert key["key_id"] in st["keys"] and any(k.startswith(key["key_id"]) for k in st["pools"])
        # the coordinator's own count: sign() may also sign in one hop without it (client/fastpath.py)
        assert st["telemetry"]["sign_latency"]["ecdsa-secp256k1"]["count"] >= 1
    finally:
        down = cli(home, "down")
    assert down["stopped"]
    assert not pid_alive(up["supervisor_pid"])
    deadline = time.monotonic() + 20
    while our_processes(home) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert our_processes(home) == []
    assert not (home / "cluster.json").exists() and (home / "parties" / "party-1").is_dir()
    assert (home / "credentials.json").stat().st_mode & 0o777 == 0o600  # the committee's dev admin and operator
    # `up` again on the kept stores: the same committee, with the principals it was bootstrapped with, signs with
    # the key it kept
    try:
        cli(home, "up", "--security", "112", "--kdf", "min", "--pool-depth", "4", timeout=300)
        again = cli(home, "sign", key["key_id"], "--message", "hello again", "--hash", "keccak256")
        assert again["verified"]
        assert cli(home, "status")["keys"][key["key_id"]]["public_key"] == st["keys"][key["key_id"]]["public_key"]
    finally:
        assert cli(home, "down")["stopped"]
    assert cli(home, "down", "--purge")["stopped"] is False and not (home / "parties").exists()


@pytest.mark.slow
@pytest.mark.ray
def test_demo_json_is_one_object_on_stdout(tmp_path):
    """The demo kills a node: Ray's report of the lost raylet must not break the JSON on stdout."""
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("RAY_AUTH_MODE", None)
    res = subprocess.run([sys.executable, "-m", "mpc_ray", "demo", "--json"], capture_output=True, text=True,
                         env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout)
    assert report["address"].startswith("0x") and report["sign_after_kill_s"] > 0 and len(report["pools"]) == 3


def test_down_cleans_up_after_a_supervisor_that_died(tmp_path):
    """A crashed supervisor leaves Ray processes behind: `down` finds them by this cluster's marker (and only
    them) and ends them."""
    from mpc_ray.devcluster import MARKER_ENV, owned_pids, stop

    home = tmp_path / "crashed"
    home.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    (home / "cluster.json").write_text(json.dumps({"pid": 999999999, "phase": "ready"}))
    env = {**os.environ, MARKER_ENV: str(home.resolve())}
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    theirs = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                              env={**os.environ, MARKER_ENV: str(other.resolve())})
    try:
        assert owned_pids(home) == [mine.pid]
        result = stop(home, timeout=1)
        assert result["killed_leftovers"] == 1 and mine.wait(timeout=10) != 0
        assert theirs.poll() is None  # another cluster's process is left alone
        assert not (home / "cluster.json").exists()
    finally:
        for p in (mine, theirs):
            p.kill()
            p.wait()
