import os
import sys

import pytest

# Ray >= 2.60 turns token auth on by default and writes ~/.ray/auth_token; tests pin it so runs do not leak state.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

# The fixtures that start an embedded Ray cluster in this process (module: fixture names). Every test that uses
# one, directly or through another fixture, is marked `ray`, so `-m "not ray"` runs the layers below the runtime
# alone. Tests that start Ray in a child process (the CLI, README programs, deployments) carry the mark where they
# are. A test that starts Ray in this process without the mark fails (see pytest_runtest_setup below).
RAY_FIXTURES = {
    "tests.cli_gateway.test_gateway": {"gateway"},
    "tests.client.test_async_client": {"mpc"},
    "tests.client.test_chain_committee": {"mpc"},
    "tests.client.test_first_hour_client": {"committee"},
    "tests.runtime.test_dkls23_runtime": {"mpc"},
    "tests.runtime.test_frost_runtime": {"mpc"},
    "tests.runtime.test_hd_runtime": {"mpc"},
    "tests.runtime.test_lifecycle_runtime": {"mpc"},
    "tests.runtime.test_runtime_ray": {"mpc"},
    "tests.runtime.test_telemetry": {"mpc"},
    "tests.runtime.test_vault_runtime": {"mpc"},
}


def _starts_ray(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(fd.argname in RAY_FIXTURES.get(getattr(fd.func, "__module__", ""), ())
               for defs in info.name2fixturedefs.values() for fd in defs)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("ray") is None and _starts_ray(item):
            item.add_marker(pytest.mark.ray)


_RAY_INITS: list[str] = []  # who called ray.init during the current test's setup or call


def pytest_configure(config: pytest.Config) -> None:
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is a dependency; without it no test can start it
        return
    if getattr(ray.init, "_counted_by_tests", False):
        return
    real_init = ray.init

    def init(*args, **kwargs):
        _RAY_INITS.append("ray.init")
        return real_init(*args, **kwargs)

    init._counted_by_tests = True  # type: ignore[attr-defined]
    ray.init = init


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    return (yield from _unmarked_ray_fails(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    return (yield from _unmarked_ray_fails(item))


def _unmarked_ray_fails(item: pytest.Item):
    """The `ray` mark is enforced: a test (or a fixture of it) that starts Ray in this process must carry it."""
    _RAY_INITS.clear()
    result = yield
    if _RAY_INITS and item.get_closest_marker("ray") is None and "ray" in sys.modules:
        _RAY_INITS.clear()
        pytest.fail(f"{item.nodeid} starts Ray but is not marked `ray`: add its fixture to RAY_FIXTURES in "
                    "tests/conftest.py, or mark the test", pytrace=False)
    return result
