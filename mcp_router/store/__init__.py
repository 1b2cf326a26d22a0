"""Router persistence: the only package that writes SQL.

`store.Store` is the database (calls, attempts, quality signals, router events and snapshots,
sessions, MTRouter's steps) on a backend chosen by where it is: `sqlite.SqliteBackend` for a path,
`postgres.PostgresBackend` for a `postgresql://` URL. `schema` holds the migrations both share,
`writer.GroupWriter` the single writer that commits concurrent calls together, `model_log.ModelLog`
MTRouter's queries (`messages` stores its conversations, each message once), and `retention` what
the database keeps.
"""

from mcp_router.store.records import (
    AttemptRecord,
    CallRecord,
    DuplicateFeedback,
    Event,
    QualityObs,
    StepRecord,
    StoreBusy,
    UnknownCall,
)
from mcp_router.store.schema import MIGRATIONS, SCHEMA_VERSION
from mcp_router.store.store import Store, is_postgres_url, p95
from mcp_router.store.writer import GroupWriter

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AttemptRecord",
    "CallRecord",
    "DuplicateFeedback",
    "Event",
    "GroupWriter",
    "QualityObs",
    "StepRecord",
    "Store",
    "StoreBusy",
    "UnknownCall",
    "is_postgres_url",
    "p95",
]
