"""The agent's tools (webfetch, websearch, todowrite/todoread, question, MCP servers' tools) and
their registry."""

from opencode_api.tools._base import (
    QuestionRejected,
    Tool,
    ToolContext,
    ToolError,
    ToolFactory,
    ToolOutput,
    ToolResult,
)
from opencode_api.tools._mcp import McpServers, McpServerStatus, McpTimings
from opencode_api.tools._mcp_config import McpConfig, McpConfigError, load_mcp_config
from opencode_api.tools._mcp_tool import McpTool
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
