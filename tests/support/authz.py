"""Principals for in-process holders: a test admin and operator registered on every holder, and the requests they
sign (key creation, raw signing, lifecycle approvals), exactly as `MpcClient` builds them; and the coordinator's
identity, whose grants start presigning, aux-info and identification sessions and FROST nonce commitments."""

from __future__ import annotations

import time
from typing import Iterable, Sequence

from mpc_ray.client.credentials import Credentials
from mpc_ray.node.lifecycle import directory_params
from mpc_ray.node.principals import RequestKind
from mpc_ray.requests.grants import GrantSigner, commit_item


class TestPrincipals:
    __test__ = False

    def __init__(self) -> None:
        self.creds = Credentials.generate()
        self.coordinator = GrantSigner(self.creds.coordinator_seed)

    def bootstrap(self, holders: Iterable) -> None:
        """Register the principals, and announce the coordinator's key where the directory is set (as the
        coordinator's setup does)."""
        registry = self.creds.registry().to_bytes()
        for h in holders:
            h.bootstrap_principals(registry)
            if h.directory:
                h.set_directory(list(h.directory.values()), self.coordinator.verify_key)

    def grant(self, requests: Sequence):
        """The coordinator's grant for a begin batch."""
        return self.coordinator.for_begin(requests, time.time())

    def begin(self, holder, requests: Sequence):
        return holder.begin(requests, self.grant(requests))

    def commit(self, holder, key_id: str, count: int):
        """`frost_commit` on `holder` with the coordinator's grant for it."""
        grant = self.coordinator.sign([commit_item(holder.party, key_id, count)], time.time())
        return holder.frost_commit(key_id, count, grant)

    def keygen_params(self, key_id: str, threshold: int, parties: Sequence[int],
                      scheme: str = "ecdsa-secp256k1", protocol: str = "cggmp21") -> dict:
        """BeginRequest params of a "keygen" (or, with a FROST scheme, "frost-dkg") session, with its approval; an
        ECDSA key for DKLs23 with ``protocol="dkls23"`` (the approval names it)."""
        params = {"key_id": key_id, "threshold": threshold}
        if scheme != "ecdsa-secp256k1":
            params["scheme"] = scheme
        extra = {"protocol": protocol} if protocol != "cggmp21" else {}
        params.update(extra)
        params["approval"] = self.approval(RequestKind.CREATE_KEY, key_id=key_id, scheme=scheme,
                                           threshold=threshold, parties=sorted(parties), **extra)
        return params

    def approval(self, kind: RequestKind, **params):
        return self.creds.admin_request(kind, params)

    def directory_approval(self, entries):
        return self.creds.admin_request(RequestKind.EXTEND_DIRECTORY, directory_params(entries))

    def allow_operator(self, holders: Iterable, key_id: str) -> None:
        request = self.creds.operator_policy_request(key_id)
        for h in holders:
            h.set_policy(request)

    def raw(self, key_id: str, messages: Sequence[bytes], *, path: str | None = None, tap_tweak: bytes | None = None):
        return self.creds.operator_request(key_id, list(messages), path=path, tap_tweak=tap_tweak)
