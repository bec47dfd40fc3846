"""Agent tools: one table of wallet tools for one agent principal (tools/table.py), served as an MCP server
(tools/mcp.py, `mpc-ray mcp`), LangChain tools (tools/langchain.py) and OpenAI Agents SDK tools
(tools/openai_agents.py). No Ray import here: a gateway-only agent needs none."""

from .chains import ChainError, EvmChains, SolanaChain, SolanaRpc
from .principal import load_agent, refuse_privileged
from .table import TOOLS, AgentTools, ToolSpec, error_result

__all__ = ["TOOLS", "AgentTools", "ChainError", "EvmChains", "SolanaChain", "SolanaRpc", "ToolSpec", "error_result",
           "load_agent", "refuse_privileged"]
