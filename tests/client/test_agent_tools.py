"""The agent tool table (mpc_ray/tools) without Ray: strict input schemas, one agent principal and never an admin's
or operator's key, structured results and errors, and the doors (MCP over stdio and streamable HTTP through the SDK's
own client, LangChain, OpenAI Agents SDK) as thin adapters over the same table. Keys are `mpc_ray.sim` keys behind
`SimSigner`; chains: an in-process EVM (eth-tester) where a tool must reach one."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import nacl.signing
import pytest

from mpc_ray import sim
from mpc_ray.client.credentials import Credentials
from mpc_ray.client.signer import Agent
from mpc_ray.client.simsigner import SimSigner
from mpc_ray.errors import InvalidInput, PolicyDenied
from mpc_ray.requests import Principal, PrincipalRegistry, Role
from mpc_ray.tools import TOOLS, AgentTools, load_agent
from mpc_ray.tools.mcp import build_server
from tests.support.chain import fund, evm_tester
from tests.support.primes import fixture_paillier_key

ROOT = Path(__file__).resolve().parents[2]
ALICE = "0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1"
AGENT_KEY = nacl.signing.SigningKey.generate()


@pytest.fixture(scope="module")
def keys():
    aux = sim.aux_info(3, "112", paillier_keys={i: fixture_paillier_key("112", i) for i in (1, 2, 3)})
    return {"evm": sim.keygen("ecdsa-secp256k1", parties=3, threshold=2, aux=aux)}


@pytest.fixture(scope="module")
def chain(keys):
    w3 = evm_tester()
    tools = AgentTools(SimSigner(keys, agent=Agent("bot", AGENT_KEY)), evm_key_id="evm", evm_chains={w3.eth.chain_id: w3})
    fund(w3, tools.evm_wallet().address, 10**18)
    return w3, tools


class DenyingSigner(SimSigner):
    """A committee whose nodes refuse every request under a policy rule (as PolicyDenied reaches a wallet)."""

    def sign_payload(self, payload):
        raise PolicyDenied("policy.per_tx_cap", "amount above the per-transaction cap")


# -- schemas --------------------------------------------------------------------------------------------------------
def test_every_tool_has_a_strict_schema_and_refuses_unknown_fields(chain):
    w3, tools = chain
    assert len({s.name for s in TOOLS}) == len(TOOLS) >= 8
    for spec in TOOLS:
        schema = spec.schema()
        assert schema["type"] == "object" and schema["additionalProperties"] is False, spec.name
        out = tools.call(spec.name, {"surprise": 1})
        assert out["error"] == "InvalidInput" and "surprise" in out["message"], (spec.name, out)
    nonce = w3.eth.get_transaction_count(tools.evm_wallet().address)
    out = tools.call("send_evm_transaction", {"chain_id": w3.eth.chain_id, "to": ALICE, "value_wei": 1, "from": ALICE})
    assert out["error"] == "InvalidInput" and "extra_forbidden" in out["message"]
    assert w3.eth.get_transaction_count(tools.evm_wallet().address) == nonce  # nothing signed or sent


@pytest.mark.parametrize("args,where", [
    ({"to": "0x1234", "value_wei": 1}, "to"),
    ({"to": ALICE, "value_wei": "-1"}, "value_wei"),
    ({"to": ALICE, "value_wei": 1.5}, "value_wei"),
    ({"to": ALICE, "data": "0xabc"}, "data"),
    ({"to": ALICE, "tx_type": "eip4844"}, "tx_type"),
    ({"to": ALICE, "gas": 100}, "gas"),
])
def test_malformed_values_are_refused_before_signing(chain, args, where):
    w3, tools = chain
    out = tools.call("send_evm_transaction", {"chain_id": w3.eth.chain_id, **args})
    assert out["error"] == "InvalidInput" and where in out["message"], out


def test_semantic_refusals_are_structured(chain):
    w3, tools = chain
    cid = w3.eth.chain_id
    bad_checksum = ALICE[:-1] + ("A" if ALICE[-1] != "A" else "B")
    assert tools.call("send_evm_transaction", {"chain_id": cid, "to": bad_checksum})["error"] == "InvalidInput"
    out = tools.call("send_evm_transaction", {"chain_id": 1, "to": ALICE, "value_wei": 1})
    assert out["error"] == "InvalidInput" and "no RPC endpoint for chain 1" in out["message"]
    out = tools.call("send_evm_transaction", {"chain_id": cid, "to": ALICE, "tx_type": "legacy",
                                              "max_fee_per_gas": 10**9})
    assert out["error"] == "InvalidInput"
    assert tools.call("transfer_sol", {"to": "11111111111111111111111111111111", "lamports": 1})["error"] == \
        "InvalidInput"  # no Solana key configured
    assert tools.call("no_such_tool", {})["error"] == "UnknownTool"


def test_a_misconfigured_rpc_endpoint_is_refused(keys):
    """An endpoint registered for another chain id would have the agent sign for one chain and broadcast to
    another: refused before signing."""
    w3 = evm_tester()
    tools = AgentTools(SimSigner(keys, agent=Agent("bot", AGENT_KEY)), evm_key_id="evm", evm_chains={8453: w3})
    out = tools.call("send_evm_transaction", {"chain_id": 8453, "to": ALICE, "value_wei": 1})
    assert out["error"] == "ChainError" and "serves chain" in out["message"]


def test_policy_denial_is_structured_and_nothing_reaches_the_chain(keys, chain):
    w3, _ = chain
    tools = AgentTools(DenyingSigner(keys, agent=Agent("bot", AGENT_KEY)), evm_key_id="evm",
                       evm_chains={w3.eth.chain_id: w3})
    block, nonce = w3.eth.block_number, w3.eth.get_transaction_count(tools.evm_wallet().address)
    out = tools.call("send_evm_transaction", {"chain_id": w3.eth.chain_id, "to": ALICE, "value_wei": 10**17})
    assert out == {"error": "PolicyDenied", "rule": "policy.per_tx_cap",
                   "message": "denied by policy rule 'policy.per_tx_cap': amount above the per-transaction cap"}
    assert (w3.eth.block_number, w3.eth.get_transaction_count(tools.evm_wallet().address)) == (block, nonce)


def test_unexpected_errors_name_their_type_only(keys, chain):
    w3, _ = chain

    class Broken(SimSigner):
        def sign_payload(self, payload):
            raise RuntimeError("secret share 0x1234 leaked in a message")

    tools = AgentTools(Broken(keys, agent=Agent("bot", AGENT_KEY)), evm_key_id="evm", evm_chains={w3.eth.chain_id: w3})
    out = tools.call("send_evm_transaction", {"chain_id": w3.eth.chain_id, "to": ALICE, "value_wei": 1})
    assert out == {"error": "InternalError", "message": "unexpected RuntimeError"}


# -- one agent principal -------------------------------------------------------------------------------------------
def test_tools_refuse_a_signer_without_an_agent(keys):
    with pytest.raises(InvalidInput, match="operator"):
        AgentTools(SimSigner(keys), evm_key_id="evm")  # would sign as the committee's operator


def test_load_agent_from_env_and_file(tmp_path):
    seed = bytes(AGENT_KEY).hex()
    agent = load_agent(environ={"MPC_RAY_AGENT_KEY": f"bot:{seed}"})
    assert agent.principal_id == "bot" and agent.verify_key == bytes(AGENT_KEY.verify_key)
    assert seed not in repr(agent)
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"id": "bot", "seed": seed}))
    path.chmod(0o644)
    with pytest.raises(InvalidInput, match="readable by others"):
        load_agent(key_file=path, environ={})
    path.chmod(0o600)
    assert load_agent(environ={"MPC_RAY_AGENT_KEY_FILE": str(path)}).verify_key == agent.verify_key
    with pytest.raises(InvalidInput, match="no agent key"):
        load_agent(environ={})
    with pytest.raises(InvalidInput, match="64 hex"):
        load_agent(environ={"MPC_RAY_AGENT_KEY": "bot:abcd"})


def test_admin_and_operator_keys_are_refused(tmp_path, keys):
    creds = Credentials.generate()
    admin_id, admin_key = creds.admins[0]
    op_id, op_key = creds.operator
    # a credentials file given as the agent's key file
    cred_file = tmp_path / "credentials.json"
    creds.save(cred_file)
    with pytest.raises(InvalidInput, match="admin / operator credentials"):
        load_agent(key_file=cred_file, environ={})
    # the operator's or an admin's seed under the agent variable, found in the environment's credentials
    env = {"MPC_RAY_CREDENTIALS": str(cred_file)}
    for pid, key in ((op_id, op_key), (admin_id, admin_key), ("innocent", admin_key)):
        with pytest.raises(InvalidInput, match="sign only as an agent"):
            load_agent(environ={**env, "MPC_RAY_AGENT_KEY": f"{pid}:{bytes(key).hex()}"})
    env = {"MPC_RAY_OPERATOR_KEY": f"{op_id}:{bytes(op_key).hex()}"}
    with pytest.raises(InvalidInput, match="operator's"):
        load_agent(environ={**env, "MPC_RAY_AGENT_KEY": f"bot:{bytes(op_key).hex()}"})
    # the committee's registry: the principal must be an agent with this very key
    registry = PrincipalRegistry(principals=(Principal.from_signing_key("root", Role.ADMIN, admin_key),
                                             Principal.from_signing_key("bot", Role.AGENT, AGENT_KEY)))
    seed = bytes(AGENT_KEY).hex()
    assert load_agent(environ={"MPC_RAY_AGENT_KEY": f"bot:{seed}"}, registry=registry).principal_id == "bot"
    for text in (f"root:{bytes(admin_key).hex()}", f"bot:{bytes(admin_key).hex()}", f"bot2:{seed}"):
        with pytest.raises(InvalidInput, match="not an agent"):
            load_agent(environ={"MPC_RAY_AGENT_KEY": text}, registry=registry)
    # and a signer holding the operator's key as its "agent"
    with pytest.raises(InvalidInput):
        AgentTools(SimSigner(keys, agent=Agent(op_id, op_key)), evm_key_id="evm", credentials=creds)


# -- the doors -----------------------------------------------------------------------------------------------------
def test_mcp_lists_the_table_with_its_schemas(chain):
    from mcp import Client

    _, tools = chain

    async def run():
        async with Client(build_server(tools)) as client:
            listed = (await client.list_tools()).tools
            addresses = await client.call_tool("get_addresses", {})
            bad = await client.call_tool("transfer_erc20", {"chain_id": 1, "token": ALICE, "to": ALICE,
                                                            "amount": 1, "memo": "hi"})
            return listed, addresses, bad

    listed, addresses, bad = asyncio.run(run())
    assert [t.name for t in listed] == [s.name for s in TOOLS]
    assert all(t.input_schema == s.schema() for t, s in zip(listed, TOOLS))
    assert {t.name for t in listed if t.annotations.destructive_hint} == {s.name for s in TOOLS if s.sends}
    assert not addresses.is_error and addresses.structured_content["evm"]["address"] == tools.evm_wallet().address
    assert json.loads(addresses.content[0].text) == addresses.structured_content
    assert bad.is_error and bad.structured_content["error"] == "InvalidInput" and "memo" in \
        bad.structured_content["message"]


def test_langchain_and_openai_agents_tools_are_the_same_table(chain):
    from agents import FunctionTool

    from mpc_ray.tools.langchain import langchain_tools
    from mpc_ray.tools.openai_agents import openai_agents_tools

    w3, tools = chain
    lc = langchain_tools(tools)
    oa = openai_agents_tools(tools)
    assert [t.name for t in lc] == [t.name for t in oa] == [s.name for s in TOOLS]
    assert all(t.args_schema is s.input for t, s in zip(lc, TOOLS))
    assert all(isinstance(t, FunctionTool) for t in oa)
    assert {t.name for t in oa if not t.strict_json_schema} == {"sign_typed_data", "pay_x402"}  # free-form objects
    assert lc[0].invoke({})["evm"]["address"] == tools.evm_wallet().address
    refused = json.loads(lc[1].invoke({"chain_id": w3.eth.chain_id, "to": ALICE, "nonsense": True}))
    assert refused["error"] == "InvalidInput"
    out = json.loads(asyncio.run(oa[0].on_invoke_tool(None, "{}")))
    assert out["principal"] == "bot"
    out = json.loads(asyncio.run(oa[1].on_invoke_tool(None, json.dumps({"chain_id": w3.eth.chain_id, "to": ALICE,
                                                                          "value_wei": "1", "x": 1}))))
    assert out["error"] == "InvalidInput" and "x" in out["message"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mpc_ray_mcp_over_stdio_and_streamable_http():
    """`python -m mpc_ray.tools.mcp` (what `mpc-ray mcp` runs) over both transports, with the SDK's own client.
    The gateway it names is down: the tool answers a structured GatewayUnavailable across the transport."""
    from mcp import Client, StdioServerParameters

    env = {**os.environ, "MPC_RAY_AGENT_KEY": f"bot:{bytes(AGENT_KEY).hex()}", "PYTHONPATH": str(ROOT)}
    args = ["-m", "mpc_ray.tools.mcp", "--gateway", f"http://127.0.0.1:{_free_port()}", "--evm-key", "k1"]

    async def session(target):
        async with Client(target) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            return names, await client.call_tool("get_addresses", {})

    names, out = asyncio.run(session(StdioServerParameters(command=sys.executable, args=args, env=env, cwd=str(ROOT))))
    assert names == [s.name for s in TOOLS]
    assert out.is_error and out.structured_content["error"] == "GatewayUnavailable"

    port = _free_port()
    proc = subprocess.Popen([sys.executable, *args, "--transport", "streamable-http", "--port", str(port)], env=env,
                            cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
                time.sleep(0.2)
        names, out = asyncio.run(session(f"http://127.0.0.1:{port}/mcp"))
        assert names == [s.name for s in TOOLS]
        assert out.is_error and out.structured_content["error"] == "GatewayUnavailable"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_mcp_main_refuses_an_operator_key_with_exit_2(capsys):
    from mpc_ray.tools.mcp import main

    creds = Credentials.generate()
    op_id, op_key = creds.operator
    old = dict(os.environ)
    try:
        os.environ["MPC_RAY_OPERATOR_KEY"] = f"{op_id}:{bytes(op_key).hex()}"
        os.environ["MPC_RAY_AGENT_KEY"] = f"{op_id}:{bytes(op_key).hex()}"
        assert main(["--gateway", "http://127.0.0.1:9"]) == 2
    finally:
        os.environ.clear()
        os.environ.update(old)
    err = capsys.readouterr().err
    assert "sign only as an agent" in err and bytes(op_key).hex() not in err
