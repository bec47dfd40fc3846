"""What a share holder tells a (restarted) coordinator about the keys it holds: public views only.

A coordinator keeps its key table in memory. When Ray restarts it, it rebuilds the table from the holders: each
holder lists, for every key it holds a share of, the key's scheme, epoch and public record (ECDSA: public key,
threshold, parties, public shares, chain code; FROST: the public key package). No secret leaves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .frost_holder import key_entry_name
from .lifecycle import public_view

if TYPE_CHECKING:
    from .holder import ShareHolder

_ECDSA_PREFIX = "key-"
_FROST_PREFIX = key_entry_name("")  # "frost-"


def key_ids(holder: ShareHolder) -> list[str]:
    """Ids of the keys this holder has a share of (ECDSA and FROST), sorted."""
    names = holder.store.names()
    ids = {n[len(_ECDSA_PREFIX):] for n in names if n.startswith(_ECDSA_PREFIX)}
    ids |= {n[len(_FROST_PREFIX):] for n in names if n.startswith(_FROST_PREFIX)}
    return sorted(i for i in ids if i)


def key_views(holder: ShareHolder) -> dict[str, dict]:
    """{key id: {"scheme", "epoch", "public"}} for every key this holder holds (see `lifecycle.public_view`)."""
    return {key_id: public_view(holder, key_id) for key_id in key_ids(holder)}
