"""Node-local pieces of a share holder: identity keys, sealed envelopes, encrypted store, consumed-id ledger.

Nothing here imports Ray; the share-holder actor (`mpc_ray.node.holder`) wires these together.
"""
