"""The agent tool table as OpenAI Agents SDK function tools (``pip install 'mpc-ray[openai-agents]'``).

    agent = agents.Agent(name="payer", tools=openai_agents_tools(AgentTools(...)))

Each `FunctionTool` carries the table's input schema in the SDK's strict form (where it has one: free-form objects
such as EIP-712 typed data do not); the SDK hands the model's JSON
arguments to the table, which validates them again (``extra="forbid"``) and answers with the result's or the
structured error's JSON.
"""

from __future__ import annotations

import json
from typing import Any

from .table import TOOLS, AgentTools, ToolSpec, dumps

__all__ = ["openai_agents_tools"]


def _tool(tools: AgentTools, spec: ToolSpec) -> Any:
    from agents import FunctionTool
    from agents.exceptions import UserError
    from agents.strict_schema import ensure_strict_json_schema

    async def invoke(ctx: Any, arguments: str) -> str:
        try:
            parsed = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            return dumps({"error": "InvalidInput", "message": "tool arguments are not JSON"})
        if not isinstance(parsed, dict):
            return dumps({"error": "InvalidInput", "message": "tool arguments are a JSON object"})
        # strict mode sends every optional field, as null when unused: null means "the default" here
        return dumps(await tools.acall(spec.name, {k: v for k, v in parsed.items() if v is not None}))

    try:
        schema, strict = ensure_strict_json_schema(spec.schema()), True
    except UserError:  # a free-form object (typed data, a JSON body) has no strict form: the table still validates
        schema, strict = spec.schema(), False
    return FunctionTool(name=spec.name, description=spec.description, params_json_schema=schema,
                        on_invoke_tool=invoke, strict_json_schema=strict)


def openai_agents_tools(tools: AgentTools) -> list[Any]:
    """One `FunctionTool` per entry of the table, bound to `tools` (one agent principal)."""
    return [_tool(tools, spec) for spec in TOOLS]
