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
                for path, digest, context, seen_ns, item_ids, stamps in db.execute(
                    "SELECT path, digest, context, seen_ns, item_ids, stamps FROM files "
                    f"WHERE path IN ({_marks(chunk)})",
                    chunk,
                ):
                    found[path] = FileRecord(
                        path,
                        digest,
                        context,
                        seen_ns,
                        tuple(json.loads(item_ids)),
                        tuple((p, size, mtime) for p, size, mtime in json.loads(stamps)),
                    )
        return found

    def remember_files(self, records: Sequence[FileRecord]) -> None:
        if not records:
            return
        with self._write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO files (path, digest, context, seen_ns, item_ids, stamps) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.path,
                        r.digest,
                        r.context,
                        r.seen_ns,
                        json.dumps(r.item_ids, ensure_ascii=False),
                        json.dumps(r.stamps, ensure_ascii=False),
                    )
                    for r in records
                ],
            )
