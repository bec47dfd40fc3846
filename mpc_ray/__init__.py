"""mpc-ray: self-hosted threshold signing on Ray.

The crypto core (threshold ECDSA after CGGMP21) runs in one process through `mpc_ray.sim`; the Ray runtime
(`local_cluster`, `connect`) builds on it.
"""

from . import errors
from .types import KeyInfo, Signature

__all__ = ["KeyInfo", "Signature", "errors"]
__version__ = "0.1.0"
