"""Moving a ledger over: every table of a SQLite ledger into an empty PostgreSQL one,
in one transaction, with the counts checked before it commits."""

from __future__ import annotations

from pathlib import Path

from ..errors import StateError
from .postgres import PostgresLedger
from .postgres_schema import TABLES
from .sqlite import SQLiteLedger


def copy_ledger(source: str | Path, target_url: str, *, password: str | None = None) -> dict:
    """Copy the SQLite ledger at ``source`` (migrated to the current schema first) into
    the PostgreSQL ledger at ``target_url``: items and editions, item state and index
    numbers, index counters, deliveries, the attempt log, confirmations and the files
    table. Refuses a target that holds anything. Returns the rows copied per table."""
    path = Path(str(source).removeprefix("sqlite:"))
    if not path.is_file():
        raise StateError(f"{path}: no such ledger file; give --from sqlite:PATH of a ledger")
    src = SQLiteLedger(path)
    dst = PostgresLedger(target_url, password=password)
    try:
        with src._read() as sqlite, dst.connect() as conn, conn.transaction():
            # Nobody writes the target while it is filled, and its emptiness is
            # checked under the same lock.
            conn.execute(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE")
            held = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
            if any(held.values()):
                rows = ", ".join(f"{t}: {n}" for t, n in held.items() if n)
                raise StateError(
                    f"{dst.path}: the target ledger is not empty ({rows}); it was left "
                    "untouched. Copy into a new database or schema (gongkai ledger migrate "
                    "creates the tables)"
                )
            copied: dict[str, int] = {}
            for table in TABLES:
                columns = [r[1] for r in sqlite.execute(f"PRAGMA table_info({table})")]
                names = ", ".join(columns)
                with conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in sqlite.execute(f"SELECT {names} FROM {table}"):
                        copy.write_row(row)
                want = sqlite.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                got = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                if got != want:
                    raise StateError(
                        f"{dst.path}: {table} has {got} rows after the copy, the source "
                        f"{want}; nothing was copied. Run the copy again"
                    )
                copied[table] = got
            for table in ("attempts", "confirmations"):
                # New entries continue after the copied ones (the log's order is its id).
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE(max(id), 0) + 1, false) FROM {table}"
                )
        return copied
    finally:
        src.close()
        dst.close()
