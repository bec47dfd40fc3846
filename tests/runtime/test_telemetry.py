"""Telemetry: the spans of one real signing (read back from the coordinator actor's in-memory exporter) carry the
rounds and their public attributes and nothing secret; the attribute guard refuses secret-shaped values; metrics
reach Ray's metrics API inside the cluster and stay no-ops outside it."""

from __future__ import annotations

import hashlib

import pytest
import ray

import mpc_ray
from mpc_ray import telemetry as tm
from mpc_ray.errors import InvalidInput, PolicyDenied, ProtocolAbort, QuorumUnavailable
from mpc_ray.node.holder import ShareHolder

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# the attribute guard, in process ---------------------------------------------------------------------------------
def test_attribute_guard_refuses_non_public_values():
    assert tm.public_attribute("key_id", "key-1") == ("mpc.key_id", "key-1")
    assert tm.public_attribute("signer_set", [1, 3]) == ("mpc.signer_set", (1, 3))
    with pytest.raises(TypeError):
        tm.public_attribute("share", 5)  # not on the list
    with pytest.raises(TypeError):
        tm.public_attribute("key_id", b"\x01" * 32)  # bytes never
    with pytest.raises(TypeError):
        tm.public_attribute("pool_depth", 2**255 + 1)  # a scalar-sized int
    with pytest.raises(TypeError):
        tm.public_attribute("check", "ab" * 40)  # long strings (a hex-encoded secret) refused
    with pytest.raises(TypeError):
        tm.public_attribute("signer_set", (1, 2**200))
    with pytest.raises(TypeError):
        tm.annotate(secret_x=1)


@pytest.fixture
def memory_tracing():
    tm.configure_tracing("memory")
    yield
    tm.configure_tracing(None)


def test_request_and_round_spans_in_process(memory_tracing):
    with pytest.raises(ProtocolAbort):
        with tm.request_span("sign", key_id="k1", messages=1):
            tm.annotate(scheme="ecdsa-secp256k1", signer_set=(1, 2), pool_depth=3)
            with tm.round_span("sign", 1, (1, 2)):
                raise ProtocolAbort(2, "sign.sigma_check", "detail text stays out of spans", reporter=1)
    with tm.round_span("presign", 1, (1, 2)):  # outside a request: background work makes no span
        pass
    spans = tm.finished_spans(clear=True)
    assert [s["name"] for s in spans] == ["mpc.round", "mpc.sign"]
    rnd, req = spans
    assert rnd["parent_id"] == req["span_id"] and rnd["trace_id"] == req["trace_id"]
    assert rnd["attributes"]["mpc.party_at_fault"] == 2 and rnd["attributes"]["mpc.check"] == "sign.sigma_check"
    assert req["attributes"]["mpc.signer_set"] == (1, 2) and req["attributes"]["mpc.pool_depth"] == 3
    assert req["status"] == "ERROR" and req["attributes"]["mpc.error"] == "ProtocolAbort"
    assert not any("detail text" in repr(s) for s in spans)


def test_denials_and_aborts_are_counted_by_reason(memory_tracing):
    before = tm.snapshot()
    with pytest.raises(PolicyDenied):
        with tm.request_span("sign_request", key_id="k1"):
            raise PolicyDenied("max_per_tx", "over the cap")
    with pytest.raises(QuorumUnavailable):
        with tm.request_span("sign", key_id="k1"):
            raise QuorumUnavailable("fewer than 2 parties")
    tm.record_abort(ProtocolAbort(3, "presign.pi_enc.range_z1"))
    after = tm.snapshot()
    assert after["denials"].get("max_per_tx", 0) == before["denials"].get("max_per_tx", 0) + 1
    assert after["aborts"].get("quorum_unavailable", 0) == before["aborts"].get("quorum_unavailable", 0) + 1
    assert after["aborts"].get("presign.pi_enc.range_z1", 0) == before["aborts"].get("presign.pi_enc.range_z1", 0) + 1
    assert after["last_errors"][-1]["party_at_fault"] == 3
    assert after["metrics_backend"] == "memory"  # no Ray in this process: the Ray metrics are no-ops


def test_otlp_and_console_exporters_send_the_spans(capsys):
    """OTLP over HTTP to a collector (here a local stand-in that records what it receives), and the console."""
    import http.server
    import threading

    received: list[tuple[str, bytes]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tm.configure_tracing("otlp", endpoint=f"http://127.0.0.1:{server.server_port}/v1/traces")
        with tm.request_span("sign", key_id="otlp-key"):
            tm.annotate(signer_set=(1, 3))
        tm.flush()
        assert received and received[0][0] == "/v1/traces"
        assert b"mpc.sign" in received[0][1] and b"otlp-key" in received[0][1]
        tm.configure_tracing("console")
        with tm.request_span("keygen", key_id="console-key"):
            pass
        assert '"mpc.key_id": "console-key"' in capsys.readouterr().out
    finally:
        tm.configure_tracing(None)
        server.shutdown()


def test_configure_refuses_unknown_exporter(monkeypatch, caplog):
    with pytest.raises(ValueError):
        tm.configure_tracing("zipkin")
    monkeypatch.setenv(tm.ENV_EXPORTER, "zipkin")  # in a coordinator's environment: logged, not fatal
    tm.configure_from_env()
    assert tm.tracing_exporter() is None and "tracing stays off" in caplog.text
    monkeypatch.setenv(tm.ENV_EXPORTER, "memory")
    tm.configure_from_env()
    assert tm.tracing_exporter() == "memory"
    tm.configure_tracing(None)


# one real signing on the runtime ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mpc():
    with mpc_ray.local_cluster(parties=3, threshold=2, security="112", kdf="min", pool_depth=4) as cluster:
        yield cluster


def _secrets(mpc, key_id: str) -> list[int | bytes]:
    """Every secret of every party this test can reach from the parties' own disks."""
    out: list[int | bytes] = []
    for party in (1, 2, 3):
        h = ShareHolder(party, str(mpc.state_dir(party)), kdf="min", role="worker")  # reads the store only
        aux = h.aux()
        out += [h.key(key_id).x, int(aux.paillier.p), int(aux.paillier.q), h.identity.to_secret_bytes()]
    creds = mpc.credentials  # the client's principal keys, which sign every request the spans describe
    return out + [bytes(k) for _, k in creds.admins] + [bytes(creds.operator[1])]


def _leaks(value, secret) -> bool:
    text = repr(value).lower()
    if isinstance(secret, bytes):
        return secret.hex() in text or repr(secret) in repr(value)
    return str(secret) in text or f"{secret:x}" in text


def test_spans_of_one_signing_have_the_rounds_and_no_secret(mpc):
    coord = mpc._coordinator
    ray.get(coord.configure_tracing.remote("memory"))
    key = mpc.create_key("ecdsa-secp256k1")
    mpc.wait_for_pools(key.key_id, 1)
    ray.get(coord.telemetry.remote(clear_spans=True))  # drop the keygen's spans: one signing from here on
    digest = hashlib.sha256(b"one traced signing").digest()
    mpc.sign_many(key.key_id, [digest])  # through the coordinator (sign() may take the one-hop path)
    spans = ray.get(coord.telemetry.remote(clear_spans=True))["spans"]

    (req,) = [s for s in spans if s["name"] == "mpc.sign"]
    a = req["attributes"]
    assert a["mpc.key_id"] == key.key_id and a["mpc.scheme"] == "ecdsa-secp256k1" and a["mpc.outcome"] == "ok"
    assert a["mpc.messages"] == 1 and len(a["mpc.signer_set"]) == 2 and a["mpc.pool_depth"] >= 1
    rounds = [s for s in spans if s["name"] == "mpc.round" and s["trace_id"] == req["trace_id"]]
    assert rounds and all(s["parent_id"] == req["span_id"] for s in rounds)
    sign_round = next(s for s in rounds if s["attributes"]["mpc.protocol"] == "sign")
    assert sign_round["attributes"]["mpc.parties"] == a["mpc.signer_set"]
    assert sign_round["attributes"]["mpc.round"] == 1 and sign_round["attributes"]["mpc.outcome"] == "ok"

    secrets_ = _secrets(mpc, key.key_id)
    for span in spans:
        for name, value in span["attributes"].items():
            assert name.startswith("mpc.")
            assert isinstance(value, (str, int, float, bool, tuple)), (name, value)
            assert not isinstance(value, int) or abs(value) < 2**63
            assert not any(_leaks(value, s) for s in secrets_), name


def test_frost_signing_spans(mpc):
    coord = mpc._coordinator
    ray.get(coord.configure_tracing.remote("memory"))
    key = mpc.create_key("eddsa-ed25519")
    mpc.wait_for_pools(key.key_id, 1)
    ray.get(coord.telemetry.remote(clear_spans=True))
    mpc.sign_many(key.key_id, [b"solana message"])
    spans = ray.get(coord.telemetry.remote(clear_spans=True))["spans"]
    ray.get(coord.configure_tracing.remote(None))
    (req,) = [s for s in spans if s["name"] == "mpc.sign"]
    a = req["attributes"]
    assert a["mpc.scheme"] == "eddsa-ed25519" and len(a["mpc.signer_set"]) == 2 and a["mpc.pool_depth"] >= 1
    (rnd,) = [s for s in spans if s["name"] == "mpc.round" and s["parent_id"] == req["span_id"]]
    assert rnd["attributes"]["mpc.protocol"] == "frost-sign" and rnd["attributes"]["mpc.parties"] == a["mpc.signer_set"]


def test_keygen_trace_has_every_round_and_metrics_reach_ray(mpc):
    coord = mpc._coordinator
    ray.get(coord.configure_tracing.remote("memory"))
    ray.get(coord.telemetry.remote(clear_spans=True))
    key = mpc.create_key("ecdsa-secp256k1")
    spans = ray.get(coord.telemetry.remote(clear_spans=True))["spans"]
    (req,) = [s for s in spans if s["name"] == "mpc.keygen"]
    children = [s for s in spans if s["name"] == "mpc.round" and s["parent_id"] == req["span_id"]]
    for protocol in {s["attributes"]["mpc.protocol"] for s in children}:  # keygen, then DKLs23's setup (default)
        rounds = sorted(s["attributes"]["mpc.round"] for s in children if s["attributes"]["mpc.protocol"] == protocol)
        assert rounds == list(range(1, len(rounds) + 1))
    assert len([s for s in children if s["attributes"]["mpc.protocol"] == "keygen"]) >= 3
    mpc.wait_for_pools(key.key_id, 1)
    mpc.sign(key.key_id, hashlib.sha256(b"metrics").digest())
    with pytest.raises(InvalidInput):
        mpc.sign("no-such-key", hashlib.sha256(b"x").digest())
    snap = mpc.status()["telemetry"]
    assert snap["metrics_backend"] == "ray"  # ray.util.metrics objects live in the coordinator actor
    assert snap["sign_latency"]["ecdsa-secp256k1"]["count"] >= 1
    assert any(k.startswith(key.key_id + ":") for k in snap["pool_depth"])
    assert snap["last_errors"][-1]["error"] == "InvalidInput"
    ray.get(coord.configure_tracing.remote(None))


def test_client_side_sign_spans_cover_the_one_hop_path(mpc, memory_tracing):
    """MpcClient.sign may sign in one hop to the holders (client/fastpath.py), without the coordinator: the client
    process records its own span and latency for every call."""
    key = mpc.create_key("ecdsa-secp256k1")
    mpc.wait_for_pools(key.key_id, 2)
    for i in range(4):
        mpc.sign(key.key_id, hashlib.sha256(b"client %d" % i).digest())
    spans = [s for s in tm.finished_spans() if s["name"] == "mpc.client.sign"]
    assert len(spans) == 4
    assert all(s["attributes"]["mpc.key_id"] == key.key_id and s["attributes"]["mpc.outcome"] == "ok" for s in spans)
    assert tm.snapshot()["sign_latency"]["client"]["count"] >= 4


def test_metrics_reach_rays_prometheus_endpoint(mpc):
    """The coordinator's metrics are real Ray metrics: Ray's metrics agent serves them (Prometheus format)."""
    import time
    import urllib.request

    key = mpc.create_key("ecdsa-secp256k1")
    mpc.wait_for_pools(key.key_id, 1)
    mpc.sign_many(key.key_id, [hashlib.sha256(b"prometheus").digest()])
    want = {"ray_mpc_sign_latency_seconds_count", "ray_mpc_pool_depth"}
    names: set[str] = set()
    deadline = time.monotonic() + 45  # Ray reports metrics every 10 s or so
    while not want <= names and time.monotonic() < deadline:
        time.sleep(2)
        for node in ray.nodes():
            if not node["Alive"]:
                continue
            url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            names |= {line.split("{")[0] for line in text.splitlines() if line.startswith("ray_mpc_")}
    assert want <= names, names
