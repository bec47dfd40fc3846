"""Bodies of admin requests that the client builds and every holder reads back the same way."""

from __future__ import annotations

import hashlib

from ..errors import InvalidInput

__all__ = ["restore_params"]


def restore_params(party: int, blob: object) -> dict:
    """What an admin approves to restore a backup onto `party`: the party and the blob's SHA-256."""
    if not isinstance(blob, (bytes, bytearray)):
        raise InvalidInput("a backup is bytes")
    return {"party": party, "backup_sha256": hashlib.sha256(bytes(blob)).hexdigest()}
