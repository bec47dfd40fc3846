"""A deployment as a platform team runs it, on this machine with real processes: `mpc-ray node start --head`, three
`mpc-ray node start --party I` (each a vault, then a labelled `ray start --block`), `mpc-ray deploy`, and a driver in
another process that connects with `mpc_ray.connect(address)`: keygen, signing, a party's node stopped (2-of-3 still
signs) and started again (its holder comes back), a vault killed and started again under its running proxy actor,
`mpc-ray status`, and a second `deploy` that changes nothing. Every Ray port is a free one, so other clusters on the
machine are left alone; teardown is `mpc-ray node stop`, by PID, and nothing this test started may be left."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import coincurve
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # tests only: a deployment runs with token auth (README)
PYTHON = sys.executable


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _ray_args(temp_dir: str, head: bool, p: list[int]) -> str:
    """Every port this node listens on, free ones (`p`, 17 of them); Ray's defaults would collide with other clusters
    here."""
    args = (f"--temp-dir={temp_dir} --disable-usage-stats --node-manager-port={p[0]} --object-manager-port={p[1]} "
            f"--metrics-export-port={p[2]} --dashboard-agent-grpc-port={p[3]} --dashboard-agent-listen-port={p[4]} "
            f"--runtime-env-agent-port={p[5]} --worker-port-list={','.join(map(str, p[6:16]))} "
            "--object-store-memory=100000000")
    if head:
        args += f" --ray-client-server-port={p[16]} --include-dashboard=false"
    else:
        args += " --num-cpus=1"
    return args


def mpc_ray(*args: str, check: bool = True, timeout: float = 300, python: str = PYTHON) -> subprocess.CompletedProcess:
    out = subprocess.run([python, "-m", "mpc_ray", *args], capture_output=True, text=True, env=ENV, timeout=timeout)
    if check:
        assert out.returncode == 0, (args, out.stdout, out.stderr[-3000:])
    return out


DRIVER = textwrap.dedent("""
    import json, sys, time, ray
    import mpc_ray
    from mpc_ray.client.credentials import Credentials
    from mpc_ray.deploy import actor_name
    address, creds = sys.argv[1], sys.argv[2]
    mpc = mpc_ray.connect(address, credentials=Credentials.from_file(creds))
    key = None
    for line in sys.stdin:
        cmd, *rest = line.split()
        try:
            if cmd == "keygen":
                key = mpc.create_key("ecdsa-secp256k1")
                out = {"key_id": key.key_id, "public_key": key.public_key.hex()}
            elif cmd == "sign":
                sig = mpc.sign(key.key_id, bytes.fromhex(rest[0]))
                out = {"der": sig.der().hex()}
            elif cmd == "ping":  # a holder answers (through its vault), waiting for it to come back
                deadline = time.monotonic() + 90
                while True:
                    try:
                        h = ray.get_actor(actor_name(int(rest[0])), namespace="mpc-ray")
                        out = {"party": ray.get(h.ping.remote(), timeout=10)}
                        break
                    except Exception as exc:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(1)
        except Exception as exc:
            out = {"error": type(exc).__name__, "message": str(exc)[:500]}
        print(json.dumps(out), flush=True)
""")


class Driver:
    def __init__(self, address: str, creds: Path) -> None:
        self.proc = subprocess.Popen([PYTHON, "-c", DRIVER, address, str(creds)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=ENV)

    def __call__(self, *cmd: str) -> dict:
        self.proc.stdin.write(" ".join(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the driver exited"
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _record(state: Path, name: str) -> dict:
    return json.loads((state / f"{name}.node.json").read_text())


def _tree(pid: int) -> set[int]:
    from mpc_ray.partynode import _descendants

    return {pid} | {e["pid"] for e in _descendants(pid)}


def _alive(pid: int) -> bool:
    from mpc_ray.devcluster import pid_alive

    return pid_alive(pid)


def _vault_user(root: Path) -> tuple[str, list[str]]:
    """How party 1's node starts its vault: as a dedicated OS user where this process may create one (root, as in
    CI; `node start` then runs with an interpreter that user can run), else as this user."""
    from tests.support.isolation import VAULT_USER, shared_python, users_or_skip

    try:
        users_or_skip()
        os.chmod(root, 0o711)  # the vault's user passes through to its interpreter and its store
        return shared_python(root / "py", [VAULT_USER]), ["--vault-user", VAULT_USER]
    except pytest.skip.Exception as exc:
        print(f"party 1's vault runs as this user: {exc}")
        return PYTHON, []


def _sign_ok(drive: Driver, public_key: bytes, text: bytes) -> None:
    digest = hashlib.sha256(text).digest()
    out = drive("sign", digest.hex())
    assert "der" in out, out
    assert coincurve.PublicKey(public_key).verify(bytes.fromhex(out["der"]), digest, hasher=None)


def test_node_start_deploy_connect_sign_and_faults():
    root = Path(tempfile.mkdtemp(prefix="mrd", dir="/tmp"))  # short: Ray's and the vaults' socket paths
    state, home, temp = root / "n", root / "h", str(root / "r")
    port, *ports = _free_ports(1 + 4 * 17)  # at once: ports asked for one by one may come back twice
    address = f"127.0.0.1:{port}"
    seen: set[int] = set()  # every process the nodes started, for the final check
    drive = None
    party_args = {i: ["node", "start", "--party", str(i), "--region", f"region-{i}", "--address", address,
                      "--state-dir", str(state), "--allow-root", "--kdf", "min", "--json",
                      f"--ray-args={_ray_args(temp, False, ports[17 * i:17 * i + 17])}"] for i in (1, 2, 3)}
    python_1, vault_user = _vault_user(root)
    party_args[1] += vault_user
    t0 = time.monotonic()
    try:
        mpc_ray("node", "start", "--head", "--address", address, "--state-dir", str(state), "--allow-root",
                f"--ray-args={_ray_args(temp, True, ports[:17])}", "--json")
        for i in (1, 2, 3):  # one after the other: three raylets starting at once overload 2 cores
            mpc_ray(*party_args[i], python=python_1 if i == 1 else PYTHON)
        if vault_user:  # party 1's vault runs as its own user, its Ray node as this one
            vault = next(e for e in _record(state, "party-1")["processes"] if e["role"] == "vault")
            assert os.stat(f"/proc/{vault['pid']}").st_uid == pwd.getpwnam(vault_user[1]).pw_uid
        print(f"nodes up: {time.monotonic() - t0:.1f} s")
        for name in ("head", "party-1", "party-2", "party-3"):
            for e in _record(state, name)["processes"]:
                seen |= _tree(e["pid"])

        deploy = ["deploy", "--address", address, "--parties", "1,2,3", "--threshold", "2", "--security", "112",
                  "--vault-dir", str(state), "--state-dir", str(home), "--pool-depth", "4", "--json"]
        first = json.loads(mpc_ray(*deploy).stdout)
        print(f"deployed: {time.monotonic() - t0:.1f} s")
        assert first["coordinator"] == "started" and set(first["actors"].values()) == {"started"}
        assert {p: n["region"] for p, n in first["nodes"].items()} == {"1": "region-1", "2": "region-2",
                                                                       "3": "region-3"}

        drive = Driver(address, home / "credentials.json")
        key = drive("keygen")
        assert "public_key" in key, key
        public_key = bytes.fromhex(key["public_key"])
        _sign_ok(drive, public_key, b"deployed")
        print(f"signed: {time.monotonic() - t0:.1f} s")

        # party 3's node goes (Ray and vault, by PID): 2-of-3 still signs; then it comes back with its holder
        stopped = json.loads(mpc_ray("node", "stop", "--state-dir", str(state), "--party", "3", "--json").stdout)
        assert stopped["stopped"]["party-3"]
        _sign_ok(drive, public_key, b"without party 3")
        mpc_ray(*party_args[3])
        seen |= {p for e in _record(state, "party-3")["processes"] for p in _tree(e["pid"])}
        assert drive("ping", "3") == {"party": 3}
        print(f"party 3 back: {time.monotonic() - t0:.1f} s")

        # party 1's vault dies under its running proxy actor and comes back (node start starts only what is down)
        vault = next(e for e in _record(state, "party-1")["processes"] if e["role"] == "vault")
        os.kill(vault["pid"], signal.SIGKILL)
        restarted = json.loads(mpc_ray(*party_args[1], python=python_1).stdout)
        assert [e["role"] for e in restarted["processes"]] == ["ray", "vault"]  # Ray kept, the vault new
        seen |= {e["pid"] for e in restarted["processes"]}
        assert drive("ping", "1") == {"party": 1}
        _sign_ok(drive, public_key, b"after the vault restarted")

        status = json.loads(mpc_ray("status", "--address", address, "--state-dir", str(home), "--json").stdout)
        assert all(h["ok"] for h in status["holders"].values()), status["holders"]
        assert status["holders"]["1"]["node_labels"]["mpc-party"] == "1"
        assert key["key_id"] in status["keys"]

        again = json.loads(mpc_ray(*deploy).stdout)  # idempotent: everything found, nothing started
        assert again["coordinator"] == "exists" and set(again["actors"].values()) == {"exists"}
        print(f"deploy test body: {time.monotonic() - t0:.1f} s")
    finally:
        if drive is not None:
            drive.close()
        for name in ("head", "party-1", "party-2", "party-3"):  # what is alive now, started by the nodes
            try:
                for e in _record(state, name)["processes"]:
                    seen |= _tree(e["pid"]) if _alive(e["pid"]) else set()
            except OSError:
                pass
        for i in (1, 2, 3):
            mpc_ray("node", "stop", "--state-dir", str(state), "--party", str(i), check=False)
        mpc_ray("node", "stop", "--state-dir", str(state), "--head", check=False)
        time.sleep(1.0)
        left = sorted(p for p in seen if _alive(p))
        for p in left:  # reported below; killed so that a failure leaves nothing behind either
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(root, ignore_errors=True)
        print(f"torn down: {time.monotonic() - t0:.1f} s")
    assert not left, f"processes left after node stop: {left}"
