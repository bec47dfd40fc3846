"""Helpers of the tests that run on an embedded Ray cluster (`mpc_ray.local_cluster`)."""

from __future__ import annotations

import time

import ray


def call_holder(party: int, method: str, *args, wait_s: float = 90.0):
    """Call a holder, waiting while Ray restarts it (a restarted node takes a few seconds)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            holder = ray.get_actor(f"mpc-holder-{party}", namespace="mpc-ray")
            return ray.get(getattr(holder, method).remote(*args), timeout=30)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
