"""The committee's Ray actors, named and placed in one place for every path that creates or finds them.

`local_cluster` and `mpc-ray up` (client/local.py), `mpc-ray deploy` (client/deployment.py), the coordinator's own
lookups, the gateway and the CLI all take the names and the actor options from here, so a holder deployed one way is
found the same way by every other.

- A party's holder and its presign workers: detached, named, pinned to the node labelled ``mpc-party=<i>``,
  restarted by Ray without end (``max_restarts=-1``) and never retried (``max_task_retries=0``: a signing call must
  not run twice), one call at a time, no CPU reserved (a proxy waits on its vault; an in-actor holder is the node's
  only tenant).
- The coordinator: detached, named, pinned by node id to the head (which has no ``mpc-party`` label, so no share
  lands there), restarted without end (it rebuilds its key table from the holders), never retried.

Layer: above node/ (it builds the proxy actor of node/vault_proxy.py) and below coordinator/ (which looks actors up
by these names); pyproject.toml's import-linter contract places it there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import InvalidInput, PartyUnavailable

__all__ = ["COORDINATOR_NAME", "HEAD_RESOURCE", "HOLDER_NAME", "PARTY_LABEL", "REGION_LABEL", "WORKER_NAME",
           "actor_holder", "actor_name", "coordinator_options", "find_actor", "head_node_id", "holder_options", "party_nodes",
           "party_state_dir", "proxy_actor", "vault_socket"]

HOLDER_NAME = "mpc-holder-{party}"
WORKER_NAME = "mpc-worker-{party}-{worker}"
COORDINATOR_NAME = "mpc-coordinator"
PARTY_LABEL = "mpc-party"  # the label a party's node carries; its holder and workers select on it
REGION_LABEL = "region"
HEAD_RESOURCE = "node:__internal_head__"  # the resource Ray gives the head node only


def actor_name(party: int, worker: int | None = None) -> str:
    """The name of `party`'s holder, or of its presign `worker`."""
    return HOLDER_NAME.format(party=party) if worker is None else WORKER_NAME.format(party=party, worker=worker)


def holder_options(party: int, worker: int | None = None) -> dict[str, Any]:
    """`.options(...)` of `party`'s holder (or presign `worker`) actor, in-actor or vault proxy alike."""
    return dict(name=actor_name(party, worker), lifetime="detached", label_selector={PARTY_LABEL: str(party)},
                max_restarts=-1, max_task_retries=0, num_cpus=0, max_concurrency=1)


def coordinator_options(head_node_id: str) -> dict[str, Any]:
    """`.options(...)` of the coordinator actor, pinned to the node `head_node_id` (the head)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return dict(name=COORDINATOR_NAME, lifetime="detached", num_cpus=0, max_concurrency=32,
                max_restarts=-1, max_task_retries=0,  # a restart rebuilds its key table from the holders
                scheduling_strategy=NodeAffinitySchedulingStrategy(head_node_id, soft=False))


def actor_holder(party: int, state_dir: str, worker: int | None = None, **kwargs: Any):
    """Start `party`'s holder (or presign `worker`) in its Ray actor, its store at `state_dir` (the embedded mode)."""
    import ray

    from .node.actor import HolderActor

    return ray.remote(HolderActor).options(**holder_options(party, worker)).remote(
        party, state_dir, role="holder" if worker is None else "worker", **kwargs)


def proxy_actor(party: int, socket_path: str, worker: int | None = None):
    """Start `party`'s holder (or presign `worker`) as a proxy to the vault at `socket_path` on its node."""
    import ray

    from .node.vault_proxy import VaultProxy

    return ray.remote(VaultProxy).options(**holder_options(party, worker)).remote(party, socket_path)


def party_state_dir(vault_dir: str | Path, party: int) -> Path:
    """`party`'s vault state directory under the ``--state-dir`` of `mpc-ray node start` (the same on every host)."""
    return Path(vault_dir) / f"party-{party}"


def vault_socket(vault_dir: str | Path, party: int, worker: int | None = None) -> str:
    """Where `party`'s vault (or presign `worker`'s) listens under that ``--state-dir``."""
    from .node.vault import vault_socket_path

    return str(vault_socket_path(party_state_dir(vault_dir, party), worker))


def find_actor(name: str, namespace: str):
    """The live actor `name` in `namespace`, or None."""
    import ray

    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:  # Ray: "Failed to look up actor ..."
        return None


def party_nodes(parties: list[int]) -> dict[int, dict[str, Any]]:
    """The alive Ray node of each party (``ray.nodes()`` entry), by its ``mpc-party`` label. PartyUnavailable for a
    party without one; InvalidInput for a party with two (its actors could land on either)."""
    import ray

    found: dict[int, list[dict[str, Any]]] = {}
    for node in ray.nodes():
        label = node.get("Labels", {}).get(PARTY_LABEL)
        if node.get("Alive") and label is not None and label.isdigit():
            found.setdefault(int(label), []).append(node)
    for party in parties:
        if party not in found:
            raise PartyUnavailable(party, f"no alive Ray node carries the label {PARTY_LABEL}={party} (start it "
                                          f"there with `mpc-ray node start --party {party} ...`)")
        if len(found[party]) > 1:
            raise InvalidInput(f"{len(found[party])} Ray nodes carry the label {PARTY_LABEL}={party}: one per party")
    return {p: found[p][0] for p in parties}


def head_node_id() -> str:
    """The id of the cluster's head node (where the coordinator runs)."""
    import ray

    for node in ray.nodes():
        if node.get("Alive") and HEAD_RESOURCE in node.get("Resources", {}):
            return node["NodeID"]
    raise InvalidInput("the cluster has no alive head node")
