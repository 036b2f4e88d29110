"""The agent's tools (webfetch, websearch, todowrite/todoread, question, MCP servers' tools) and
their registry."""

import importlib
from typing import TYPE_CHECKING, Any

from opencode_api.tools._base import (
    QuestionRejected,
    Tool,
    ToolContext,
    ToolError,
    ToolFactory,
    ToolOutput,
    ToolResult,
)
from opencode_api.tools._mcp_config import McpConfig, McpConfigError, load_mcp_config
from opencode_api.tools._question import QuestionParams, QuestionTool
from opencode_api.tools._registry import ToolRegistry, default_registry
from opencode_api.tools._search_backends import (
    DdgsBackend,
    ExaBackend,
    SearchBackend,
    SearchResult,
)
from opencode_api.tools._ssrf import (
    AddressBlocked,
    AddressPolicy,
    Lookup,
    VettingResolver,
    blocked_reason,
    parse_ip_host,
    system_lookup,
)
from opencode_api.tools._todo import (
    TodoReadParams,
    TodoReadTool,
    TodoWriteParams,
    TodoWriteTool,
)
from opencode_api.tools._webfetch import WebFetchParams, WebFetchTool
from opencode_api.tools._websearch import WebSearchParams, WebSearchTool

if TYPE_CHECKING:
    from opencode_api.tools._mcp import McpServers, McpServerStatus, McpTimings
    from opencode_api.tools._mcp_tool import McpTool

# The MCP SDK costs ~0.8 s and ~30 MB to import: only a server with MCP_CONFIG loads it.
_LAZY = {
    "McpServers": "_mcp",
    "McpServerStatus": "_mcp",
    "McpTimings": "_mcp",
    "McpTool": "_mcp_tool",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "AddressBlocked",
    "AddressPolicy",
    "DdgsBackend",
    "ExaBackend",
    "Lookup",
    "McpConfig",
    "McpConfigError",
    "McpServerStatus",
    "McpServers",
    "McpTimings",
    "McpTool",
    "QuestionParams",
    "QuestionRejected",
    "QuestionTool",
    "SearchBackend",
    "SearchResult",
    "TodoReadParams",
    "TodoReadTool",
    "TodoWriteParams",
    "TodoWriteTool",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolFactory",
    "ToolOutput",
    "ToolRegistry",
    "ToolResult",
    "VettingResolver",
    "WebFetchParams",
    "WebFetchTool",
    "WebSearchParams",
    "WebSearchTool",
    "blocked_reason",
    "default_registry",
    "load_mcp_config",
    "parse_ip_host",
    "system_lookup",
]
