"""The share holder as a Ray actor: a facade that exposes only the holder's entry points.

Ray lets any driver call any public method of an actor class, so the actor is not `ShareHolder` itself (whose
`key()` and `aux()` return secret shares and Paillier keys to code in the same process) but this facade, which
forwards exactly the calls listed in `ENTRY_POINTS`. Each entry point that uses a secret or changes state checks a
principal's signed request itself (node/authorized.py); the others are public or trust-on-first-use setup.

What a facade cannot do: Ray also runs arbitrary code inside an actor (`__ray_call__`, or a task on the same node
reading the store beside it). Keeping secrets from code that Ray runs needs a process and an OS user that Ray's
processes do not share: that is the vault (node/vault.py), whose Ray actor `VaultProxy` (node/vault_proxy.py)
forwards these same `ENTRY_POINTS` over a socket and holds no secret.
"""

from __future__ import annotations

from typing import Any, Callable

from .holder import ShareHolder

__all__ = ["ENTRY_POINTS", "HolderActor"]

ENTRY_POINTS = (
    # public or read-only
    "ping", "public_identity", "node_labels", "has_aux", "key_views", "consumed_ids", "presignature_count",
    "key_epoch", "lifecycle_public",
    # committee setup (trust on first use) and protocol sessions (each protocol checks its own approval; presigning,
    # aux-info, identification and frost_commit the coordinator's grant)
    "set_directory", "begin", "step", "drop_sessions",
    # principals, policies and signing: each checks a principal's signed request
    "bootstrap_principals", "set_policy", "set_principals", "sign_request", "sign_requests", "frost_sign_request",
    "partial_sign", "frost_sign", "frost_commit",
    # committee changes: each checks an admin-quorum request, or confirmations signed by node identities
    "extend_directory", "backup", "restore", "lifecycle_confirm", "lifecycle_commit", "lifecycle_discard",
    "set_coordinator",
)


def _forward(name: str) -> Callable[..., Any]:
    def call(self: HolderActor, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._holder, name)(*args, **kwargs)

    call.__name__ = name
    call.__doc__ = getattr(ShareHolder, name).__doc__
    return call


class HolderActor:
    """`ShareHolder(party, state_dir, ...)` behind the entry points in `ENTRY_POINTS` (wrap with `ray.remote`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._holder = ShareHolder(*args, **kwargs)


for _name in ENTRY_POINTS:
    setattr(HolderActor, _name, _forward(_name))
