"""Why a call could not be served, in terms a user can act on; the MCP face turns these into
`ToolError`s. Kept apart so the dispatcher and the planner both raise them without importing each other."""

from __future__ import annotations


class DispatchError(Exception):
    """The call could not be served; the message says why in terms a user can act on."""


class BudgetExhausted(DispatchError):
    """No model of the pool is affordable (or fits the conversation) for this call."""
