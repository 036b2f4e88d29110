"""The ``MCP_CONFIG`` file: ``{"mcpServers": {name: {"url", "headers"?} | {"command", ...}}}``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
)

from opencode_api.errors import OpenCodeError

# Tool names offered to models must match ^[A-Za-z0-9_-]{1,64}$ (OpenAI, Anthropic): the server's
# name is their prefix, so it keeps to those characters and leaves room for the tool's own name.
ServerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]


class McpConfigError(OpenCodeError):
    """The MCP_CONFIG file is missing, not JSON, or not in the ``mcpServers`` form."""


class _ServerBase(BaseModel):
    # Files written for other clients carry their own keys ("autoApprove", "timeout", ...).
    model_config = ConfigDict(extra="ignore", frozen=True)

    disabled: bool = False


class McpHttpServer(_ServerBase):
    """A server over streamable HTTP. ``headers`` (API keys) never appear in logs or ``/mcp``."""

    type: Literal["http", "streamable-http", "streamableHttp"] | None = None
    url: str
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class McpStdioServer(_ServerBase):
    """A server run as a child process speaking MCP on its stdin and stdout."""

    type: Literal["stdio"] | None = None
    command: Annotated[str, StringConstraints(min_length=1)]
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)


def _kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return "stdio" if isinstance(value, McpStdioServer) else "http"
    if isinstance(value, dict):
        if "url" in value:
            return "http"
        if "command" in value:
            return "stdio"
    return None


McpServerConfig = Annotated[
    Annotated[McpHttpServer, Tag("http")] | Annotated[McpStdioServer, Tag("stdio")],
    Discriminator(
        _kind,
        custom_error_type="invalid_server",
        custom_error_message='needs "url" (streamable HTTP) or "command" (stdio)',
    ),
]


class McpConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    servers: dict[ServerName, McpServerConfig] = Field(alias="mcpServers")


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = [str(part) for part in error["loc"]]
        # The union's tag ("http"/"stdio") sits after the server's name: not a field of the file.
        if len(loc) > 2 and loc[0] == "mcpServers" and loc[2] in ("http", "stdio"):
            del loc[2]
        problems.append(f"{'.'.join(loc) or '(top level)'}: {error['msg']}")
    return "; ".join(problems)


def load_mcp_config(path: str | Path) -> McpConfig:
    """Read and validate the file; ``McpConfigError`` names the file and the bad field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise McpConfigError(f"MCP_CONFIG {path}: cannot read the file ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise McpConfigError(f"MCP_CONFIG {path}: not valid JSON ({exc})") from None
    try:
        return McpConfig.model_validate(data)
    except ValidationError as exc:
        raise McpConfigError(f"MCP_CONFIG {path}: {_describe(exc)}") from None
