"""Old import path of coordinator/frost_engine.py (`FrostPools` is `FrostEngine`)."""

from ..errors import HolderRefused as HolderRefused  # noqa: F401  (older path still)
from .frost_engine import FrostEngine as FrostPools  # noqa: F401
from .frost_engine import FrostKey as FrostKey, combine as combine, fast_verify as fast_verify  # noqa: F401
from .frost_engine import signature_bytes as signature_bytes  # noqa: F401
