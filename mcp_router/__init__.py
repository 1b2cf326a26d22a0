"""mcp-router: one MCP server whose tools route each call to the provider expected to serve it best."""

__version__ = "0.1.0"
