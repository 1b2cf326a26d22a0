"""The path of a call: the MCP face (`server`), the per-process state (`runtime`), `llm_complete`'s
model plan (`planner`), and routing, calling and recording one call (`dispatch`)."""
