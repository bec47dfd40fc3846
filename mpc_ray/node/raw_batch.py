"""Moved to `mpc_ray.requests.raw_batch` (the body of a ``raw_batch`` request); the old import path keeps working."""

from ..requests.raw_batch import *  # noqa: F403 - the old import path re-exports the module's public names
from ..requests.raw_batch import MAX_MESSAGE_BYTES, __all__  # noqa: F401
