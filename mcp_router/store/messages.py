"""The conversations of MTRouter's steps, each message stored once.

A step records the conversation its model saw. Stored whole in every step, a session of n turns costs
O(n²) text; instead each distinct message is one row of `llm_messages`, keyed by a hash of its role
and content, and a step's `history` column is the JSON list of its messages' hashes. `refs` counts the
references of the steps that hold a message, so pruning a step drops, in the same transaction, the
messages no other step refers to, without searching the steps.

A message is its role and content (what `llm_complete` accepts); other keys would not be kept.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_router.store.schema import Connection

CHUNK = 500  # keys per IN (...) list: SQLite's bound-parameter limit is 999 on old builds


def message_hash(message: Mapping[str, str]) -> str:
    text = json.dumps([message["role"], message["content"]], ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def hold(db: Connection, history: Sequence[Mapping[str, str]]) -> list[str]:
    """Store the messages of `history` not stored yet and count its references to each; returns the
    hashes, in order, for the step's `history` column."""
    hashes = [message_hash(m) for m in history]
    distinct = dict(zip(hashes, history, strict=True))
    refs = Counter(hashes)
    if distinct:
        db.executemany(
            "INSERT INTO llm_messages (hash, role, content, refs) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (hash) DO UPDATE SET refs = llm_messages.refs + excluded.refs",
            [(h, m["role"], m["content"], refs[h]) for h, m in distinct.items()],
        )
    return hashes


def release(db: Connection, histories: Iterable[Sequence[str]]) -> int:
    """Take back the references of deleted steps' histories; delete the messages left without any.
    Returns how many messages were deleted."""
    refs = Counter(h for hashes in histories for h in hashes)
    if not refs:
        return 0
    db.executemany(
        "UPDATE llm_messages SET refs = refs - ? WHERE hash = ?", [(n, h) for h, n in refs.items()]
    )
    deleted = 0
    for chunk in chunks(list(refs)):
        marks = ", ".join("?" * len(chunk))
        deleted += db.execute(f"DELETE FROM llm_messages WHERE hash IN ({marks}) AND refs <= 0", chunk)
    return deleted


def load(db: Connection, hashes: Iterable[str]) -> dict[str, dict[str, str]]:
    """The messages of these hashes, as `{"role", "content"}` dicts."""
    found: dict[str, dict[str, str]] = {}
    for chunk in chunks(list(dict.fromkeys(hashes))):
        marks = ", ".join("?" * len(chunk))
        for row in db.query(f"SELECT hash, role, content FROM llm_messages WHERE hash IN ({marks})", chunk):
            found[row["hash"]] = {"role": row["role"], "content": row["content"]}
    return found


def decode_histories(db: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with each `history` (a JSON list of hashes, or NULL) replaced by its message list.

    The messages are read after the steps, not in one snapshot: a step whose messages are gone was
    pruned in between (steps go before their messages), so it is left out as if read a moment later."""
    hashes = [json.loads(row["history"]) if row["history"] else None for row in rows]
    found = load(db, (h for step in hashes if step for h in step))
    kept = []
    for row, step in zip(rows, hashes, strict=True):
        if step is None:
            row["history"] = None
        elif all(h in found for h in step):
            row["history"] = [dict(found[h]) for h in step]
        else:
            continue
        kept.append(row)
    return kept


def chunks(keys: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(keys), CHUNK):
        yield keys[start : start + CHUNK]
