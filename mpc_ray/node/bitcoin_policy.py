"""Moved to `mpc_ray.intents.bitcoin` (PSBT decoding into a ``btc_transfer`` intent, and the sender check); the old
import path keeps working."""

from ..intents.bitcoin import *  # noqa: F403 - the old import path re-exports the module's public names
from ..intents.bitcoin import __all__  # noqa: F401
