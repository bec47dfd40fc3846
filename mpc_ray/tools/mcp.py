"""`mpc-ray mcp`: the agent tool table (tools/table.py) as an MCP server (the `mcp` SDK; stdio or streamable HTTP).

    MPC_RAY_AGENT_KEY_FILE=agent.json mpc-ray mcp --gateway http://signer.internal:8000 \\
        --evm-key key-... --evm-rpc 8453=https://mainnet.base.org --solana-key key-... --solana-rpc https://...
    mpc-ray mcp --ray-address auto ... --transport streamable-http --port 8765     # http://127.0.0.1:8765/mcp

Each tool's input schema is its pydantic model's (``additionalProperties: false``) and the server validates the
arguments against it again; results are ``structuredContent`` (and the same JSON as text), errors are results
with ``isError`` and ``{"error", "message", "rule"?}``. The server holds one agent's key and nothing else: over
Ray it connects with no admin or operator credentials. Needs ``pip install 'mpc-ray[mcp]'``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidInput, MpcError
from .table import TOOLS, AgentTools, dumps

__all__ = ["build_server", "main", "serve"]


def build_server(tools: AgentTools, *, name: str = "mpc-ray") -> Any:
    """A low-level `mcp.server.Server` listing `TOOLS` and calling them on `tools`."""
    import mcp_types as types
    from mcp.server import Server

    listed = [types.Tool(name=s.name, description=s.description, input_schema=s.schema(),
                         annotations=types.ToolAnnotations(read_only_hint=s.name == "get_addresses",
                                                           destructive_hint=s.sends, idempotent_hint=False,
                                                           open_world_hint=True))
              for s in TOOLS]

    async def list_tools(ctx: Any, params: Any) -> Any:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: Any, params: Any) -> Any:
        result = await tools.acall(params.name, params.arguments or {})
        return types.CallToolResult(content=[types.TextContent(type="text", text=dumps(result))],
                                    structured_content=result, is_error="error" in result)

    return Server(name, instructions=f"Wallet tools of agent {tools.agent.principal_id!r} on an mpc-ray committee "
                                     "(threshold signing under the nodes' policy).",
                  on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_stdio(server: Any) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def serve(tools: AgentTools, *, transport: str = "stdio", host: str = "127.0.0.1", port: int = 8765,
          path: str = "/mcp") -> None:
    """Serve until stopped: over stdio (a client starts this process) or streamable HTTP at http://host:port/path."""
    import anyio

    server = build_server(tools)
    if transport == "stdio":
        anyio.run(serve_stdio, server)
    elif transport == "streamable-http":
        import uvicorn

        app = server.streamable_http_app(streamable_http_path=path, host=host)
        uvicorn.run(app, host=host, port=port, log_level="warning")
    else:
        raise InvalidInput("transport is stdio or streamable-http")


def _rpc(text: str) -> tuple[int, str]:
    chain, sep, url = text.partition("=")
    if not sep or not chain.isdigit() or not url:
        raise argparse.ArgumentTypeError("expected CHAIN_ID=URL, e.g. 8453=https://mainnet.base.org")
    return int(chain), url


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mpc-ray mcp", description="Serve one agent's wallet tools over MCP.")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--gateway", metavar="URL", help="the committee's HTTP gateway (no Ray needed)")
    where.add_argument("--ray-address", metavar="ADDR", help="a Ray cluster with a deployed committee ('auto')")
    p.add_argument("--namespace", default="mpc-ray")
    p.add_argument("--agent-key-file", help="JSON {id, seed}, mode 0600 (default: $MPC_RAY_AGENT_KEY_FILE, "
                                            "or $MPC_RAY_AGENT_KEY=id:hex-seed)")
    p.add_argument("--evm-key", help="key id of the agent's ecdsa-secp256k1 key")
    p.add_argument("--evm-path", help="BIP32 child path of the EVM key (m/0/7)")
    p.add_argument("--evm-rpc", type=_rpc, action="append", default=[], metavar="CHAIN_ID=URL")
    p.add_argument("--solana-key", help="key id of the agent's eddsa-ed25519 key")
    p.add_argument("--solana-chain", help="CAIP-2 cluster the policy names (default: mainnet-beta)")
    p.add_argument("--solana-rpc", metavar="URL")
    p.add_argument("--bitcoin-key", help="key id of the agent's schnorr-bip340 key")
    p.add_argument("--bitcoin-network", default="mainnet",
                   choices=["mainnet", "testnet", "testnet4", "signet", "regtest"])
    p.add_argument("--transport", default="stdio", choices=["stdio", "streamable-http"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--path", default="/mcp")
    return p


def tools_from_args(args: argparse.Namespace) -> AgentTools:
    from .chains import EvmChains, SolanaRpc
    from .principal import load_agent

    agent = load_agent(key_file=args.agent_key_file)
    if args.gateway:
        from ..client.remote import RemoteSigner

        signer: Any = RemoteSigner(args.gateway, agent)
    else:
        from ..client.client import connect
        from ..client.credentials import Credentials

        # no admin or operator keys in this process, whatever the environment holds
        signer = connect(args.ray_address, namespace=args.namespace, credentials=Credentials()).handle(agent=agent)
    return AgentTools(signer, evm_key_id=args.evm_key, evm_path=args.evm_path, solana_key_id=args.solana_key,
                      solana_chain=args.solana_chain, bitcoin_key_id=args.bitcoin_key,
                      bitcoin_network=args.bitcoin_network, evm_chains=EvmChains.from_urls(dict(args.evm_rpc)),
                      solana=SolanaRpc(args.solana_rpc) if args.solana_rpc else None)


def main(argv: Sequence[str] | None = None) -> int:
    """`mpc-ray mcp ...`: 0 when the server stops, 2 for a configuration error (printed to stderr: stdout is the
    stdio transport's)."""
    args = parser().parse_args(argv)
    try:
        tools = tools_from_args(args)
    except (MpcError, OSError) as e:
        print(f"mpc-ray mcp: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    serve(tools, transport=args.transport, host=args.host, port=args.port, path=args.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
