"""`local_cluster(isolation="process")`: each holder and presign worker in a vault subprocess behind a proxy actor.
It signs (one hop and sign_many), a killed proxy comes back and reconnects to the vault that kept running, and code
that Ray runs on party 1's node finds no secret in the proxy (while the same search finds the identity key in the
vault's memory, so the search itself works)."""

from __future__ import annotations

import hashlib
import os
import time

import coincurve
import pytest
import ray

import mpc_ray
from mpc_ray.node.identity import NodeIdentity
from mpc_ray.node.store import EncryptedStore
from mpc_ray.node.vault import vault_socket_path
from mpc_ray.node.vault_proxy import VaultProxy
from nacl.pwhash import argon2id


def digest(i: int) -> bytes:
    return hashlib.sha256(b"vault runtime %d" % i).digest()


@pytest.fixture(scope="module")
def mpc():
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=4,
                               isolation="process") as cluster:
        yield cluster


def _holder(party: int):
    return ray.get_actor(f"mpc-holder-{party}", namespace="mpc-ray")


def _verify(key, d, sig) -> bool:
    return coincurve.PublicKey(key.public_key).verify(sig.der(), d, hasher=None)


@ray.remote(num_cpus=0)
def _search(pids: dict[str, int], needles: dict[str, bytes]) -> dict[str, list[str]]:
    """What a task on the node can find: each needle in each process's readable memory (/proc/<pid>/mem)."""
    found: dict[str, list[str]] = {who: [] for who in pids}
    chunk, overlap = 8 << 20, max(len(n) for n in needles.values())
    for who, pid in pids.items():
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
            for line in maps:
                span, perms = line.split()[:2]
                if not perms.startswith("r"):
                    continue
                start, end = (int(x, 16) for x in span.split("-"))
                pos = start
                while pos < end:
                    try:
                        mem.seek(pos)
                        data = mem.read(min(chunk + overlap, end - pos))
                    except OSError:
                        break
                    found[who] += [name for name, n in needles.items() if n in data and name not in found[who]]
                    pos += chunk
    return found


def test_process_isolation_signs_restarts_and_keeps_secrets_out_of_ray(mpc):
    assert len(mpc.vaults) == 6  # a holder and a presign worker per party, each its own process
    key = mpc.create_key("ecdsa-secp256k1")
    assert _verify(key, digest(1), mpc.sign(key.key_id, digest(1)))  # one hop: the client calls the proxies
    sigs = mpc.sign_many(key.key_id, [digest(2), digest(3), digest(4)])
    assert all(_verify(key, digest(i), s) for i, s in zip((2, 3, 4), sigs))
    assert ray.get(_holder(1).node_labels.remote())["mpc-party"] == "1"  # the proxy is what Ray placed there

    # a killed proxy comes back (Ray restarts it) and reconnects to the vault, which kept serving
    vault = mpc.vaults[str(vault_socket_path(mpc.state_dir(2)))]
    consumed = ray.get(_holder(2).consumed_ids.remote())
    ray.kill(_holder(2), no_restart=False)
    deadline = time.monotonic() + 120
    while True:
        try:
            assert ray.get(_holder(2).consumed_ids.remote(), timeout=30) == consumed
            break
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert vault.alive()
    sigs = mpc.sign_many(key.key_id, [digest(5), digest(6)])
    assert all(_verify(key, digest(i), s) for i, s in zip((5, 6), sigs))

    # code that Ray runs in the proxy and beside it on party 1's node finds no secret there
    state = mpc.state_dir(1)
    node_secret = (state / "node.secret").read_bytes()
    store = EncryptedStore(state / "store", node_secret, opslimit=argon2id.OPSLIMIT_MIN,
                           memlimit=argon2id.MEMLIMIT_MIN)
    seed = bytes(NodeIdentity.from_secret_bytes(1, store.get("identity"))._signing)
    proxy = _holder(1)
    inside = ray.get(proxy.__ray_call__.remote(
        lambda self: (os.getpid(), type(self).__name__, repr(vars(self)) + repr(vars(self._client)))))
    proxy_pid, cls, attributes = inside
    assert cls == VaultProxy.__name__
    assert node_secret.hex() not in attributes and seed.hex() not in attributes
    vault_pid = mpc.vaults[str(vault_socket_path(state))].process.pid
    needles = {"node secret": node_secret, "node secret hex": node_secret.hex().encode(), "identity key": seed}
    found = ray.get(_search.options(label_selector={"mpc-party": "1"}).remote(
        {"proxy": proxy_pid, "vault": vault_pid}, needles))
    assert found["proxy"] == []
    assert "identity key" in found["vault"]  # same-user isolation: the vault's memory is still readable to root
