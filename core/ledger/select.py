"""Which ledger backend a URL names: ``sqlite:PATH`` (or a bare path) is the embedded
SQLite file; ``postgresql://user@host/db`` (or ``postgres://``) is a PostgreSQL
database shared by writers and workers on several hosts."""

from __future__ import annotations

from pathlib import Path

from .base import Ledger

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES_SCHEMES)


def open_ledger(
    url: str | Path,
    *,
    password: str | None = None,
    sync: str = "normal",
    pool_size: int = 10,
    migrate: bool = True,
) -> Ledger:
    """Open (and migrate, unless ``migrate`` is False) the ledger ``url`` names.
    ``password`` is PostgreSQL's, kept out of the URL like every secret."""
    text = str(url)
    if is_postgres(text):
        from .postgres import PostgresLedger  # psycopg only when it is used

        return PostgresLedger(text, password=password, pool_size=pool_size, migrate=migrate)
    from .sqlite import SQLiteLedger

    return SQLiteLedger(Path(text.removeprefix("sqlite:")), sync=sync)
