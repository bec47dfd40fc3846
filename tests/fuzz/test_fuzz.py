"""Every decoder of hostile input, fuzzed briefly on each test run (tests/fuzz/harnesses.py): each input is accepted
or refused with the decoder's documented typed error, never anything else, never slower than TIME_BOUND_S.

Examples per harness are sized so that all of them together take well under a minute on two busy cores; set
MPC_RAY_FUZZ_SCALE (e.g. 10) for a longer run, or use benchmarks/fuzz.py --seconds N. A failure prints the
@reproduce_failure blob that replays it."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.harnesses import HARNESSES, Harness, TooSlow, UntypedError, check

SCALE = float(os.environ.get("MPC_RAY_FUZZ_SCALE", "1"))

pytestmark = pytest.mark.fuzz


def fuzz(h: Harness, examples: int, **extra) -> None:
    @settings(max_examples=examples, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck), **extra)
    @given(h.inputs())
    def one(value):
        check(h, value)

    one()


@pytest.mark.parametrize("name", sorted(HARNESSES))
def test_decoder_accepts_or_refuses_typed(name):
    h = HARNESSES[name]
    fuzz(h, max(1, int(h.examples * SCALE)))


@pytest.mark.parametrize("name", sorted(HARNESSES))
def test_harness_seeds_are_accepted(name):
    """The mutations start from inputs the decoder accepts (else a harness would only ever test its refusals)."""
    h = HARNESSES[name]
    seeds = h.seeds()
    assert seeds
    for seed in seeds:
        assert check(h, seed), f"{name}: a seed was refused"


def test_the_property_fails_on_an_untyped_error_and_a_slow_decoder(monkeypatch):
    """The harness machinery can fail: a decoder that raises anything but its refusals, or takes too long."""
    from hypothesis import strategies as st

    from mpc_ray.errors import InvalidInput
    from tests.fuzz import harnesses

    def decode(value: int) -> None:
        if value == 3:
            raise KeyError("boom")
        if value == 4:
            raise InvalidInput("refused")

    h = Harness("probe", "probe", lambda: st.integers(0, 5), decode, (InvalidInput,), lambda: [0])
    assert check(h, 0) and not check(h, 4)
    with pytest.raises(UntypedError, match="KeyError"):
        check(h, 3)
    with pytest.raises(UntypedError):
        fuzz(h, 200)
    monkeypatch.setattr(harnesses, "TIME_BOUND_S", -1.0)
    with pytest.raises(TooSlow):
        check(h, 0)
