"""What a share holder tells a (restarted) coordinator about the keys it holds: public views only.

A coordinator keeps its key table in memory. When Ray restarts it, it rebuilds the table from the holders: each
holder lists, for every key it holds a share of, the key's scheme, epoch and public record (ECDSA: public key,
threshold, parties, public shares, chain code; FROST: the public key package). No secret leaves.
"""

from __future__ import annotations

from .holder_state import HolderState, ecdsa_key_entry, frost_key_entry
from .lifecycle import KeyLifecycle

_ECDSA_PREFIX = ecdsa_key_entry("")  # "key-"
_FROST_PREFIX = frost_key_entry("")  # "frost-"


def key_ids(state: HolderState) -> list[str]:
    """Ids of the keys this holder has a share of (ECDSA and FROST), sorted."""
    names = state.store.names()
    ids = {n[len(_ECDSA_PREFIX):] for n in names if n.startswith(_ECDSA_PREFIX)}
    ids |= {n[len(_FROST_PREFIX):] for n in names if n.startswith(_FROST_PREFIX)}
    return sorted(i for i in ids if i)


def key_views(lifecycle: KeyLifecycle) -> dict[str, dict]:
    """{key id: {"scheme", "epoch", "public"}} for every key this holder holds (see `KeyLifecycle.public_view`)."""
    return {key_id: lifecycle.public_view(key_id) for key_id in key_ids(lifecycle.state)}
