"""``GET /mcp``: the MCP servers of ``MCP_CONFIG``, whether each is connected, and its tools."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from opencode_api.http._keys import RUNTIME
from opencode_api.http._openapi import RouteSpec, route


class McpServerInfo(BaseModel):
    """One configured server. Its URL, headers, command and environment are never shown."""

    name: str = Field(description="The server's name in MCP_CONFIG (its tools' prefix)")
    status: Literal["connected", "failed", "disabled"] = Field(
        description="failed: not connected now (still connecting, or retrying with backoff)"
    )
    error: str | None = Field(
        default=None, description="Why the server is not connected (absent when connected)"
    )
    tools: list[str] = Field(
        description="The names the model is offered (`<server>_<tool>`); empty unless connected"
    )


@route(
    "GET",
    "/mcp",
    name="list_mcp_servers",
    summary="MCP servers and their tools",
    tag="service",
    response=list[McpServerInfo],
)
async def mcp_servers(request: web.Request) -> web.Response:
    servers = request.app[RUNTIME].tools.mcp
    statuses = servers.statuses() if servers is not None else []
    return web.json_response([status.to_dict() for status in statuses])


ROUTES: list[RouteSpec] = [mcp_servers]
