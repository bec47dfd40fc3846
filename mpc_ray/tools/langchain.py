"""The agent tool table as LangChain tools (`langchain-core` only; ``pip install 'mpc-ray[langchain]'``).

    tools = langchain_tools(AgentTools(mpc.handle(agent=agent), evm_key_id=...))
    llm.bind_tools(tools)                      # or tools[i].invoke({...}) directly

Each tool's `args_schema` is the table's strict input model; a result or a structured error comes back as the
tool's output (a dict), an argument the schema refuses as the same error's JSON text.
"""

from __future__ import annotations

from typing import Any

from .table import TOOLS, AgentTools, ToolSpec, dumps, error_result

__all__ = ["langchain_tools"]


def _tool(tools: AgentTools, spec: ToolSpec) -> Any:
    from langchain_core.tools import StructuredTool

    def run(**kwargs: Any) -> dict[str, Any]:
        return tools.call(spec.name, kwargs)

    async def arun(**kwargs: Any) -> dict[str, Any]:
        return await tools.acall(spec.name, kwargs)

    return StructuredTool.from_function(func=run, coroutine=arun, name=spec.name, description=spec.description,
                                        args_schema=spec.input, infer_schema=False,
                                        handle_validation_error=lambda exc: dumps(error_result(exc)))


def langchain_tools(tools: AgentTools) -> list[Any]:
    """One `StructuredTool` per entry of the table, bound to `tools` (one agent principal)."""
    return [_tool(tools, spec) for spec in TOOLS]
