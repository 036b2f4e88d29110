"""The tools a session may use, and the one place a call is parsed, timed, capped and reported."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from opencode_api.settings import Settings
from opencode_api.tools._base import Tool, ToolContext, ToolError, ToolResult
from opencode_api.tools._question import QuestionTool
from opencode_api.tools._ssrf import Lookup
from opencode_api.tools._todo import TodoReadTool, TodoWriteTool
from opencode_api.tools._webfetch import WebFetchTool
from opencode_api.tools._websearch import WebSearchTool

if TYPE_CHECKING:
    from opencode_api.tools._mcp import McpServers

log = structlog.get_logger(__name__)


def _format_validation_error(name: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "(arguments)"
        problems.append(f"{field}: {error['msg']}")
    return f"invalid arguments for tool {name}: " + "; ".join(problems)


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n\n... (output truncated, {len(text) - limit} more characters)"


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g}"


class ToolRegistry:
    """Holds tool instances by name and runs calls to them.

    ``execute`` never raises for a failing tool: bad arguments, a timeout, a ``ToolError`` or any
    other exception become a ``ToolResult`` with ``is_error=True``. Only cancellation (an abort)
    propagates. ``mcp``: the MCP servers whose connected tools are offered after the built-in
    ones (``start`` connects them).
    """

    def __init__(self, tools: Iterable[Tool[Any]] = (), *, mcp: McpServers | None = None) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        self.mcp = mcp
        # pydantic builds a JSON schema in ~1 ms per tool: once per turn it led the server's
        # profile at 1,000 sessions. Built once, kept as JSON so each caller gets its own copy.
        self._schemas: list[dict[str, Any]] | None = None
        self._builtin_schemas: list[dict[str, Any]] | None = None
        # Rebuilt when an MCP server connects or fails (the servers' version changes).
        self._schemas_version = -1
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool[Any]) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        self._schemas = self._builtin_schemas = None

    def start(self) -> None:
        """Read MCP_CONFIG and start connecting its servers in the background (the runtime's
        start-up; ``McpConfigError`` for a bad file)."""
        if self.mcp is not None:
            self.mcp.start()

    def get(self, name: str) -> Tool[Any] | None:
        tool = self._tools.get(name)
        if tool is None and self.mcp is not None:
            return self.mcp.get(name)
        return tool

    @property
    def names(self) -> list[str]:
        """Built-in tools, then the tools of the MCP servers connected now."""
        offered = [t.name for t in self.mcp.offered()] if self.mcp is not None else []
        return [*self._tools, *(name for name in offered if name not in self._tools)]

    def __contains__(self, name: object) -> bool:
        return name in self._tools or (isinstance(name, str) and self.get(name) is not None)

    def __iter__(self) -> Iterator[Tool[Any]]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        """The OpenAI-format schemas of every tool, in registration order, then the tools of the
        MCP servers connected now.

        Built once (the MCP part again when a server connects, drops or changes its tools) and
        shared: callers treat the list as read-only (it goes into request bodies).
        """
        version = self.mcp.version if self.mcp is not None else 0
        if self._schemas is None or version != self._schemas_version:
            if self._builtin_schemas is None:
                self._builtin_schemas = [tool.schema() for tool in self._tools.values()]
            self._schemas = list(self._builtin_schemas)
            if self.mcp is not None:
                offered = (t for t in self.mcp.offered() if t.name not in self._tools)
                self._schemas.extend(tool.schema() for tool in offered)
            self._schemas_version = version
        return self._schemas

    async def execute(
        self, tool_call_id: str, name: str, arguments_json: str, ctx: ToolContext
    ) -> ToolResult:
        """Run one call; the result is what the model and the client see."""

        def error(text: str, arguments: dict[str, Any] | None = None) -> ToolResult:
            return ToolResult(tool_call_id, name, text, is_error=True, arguments=arguments)

        tool = self.get(name)
        unavailable = self.mcp.unavailable(name) if tool is None and self.mcp else None
        if unavailable is not None:
            return error(unavailable)
        if tool is None:
            available = ", ".join(self._tools) or "none"
            return error(f"unknown tool {name!r}; available tools: {available}")
        # Models send "" (or nothing) for a call without parameters.
        raw = arguments_json.strip() or "{}"
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError as exc:
            return error(f"invalid arguments for tool {name}: not valid JSON ({exc})")
        if not isinstance(arguments, dict):
            return error(
                f"invalid arguments for tool {name}: expected a JSON object, "
                f"got {type(arguments).__name__}"
            )
        try:
            params = tool.params.model_validate(arguments)
        except ValidationError as exc:
            return error(_format_validation_error(name, exc), arguments)

        timeout = tool.timeout_for(params)
        try:
            async with asyncio.timeout(timeout) as deadline:
                output = await tool.run(params, ctx)
        except TimeoutError:
            if deadline.expired():
                return error(f"tool {name} timed out after {_format_seconds(timeout)} s", arguments)
            log.exception("tool.internal_error", tool=name, tool_call_id=tool_call_id)
            return error(f"internal error in tool {name}: timeout inside the tool", arguments)
        except ToolError as exc:
            return error(_cap(str(exc) or f"tool {name} failed", tool.max_output_chars), arguments)
        except Exception as exc:
            log.exception("tool.internal_error", tool=name, tool_call_id=tool_call_id)
            return error(f"internal error in tool {name}: {type(exc).__name__}: {exc}", arguments)
        return ToolResult(
            tool_call_id,
            name,
            _cap(output.text, tool.max_output_chars),
            is_error=False,
            arguments=arguments,
            title=output.title,
            metadata=output.metadata,
        )

    async def aclose(self) -> None:
        """Close every tool (their HTTP sessions); a failure of one does not skip the others."""
        for tool in self._tools.values():
            try:
                await tool.aclose()
            except Exception:
                log.exception("tool.close_failed", tool=tool.name)
        if self.mcp is not None:
            await self.mcp.aclose()


def default_registry(settings: Settings, *, lookup: Lookup | None = None) -> ToolRegistry:
    """Every built-in tool, configured from settings (``lookup``: the DNS seam for webfetch),
    and the MCP servers of ``MCP_CONFIG`` (read by ``start``: ``McpConfigError`` for a bad file)."""
    return ToolRegistry(
        [
            WebFetchTool.from_settings(settings, lookup=lookup),
            WebSearchTool.from_settings(settings),
            TodoWriteTool(),
            TodoReadTool(),
            QuestionTool(question_timeout=settings.question_timeout),
        ],
        mcp=_mcp_servers(settings),
    )


def _mcp_servers(settings: Settings) -> McpServers | None:
    if not settings.mcp_config:
        return None  # and the MCP SDK is never imported
    from opencode_api.tools._mcp import McpServers

    return McpServers.from_settings(settings)
