"""``GET /mcp``: the configured MCP servers, their status and tools, never their secrets."""

from __future__ import annotations

import sys
from pathlib import Path

from opencode_api.http._keys import RUNTIME
from opencode_api.tools import McpServers
from tests.http.conftest import ClientFactory, basic
from tests.tools.mcp_processes import HTTP_KEY, stdio_config, write_config


async def test_mcp_lists_servers_with_status_reason_and_tools(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "mcp.json",
        {
            "srv": stdio_config(env={"SERVER_TOKEN": HTTP_KEY}),
            "gone": {"command": str(tmp_path / "no-such-server"), "env": {"T": HTTP_KEY}},
            "web": {
                "url": "https://mcp.example/mcp",
                "headers": {"X-Key": HTTP_KEY},
                "disabled": True,
            },
        },
    )
    client = await make_client(mcp_config=str(config), mcp_reconnect_base_delay=0.05)
    servers = client.app[RUNTIME].tools.mcp
    assert isinstance(servers, McpServers)
    await servers.wait_for("srv", "connected")
    await servers.wait_for("gone", "failed")

    response = await client.get("/mcp")
    assert response.status == 200
    listed = await response.json()
    assert [s["name"] for s in listed] == ["srv", "gone", "web"]
    srv, gone, web = listed
    assert srv["status"] == "connected" and "error" not in srv
    assert "srv_add" in srv["tools"] and "srv_hang" in srv["tools"]
    assert gone["status"] == "failed" and gone["tools"] == []
    assert "No such file or directory" in gone["error"]
    assert web == {"name": "web", "status": "disabled", "tools": []}
    text = await response.text()
    for secret in (HTTP_KEY, "mcp.example", sys.executable, str(tmp_path)):
        assert secret not in text


async def test_mcp_without_a_config_is_empty_and_documented(make_client: ClientFactory) -> None:
    client = await make_client()
    response = await client.get("/mcp")
    assert response.status == 200 and await response.json() == []
    document = await (await client.get("/openapi.json")).json()
    operation = document["paths"]["/mcp"]["get"]
    assert operation["operationId"] == "list_mcp_servers"
    assert "200" in operation["responses"] and "401" in operation["responses"]


async def test_mcp_needs_the_server_password(make_client: ClientFactory) -> None:
    client = await make_client(opencode_server_password="pw")
    assert (await client.get("/mcp")).status == 401
    assert (await client.get("/mcp", headers=basic("opencode", "pw"))).status == 200
