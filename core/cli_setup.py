"""Verbs that set up and explain rather than publish: ``init`` and ``catalogue``.

Neither opens the ledger: ``init`` writes a new project folder, ``catalogue`` reads the
configured catalogue files only.
"""

from __future__ import annotations

import argparse

from .catalogue import Catalogue, Entry, Period, Routing
from .cli_output import EXIT_OK, emit, table
from .config import load_settings
from .errors import UsageError
from .scaffold import init_project, next_steps


def cmd_init(args: argparse.Namespace) -> int:
    created = init_project(args.directory, args.org_code)
    steps = next_steps(args.directory, args.org_code)
    lines = [f"created {p}{'/' if p.is_dir() else ''}" for p in created]
    lines += ["", "next steps:", *(f"  {n}. {step}" for n, step in enumerate(steps, 1))]
    emit(args, {"created": [str(p) for p in created], "next": steps}, "\n".join(lines))
    return EXIT_OK


def _days(period: Period) -> str:
    return f"{period.days} {period.unit} day{'' if period.days == 1 else 's'}"


def _routing(channels: Routing) -> str:
    optional = f" [{' '.join(channels.optional)}]" if channels.optional else ""
    return " ".join(channels.required) + optional


def _entry_text(catalogue: Catalogue, entry: Entry) -> str:
    data = catalogue.describe(entry)
    fields = [
        ("domain", f"{entry.domain} ({data['domain_name']})"),
        ("openness", f"{entry.openness} ({data['openness_label']})"),
        ("basis", entry.basis),
        ("subject", entry.subject),
        ("responsible unit", entry.responsible_unit),
        ("level / method", f"{entry.level}, {entry.method}"),
        ("audience", entry.audience),
        ("time limit", f"{_days(entry.time_limit)} from formed_on"),
        ("posting period", f"at least {_days(entry.posting_min)}" if entry.posting_min else ""),
        ("update cycle", entry.update_cycle),
        ("required channels", " ".join(entry.channels.required) or "none"),
        ("optional channels", " ".join(entry.channels.optional) or "none"),
    ]
    lines = [f"{entry.key}  {entry.name}", ""]
    lines += [f"{label + ':':<19}{value}" for label, value in fields if value]
    for label, elements in (
        ("required elements (the title or body must name each; a / b: either)", data["elements"]),
        ("optional elements", data["optional_elements"]),
    ):
        if elements:
            lines += ["", f"{label}:"]
            lines += [f"  - {' / '.join(alternatives)}" for alternatives in elements]
    lines += ["", f'an item names it with catalog = "{entry.key}"']
    return "\n".join(lines)


def cmd_catalogue(args: argparse.Namespace) -> int:
    # Settings alone, never a Publisher: a read-only verb must not create the state
    # directory or open the ledger.
    catalogue = Catalogue.load(load_settings(args.config).catalogue)
    if args.entry is not None:
        entry = catalogue.get(args.entry)
        if entry is None:
            close = catalogue.suggest(args.entry)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise UsageError(
                f"no catalogue entry '{args.entry}'; {hint}`gongkai catalogue` lists them all"
            )
        emit(args, catalogue.describe(entry), _entry_text(catalogue, entry))
        return EXIT_OK
    entries = list(catalogue.entries.values())
    rows = [
        (e.key, e.name, e.domain, e.openness, _days(e.time_limit), _routing(e.channels))
        for e in entries
    ]
    text = table(rows, ("key", "name", "domain", "openness", "time limit", "channels"))
    text += (
        f"\n\n{len(entries)} entries; channels in [brackets] are optional. "
        "`gongkai catalogue KEY` shows one entry's elements and periods."
    )
    emit(args, [catalogue.describe(e) for e in entries], text)
    return EXIT_OK
