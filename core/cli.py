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
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from . import __version__
from .cli_confirm import add_arguments as add_confirm_arguments
from .cli_confirm import cmd_confirm as confirm_verb
from .cli_ledger import add_arguments as add_ledger_arguments
from .cli_ledger import cmd_ledger
from .cli_ledger_export import add_arguments as add_ledger_export_arguments
from .cli_ledger_export import cmd_ledger_export as ledger_export_verb
from .cli_new_channel import add_arguments as add_new_channel_arguments
from .cli_new_channel import cmd_new_channel
from .cli_output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    cell_limit,
    emit,
    emit_run,
    local_time,
    problems_text,
    short_path,
    table,
)
from .cli_parity import add_arguments as add_parity_arguments
from .cli_parity import cmd_parity as parity_verb
from .cli_plugins import plugins_text
from .cli_preview import add_arguments as add_preview_arguments
from .cli_preview import cmd_preview
from .cli_report import add_arguments as add_report_arguments
from .cli_report import cmd_report as report_verb
from .cli_sandbox import add_arguments as add_sandbox_arguments
from .cli_sandbox import cmd_sandbox
from .cli_setup import cmd_catalogue, cmd_init
from .cli_worker import add_arguments as add_worker_arguments
from .cli_worker import cmd_worker as worker_verb
from .config import CONFIG_ENV
from .errors import (
    ConfigError,
    GongkaiError,
    ItemProblem,
    ItemRejected,
    PluginError,
    StateError,
    UnknownItem,
    UsageError,
)
from .ledger import NEEDS_ATTENTION, DeliveryRow
from .log import configure, scrub
from .publisher import ItemHistory, Publisher
from .results import RunResult, shown_state


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


def _publisher(args: argparse.Namespace, *, sends: bool = False) -> Publisher:
    """The publisher for a verb. Verbs that only look (``sends=False``) work even when
    a channel's secret is not in this shell's environment."""
    if args.config is None and not os.environ.get(CONFIG_ENV) and not Path("config.toml").is_file():
        print(
            f"note: no config.toml in {Path.cwd()} and ${CONFIG_ENV} is not set: using the "
            "built-in defaults (state in ./.gongkai); give -c CONFIG to use your office's",
            file=sys.stderr,
        )
    return Publisher.from_config(args.config, strict=args.strict or None, sends=sends)


def _item_id(publisher: Publisher, args: argparse.Namespace) -> None:
    """Let ITEM be an item file as well as an id: operators have the file at hand."""
    if args.item and Path(args.item).is_file():
        loaded, problems = publisher.load([args.item])
        if not loaded:
            raise ItemRejected(problems)
        args.item = loaded[0].item.id
    elif args.item and (Path(args.item).suffix in (".md", ".json") or "/" in args.item):
        # An id has neither; a path that is not there is a typo, not an unknown id.
        raise UsageError(f"{args.item}: no such file; give an item file or an item id")


#: Above this many outcomes, the publish table lists only those that are not done.
TABLE_ROWS = 200
_DONE_WORDS = frozenset({"delivered", "updated", "unchanged"})


def cmd_publish(args: argparse.Namespace) -> int:
    with _publisher(args, sends=True) as publisher:
        if args.paths:
            result = publisher.publish_paths(args.paths, progress=_Bar(), reread=args.reread)
        else:
            result = publisher.publish(progress=_Bar())
    emit_run(args, result, "" if args.json else _publish_text(args, result))
    if result.problems:
        print(problems_text(result.problems), file=sys.stderr)
    if result.halted:
        print(f"error: {scrub(result.halted)}", file=sys.stderr)
    return result.exit_code


def _publish_text(args: argparse.Namespace, result: RunResult) -> str:
    """The publish report for people (``--json`` writes the data instead)."""
    shown = [o for o in result.outcomes if o.status != "not-enabled" or args.verbose]
    hidden = 0
    if len(shown) > TABLE_ROWS and not args.verbose:
        # Thousands of "delivered" lines hide the few that need someone: list those.
        kept = [o for o in shown if o.status not in _DONE_WORDS]
        hidden, shown = len(shown) - len(kept), kept
    rows = [
        (
            o.item_id,
            o.channel,
            o.edition or "",
            o.status,
            o.detail or o.url or short_path(o.artifact),
        )
        for o in sorted(shown, key=lambda o: (o.item_id, o.channel))
    ]
    counts = ", ".join(f"{n} {s}" for s, n in sorted(result.counts().items()) if s != "not-enabled")
    text = ""
    if rows:
        text = table(
            rows,
            ("item", "channel", "edition", "status", "detail"),
            limit=max(60, cell_limit(args)),
        )
    if not counts and result.problems:
        counts = f"nothing published: {len(result.problems)} problem(s), listed on stderr"
    if result.files_skipped:
        skipped = f"{result.files_skipped} file(s) unchanged since they were taken in, not read"
        counts = f"{counts}; {skipped}" if counts else skipped
    if hidden:
        counts += f"\n({hidden} successful deliveries are not listed; -v or --json lists them)"
    text += f"\n\n{counts or 'nothing to do'}"
    for note in result.notes:
        text += f"\nnote: {note}"
    if result.counts().get("not-enabled") and not args.verbose:
        text += "; -v lists them"  # the not-enabled note is always the last
    if result.backlog:
        waiting = ", ".join(f"{n} {s}" for s, n in sorted(result.backlog.items()))
        text += (
            f"\nthe ledger still holds deliveries that are not done: {waiting}; "
            "`gongkai status` shows them"
        )
    if result.halted:
        text += f"\nthe run stopped early: {result.halted}"
    return text.strip()


def _row_data(r: DeliveryRow, now: datetime) -> dict[str, Any]:
    return {
        "item_id": r.item_id,
        "channel": r.channel,
        "state": r.state,
        "status": shown_state(r.state, r.next_attempt_at, now),
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


def cmd_status(args: argparse.Namespace) -> int:
    with _publisher(args) as publisher:
        _item_id(publisher, args)
        rows = publisher.status(args.item)
        if args.item and not rows:
            raise UnknownItem(f"the ledger has no item '{args.item}'; check the id")
        history = publisher.history(args.item) if args.item else None
        now = publisher.clock()
    data = [_row_data(r, now) for r in rows]
    # One item's view has few rows: nothing in it is cut.
    limit = 10**6 if args.item else cell_limit(args)
    text = table(
        [
            (
                r["item_id"],
                r["channel"],
                r["status"],
                r["edition"],
                r["attempts"],
                local_time(r["next_attempt_at"]),
                r["error"] or r["url"] or short_path(r["artifact"]),
            )
            for r in data
        ],
        ("item", "channel", "status", "edition", "tries", "next attempt", "detail"),
        limit=limit,
    )
    if history is not None:
        text = _history_text(history, limit) + "\n\ndeliveries:\n" + text
        for entry in data:
            entry.update(history.as_dict(entry["channel"]))
    unknown = [r for r in rows if r.state == "unknown"]
    if unknown:
        text += (
            f"\n\n{len(unknown)} delivery(ies) have an unknown outcome. A channel that can look "
            "it up or safely resend settles it on the next `gongkai publish`; for any other, "
            "check the remote: if the item is not there, `gongkai retry --unknown ITEM "
            "--channel C` sends it again."
        )
    emit(args, data, text if rows else "the ledger is empty")
    # The same rule as publish: exit 1 while anything still needs a run or an operator.
    return EXIT_FAILED if any(r.state in NEEDS_ATTENTION for r in rows) else EXIT_OK


def _history_text(history: ItemHistory, limit: int) -> str:
    lines = [f"{history.item_id}  {history.editions[-1].title if history.editions else ''}"]
    if history.withdrawn is not None:
        at, reason = history.withdrawn
        lines.append(f"withdrawn {local_time(at)}: {reason}")
    lines += ["", "editions:"]
    lines += [
        f"  第{e.edition}版  {local_time(e.recorded_at)}  {e.content_hash[:8]}  {e.title}"
        for e in history.editions
    ]
    lines += ["", "attempt log:"]
    log_rows = [
        (
            local_time(a.finished_at),
            a.channel,
            a.edition,
            a.action,
            a.outcome,
            a.http_status or "",
            a.error or "",
        )
        for a in history.attempts
    ]
    log_table = table(
        log_rows, ("at", "channel", "edition", "action", "outcome", "http", "error"), limit=limit
    )
    lines += ["  " + line for line in log_table.splitlines()]
    return "\n".join(lines)


def cmd_channels(args: argparse.Namespace) -> int:
    # Built like every other verb, so config for a channel that is not installed is
    # refused here too; --check needs the secrets, a plain listing does not.
    with _publisher(args, sends=args.check) as publisher:
        data = publisher.describe_channels()
        checks = publisher.check_channels() if args.check else {}
        missing = publisher.missing_secrets
    keys = ["name", "plugin", "mode", "guarantee", "configured"]
    if any(d["type"] not in (d["name"], "") for d in data):
        keys.insert(1, "type")  # only when config makes further instances of a channel
    failed = False
    if args.check:
        for entry in data:
            if entry["name"] in checks:
                passed = "ok" if entry["has_check"] else "not checked (the channel has no check)"
                entry["check"] = checks[entry["name"]] or passed
                failed = failed or checks[entry["name"]] is not None
        keys.append("check")
    header = ["channel", *keys[1:]]
    text = table([[d.get(k, "") for k in keys] for d in data], header, limit=cell_limit(args))
    settings = [
        f"  {d['name']}: "
        + ", ".join(
            f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in sorted(d["config"].items())
        )
        for d in data
        if d["config"]
    ]
    if settings:
        text += "\n\nsettings of the enabled channels (secrets masked):\n" + "\n".join(settings)
    if missing:
        text += (
            f"\n\nnote: not set in this shell: {', '.join(missing)}; publish and withdraw need them"
        )
    if args.verbose:
        text += "\n\n" + plugins_text(publisher, data, cell_limit(args))
    emit(args, data, text)
    return EXIT_FAILED if failed else EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    with _publisher(args) as publisher:
        reports, problems = publisher.explain(args.paths)
    problems += [p for r in reports for p in r.problems]
    data = {
        "items": [r.as_dict() for r in reports],
        "problems": [p.as_dict() for p in problems],
    }
    lines = []
    for report in reports:
        lines.append(f"{report.item_id}  {report.source}")
        lines += [f"  {change}" for change in report.changes] or ["  nothing to change"]
        lines += [f"  problem: {p.field or '-'}: {p.problem}" for p in report.problems]
    lines.append(f"{len(reports)} item(s) explained, {len(problems)} problem(s)")
    emit(args, data, "\n".join(lines))
    if problems:
        print(problems_text(problems), file=sys.stderr)
    return EXIT_USAGE if problems else EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    if args.explain:
        return _explain(args)
    with _publisher(args) as publisher:
        good, problems = publisher.validate(args.paths)
    if not good and not problems:
        # A wrong folder looks exactly like an empty one: say so, do not pass it.
        problems = [
            ItemProblem(
                ", ".join(args.paths),
                "",
                "no items found",
                "give item files (.md, .json) or folders that hold them",
            )
        ]
    data = {
        "valid": [{"item_id": g.item.id, "source": g.source} for g in good],
        "problems": [p.as_dict() for p in problems],
    }
    text = f"{len(good)} valid item(s), {len(problems)} problem(s)"
    emit(args, data, text)
    if problems:
        print(problems_text(problems), file=sys.stderr)
    return EXIT_USAGE if problems else EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    with _publisher(args) as publisher:
        target: Any = args.item
        if Path(args.item).is_file():
            loaded, problems = publisher.load([args.item])
            if problems:
                print(problems_text(problems), file=sys.stderr)
                return EXIT_USAGE
            target = loaded[0].item
        else:
            _item_id(publisher, args)  # a path that is not there: say so
        channel = args.channel
        if channel is None:
            enabled = sorted(publisher.channel_settings)
            if len(enabled) != 1:
                raise UsageError(
                    f"say which channel with --channel ({', '.join(enabled) or 'none enabled'})"
                )
            channel = enabled[0]  # the only one: no need to name it
        rendition = publisher.render(target, channel)
    if args.json:
        emit(args, rendition.model_dump(), "")
    else:
        # Headers (secrets masked) go to stderr: stdout stays the exact payload.
        for header, value in rendition.data.get("headers", {}).items():
            print(f"{header}: {value}", file=sys.stderr)
        sys.stdout.write(rendition.body if rendition.body.endswith("\n") else rendition.body + "\n")
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    with _publisher(args) as publisher:
        _item_id(publisher, args)
        if args.item and not publisher.status(args.item):
            raise UnknownItem(
                f"the ledger has no item '{args.item}'; check the id (gongkai status)"
            )
        if args.channel and not any(r.channel == args.channel for r in publisher.status(args.item)):
            raise UnknownItem(
                f"the ledger has no delivery on channel '{args.channel}'"
                + (f" for '{args.item}'" if args.item else "")
                + "; check the name (gongkai status lists the deliveries)"
            )
        rows = publisher.retry(args.item, args.channel, unknown=args.unknown)
    data = [{"item_id": r.item_id, "channel": r.channel, "was": r.state} for r in rows]
    text = (
        f"re-queued {len(rows)} delivery(ies); the next `gongkai publish` sends them"
        if rows
        else "nothing to re-queue"
    )
    emit(args, data, text)
    return EXIT_OK


def cmd_confirm(args: argparse.Namespace) -> int:
    return confirm_verb(args, _publisher, _item_id)


def cmd_parity(args: argparse.Namespace) -> int:
    return parity_verb(args, _publisher)


def cmd_ledger_export(args: argparse.Namespace) -> int:
    return ledger_export_verb(args, _publisher)


def cmd_report(args: argparse.Namespace) -> int:
    return report_verb(args, _publisher)


def cmd_worker(args: argparse.Namespace) -> int:
    return worker_verb(args, _publisher)


def cmd_withdraw(args: argparse.Namespace) -> int:
    with _publisher(args, sends=True) as publisher:
        _item_id(publisher, args)
        result = publisher.withdraw(args.item, args.reason)
    text = "\n".join(
        [
            *result.notes,
            table(
                [(o.channel, o.status, o.detail) for o in result.outcomes],
                ("channel", "status", "detail"),
                limit=cell_limit(args),
            ),
        ]
    )
    # Judged on this item alone: a delivery of another item waiting for a retry does
    # not make a withdrawal fail, nor does a take-down a person must still confirm.
    done = ("withdrawn", "awaiting-confirmation")
    code = EXIT_OK if all(o.status in done for o in result.outcomes) else EXIT_FAILED
    emit(args, {**result.as_dict(), "ok": code == EXIT_OK, "exit_code": code}, text)
    return code


# --- parser --------------------------------------------------------------------------------


def _common_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options every verb takes. They are accepted before the verb too
    (``gongkai -c x.toml status``); after it, the verb's copy has no defaults of its own,
    so it does not undo what was given before the verb."""

    def flag(*names: str, **kwargs: Any) -> None:
        if not defaults:
            kwargs["default"] = argparse.SUPPRESS
        parser.add_argument(*names, **kwargs)

    flag("--config", "-c", help="config file (default: $GONGKAI_CONFIG or ./config.toml)")
    flag("--strict", action="store_true", help="a broken plugin is fatal")
    flag("--verbose", "-v", action="store_true", help="more detail and debug logs")
    flag("--wide", "-w", action="store_true", help="show long values (paths, errors) whole")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, defaults=False)
    reporting = argparse.ArgumentParser(add_help=False)
    reporting.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(
        prog="gongkai",
        description="Publish government disclosure items to every channel, once.",
    )
    parser.add_argument("--version", action="version", version=f"gongkai {__version__}")
    _common_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def verb(
        name: str,
        func: Callable[[argparse.Namespace], int],
        help_text: str,
        json_flag: bool = True,
    ) -> argparse.ArgumentParser:
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
    p.add_argument(
        "--reread",
        action="store_true",
        help="read every file, also those unchanged since their items were taken in",
    )
    p = verb("status", cmd_status, "show deliveries from the ledger")
    p.add_argument("item", nargs="?", help="one item: its id, or its file")
    p = verb(
        "confirm",
        cmd_confirm,
        "record that a person posted, broadcast, uploaded or took down a delivery a channel "
        "left awaiting confirmation",
    )
    add_confirm_arguments(p)
    p = verb(
        "parity",
        cmd_parity,
        "check that every channel, online and on every wall, carries each item's current "
        "edition; exit 1 when parity is broken",
    )
    add_parity_arguments(p)
    p = verb(
        "ledger-export",
        cmd_ledger_export,
        "write the standing work ledger (工作台账): every item, edition, delivery, "
        "confirmation and withdrawal, as an .xlsx workbook or JSON",
    )
    add_ledger_export_arguments(p)
    p = verb(
        "ledger",
        cmd_ledger,
        "the ledger's upkeep: migrate its schema, copy a SQLite ledger into PostgreSQL",
        json_flag=False,
    )
    add_ledger_arguments(p, [common, reporting])
    p = verb(
        "report",
        cmd_report,
        "assess each responsible unit over a period (考核): on time, update cycles, 解读, "
        "回应, parity; scores, ranking, .xlsx/.html and the draft notice (通报)",
    )
    add_report_arguments(p)
    p = verb(
        "worker",
        cmd_worker,
        "keep delivering: settle, take in due work, deliver, wait for more; until SIGTERM",
        json_flag=False,
    )
    add_worker_arguments(p)
    p = verb("channels", cmd_channels, "list installed channels and whether each is configured")
    p.add_argument(
        "--check",
        action="store_true",
        help="run each enabled channel's check() (config and credentials); exit 1 if one fails",
    )
    p = verb("validate", cmd_validate, "check item files without publishing")
    p.add_argument("paths", nargs="+", help="item files or folders (.md, .json)")
    p.add_argument(
        "--explain",
        action="store_true",
        help="show, per item, what masking would change (what was there is described, never shown)",
    )
    p = verb("render", cmd_render, "preview what a channel would send, without sending")
    p.add_argument("item", help="an item file, or an item id in the ledger")
    p.add_argument(
        "--channel", help="an enabled channel (gongkai channels); optional if only one is"
    )
    p = verb("retry", cmd_retry, "re-queue failed deliveries for the next publish")
    p.add_argument("item", nargs="?", help="one item: its id, or its file")
    p.add_argument("--channel", help="only this channel's deliveries")
    p.add_argument(
        "--unknown",
        action="store_true",
        help="also re-queue deliveries with an unknown outcome (check the remote first)",
    )
    p = verb("withdraw", cmd_withdraw, "take an item down from every channel")
    p.add_argument("item", help="the item: its id, or its file")
    p.add_argument("--reason", required=True, help="why it is withdrawn (recorded in the ledger)")
    p = verb(
        "init", cmd_init, "start a working folder: a commented config.toml and an example item"
    )
    p.add_argument("directory", nargs="?", default=".", help="the folder (default: .)")
    p.add_argument(
        "--org-code",
        help="the organisation's 统一社会信用代码 (18 characters), written as org_code",
    )
    p = verb(
        "new-channel",
        cmd_new_channel,
        "write a ready package for a channel of your own: pyproject, channel, tests, README",
    )
    add_new_channel_arguments(p)
    p = verb("sandbox", cmd_sandbox, "serve simulators of the WeChat and municipal APIs locally")
    add_sandbox_arguments(p)
    p = verb("preview", cmd_preview, "serve the portal's built site on 127.0.0.1 to look at it")
    add_preview_arguments(p)
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
    except (ConfigError, PluginError, StateError, UnknownItem, ItemRejected, UsageError) as exc:
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
