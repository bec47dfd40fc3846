"""`mpc_ray.local_cluster`: an embedded multi-node Ray cluster on this machine, one simulated node per party.

Each party's node carries the labels ``mpc-party=<i>`` and ``region=region-<i>``; its share holder is a detached,
named actor pinned there with a label selector, restarted by Ray (max_restarts=-1) and never retried
(max_task_retries=0: a signing call must not run twice). Beside it run `workers_per_node` presign workers that
load the same encrypted store and fill it with presignatures, so signing never waits behind presigning. Each
node's state directory stands for its own disk.

With ``isolation="process"`` each holder and presign worker runs in a vault subprocess of this driver (same user,
node/vault.py) and its actor is a proxy that holds no secret (node/vault_proxy.py): the deployment's shape on one
machine. The default, ``"actor"``, keeps the holder inside its actor.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import ray

from ..coordinator.coordinator import Coordinator, CoordinatorConfig
from ..deploy import actor_holder, coordinator_options, give_state_root, vault_holder
from ..errors import InvalidInput
from ..requests import RequestKind, directory_params
from .client import DEFAULT_NAMESPACE, MpcClient
from .credentials import Credentials
from .deployment import register_principals
from .raycall import get

if TYPE_CHECKING:
    from ..deploy import VaultProcess

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # an embedded cluster on loopback; no token file written


ISOLATIONS = ("actor", "process", "user")
DEFAULT_VAULT_USER = "mpcray-vault"  # isolation="user": the OS user the vaults run as (created when missing)
_VAULTS: dict[str, VaultProcess] = {}  # vaults started without a caller's table; each stops with this process


def holder_actor(party: int, state_dir: str, *, allow_test_keys: bool = False, kdf: str = "interactive",
                 worker: int | None = None, isolation: str = "actor", vaults: dict[str, VaultProcess] | None = None,
                 vault_user: str = DEFAULT_VAULT_USER):
    """The party's share holder, or (with `worker`) one of its presign workers; both pinned to the party's node.
    `isolation="process"`: the holder runs in a vault subprocess, started here unless one serves its socket already
    (kept in `vaults` by socket path, for the caller to stop), and the actor is its proxy. `isolation="user"`: the
    same, the vault running as the OS user `vault_user`, which must be able to create its socket beside
    `state_dir` (`local_cluster` makes the state root that user's)."""
    if isolation not in ISOLATIONS:
        raise InvalidInput(f"isolation is one of {ISOLATIONS}")
    # names, options and vaults: mpc_ray/deploy.py, the same for every path
    if isolation == "actor":
        return actor_holder(party, state_dir, worker, allow_test_keys=allow_test_keys, kdf=kdf)
    return vault_holder(party, state_dir, worker, vaults=_VAULTS if vaults is None else vaults, kdf=kdf,
                        allow_test_keys=allow_test_keys, user=vault_user if isolation == "user" else None)


class LocalCluster(MpcClient):
    """A client on an embedded cluster, with fault drills for tests and notebooks."""

    def __init__(self, cluster, nodes: dict, coordinator, threshold: int, parties: int, state_root: Path,
                 credentials: Credentials | None = None) -> None:
        super().__init__(coordinator, threshold, parties, credentials)
        self._cluster, self._nodes, self.state_root = cluster, nodes, state_root

    def kill_node(self, party: int) -> None:
        """Remove party's Ray node (its holder dies with it); its disk (state directory) stays."""
        if party not in self._nodes or self._nodes[party] is None:
            raise InvalidInput(f"party {party} has no running node")
        self._cluster.remove_node(self._nodes[party], allow_graceful=False)
        self._nodes[party] = None

    def restart_node(self, party: int) -> None:
        """Bring party's node back with the same labels; Ray restarts its holder there, which reloads its store."""
        if party not in self._nodes or self._nodes[party] is not None:
            raise InvalidInput(f"party {party} is running")
        self._nodes[party] = _add_party_node(self._cluster, party)

    def state_dir(self, party: int) -> Path:
        return self.state_root / f"party-{party}"

    def add_node(self, *parties: int) -> None:
        """New parties, each on a new Ray node in a new region (labels mpc-party=<i>, region=region-<i>): their
        holders and presign workers start there and join the committee (directories, committee aux info), ready
        for `reshare_key`. Several at once share one aux-info setup."""
        if not parties or any(p in self._nodes or p < 1 for p in parties) or len(set(parties)) != len(parties):
            raise InvalidInput(f"parties {parties} exist or are not distinct positive indices")
        opts = getattr(self, "_deploy", {})
        identities, holders = [], []
        for party in parties:
            self._nodes[party] = _add_party_node(self._cluster, party)
            holder = holder_actor(party, str(self.state_dir(party)), **opts)
            holders.append(holder)
            # before its workers read it
            identities.append(get(holder.public_identity.remote(), actor=f"party {party}'s holder"))
            for w in range(getattr(self, "_workers", 0)):
                holder_actor(party, str(self.state_dir(party)), worker=w, **opts)
        registry = getattr(self, "_registry_bytes", None)
        if registry is not None:  # the committee's principals, trust on first use as at deployment (local_cluster)
            get([h.bootstrap_principals.remote(registry) for h in holders], actor="the new holders")
        # the admins approve each new member with the identity they read from its own holder
        approval = self._creds().admin_request(RequestKind.EXTEND_DIRECTORY, directory_params(identities))
        get(self._coordinator.add_parties.remote(list(parties), approval))


def _add_party_node(cluster, party: int):
    return cluster.add_node(num_cpus=1, labels={"mpc-party": str(party), "region": f"region-{party}"})


@contextmanager
def local_cluster(
    parties: int = 3,
    threshold: int = 2,
    *,
    security: str = "128",
    state_dir: str | None = None,
    pool_depth: int = 32,
    namespace: str = DEFAULT_NAMESPACE,
    kdf: str = "interactive",
    refill: bool = True,
    workers_per_node: int = 1,
    pool_low_water: int | None = None,
    on_empty_pool: str = "presign",
    credentials: Credentials | None = None,
    isolation: str = "actor",
    vault_user: str = DEFAULT_VAULT_USER,
) -> Iterator[LocalCluster]:
    """Start Ray with a head node and one node per party, deploy holders and a coordinator, run aux-info.
    `credentials`: the admin and operator of a committee kept in `state_dir` (`mpc-ray up` saves them beside it);
    by default fresh ones, registered on the new committee. `isolation`: "actor" (the holder in its Ray actor) or
    "process" (each holder and presign worker in a vault subprocess, behind a proxy actor; `vaults` of the cluster
    lists them, stopped at the end) or "user" (the same, each vault running as the OS user `vault_user`, created
    when missing: needs root, IsolationUnavailable otherwise; the state root becomes that user's, mode 0711)."""
    from ray.cluster_utils import Cluster

    if not 1 <= threshold <= parties:
        raise InvalidInput("need 1 <= threshold <= parties")
    if on_empty_pool not in ("presign", "fail"):
        raise InvalidInput("on_empty_pool is 'presign' (presign on demand) or 'fail' (fail fast)")
    if ray.is_initialized():
        raise InvalidInput("ray is already initialised in this process; call ray.shutdown() first")
    if isolation not in ISOLATIONS:
        raise InvalidInput(f"isolation is one of {ISOLATIONS}")
    root = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="mpc-ray-"))
    vaults: dict[str, VaultProcess] = {}
    deploy = {"kdf": kdf, "isolation": isolation, "vaults": vaults, "vault_user": vault_user}
    if isolation == "user":
        give_state_root(root, vault_user)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        nodes = {i: _add_party_node(cluster, i) for i in range(1, parties + 1)}
        ray.init(address=cluster.address, namespace=namespace, log_to_driver=False)
        holders = [holder_actor(i, str(root / f"party-{i}"), **deploy) for i in nodes]
        get([h.ping.remote() for h in holders], actor="the holders")  # identities exist before the workers read them
        for i in nodes:
            for w in range(workers_per_node):
                holder_actor(i, str(root / f"party-{i}"), worker=w, **deploy)
        reuse = credentials is not None
        if not reuse:
            credentials = Credentials.generate()  # a dev committee's admin and operator, held by this client only
        cfg = CoordinatorConfig(parties=list(nodes), threshold=threshold, security=security,
                                pool_depth=pool_depth, refill=refill, workers_per_node=workers_per_node,
                                pool_low_water=pool_depth // 4 if pool_low_water is None else pool_low_water,
                                on_empty_pool=on_empty_pool, coordinator_seed=credentials.coordinator_seed)
        coordinator = (
            ray.remote(Coordinator)
            .options(**coordinator_options(cluster.head_node.node_id))  # mpc_ray/deploy.py
            .remote(cfg, namespace)
        )
        get(coordinator.setup.remote())
        local = LocalCluster(cluster, nodes, coordinator, threshold, parties, root, credentials)
        register_principals(local, credentials, reuse=reuse, where=str(root))  # as `mpc-ray deploy` does
        local._deploy, local._workers = deploy, workers_per_node  # key lifecycle hook: add_node
        local.vaults = vaults
        yield local
    finally:
        try:
            if ray.is_initialized():
                ray.shutdown()
        finally:
            try:
                cluster.shutdown()
            finally:
                for vault in vaults.values():
                    vault.stop()
            if state_dir is None:
                shutil.rmtree(root, ignore_errors=True)
