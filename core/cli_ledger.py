"""``gongkai ledger``: the ledger's own upkeep. ``migrate`` brings the configured (or
named) ledger's schema to this gongkai's version; ``copy`` moves a SQLite ledger into
an empty PostgreSQL one."""

from __future__ import annotations

import argparse
import os

from .cli_output import EXIT_OK, emit
from .config import load_settings
from .errors import UsageError
from .ledger.postgres_schema import safe_url
from .ledger.select import is_postgres, open_ledger


def add_arguments(p: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    """``parents``: the options every verb takes (-c, --json …), for the subcommands."""
    sub = p.add_subparsers(dest="ledger_command", required=True, metavar="SUBCOMMAND")
    m = sub.add_parser(
        "migrate",
        parents=parents,
        help="bring the ledger's schema to this gongkai's version",
        description="Bring the ledger's schema to this gongkai's version (a new "
        "PostgreSQL database gets its tables). Safe to run again, and from several hosts.",
    )
    m.add_argument("--url", help="the ledger (default: [gongkai] ledger, else the SQLite file)")
    m.add_argument("--password-env", metavar="VAR", help="the variable holding the password")
    m.set_defaults(ledger_func=_migrate)
    c = sub.add_parser(
        "copy",
        parents=parents,
        help="copy a SQLite ledger into an empty PostgreSQL ledger",
        description="Copy every table of a SQLite ledger (items, editions, deliveries, the "
        "attempt log, confirmations, index counters, item files) into an empty PostgreSQL "
        "ledger in one transaction, and check the counts. A target holding anything is "
        "refused.",
    )
    c.add_argument("--from", dest="source", required=True, metavar="sqlite:PATH")
    c.add_argument("--to", dest="target", required=True, metavar="postgresql://USER@HOST/DB")
    c.add_argument("--password-env", metavar="VAR", help="the variable holding the password")
    c.set_defaults(ledger_func=_copy)


def cmd_ledger(args: argparse.Namespace) -> int:
    return args.ledger_func(args)


def _password(args: argparse.Namespace, default: str | None = None) -> str | None:
    variable = args.password_env
    if variable is None:
        return default
    if variable not in os.environ:
        raise UsageError(f"--password-env {variable}: the variable is not set; export it first")
    return os.environ[variable]


def _migrate(args: argparse.Namespace) -> int:
    if args.url:
        url, password = args.url, _password(args)
    else:
        settings = load_settings(args.config)
        url = settings.ledger or f"sqlite:{settings.ledger_path}"
        password = _password(args, settings.ledger_secret())
    ledger = open_ledger(url, password=password, migrate=False)
    try:
        before = ledger.schema_version
        if is_postgres(url):
            before, after = ledger.migrate()  # type: ignore[attr-defined]
        else:
            after = ledger.schema_version  # SQLite migrates when it opens
    finally:
        ledger.close()
    shown = safe_url(url)
    text = (
        f"{shown}: schema {before} → {after}"
        if after != before
        else f"{shown}: schema {after}, up to date"
    )
    emit(args, {"ledger": shown, "before": before, "after": after}, text)
    return EXIT_OK


def _copy(args: argparse.Namespace) -> int:
    from .ledger.copy import copy_ledger  # psycopg only for this subcommand

    if not is_postgres(args.target):
        raise UsageError("--to: give a postgresql:// URL (the ledger to copy into)")
    copied = copy_ledger(args.source, args.target, password=_password(args))
    lines = [f"copied into {safe_url(args.target)}:"]
    lines += [f"  {table:<14} {count}" for table, count in copied.items()]
    emit(args, {"to": safe_url(args.target), "copied": copied}, "\n".join(lines))
    return EXIT_OK
