"""Principals for in-process holders: a test admin and operator registered on every holder, and the requests they
sign (key creation, raw signing, lifecycle approvals), exactly as `MpcClient` builds them."""

from __future__ import annotations

from typing import Iterable, Sequence

from mpc_ray.client.credentials import Credentials
from mpc_ray.node.lifecycle import directory_params
from mpc_ray.node.principals import RequestKind


class TestPrincipals:
    __test__ = False

    def __init__(self) -> None:
        self.creds = Credentials.generate()

    def bootstrap(self, holders: Iterable) -> None:
        registry = self.creds.registry().to_bytes()
        for h in holders:
            h.bootstrap_principals(registry)

    def keygen_params(self, key_id: str, threshold: int, parties: Sequence[int],
                      scheme: str = "ecdsa-secp256k1") -> dict:
        """BeginRequest params of a "keygen" (or, with a FROST scheme, "frost-dkg") session, with its approval."""
        params = {"key_id": key_id, "threshold": threshold}
        if scheme != "ecdsa-secp256k1":
            params["scheme"] = scheme
        params["approval"] = self.approval(RequestKind.CREATE_KEY, key_id=key_id, scheme=scheme,
                                           threshold=threshold, parties=sorted(parties))
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
