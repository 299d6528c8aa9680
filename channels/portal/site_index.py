"""The portal's own record of what it published: one SQLite file beside the ledger.

A channel sees one item at a time and never the ledger, yet a page needs the item's
edition history, the titles of the interpretations that name it, and every index the
item sits in. So each delivery records its edition here, and pages, indexes and feeds
are built from this record alone: rebuilding a page never needs the items' files.

SQLite rather than a JSON file: a 10,000-item site would rewrite megabytes per
delivery, and several deliveries (threads of one run, or two runs) record at once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    edition INTEGER NOT NULL,
    published_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    withdrawn_at TEXT,
    withdrawn_reason TEXT,
    openness TEXT NOT NULL,
    domain TEXT NOT NULL,
    unit TEXT NOT NULL,
    township TEXT NOT NULL,
    record TEXT NOT NULL
);
DROP INDEX IF EXISTS items_by_date;
CREATE INDEX IF NOT EXISTS items_newest_first ON items (published_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS editions (
    item_id TEXT NOT NULL,
    edition INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    delivered_at TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (item_id, edition)
);
CREATE TABLE IF NOT EXISTS links (
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (source, target)
);
CREATE INDEX IF NOT EXISTS links_by_target ON links (target);
"""


@dataclass
class Entry:
    """One item as the portal shows it: the current edition's record (public fields
    plus the labels the catalogue gave them) and its place in the indexes."""

    id: str
    edition: int
    published_at: str
    updated_at: str
    openness: str
    domain: str
    unit: str
    township: str
    record: dict[str, Any]
    withdrawn_at: str | None = None
    withdrawn_reason: str | None = None
    editions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def scopes(self) -> set[tuple[str, str]]:
        """The indexes and feeds this item appears in."""
        found = {
            ("openness", self.openness),
            ("domain", self.domain),
            ("unit", self.unit),
            ("feed-domain", self.domain),
        }
        if self.township:
            found.add(("township", self.township))
        return found


#: One order for every list the site shows: by 发布日期, then by id, so items published
#: in the same second come out the same way in every build. Newest first is exactly
#: the reverse (ids are usually numbered in the order items were written).
OLDEST_FIRST = "published_at, id"
NEWEST_FIRST = "published_at DESC, id DESC"

_COLUMNS = (
    "id, edition, published_at, updated_at, withdrawn_at, withdrawn_reason, "
    "openness, domain, unit, township, record"
)


def _entry(row: tuple[Any, ...]) -> Entry:
    return Entry(
        id=row[0],
        edition=row[1],
        published_at=row[2],
        updated_at=row[3],
        withdrawn_at=row[4],
        withdrawn_reason=row[5],
        openness=row[6],
        domain=row[7],
        unit=row[8],
        township=row[9],
        record=json.loads(row[10]),
    )


class SiteIndex:
    """Editions the portal published, by item. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        # One connection guarded by a lock: deliveries of one run come from a thread
        # pool, and another process (a second run) is kept apart by SQLite's own lock.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- writing ----------------------------------------------------------------------

    def record(
        self, entry: Entry, content_hash: str, delivered_at: str
    ) -> tuple[Entry | None, bool]:
        """Record ``entry``'s edition. Returns what the item was before (None if new)
        and whether this edition is the current one (an older edition arriving late
        is kept in the history but never replaces a newer one)."""
        with self.transaction() as db:
            before = self._get(db, entry.id)
            known = db.execute(
                "SELECT content_hash, delivered_at FROM editions WHERE item_id=? AND edition=?",
                (entry.id, entry.edition),
            ).fetchone()
            # A resend of the same edition keeps the date it first went out.
            when = known[1] if known and known[0] == content_hash else delivered_at
            db.execute(
                "INSERT OR REPLACE INTO editions VALUES (?, ?, ?, ?, ?)",
                (entry.id, entry.edition, content_hash, when, json.dumps(entry.record)),
            )
            current = before is None or entry.edition >= before.edition
            if not current:
                return before, False
            entry.published_at = before.published_at if before else when
            entry.updated_at = when
            if before is not None and before.withdrawn:
                # Core never sends a withdrawn item again; if it does, keep it down.
                entry.withdrawn_at, entry.withdrawn_reason = (
                    before.withdrawn_at,
                    before.withdrawn_reason,
                )
            db.execute(
                f"INSERT OR REPLACE INTO items ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    entry.id,
                    entry.edition,
                    entry.published_at,
                    entry.updated_at,
                    entry.withdrawn_at,
                    entry.withdrawn_reason,
                    entry.openness,
                    entry.domain,
                    entry.unit,
                    entry.township,
                    json.dumps(entry.record, ensure_ascii=False),
                ),
            )
            db.execute("DELETE FROM links WHERE source=?", (entry.id,))
            db.executemany(
                "INSERT OR IGNORE INTO links VALUES (?, ?)",
                [(entry.id, target) for target in entry.record.get("related", ())],
            )
            return before, True

    def withdraw(self, item_id: str, reason: str, when: str) -> Entry | None:
        """Mark the item withdrawn; None if the portal never published it."""
        with self.transaction() as db:
            db.execute(
                "UPDATE items SET withdrawn_at=COALESCE(withdrawn_at, ?), withdrawn_reason="
                "COALESCE(withdrawn_reason, ?) WHERE id=?",
                (when, reason, item_id),
            )
            return self._get(db, item_id)

    # --- reading ----------------------------------------------------------------------

    def _get(self, db: sqlite3.Connection, item_id: str) -> Entry | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM items WHERE id=?", (item_id,)).fetchone()
        return _entry(row) if row else None

    def get(self, item_id: str, *, history: bool = False) -> Entry | None:
        with self._lock:
            entry = self._get(self._db, item_id)
            if entry is not None and history:
                entry.editions = self.editions(item_id)
            return entry

    def editions(self, item_id: str) -> list[dict[str, Any]]:
        """Every recorded edition of an item, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT edition, content_hash, delivered_at, record FROM editions "
                "WHERE item_id=? ORDER BY edition",
                (item_id,),
            ).fetchall()
        return [
            {"edition": e, "content_hash": h, "delivered_at": d, "record": json.loads(r)}
            for e, h, d, r in rows
        ]

    def linked(self, item_id: str) -> tuple[list[Entry], list[Entry]]:
        """The items this one names (its release), and those naming it (its
        interpretations and responses), as far as the portal published them."""
        with self._lock:
            out = self._db.execute(
                f"SELECT {_COLUMNS} FROM items WHERE id IN "
                f"(SELECT target FROM links WHERE source=?) ORDER BY {OLDEST_FIRST}",
                (item_id,),
            ).fetchall()
            back = self._db.execute(
                f"SELECT {_COLUMNS} FROM items WHERE id IN "
                f"(SELECT source FROM links WHERE target=?) ORDER BY {OLDEST_FIRST}",
                (item_id,),
            ).fetchall()
        return [_entry(r) for r in out], [_entry(r) for r in back]

    def neighbours(self, item_id: str, related: list[str]) -> set[str]:
        """Items whose pages show a link to this one: those it names, those naming it."""
        with self._lock:
            rows = self._db.execute(
                "SELECT source FROM links WHERE target=?", (item_id,)
            ).fetchall()
        return {r[0] for r in rows} | set(related)

    def all(self) -> list[Entry]:
        """Every item, withdrawn ones included, newest first, with edition hashes."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM items ORDER BY {NEWEST_FIRST}"
            ).fetchall()
            history: dict[str, list[dict[str, Any]]] = {}
            for item_id, edition, digest, when in self._db.execute(
                "SELECT item_id, edition, content_hash, delivered_at FROM editions "
                "ORDER BY item_id, edition"
            ):
                history.setdefault(item_id, []).append(
                    {"edition": edition, "content_hash": digest, "delivered_at": when}
                )
        entries = [_entry(r) for r in rows]
        for entry in entries:
            entry.editions = history.get(entry.id, [])
        return entries
