"""`mpc-ray deploy`: put a committee on a Ray cluster whose party nodes run vaults (`mpc-ray node start`).

From any driver connected to the cluster: each party's holder (and presign workers) goes on the node labelled
``mpc-party=<i>`` as a proxy to that node's vault (node/vault_proxy.py), the coordinator on the head, then aux-info
and the first principals, as `mpc-ray up` does (`register_principals`, shared with `local_cluster`). Idempotent:
actors that exist are left as they are and reported, and a committee whose coordinator runs is not set up again.

Where each vault listens: the convention of `mpc-ray node start --state-dir DIR --party I`, whose vault keeps the
party's store in ``DIR/party-I`` and listens on ``vault_socket_path(DIR/party-I)`` (``DIR/party-I.vault.sock``;
``DIR/party-I.worker-W.vault.sock`` for presign worker W). Every party host uses the same DIR (default
``/var/lib/mpc-ray``): Ray labels cannot carry a path (63 characters of ``[A-Za-z0-9._-]``), so the driver names it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ray

from ..coordinator.coordinator import Coordinator, CoordinatorConfig
from ..deploy import (COORDINATOR_NAME, REGION_LABEL, actor_name, coordinator_options, find_actor, head_node_id,
                      party_nodes, proxy_actor, vault_socket)
from ..errors import InvalidInput, MpcError, PartyUnavailable, Unauthorized
from .client import DEFAULT_NAMESPACE, MpcClient
from .credentials import Credentials
from .raycall import get

__all__ = ["DEFAULT_VAULT_DIR", "deploy_committee", "register_principals"]

DEFAULT_VAULT_DIR = "/var/lib/mpc-ray"
PING_TIMEOUT_S = 120.0  # a new proxy actor needs a worker process on its node first (seconds on a busy host)


def register_principals(client: MpcClient, credentials: Credentials, *, reuse: bool, where: str) -> None:
    """The deployment step that gives every holder its first principals (`credentials`' admin and operator). Stores
    that have principals already refuse it: fine when the credentials are the committee's own (`reuse`: kept from an
    earlier `mpc-ray up` or `deploy`), an InvalidInput naming `where` otherwise."""
    try:
        client.bootstrap_principals(credentials.registry())
    except Unauthorized as exc:  # the kept stores have principals already
        if not reuse:
            raise InvalidInput(f"{where} holds a committee with its own principals: pass its credentials= "
                               "(`mpc-ray up` and `mpc-ray deploy` keep them in credentials.json)") from None
        if not getattr(exc, "rule", "").startswith("auth."):
            raise
        # these credentials' admins replaced the first registry since (set_principals): the holders' stands
    client._registered = True


def _place(parties: list[int], workers: int, vault_dir: str, namespace: str) -> tuple[dict[str, str], list]:
    """Each party's holder and workers: found, or started as proxies to the node's vault. Every one must answer a
    ping (through to its vault); otherwise the proxies started here are removed again and PartyUnavailable names the
    party."""
    report: dict[str, str] = {}
    created, pings = [], []
    for party in parties:
        for worker in [None, *range(workers)]:
            name = actor_name(party, worker)
            handle = find_actor(name, namespace)
            if handle is None:
                handle = proxy_actor(party, vault_socket(vault_dir, party, worker), worker)
                created.append(handle)
                report[name] = "started"
            else:
                report[name] = "exists"
            pings.append((party, worker, handle.ping.remote()))
    try:
        for party, worker, ref in pings:
            try:
                ray.get(ref, timeout=PING_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - reported as the party's, typed
                cause = getattr(exc, "cause", None) or exc
                what = "vault" if worker is None else f"presign worker {worker}'s vault"
                raise PartyUnavailable(party, f"its {what} at {vault_socket(vault_dir, party, worker)} does not "
                                              f"answer ({type(cause).__name__}): start it with `mpc-ray node start "
                                              f"--party {party} --state-dir {vault_dir}"
                                              + (f" --workers {workers}" if workers else "") + "`") from None
    except PartyUnavailable:
        for handle in created:  # nothing half-deployed stays: a later run starts them again
            ray.kill(handle, no_restart=True)
        raise
    return report, created


def deploy_committee(*, parties: list[int], threshold: int, security: str = "128", workers: int = 0,
                     pool_depth: int = 16, namespace: str = DEFAULT_NAMESPACE, vault_dir: str = DEFAULT_VAULT_DIR,
                     credentials_file: str | Path) -> dict[str, Any]:
    """Deploy (or find) the committee of `parties` on the cluster this process is connected to; returns a report:
    what was started and what existed. The committee's admin and operator come from `credentials_file` when it
    exists (the committee's own), else fresh ones are saved there (mode 0600)."""
    if not ray.is_initialized():
        raise InvalidInput("connect to the cluster first (ray.init(address=...))")
    if len(set(parties)) != len(parties) or any(p < 1 for p in parties):
        raise InvalidInput("parties are distinct positive indices")
    if not 1 <= threshold <= len(parties):
        raise InvalidInput(f"threshold must be between 1 and {len(parties)}")
    nodes = party_nodes(parties)  # PartyUnavailable for a party without a labelled node
    t0 = time.perf_counter()
    actors, _ = _place(parties, workers, vault_dir, namespace)
    report: dict[str, Any] = {
        "namespace": namespace, "parties": parties, "threshold": threshold, "security": security,
        "workers": workers, "vault_dir": vault_dir, "actors": actors,
        "nodes": {p: {"node_id": n["NodeID"], "region": n.get("Labels", {}).get(REGION_LABEL)} for p, n in nodes.items()}}
    coordinator = find_actor(COORDINATOR_NAME, namespace)
    if coordinator is not None:
        deployed = sorted(get(coordinator.status.remote(), actor="the coordinator")["parties"])
        if deployed != sorted(parties):
            raise InvalidInput(f"namespace {namespace!r} holds the committee of parties {deployed}, not {parties}: "
                               "use another --namespace")
        report.update(coordinator="exists", credentials=str(credentials_file))
        return report
    credentials_file = Path(credentials_file)
    reuse = credentials_file.exists()
    credentials = Credentials.from_file(credentials_file) if reuse else Credentials.generate()
    cfg = CoordinatorConfig(parties=list(parties), threshold=threshold, security=security, pool_depth=pool_depth,
                            pool_low_water=pool_depth // 4, workers_per_node=workers,
                            coordinator_seed=credentials.coordinator_seed)
    coordinator = ray.remote(Coordinator).options(**coordinator_options(head_node_id())).remote(cfg, namespace)
    try:
        get(coordinator.setup.remote(), actor="the coordinator")  # directories, then aux-info (the long step)
        client = MpcClient(coordinator, threshold, len(parties), credentials)
        register_principals(client, credentials, reuse=reuse, where=f"the vaults under {vault_dir}")
    except MpcError:
        ray.kill(coordinator, no_restart=True)  # a later run sets the committee up again
        raise
    if not reuse:
        credentials_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        credentials.save(credentials_file)
    report.update(coordinator="started", credentials=str(credentials_file), setup_s=round(time.perf_counter() - t0, 1))
    return report
