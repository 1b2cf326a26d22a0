"""MTRouter: per-call model selection for `llm_complete` from the conversation so far.

A frozen text embedder turns the history into z_x; a small model encoder turns each pool model's
metadata (plus a learned residual) into z_m; an MLP on [z_x ; z_m] predicts the episode's remaining
score and log-cost, and the policy picks a model from those (reference `mtrouter.md`).

The modules are imported by name (`mcp_router.routing.mtrouter.pool`, `.network`, ...). This package
imports nothing on purpose: torch is loaded only by the modules that train or run the network, so the
server starts fast when MTRouter is off.
"""
