"""One tool of an MCP server as the model sees it: ``<server>_<tool>``, its schema, its call."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Protocol

from mcp import types
from pydantic import BaseModel, ConfigDict

from opencode_api.tools._base import Tool, ToolContext, ToolError, ToolOutput

# What OpenAI and Anthropic accept as a tool name.
MAX_TOOL_NAME = 64
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")


class McpCaller(Protocol):
    """The server a tool belongs to (``McpServer``)."""

    @property
    def name(self) -> str: ...

    async def call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult: ...


class McpArguments(BaseModel):
    """Any JSON object: the MCP server validates the arguments against its own schema."""

    model_config = ConfigDict(extra="allow")


def exposed_name(server: str, tool: str) -> str | None:
    """``<server>_<tool>`` with characters models refuse replaced; None when too long."""
    name = f"{server}_{_NOT_IN_NAME.sub('_', tool)}"
    return name if len(name) <= MAX_TOOL_NAME else None


class McpTool(Tool[McpArguments]):
    """Calls ``remote_name`` on its server. Built per listed tool by ``build`` (names are class
    attributes of ``Tool``, so each listed tool gets its own small subclass)."""

    params: ClassVar[type[BaseModel]] = McpArguments

    def __init__(self, server: McpCaller, remote_name: str, input_schema: dict[str, Any]) -> None:
        self.server = server
        self.remote_name = remote_name
        self._schema = {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": _object_schema(input_schema),
            },
        }

    @classmethod
    def build(cls, server: McpCaller, name: str, remote: types.Tool, *, timeout: float) -> McpTool:
        description = remote.description or remote.title or f"{remote.name} ({server.name} MCP)"
        subclass = type(
            f"McpTool_{name}",
            (cls,),
            {"name": name, "description": description, "timeout": timeout},
        )
        tool: McpTool = subclass(server, remote.name, remote.input_schema)
        return tool

    def schema(self) -> dict[str, Any]:
        # The server's own JSON schema, as listed: no pydantic model stands behind it.
        return self._schema

    async def run(self, params: McpArguments, ctx: ToolContext) -> ToolOutput:
        result = await self.server.call(self.remote_name, params.model_dump())
        text = result_text(result)
        if result.is_error:
            raise ToolError(text or f"tool {self.name} failed")
        return ToolOutput(text)


def _object_schema(schema: dict[str, Any]) -> dict[str, Any]:
    # Providers reject a function whose parameters are not an object schema.
    if schema.get("type") != "object":
        return {"type": "object", "properties": {}}
    return {"properties": {}, **schema}


def result_text(result: types.CallToolResult) -> str:
    """What the model reads of a result: its text blocks; other blocks by a short label."""
    pieces: list[str] = []
    for block in result.content:
        match block:
            case types.TextContent():
                pieces.append(block.text)
            case types.ImageContent() | types.AudioContent():
                pieces.append(f"[{block.type}: {block.mime_type}, not shown]")
            case types.ResourceLink():
                pieces.append(f"[resource: {block.uri}]")
            case types.EmbeddedResource():
                resource = block.resource
                if isinstance(resource, types.TextResourceContents):
                    pieces.append(resource.text)
                else:
                    pieces.append(f"[resource: {resource.uri}, binary, not shown]")
            case _:
                pieces.append(f"[{getattr(block, 'type', 'content')}, not shown]")
    if not pieces and result.structured_content is not None:
        pieces.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(pieces)
