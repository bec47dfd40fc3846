"""mpc-ray: self-hosted threshold signing on Ray.

    import mpc_ray
    with mpc_ray.local_cluster(parties=3, threshold=2) as mpc:   # embedded Ray, one simulated node per party
        key = mpc.create_key("ecdsa-secp256k1")
        sig = mpc.sign(key.key_id, digest)

    mpc = mpc_ray.connect(address="auto")                        # an existing cluster with a deployed committee

`mpc_ray.sim` runs the same protocols in one process without Ray.
"""

from . import errors
from .types import KeyInfo, Signature

__all__ = ["KeyInfo", "Signature", "errors", "local_cluster", "connect"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Ray is imported only when the runtime is used, so `mpc_ray.sim` stays light.
    if name == "local_cluster":
        from .client.local import local_cluster

        return local_cluster
    if name == "connect":
        from .client.client import connect

        return connect
    raise AttributeError(name)
