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

- A vault (`local_cluster`'s isolation="process" or "user"): the holder in a subprocess of the driver, as this
  user or as a vault user (node/vault.py `start_vault`), behind its proxy actor (`vault_holder`).

Layer: above node/ (it builds node/'s actors and starts its vaults, so client/ never imports node/) and below
coordinator/ (which looks actors up by these names); pyproject.toml's import-linter contract places it there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput, PartyUnavailable

if TYPE_CHECKING:
    from .node.vault import VaultProcess as VaultProcess  # the type of `vault_holder`'s table, for client/local.py

__all__ = ["COORDINATOR_NAME", "HEAD_RESOURCE", "HOLDER_NAME", "PARTY_LABEL", "REGION_LABEL", "WORKER_NAME",
           "actor_holder", "actor_name", "coordinator_options", "find_actor", "give_state_root", "head_node_id",
           "holder_options", "party_nodes", "party_state_dir", "proxy_actor", "vault_holder", "vault_socket"]

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
        party, state_dir, role="holder" if worker is None else "worker", worker=worker, **kwargs)


def proxy_actor(party: int, socket_path: str, worker: int | None = None):
    """Start `party`'s holder (or presign `worker`) as a proxy to the vault at `socket_path` on its node."""
    import ray

    from .node.vault_proxy import VaultProxy

    return ray.remote(VaultProxy).options(**holder_options(party, worker)).remote(party, socket_path)


def vault_holder(party: int, state_dir: str, worker: int | None = None, *, vaults: dict[str, VaultProcess],
                 user: str | None = None, kdf: str = "interactive", allow_test_keys: bool = False) -> Any:
    """Start `party`'s holder (or presign `worker`) in a vault subprocess of this process, its store at `state_dir`,
    unless one serves its socket already, and return its proxy actor. `vaults`: the started vaults by socket path,
    for the caller to stop. `user`: the OS user the vault runs as (root only; see `give_state_root`)."""
    from .node.vault import start_vault, vault_socket_path

    path = str(vault_socket_path(state_dir, worker))
    if path not in vaults or not vaults[path].alive():
        vaults[path] = start_vault(party, state_dir, worker=worker, kdf=kdf, allow_test_keys=allow_test_keys,
                                   user=user)
    return proxy_actor(party, path, worker)  # the same entry points, forwarded


def give_state_root(root: Path, user: str) -> None:
    """Make the state root the vault user's (created when missing): each vault makes its socket there, beside its
    state directory; others (the proxies) reach a socket by its name, never list."""
    from .node.vault import ensure_user

    entry = ensure_user(user)
    root.mkdir(parents=True, exist_ok=True)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    os.chmod(root, 0o711)


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
