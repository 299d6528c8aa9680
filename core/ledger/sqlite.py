"""The embedded SQLite ledger (WAL mode), assembled from one module per concern:

* :mod:`.sqlite_schema` — the file, write transactions, migrations;
* :mod:`.sqlite_machine` — the one write path, checked against the state machine;
* :mod:`.sqlite_editions` — index numbers, editions and delivery plans;
* :mod:`.sqlite_files` — item files already taken in;
* :mod:`.sqlite_work` — due work, claims, finishes, leases, requeues, withdrawal;
* :mod:`.sqlite_rows` — reading rows and the attempt log.
"""

from __future__ import annotations

from .base import Ledger
from .sqlite_editions import RecordEditions
from .sqlite_files import RememberFiles
from .sqlite_machine import Transitions
from .sqlite_rows import ReadRows
from .sqlite_schema import MIGRATIONS, SQLiteConnection, _statements, parse_ts, ts
from .sqlite_work import ClaimWork


class SQLiteLedger(
    RecordEditions, RememberFiles, ClaimWork, ReadRows, Transitions, SQLiteConnection, Ledger
):
    """The ledger in one SQLite file. ``sync="full"`` fsyncs every commit (survives
    power loss); ``normal`` survives any process crash and is much faster."""


__all__ = ["MIGRATIONS", "SQLiteLedger", "_statements", "parse_ts", "ts"]
