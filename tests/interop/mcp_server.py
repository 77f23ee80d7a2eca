"""An MCP server built with the Python MCP SDK (`mcp` on PyPI), behind a
gateway that asks Baton: it does no authorization of its own, and reports the
subject and holder the gateway passed upstream (x-baton-* headers).

usage: mcp_server.py PORT
"""

import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings

server = MCPServer("baton-test-upstream")


@server.tool()
def echo(text: str, ctx: Context) -> str:
    """Echo the text, with who the gateway said is calling."""
    headers = ctx.headers or {}
    return (
        f"{text} (subject={headers.get('x-baton-subject')}, "
        f"holder={headers.get('x-baton-holder')}, depth={headers.get('x-baton-depth')})"
    )


@server.tool()
def secret() -> str:
    """A tool the test's token does not grant."""
    return "the gateway let an ungranted call through"


if __name__ == "__main__":
    server.run(
        "streamable-http",
        host="127.0.0.1",
        port=int(sys.argv[1]),
        stateless_http=True,
        json_response=True,
        # Behind a reverse proxy, the Host header is the proxy's business.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
