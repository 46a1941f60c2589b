"""Raw MCP calls over HTTP for the black-box tests (no SDK in the way)."""
from __future__ import annotations

import itertools

import requests

HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
LEGACY = "2025-11-25"
MODERN = "2026-07-28"
_ids = itertools.count(1)


def modern_meta(**extra) -> dict:
    return {"io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {}, **extra}


def call_tool(url: str, name: str, arguments: dict | None = None, *, modern: bool = False,
              meta: dict | None = None, headers: dict | None = None, session=requests,
              timeout: float = 10) -> requests.Response:
    params: dict = {"name": name, "arguments": arguments or {}}
    h = dict(HEADERS)
    if modern:
        params["_meta"] = modern_meta(**(meta or {}))
        h.update({"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": name})
    else:
        h["MCP-Protocol-Version"] = LEGACY
        if meta:
            params["_meta"] = meta
    h.update(headers or {})
    body = {"jsonrpc": "2.0", "id": next(_ids), "method": "tools/call", "params": params}
    return session.post(url, json=body, headers=h, timeout=timeout)


def list_tools(url: str) -> list[dict]:
    """What `tools/list` gives (protocol 2025-11-25, one page: the service does not paginate)."""
    body = {"jsonrpc": "2.0", "id": next(_ids), "method": "tools/list"}
    answer = requests.post(url, json=body, headers={**HEADERS, "MCP-Protocol-Version": LEGACY}, timeout=10)
    return answer.json()["result"]["tools"]


def tool_names(url: str) -> set[str]:
    return {t["name"] for t in list_tools(url)}
