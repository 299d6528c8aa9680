"""The ``gongkai`` command: run once, report, exit.

Exit codes: 0 all done; 1 some deliveries failed; 2 usage, config or input error.
Reports go to stdout (a table, or JSON with ``--json``); logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gongkai.plugins.manager import describe_channels

from . import __version__
from .config import load_settings
from .errors import (
    ConfigError,
    GongkaiError,
    ItemProblem,
    ItemRejected,
    PluginError,
    UnknownItem,
    UsageError,
)
from .item import CST
from .ledger import NEEDS_ATTENTION
from .loader import load_paths
from .log import configure, scrub
from .publisher import Publisher

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _clip(text: str, limit: int) -> str:
    if _width(text) <= limit:
        return text
    out, used = "", 0
    for char in text:
        size = _width(char)
        if used + size > limit - 1:
            return out + "…"
        out += char
        used += size
    return out


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], limit: int = 48) -> str:
    """A plain-text table that lines up Chinese (double-width) text."""
    cells = [[_clip("" if v is None else str(v), limit) for v in row] for row in rows]
    widths = [max([_width(h)] + [_width(r[i]) for r in cells]) for i, h in enumerate(header)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths, strict=True))

    lines = [line(header), line(["-" * w for w in widths]), *map(line, cells)]
    return "\n".join(x.rstrip() for x in lines)


def _short(path: str | None) -> str:
    """A path relative to the working directory when it is below it."""
    if not path:
        return ""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _local(when) -> str:
    """Operators read Beijing time."""
    return when.astimezone(CST).strftime("%Y-%m-%d %H:%M") if when else ""


def _emit(args, data: Any, text: str) -> None:
    # The last net: whatever a report holds, no secret leaves through stdout.
    if args.json:
        print(scrub(json.dumps(data, ensure_ascii=False, indent=2, default=str)))
    elif text:
        print(scrub(text))


def _problems_text(problems: Sequence[ItemProblem]) -> str:
    return "\n".join(f"error: {p}" for p in problems)


class _Bar:
    """A one-line progress bar on stderr, only on a TTY."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total == 0:
            return
        filled = int(30 * done / total)
        sys.stderr.write(f"\rdelivering [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


# --- verbs -------------------------------------------------------------------------------


def _publisher(args):
    return Publisher.from_config(args.config, strict=args.strict or None)


def cmd_publish(args) -> int:
    with _publisher(args) as publisher:
        if args.paths:
            result = publisher.publish_paths(args.paths, progress=_Bar())
        else:
            result = publisher.publish(progress=_Bar())
    rows = [
        (o.item_id, o.channel, o.edition or "", o.status, o.detail or o.url or _short(o.artifact))
        for o in sorted(result.outcomes, key=lambda o: (o.item_id, o.channel))
        if o.status != "not-enabled" or args.verbose
    ]
    counts = ", ".join(f"{n} {s}" for s, n in sorted(result.counts().items()))
    text = ""
    if rows:
        text = table(rows, ("item", "channel", "edition", "status", "detail"), limit=60)
    text += f"\n\n{counts or 'nothing to do'}"
    hidden = result.counts().get("not-enabled", 0)
    if hidden and not args.verbose:
        text += f"\n({hidden} routed to channels not enabled in config; -v lists them)"
    if result.backlog:
        waiting = ", ".join(f"{n} {s}" for s, n in sorted(result.backlog.items()))
        text += (
            f"\nthe ledger still holds deliveries that are not done: {waiting}; "
            "`gongkai status` shows them"
        )
    _emit(args, result.as_dict(), text.strip())
    if result.problems:
        print(_problems_text(result.problems), file=sys.stderr)
    return result.exit_code


def cmd_status(args) -> int:
    with _publisher(args) as publisher:
        rows = publisher.status(args.item)
    if args.item and not rows:
        raise UnknownItem(f"the ledger has no item '{args.item}'; check the id")
    data = [
        {
            "item_id": r.item_id,
            "channel": r.channel,
            "state": r.state,
            "edition": r.edition,
            "delivered_edition": r.delivered_edition,
            "attempts": r.attempts,
            "next_attempt_at": r.next_attempt_at,
            "updated_at": r.updated_at,
            "due_on": r.due_on,
            "error": r.last_error,
            "url": (r.receipt or {}).get("url"),
            "artifact": (r.receipt or {}).get("artifact"),
            "title": r.title,
            "intent": r.intent,
            "action": r.action,
            "latest_edition": r.latest_edition,
        }
        for r in rows
    ]
    text = table(
        [
            (
                r.item_id,
                r.channel,
                r.state,
                r.edition,
                r.attempts,
                _local(r.next_attempt_at),
                r.last_error or "",
            )
            for r in rows
        ],
        ("item", "channel", "state", "edition", "tries", "next attempt", "error"),
    )
    unknown = [r for r in rows if r.state == "unknown"]
    if unknown:
        text += (
            f"\n\n{len(unknown)} delivery(ies) have an unknown outcome. A channel that can look "
            "it up or safely resend settles it on the next `gongkai publish`; for any other, "
            "check the remote: if the item is not there, `gongkai retry --unknown ITEM "
            "--channel C` sends it again."
        )
    _emit(args, data, text if rows else "the ledger is empty")
    # The same rule as publish: exit 1 while anything still needs a run or an operator.
    return EXIT_FAILED if any(r.state in NEEDS_ATTENTION for r in rows) else EXIT_OK


def cmd_channels(args) -> int:
    settings = load_settings(args.config)
    data = describe_channels(settings, strict=args.strict)
    keys = ["name", "plugin", "mode", "guarantee", "configured"]
    failed = False
    if args.check:
        with _publisher(args) as publisher:
            checks = publisher.check_channels()
        for entry in data:
            if entry["name"] in checks:
                entry["check"] = checks[entry["name"]] or "ok"
                failed = failed or checks[entry["name"]] is not None
        keys.append("check")
    header = ["channel", *keys[1:]]
    text = table([[d.get(k, "") for k in keys] for d in data], header)
    _emit(args, data, text)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_validate(args) -> int:
    with _publisher(args) as publisher:
        good, problems = publisher.validate(args.paths)
    data = {
        "valid": [{"item_id": g.item.id, "source": g.source} for g in good],
        "problems": [p.as_dict() for p in problems],
    }
    text = f"{len(good)} valid item(s), {len(problems)} problem(s)"
    _emit(args, data, text)
    if problems:
        print(_problems_text(problems), file=sys.stderr)
    return EXIT_USAGE if problems else EXIT_OK


def cmd_render(args) -> int:
    with _publisher(args) as publisher:
        target: Any = args.item
        if Path(args.item).is_file():
            loaded, problems = load_paths([args.item])
            if problems:
                print(_problems_text(problems), file=sys.stderr)
                return EXIT_USAGE
            target = loaded[0].item
        rendition = publisher.render(target, args.channel)
    if args.json:
        _emit(args, rendition.model_dump(), "")
    else:
        sys.stdout.write(rendition.body if rendition.body.endswith("\n") else rendition.body + "\n")
    return EXIT_OK


def cmd_retry(args) -> int:
    with _publisher(args) as publisher:
        if args.item and not publisher.status(args.item):
            raise UnknownItem(
                f"the ledger has no item '{args.item}'; check the id (gongkai status)"
            )
        rows = publisher.retry(args.item, args.channel, unknown=args.unknown)
    data = [{"item_id": r.item_id, "channel": r.channel, "was": r.state} for r in rows]
    text = (
        f"re-queued {len(rows)} delivery(ies); the next `gongkai publish` sends them"
        if rows
        else "nothing to re-queue"
    )
    _emit(args, data, text)
    return EXIT_OK


def cmd_withdraw(args) -> int:
    with _publisher(args) as publisher:
        result = publisher.withdraw(args.item, args.reason)
    text = table(
        [(o.channel, o.status, o.detail) for o in result.outcomes], ("channel", "status", "detail")
    )
    _emit(args, result.as_dict(), text)
    return EXIT_OK if all(o.status == "withdrawn" for o in result.outcomes) else EXIT_FAILED


def cmd_init(args) -> int:
    from .scaffold import init_project, next_steps

    created = init_project(args.directory, args.org_code)
    steps = next_steps(args.directory, args.org_code)
    lines = [f"created {p}{'/' if p.is_dir() else ''}" for p in created]
    lines += ["", "next steps:", *(f"  {n}. {step}" for n, step in enumerate(steps, 1))]
    _emit(args, {"created": [str(p) for p in created], "next": steps}, "\n".join(lines))
    return EXIT_OK


def _days(period) -> str:
    return f"{period.days} {period.unit} day{'' if period.days == 1 else 's'}"


def _routing(channels) -> str:
    optional = f" [{' '.join(channels.optional)}]" if channels.optional else ""
    return " ".join(channels.required) + optional


def _entry_text(catalogue, entry) -> str:
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


def cmd_catalogue(args) -> int:
    from .catalogue import Catalogue

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
        _emit(args, catalogue.describe(entry), _entry_text(catalogue, entry))
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
    _emit(args, [catalogue.describe(e) for e in entries], text)
    return EXIT_OK


# --- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", "-c", help="config file (default: $GONGKAI_CONFIG or ./config.toml)"
    )
    common.add_argument("--strict", action="store_true", help="a broken plugin is fatal")
    common.add_argument("--verbose", "-v", action="store_true", help="more detail and debug logs")
    reporting = argparse.ArgumentParser(add_help=False)
    reporting.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(
        prog="gongkai",
        description="Publish government disclosure items to every channel, once.",
    )
    parser.add_argument("--version", action="version", version=f"gongkai {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def verb(name, func, help_text, json_flag=True):
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common, reporting] if json_flag else [common],
        )
        p.set_defaults(func=func)
        return p

    p = verb("publish", cmd_publish, "take in items, deliver what is due, then exit")
    p.add_argument("paths", nargs="*", help="item files or folders (.md, .json; - for stdin)")
    p = verb("status", cmd_status, "show deliveries from the ledger")
    p.add_argument("item", nargs="?", help="one item id")
    p = verb("channels", cmd_channels, "list installed channels and whether each is configured")
    p.add_argument(
        "--check",
        action="store_true",
        help="run each enabled channel's check() (config and credentials); exit 1 if one fails",
    )
    p = verb("validate", cmd_validate, "check item files without publishing")
    p.add_argument("paths", nargs="+")
    p = verb("render", cmd_render, "preview what a channel would send, without sending")
    p.add_argument("item", help="an item file, or an item id in the ledger")
    p.add_argument("--channel", required=True)
    p = verb("retry", cmd_retry, "re-queue failed deliveries for the next publish")
    p.add_argument("item", nargs="?")
    p.add_argument("--channel")
    p.add_argument(
        "--unknown",
        action="store_true",
        help="also re-queue deliveries with an unknown outcome (check the remote first)",
    )
    p = verb("withdraw", cmd_withdraw, "take an item down from every channel")
    p.add_argument("item")
    p.add_argument("--reason", required=True, help="why it is withdrawn (recorded in the ledger)")
    p = verb(
        "init", cmd_init, "start a working folder: a commented config.toml and an example item"
    )
    p.add_argument("directory", nargs="?", default=".", help="the folder (default: .)")
    p.add_argument(
        "--org-code",
        help="the organisation's 统一社会信用代码 (18 characters), written as org_code",
    )
    p = verb("catalogue", cmd_catalogue, "list the disclosure catalogue's entries, or show one")
    p.add_argument("entry", nargs="?", help="an entry key, e.g. land.compensation-notice")
    return parser


def main(argv: Sequence[str] | None = None) -> int:

    parser = build_parser()
    args = parser.parse_args(argv)
    # On a terminal the summary table is the report, so only warnings show unless -v;
    # piped (cron, systemd) every event goes out as a JSON line for the log file.
    quiet = logging.WARNING if sys.stderr.isatty() else logging.INFO
    configure(level=logging.DEBUG if args.verbose else quiet)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try
        return code
    except (ConfigError, PluginError, UnknownItem, ItemRejected, UsageError) as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except GongkaiError as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(
            "interrupted; in-flight deliveries will show as unknown and be settled by the next run",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        # `gongkai status | head`: the reader has what it wanted. Point stdout at devnull
        # so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
