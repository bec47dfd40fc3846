"""What a new user meets in the first hour of the `mpc-ray` command (issue 17): one clean error line (or one JSON
object) and exit status 1 for every typed error, Ray's wrapper unwrapped, the traceback only with -v; arguments
refused before Ray is started or connected; `--version`, `bench -n`; bench and status saying what happened."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mpc_ray import cli, devcluster, telemetry as tm
from mpc_ray.cli import build_parser, main
from mpc_ray.errors import InvalidInput, MpcError, QuorumUnavailable

ANSI = "\x1b["


class Connected(MpcError):
    """Raised by the stand-in for `devcluster.connect`: the command got past its argument checks."""


@pytest.fixture
def no_ray(monkeypatch, tmp_path):
    """A state dir whose cluster.json says a ready 3-party cluster runs (this process), and a `connect` that only
    records that it was called: argument errors must come before it."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "cluster.json").write_text(json.dumps({"pid": os.getpid(), "phase": "ready", "parties": 3,
                                                   "threshold": 2, "address": "127.0.0.1:1", "namespace": "x"}))

    def connect(_home):
        raise Connected("connected")

    monkeypatch.setattr(devcluster, "connect", connect)
    monkeypatch.setattr(devcluster, "start", lambda *a, **k: (_ for _ in ()).throw(Connected("started")))
    monkeypatch.setenv("MPC_RAY_HOME", str(home))
    return home


def run(capsys, *argv: str) -> tuple[int, str, str, float]:
    t0 = time.perf_counter()
    rc = main(list(argv))
    took = time.perf_counter() - t0
    out, err = capsys.readouterr()
    return rc, out, err, took


REFUSED = [
    (["demo", "--threshold", "0"], "threshold must be between 2 and 3"),
    (["demo", "--parties", "1", "--threshold", "1"], "parties must be at least 2"),
    (["demo", "--threshold", "1"], "any one node signs alone"),
    (["demo", "--parties", "2", "--threshold", "2"], "--parties must be above --threshold"),
    (["demo", "--parties", "1", "--threshold", "1", "--allow-single"], "--parties must be above --threshold"),
    (["up", "--threshold", "4"], "threshold must be between 2 and 3"),
    (["up", "--threshold", "1"], "--allow-single permits it"),
    (["up", "--pool-depth", "0"], "--pool-depth must be at least 1"),
    (["keygen", "--threshold", "0"], "threshold must be between 2 and 3"),
    (["keygen", "--threshold", "1"], "any one node signs alone"),
    (["keygen", "--threshold", "4", "--allow-single"], "threshold must be between 1 and 3"),
    (["sign", "k1", "--digest", "zz"], "--digest must be hex"),
    (["sign", "k1", "--message-hex", "0xabc"], "--message-hex must be hex"),
    (["sign", "k1"], "give exactly one of --digest, --message, --message-hex"),
    (["sign", "k1", "--digest", "ab" * 32, "--hash", "keccak256"], "--hash applies to --message"),
    (["bench", "-n", "0"], "--n must be at least 1"),
    (["bench", "-c", "0"], "--concurrency must be at least 1"),
    (["audit", "verify", "--party", "0"], "--party must be at least 1"),
    (["audit", "verify", "a.jsonl", "--verify-key", "0x1234"], "--verify-key must be 32 bytes"),
    (["export-audit", "--party", "1"], "export needs --out FILE"),
]


@pytest.mark.parametrize("argv,message", REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_bad_arguments_are_refused_at_once_in_one_line(no_ray, capsys, argv, message):
    rc, out, err, took = run(capsys, *argv)
    assert rc == 1 and out == ""
    assert err.startswith("error: InvalidInput: ") and message in err, err
    assert err.count("\n") == 1 and ANSI not in err and "Traceback" not in err
    assert took < 0.5  # checked before Ray is started or connected (that takes seconds)


ACCEPTED = [  # the same commands with good arguments get as far as Ray
    ["demo", "--parties", "2", "--threshold", "1", "--allow-single"],
    ["up", "--parties", "2", "--threshold", "2"],
    ["keygen", "--threshold", "1", "--allow-single"],
    ["keygen", "--threshold", "3"],
    ["sign", "k1", "--digest", "0x" + "AB" * 32],
    ["sign", "k1", "--message", "hi", "--hash", "keccak256"],
    ["bench", "-n", "200", "-c", "4"],
    ["audit", "verify", "--party", "2"],
]


@pytest.mark.parametrize("argv", ACCEPTED, ids=[" ".join(a) for a in ACCEPTED])
def test_good_arguments_get_as_far_as_ray(no_ray, capsys, monkeypatch, argv):
    import mpc_ray

    # the demo starts its own cluster: stand in for it the same way
    monkeypatch.setattr(mpc_ray, "local_cluster", lambda **k: (_ for _ in ()).throw(Connected("started")),
                        raising=False)
    rc, out, err, _ = run(capsys, *argv)
    assert rc == 1 and (err.startswith("error: Connected: ") or "error: Connected: " in err), err


def test_json_error_carries_type_and_clean_message(no_ray, capsys):
    rc, out, err, _ = run(capsys, "demo", "--threshold", "0", "--json")
    assert rc == 1 and err == ""
    assert json.loads(out) == {"error": "InvalidInput", "message": "threshold must be between 2 and 3"}


@pytest.mark.parametrize("argv", [["-v", "sign", "k1", "--digest", "zz"], ["sign", "k1", "--digest", "zz", "-v"]])
def test_verbose_shows_the_traceback(no_ray, capsys, argv):
    rc, _, err, _ = run(capsys, *argv)
    assert rc == 1 and "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1] == "error: InvalidInput: --digest must be hex (an optional 0x, then pairs " \
                                            "of 0-9a-f), got 'zz'"


def _ray_wrapped(cause: BaseException) -> BaseException:
    """What `ray.get` raises for an actor method that raised `cause`: RayTaskError(cause type), whose text is the
    remote traceback, coloured."""
    from ray.exceptions import RayTaskError

    remote_tb = (f"{ANSI}36mray::Coordinator.create_key(){ANSI}39m (pid=1, ip=127.0.0.1)\nTraceback (most recent "
                 f"call last):\n  File \"coordinator.py\", line 1, in create_key\n{type(cause).__name__}: {cause}")
    return RayTaskError("create_key", remote_tb, cause).as_instanceof_cause()


@pytest.mark.parametrize("as_json", [False, True])
def test_ray_task_error_is_unwrapped(no_ray, capsys, monkeypatch, as_json):
    wrapped = _ray_wrapped(InvalidInput("threshold must be between 2 and 3"))
    assert isinstance(wrapped, InvalidInput) and 'File "coordinator.py"' in str(wrapped) and ANSI in str(wrapped)

    def connect(_home):
        raise wrapped

    monkeypatch.setattr(devcluster, "connect", connect)
    rc, out, err, _ = run(capsys, "status", *(["--json"] if as_json else []))
    assert rc == 1
    if as_json:
        assert json.loads(out) == {"error": "InvalidInput", "message": "threshold must be between 2 and 3"}
    else:
        assert err == "error: InvalidInput: threshold must be between 2 and 3\n"


def test_other_ray_errors_are_one_line_and_bugs_keep_their_traceback(no_ray, capsys, monkeypatch):
    from ray.exceptions import GetTimeoutError

    def timeout(_home):
        raise GetTimeoutError(f"{ANSI}31mGet timed out: some object(s) not ready.{ANSI}0m\n  detail line")

    monkeypatch.setattr(devcluster, "connect", timeout)
    rc, _, err, _ = run(capsys, "status")
    assert rc == 1 and err == "error: GetTimeoutError: Get timed out: some object(s) not ready.\n"

    def bug(_home):
        raise KeyError("not ours to hide")

    monkeypatch.setattr(devcluster, "connect", bug)
    with pytest.raises(KeyError):  # a bug of mpc-ray is not dressed up as a reported failure
        main(["status"])
    wrapped_bug = _ray_wrapped(KeyError("remote bug"))
    monkeypatch.setattr(devcluster, "connect", lambda _home: (_ for _ in ()).throw(wrapped_bug))
    rc, _, err, _ = run(capsys, "status")
    assert rc == 1 and err == "error: KeyError: 'remote bug'\n"  # a remote one: one line, -v for the rest


def test_version_and_bench_short_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == "mpc-ray 0.1.0"
    args = build_parser().parse_args(["bench", "-n", "200", "-c", "4"])  # as the README writes it
    assert (args.n, args.concurrency) == (200, 4)
    for cmd in ("demo", "up", "keygen"):
        text = build_parser()._subparsers._group_actions[0].choices[cmd].format_help()
        assert "--allow-single" in text and "signs alone" in " ".join(text.split())  # says why it is refused


def ns(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"digest": None, "message": None, "message_hex": None, "hash": None, **kw})


def test_a_hash_that_does_not_apply_is_an_error():
    for scheme in ("eddsa-ed25519", "schnorr-bip340"):
        with pytest.raises(InvalidInput, match="--hash applies to ECDSA keys only"):
            cli._message_bytes(ns(message="hi", hash="keccak256"), scheme, b"hi", False)
        assert cli._message_bytes(ns(message="hi"), scheme, b"hi", False) == (b"hi", "message")
    signed, how = cli._message_bytes(ns(message="hi", hash="keccak256"), "ecdsa-secp256k1", b"hi", False)
    assert how == "keccak256(message)" and len(signed) == 32
    with pytest.raises(InvalidInput, match="32 bytes"):
        cli._message_bytes(ns(digest="ab" * 31), "ecdsa-secp256k1", bytes(31), True)
    assert cli._sign_input(ns(digest=" 0X" + "ab" * 32)) == (bytes([0xAB] * 32), True)


def test_sign_digest_error_in_a_fresh_process_without_ray():
    """As a user types it: one line on stderr, exit 1, Ray never imported."""
    code = ("import sys; from mpc_ray.cli import main; rc = main(sys.argv[1:]); "
            "assert 'ray' not in sys.modules, 'ray was imported'; sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, "sign", "k1", "--digest", "zz"], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "MPC_RAY_HOME": "/nonexistent/mpc-ray-home"})
    assert res.returncode == 1, res.stderr
    assert res.stderr == "error: InvalidInput: --digest must be hex (an optional 0x, then pairs of 0-9a-f), " \
                         "got 'zz'\n"


def test_bench_says_when_pools_ran_dry():
    key = "k1"
    before = {"pools": {"k1:1-2": 4, "k1:1-3": 4, "k1:2-3": 4, "other:1-2": 9},
              "telemetry": {"waited_for_presigning": {"k1": 5, "other": 3}}}
    after = {"pools": {"k1:1-2": 0, "k1:1-3": 1, "k1:2-3": 0},
             "telemetry": {"waited_for_presigning": {"k1": 185, "other": 3}}}
    points = [(0.1, {"k1:1-2": 2, "k1:1-3": 3, "k1:2-3": 2}), (0.3, {"k1:1-2": 0, "k1:1-3": 0, "k1:2-3": 1})]
    report = cli._pool_report(key, before, after, points)
    assert report == {"start": {"1-2": 4, "1-3": 4, "2-3": 4}, "end": {"1-2": 0, "1-3": 1, "2-3": 0}, "lowest": 0,
                      "waited_for_presigning": 180}
    text = "\n".join(cli._pool_lines(report, 200, "ecdsa-secp256k1"))
    assert "12 ready at the start, lowest pool 0 during the run, 1 at the end" in text
    assert "pools ran dry: 180 of 200 requests waited for presignatures" in text
    calm = cli._pool_report(key, before, {**before}, [])
    assert "none on demand" in "\n".join(cli._pool_lines(calm, 10, "eddsa-ed25519"))
    old = cli._pool_report(key, {"pools": {}, "telemetry": {}}, {"pools": {}, "telemetry": {}}, [])
    assert old["waited_for_presigning"] is None  # unknown is not zero
    assert "does not count" in "\n".join(cli._pool_lines(old, 10, "ecdsa-secp256k1"))


def test_status_shows_full_error_messages():
    errors = [{"time": time.time(), "operation": "sign", "error": "QuorumUnavailable", "key_id": "k1",
               "message": "fewer than 2 parties available for key 'k1'"},
              {"time": time.time(), "error": "ProtocolAbort", "check": "presign.pi_aff_g.range_z1",
               "party_at_fault": 3}]
    lines = cli._last_error_lines(errors)
    assert lines[0] == "errors    last 2:"
    assert lines[1].endswith("QuorumUnavailable: fewer than 2 parties available for key 'k1'  "
                             "(operation=sign, key_id=k1)")
    assert lines[2].endswith("ProtocolAbort  (check=presign.pi_aff_g.range_z1, party_at_fault=3)")
    assert cli._last_error_lines([]) == ["errors    none"]


def test_telemetry_keeps_typed_messages_and_counts_on_demand_presigning_once_per_request():
    before = tm.snapshot()["waited_for_presigning"].get("k-on-demand", 0)
    with tm.request_span("sign", key_id="k-on-demand"):
        tm.annotate(key_id="k-on-demand", presigned_on_demand=1)
        tm.annotate(key_id="k-on-demand", presigned_on_demand=1)  # presigned twice for one request: one wait
    with pytest.raises(QuorumUnavailable):
        with tm.request_span("sign", key_id="k-on-demand"):
            tm.annotate(presigned_on_demand=1)
            raise QuorumUnavailable("fewer than 2 parties available for key 'k-on-demand'")
    with tm.request_span("sign", key_id="k-on-demand"):
        pass  # a pool had one ready: not counted
    snap = tm.snapshot()
    assert snap["waited_for_presigning"]["k-on-demand"] == before + 2
    assert snap["last_errors"][-1]["message"] == "fewer than 2 parties available for key 'k-on-demand'"
    with pytest.raises(InvalidInput):  # wrapped by Ray on its way from a holder: the message is the typed one's
        with tm.request_span("sign", key_id="k-on-demand"):
            raise _ray_wrapped(InvalidInput("unknown key 'nope'"))
    assert tm.snapshot()["last_errors"][-1]["message"] == "unknown key 'nope'"
    with pytest.raises(RuntimeError):  # not a typed error: its text may be anything, so only its type is kept
        with tm.request_span("sign", key_id="k-on-demand"):
            raise RuntimeError("0xsecret-looking text")
    assert "message" not in tm.snapshot()["last_errors"][-1]


def cli_run(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPC_RAY_HOME": str(home)}
    env.pop("RAY_AUTH_MODE", None)  # as a user's shell
    return subprocess.run([sys.executable, "-m", "mpc_ray", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.mark.slow
@pytest.mark.ray
def test_against_a_running_cluster(tmp_path):
    """`audit verify --party 7` names the parties there are; `--hash` on an Ed25519 key is refused; a key id that
    exists comes back as the coordinator's InvalidInput, unwrapped; `bench -n -c` reports pools and errors by type;
    `status` shows that error's message."""
    home = tmp_path / "mpc-home"
    up = cli_run(home, "up", "--security", "112", "--kdf", "min", "--pool-depth", "4", "--json")
    assert up.returncode == 0, up.stderr[-3000:]
    try:
        res = cli_run(home, "audit", "verify", "--party", "7")
        assert res.returncode == 1 and res.stdout == ""
        assert res.stderr.endswith("no party 7 in the cluster of " + str(home) + "; its parties are 1, 2, 3\n")
        assert "Failed to look up actor" not in res.stderr

        ed = json.loads(cli_run(home, "keygen", "--scheme", "eddsa-ed25519", "--wait-depth", "0", "--json").stdout)
        res = cli_run(home, "sign", ed["key_id"], "--message", "hi", "--hash", "keccak256")
        assert res.returncode == 1
        assert res.stderr == "error: InvalidInput: --hash applies to ECDSA keys only; eddsa-ed25519 signs the " \
                             "message bytes themselves\n"

        key = json.loads(cli_run(home, "keygen", "--wait-depth", "0", "--json").stdout)["key_id"]
        res = cli_run(home, "keygen", "--key-id", key, "--wait-depth", "0", "-q")  # refused by the coordinator
        assert res.returncode == 1 and res.stderr == f"error: InvalidInput: key {key!r} exists\n", res.stderr
        res = cli_run(home, "bench", "--key", key, "-n", "12", "-c", "4", "--json")
        assert res.returncode == 0, res.stderr[-3000:]
        bench = json.loads(res.stdout)
        assert bench["requests"] == 12 and bench["errors_by_type"] == {}
        assert set(bench["pools"]["start"]) == {"1-2", "1-3", "2-3"}
        assert 0 <= bench["pools"]["waited_for_presigning"] <= 12
        prose = cli_run(home, "bench", "--key", key, "-n", "4", "-c", "2").stdout
        assert "  pools       3 pools of presignatures" in prose and "  presigning  " in prose
        assert "  errors      0" in prose

        status = cli_run(home, "status")
        assert status.returncode == 0, status.stderr[-3000:]
        assert f"InvalidInput: key {key!r} exists" in status.stdout  # the refused keygen, with its message
    finally:
        assert cli_run(home, "down", "--json").returncode == 0


@pytest.mark.slow
@pytest.mark.ray
def test_demo_tells_a_short_clean_story(tmp_path):
    """No raylet state dumps and no Ray INFO lines on the terminal: they go to a log file the demo names."""
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("RAY_AUTH_MODE", None)
    res = subprocess.run([sys.executable, "-m", "mpc_ray", "demo", "--security", "112"], capture_output=True,
                         text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    both = res.stdout + res.stderr
    for noise in ("state-dump", "Raylet is terminated", "\tINFO ", "Traceback", ANSI):
        assert noise not in both, noise
    assert "fault drill: killing party 3's node" in res.stdout and "signed with the remaining parties" in res.stdout
    assert len(res.stdout.splitlines()) <= 20
    last = res.stdout.strip().splitlines()[-1]
    if " are in " in last:  # Ray reported the killed node (it does within seconds): the demo says where that went
        log = Path(last.rsplit(" are in ", 1)[1])
        assert log.stat().st_size > 0
        log.unlink()
    else:
        assert last.startswith("done in ")
