"""Item files already taken in, in SQLite: what lets a daily run skip them unread."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence

from .base import FileRecord
from .sqlite_schema import _chunked, _marks


class RememberFiles:
    """Mixin: the ``files`` table (needs ``_read`` and ``_write``)."""

    _db: sqlite3.Connection
    _lock: threading.RLock

    def file_records(self, paths: Sequence[str]) -> dict[str, FileRecord]:
        found: dict[str, FileRecord] = {}
        with self._read() as db:
            for chunk in _chunked(list(paths)):
                for path, size, mtime, digest, context, seen, ids, attached in db.execute(
                    "SELECT path, size, mtime_ns, digest, context, seen_ns, item_ids, "
                    f"attachments FROM files WHERE path IN ({_marks(chunk)})",
                    chunk,
                ):
                    others = tuple(tuple(a) for a in json.loads(attached)) if attached else ()
                    found[path] = FileRecord(
                        path,
                        digest,
                        context,
                        seen,
                        tuple(ids.split(" ")),
                        ((path, size, mtime), *others),
                    )
        return found

    def remember_files(self, records: Sequence[FileRecord]) -> None:
        if not records:
            return
        with self._write() as db:
            db.executemany(
                # Standard SQL (not INSERT OR REPLACE): PostgreSQL runs it too.
                "INSERT INTO files (path, size, mtime_ns, digest, context, seen_ns, item_ids, "
                "attachments) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
                "size = excluded.size, mtime_ns = excluded.mtime_ns, digest = excluded.digest, "
                "context = excluded.context, seen_ns = excluded.seen_ns, "
                "item_ids = excluded.item_ids, attachments = excluded.attachments",
                [
                    (
                        r.path,
                        r.stamps[0][1],
                        r.stamps[0][2],
                        r.digest,
                        r.context,
                        r.seen_ns,
                        " ".join(r.item_ids),
                        json.dumps(r.stamps[1:], ensure_ascii=False) if r.stamps[1:] else None,
                    )
                    for r in records
                ],
            )
