"""Bodies of admin requests that the client builds and every holder reads back the same way."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

from ..errors import InvalidInput

__all__ = ["directory_params", "restore_params"]


class _Member(Protocol):
    """What `directory_params` reads of a node identity (node/identity.py's `NodeIdentityPublic`)."""

    @property
    def party(self) -> int: ...
    @property
    def verify_key(self) -> bytes: ...
    @property
    def box_key(self) -> bytes: ...


def directory_params(entries: Sequence[_Member]) -> dict[str, Any]:
    """What an admin approves to add members: each new party with its node identity's public keys."""
    return {"members": [[e.party, e.verify_key.hex(), e.box_key.hex()] for e in sorted(entries, key=lambda e: e.party)]}


def restore_params(party: int, blob: object) -> dict[str, Any]:
    """What an admin approves to restore a backup onto `party`: the party and the blob's SHA-256."""
    if not isinstance(blob, (bytes, bytearray)):
        raise InvalidInput("a backup is bytes")
    return {"party": party, "backup_sha256": hashlib.sha256(bytes(blob)).hexdigest()}
