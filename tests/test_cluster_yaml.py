"""cluster.yaml is a valid Ray launcher config and its labels are the ones the share holders select on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import ray
import yaml

from mpc_ray.coordinator.coordinator import HOLDER_NAME

CONFIG = Path(__file__).parent.parent / "cluster.yaml"


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
    # the holders select exactly this label key (mpc_ray.client.local.holder_actor: label_selector mpc-party)
    from mpc_ray.client import local

    src = Path(local.__file__).read_text()
    assert 'label_selector={"mpc-party": str(party)}' in src and HOLDER_NAME.startswith("mpc-holder-")


def test_token_auth_is_on():
    cfg = load()
    cmds = " ".join(cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"])
    assert cmds.count("RAY_AUTH_MODE=token") == 2
