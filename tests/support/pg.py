"""PostgreSQL for tests: the project's server on 127.0.0.1:5432 (trust auth, database
``test``; ``GONGKAI_TEST_PG_URL`` names another). Several engineers and CI use that
database at once, so every test gets a schema of its own (``gk_<random>``), named in
the URL's ``search_path``, and drops it afterwards; the public schema is never touched.
A server that cannot be reached fails the test: it is never skipped."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from gongkai.ledger import Ledger
from gongkai.ledger.select import open_ledger

SERVER_URL = os.environ.get("GONGKAI_TEST_PG_URL", "postgresql://root@127.0.0.1:5432/test")

#: The backends the ledger, model, crash and concurrency tests run on.
BACKENDS = ("sqlite", "postgresql")


@contextmanager
def fresh_schema(server: str = SERVER_URL) -> Iterator[str]:
    """A ledger URL whose connections use a new, empty schema in ``server``'s
    database; dropped afterwards."""
    name = f"gk_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{server}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@contextmanager
def ledger_url(backend: str, folder: Path) -> Iterator[str]:
    """A URL for an empty ledger on ``backend``: a SQLite file in ``folder``, or a
    fresh PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:{folder / 'ledger.sqlite3'}"
        return
    with fresh_schema() as url:
        yield url


@contextmanager
def empty_ledger(backend: str, folder: Path) -> Iterator[Ledger]:
    with ledger_url(backend, folder) as url:
        ledger = open_ledger(url)
        try:
            yield ledger
        finally:
            ledger.close()


def configure_ledger(config: Path, url: str) -> Path:
    """Point a config file's ``[gongkai] ledger`` at ``url`` (a SQLite URL leaves the
    default, the file under state_dir)."""
    if not url.startswith("sqlite:"):
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("[gongkai]\n", f'[gongkai]\nledger = "{url}"\n', 1))
    return config
