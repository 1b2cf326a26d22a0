"""Router persistence: the only package that writes SQL.

`sqlite.Store` is the database (calls, attempts, quality signals, MTRouter's steps), `writer.GroupWriter`
the single writer that commits concurrent calls together, `model_log.ModelLog` MTRouter's queries.
"""

from mcp_router.store.sqlite import (
    MIGRATIONS,
    SCHEMA_VERSION,
    AttemptRecord,
    CallRecord,
    DuplicateFeedback,
    QualityObs,
    StepRecord,
    Store,
    UnknownCall,
    p95,
)
from mcp_router.store.writer import GroupWriter

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AttemptRecord",
    "CallRecord",
    "DuplicateFeedback",
    "GroupWriter",
    "QualityObs",
    "StepRecord",
    "Store",
    "UnknownCall",
    "p95",
]
