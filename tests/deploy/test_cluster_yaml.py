"""cluster.yaml is a valid Ray launcher config and its labels are the ones the share holders select on."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import jsonschema
import ray
import yaml

from mpc_ray.cli import build_parser
from mpc_ray.coordinator.coordinator import HOLDER_NAME

CONFIG = Path(__file__).resolve().parents[2] / "cluster.yaml"


def load() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def test_validates_against_rays_schema():
    schema = json.loads((Path(os.path.dirname(ray.__file__)) / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(load(), schema)


def test_one_labelled_node_per_party_and_none_on_the_head():
    cfg = load()
    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]
    assert "mpc-party" not in head.get("labels", {})  # no holder can land on the head
    parties = {t["labels"]["mpc-party"]: t for name, t in types.items() if name != cfg["head_node_type"]}
    assert sorted(parties) == ["1", "2", "3"]
    regions = [t["labels"]["region"] for t in parties.values()]
    assert len(set(regions)) == len(regions)  # every party in its own failure domain
    for t in parties.values():
        assert t["min_workers"] == t["max_workers"] == 1
    assert HOLDER_NAME.startswith("mpc-holder-")


class _RecordingRemote:
    """Stands in for ray.remote(HolderActor): records the options a holder or worker actor is created with."""

    def __init__(self, seen: list) -> None:
        self.seen = seen

    def options(self, **kw):
        self.seen.append(kw)
        return self

    def remote(self, *args, **kw):
        return None


def _matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_the_holders_selectors_match_exactly_one_node_type_each(monkeypatch, tmp_path):
    """The selectors the holders and presign workers are really created with (client/local.py holder_actor) land
    each party's actors on that party's node type, and none on the head."""
    from mpc_ray.client import local

    from mpc_ray.node.actor import HolderActor

    seen: list[dict] = []
    classes: list[type] = []
    monkeypatch.setattr(local.ray, "remote", lambda cls: classes.append(cls) or _RecordingRemote(seen))
    cfg = load()
    types = cfg["available_node_types"]
    for party in (1, 2, 3):
        seen.clear()
        local.holder_actor(party, str(tmp_path / f"p{party}"))
        local.holder_actor(party, str(tmp_path / f"p{party}"), worker=0)
        assert len(seen) == 2
        for opts in seen:
            selector = opts["label_selector"]
            hits = [name for name, t in types.items() if _matches(selector, t.get("labels", {}))]
            assert hits == [f"party-{party}"], (selector, hits)
            assert cfg["head_node_type"] not in hits
            assert opts["max_task_retries"] == 0  # a signing call is never run twice
    assert set(classes) == {HolderActor}  # the facade of entry points, never ShareHolder with its key() and aux()


def _commands(cfg: dict) -> dict[str, list[str]]:
    """The launcher's commands by node type: the head's start commands, each party's setup commands."""
    out = {"head": cfg["head_start_ray_commands"] + cfg.get("worker_start_ray_commands", [])}
    for name, t in cfg["available_node_types"].items():
        if name != cfg["head_node_type"]:
            out[name] = cfg.get("setup_commands", []) + t.get("worker_setup_commands", [])
    return out


def _mpc_ray_argv(command: str) -> list[str] | None:
    """The `mpc-ray` argv of a shell command (after sudo, its options and VAR=value), or None; the launcher's
    variables stand for an address."""
    argv = shlex.split(command.replace("$RAY_HEAD_IP", "10.0.0.1"))
    while argv and (argv[0] in ("sudo", "-E") or "=" in argv[0]):
        argv = argv[1:]
    return argv[1:] if argv[:1] == ["mpc-ray"] else None


def test_nodes_start_with_the_commands_the_cli_accepts():
    cfg = load()
    parser = build_parser()
    for node_type, commands in _commands(cfg).items():
        starts = [a for a in map(_mpc_ray_argv, commands) if a is not None]
        assert len(starts) == 1, (node_type, commands)  # exactly one `mpc-ray node start` per node
        args = parser.parse_args(starts[0])
        assert (args.command, args.action) == ("node", "start"), starts[0]
        assert args.state_dir == "/var/lib/mpc-ray"
        assert not any(c.split()[:2] == ["ray", "stop"] for c in commands)  # it stops every Ray process on the host
        if node_type == "head":
            assert args.head and args.party is None  # the head holds no party (node start gives it no CPUs)
            continue
        labels = cfg["available_node_types"][node_type]["labels"]
        assert (str(args.party), args.region) == (labels["mpc-party"], labels["region"])  # the labels Ray gets
        assert args.vault_user == "mpc-vault" and args.ray_user not in (None, "root")  # the vault's own user
        assert not args.allow_root and args.secret_command  # the secret from the host's secret manager
        assert any("useradd" in c and "mpc-vault" in c for c in commands)  # created before the vault starts
    assert cfg["worker_start_ray_commands"] == []  # node start ran `ray start`


def test_token_auth_is_on():
    cfg = load()
    for commands in _commands(cfg).values():
        starts = [c for c in commands if _mpc_ray_argv(c) is not None]
        assert all("RAY_AUTH_MODE=token" in c for c in starts), starts


def test_the_security_notes_are_there():
    text = CONFIG.read_text()
    for topic in ("RAY_USE_TLS", "RAY_TLS_CA_CERT", "GCS fault tolerance", "RAY_REDIS_ADDRESS", "ray start --address",
                  "--labels", "MPC_RAY_NODE_SECRET_"):
        assert topic in text, topic
