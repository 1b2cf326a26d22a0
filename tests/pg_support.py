"""A real PostgreSQL 18 on loopback for tests: the benchmarks' throwaway server
(`mcp_router.bench.postgres`), so tests and `mcp-router bench state` start it the same way."""

from mcp_router.bench.postgres import PG_PASSWORD, postgres_server

__all__ = ["PG_PASSWORD", "postgres_server"]
