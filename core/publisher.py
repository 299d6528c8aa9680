"""The library API: ``Publisher.from_config("config.toml").publish(items)``.

It prints nothing and never exits; errors are exceptions from :mod:`gongkai.errors`
and results are typed (:class:`gongkai.results.RunResult`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from gongkai.plugins.diagnostics import hooks_of
from gongkai.plugins.manager import (
    DEFAULT_PLUGINS,
    ChannelInfo,
    collect_channels,
    get_plugin_manager,
)

from . import sandbox, sources
from .attempt import ActiveChannel
from .batch import FileBatch
from .catalogue import Catalogue
from .channel import Channel, ChannelContext, PreparedItem, Rendition
from .config import Settings, build_channel_settings, holds_secrets, load_settings
from .confirm import Confirmation, ConfirmBatch, confirm
from .confirm_csv import confirm_rows
from .errors import (
    ConfigError,
    ItemProblem,
    ItemRejected,
    StateError,
    UnknownItem,
    UsageError,
)
from .explain import Explanation, explain
from .intake import Intake
from .item import CST, Item, content_hash
from .ledger import AttemptRecord, DeliveryRow, EditionRecord, Ledger
from .ledger.select import open_ledger
from .ledger_export import LedgerExport
from .ledger_export import collect as collect_ledger
from .loader import LoadedItem, expand, load_paths
from .log import get_logger, scrub, scrub_data
from .parity import ParityReport
from .parity import Setup as ParitySetup
from .parity import compute as compute_parity
from .parity_history import DayParity
from .parity_history import history as parity_history
from .report import Report, SharedReads
from .report import compute as compute_report
from .results import RunResult
from .run import Run
from .settle import expire
from .unavailable import unavailable_channel
from .workdays import WorkCalendar


@dataclass(frozen=True)
class ItemHistory:
    """What ``gongkai status ITEM`` shows beside the delivery rows: every edition,
    the attempt log, and the withdrawal (when and why) if there was one."""

    item_id: str
    editions: list[EditionRecord]
    attempts: list[AttemptRecord]
    withdrawn: tuple[datetime, str] | None

    def as_dict(self, channel: str) -> dict[str, Any]:
        """The fields ``status ITEM --json`` adds to ``channel``'s row."""
        return {
            "editions": [
                {
                    "edition": e.edition,
                    "content_hash": e.content_hash,
                    "title": e.title,
                    "recorded_at": e.recorded_at,
                }
                for e in self.editions
            ],
            "attempt_log": [asdict(a) for a in self.attempts if a.channel == channel],
            "withdrawn": (
                {"at": self.withdrawn[0], "reason": self.withdrawn[1]} if self.withdrawn else None
            ),
        }


log = get_logger(__name__)
#: The ``base_url`` that means "the simulator of this API, started in this process".
SANDBOX = "sandbox"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Publisher:
    """Publishes items to every channel the catalogue and config ask for.

    Example::

        from gongkai import Publisher, Item
        with Publisher.from_config("config.toml") as publisher:
            result = publisher.publish([item])
            for outcome in result.outcomes:
                print(outcome.item_id, outcome.channel, outcome.status)

    ``sends=False`` builds a publisher for looking only (status, validate, render): a
    secret whose environment variable is unset is listed in ``missing_secrets``
    instead of refusing the config, and nothing may be sent.

    ``clock``, ``sleep`` and ``monotonic`` (which times hung calls against
    ``delivery_timeout``) can be injected (tests, simulations); ``plugins`` registers
    extra plugin objects besides the installed ones.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        plugins: Iterable[object] = (),
        strict: bool | None = None,
        load_entry_points: bool = True,
        sends: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic
        strict = settings.plugins.strict if strict is None else strict
        self.pm = get_plugin_manager(
            strict=strict,
            disabled=settings.plugins.disabled,
            extra=plugins,
            load_entry_points=load_entry_points,
            builtins=(*DEFAULT_PLUGINS, *settings.plugins.load),
        )
        self.channel_classes = collect_channels(self.pm, strict=strict)
        refused = {p.channel: str(p) for p in self.pm.problems if p.channel}
        # A configured channel whose plugin broke is served by a stand-in that pauses
        # it, so the other channels go on and its deliveries wait (core/unavailable.py).
        for name, problem in refused.items():
            if name in _configured_kinds(settings) and name not in self.channel_classes:
                self.channel_classes[name] = ChannelInfo(
                    unavailable_channel(name, problem), "(unavailable)"
                )
        #: Secrets whose environment variable is unset; only a Publisher built with
        #: ``sends=False`` (status, validate, render…) gets this far with any.
        self.missing_secrets: list[str] = []
        self.channel_settings = build_channel_settings(
            settings,
            {n: i.cls for n, i in self.channel_classes.items()},
            {n: why for n, why in refused.items() if n not in self.channel_classes},
            None if sends else self.missing_secrets,
        )
        self.sends = sends
        self.catalogue = Catalogue.load(settings.catalogue)
        self.calendar = WorkCalendar.from_lists(
            settings.calendar.extra_holidays, settings.calendar.extra_workdays
        )
        self._ledger: Ledger | None = None
        self._sandbox: sandbox.Sandbox | None = None
        self._context: str | None = None
        self._channels: dict[str, ActiveChannel] | None = None

    @classmethod
    def from_config(cls, path: str | Path | None = None, **kwargs: Any) -> Publisher:
        """Build from a config file (``None``: ``$GONGKAI_CONFIG``, ``./config.toml``,
        then built-in defaults)."""
        return cls(load_settings(path), **kwargs)

    # --- parts, built on first use -----------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            settings = self.settings
            self._ledger = open_ledger(
                settings.ledger or settings.ledger_path,
                password=settings.ledger_secret(),
                sync=settings.ledger_sync,
                # Every delivery thread may write at once, and settling threads too.
                pool_size=settings.concurrency + 4,
            )
        return self._ledger

    @property
    def has_ledger(self) -> bool:
        """Whether a ledger exists yet. Verbs that only read check this first, so that
        looking never creates the state directory."""
        state_dir = self.settings.state_dir
        if state_dir.exists() and not state_dir.is_dir():
            raise StateError(
                f"{state_dir}: cannot use it as the state directory (it is a file, not a "
                "folder); point [gongkai] state_dir in config.toml at a folder gongkai may write"
            )
        if self.settings.ledger is not None:
            return True  # a server's ledger: opening it never creates a folder
        return self._ledger is not None or self.settings.ledger_path.exists()

    @property
    def channels(self) -> dict[str, ActiveChannel]:
        if self._channels is None:
            self._channels = {}
            for name, chs in self.channel_settings.items():
                context = ChannelContext(
                    name=name,
                    state_dir=self.settings.state_dir,
                    clock=self.clock,
                    connect_timeout=chs.connect_timeout,
                    read_timeout=chs.read_timeout,
                    pool_size=chs.concurrency or self.settings.concurrency,
                    catalogue=self.settings.catalogue,
                    org_code=self.settings.org_code,
                    calendar=self.calendar,
                    secret_env=_secret_env(self.settings.channels.get(name)),
                )
                cls = self.channel_classes[chs.type or name].cls
                instance = cls(self._local_remote(cls, chs.options), context)
                if instance.name != name:
                    # Another instance of an installed channel (``type``): the ledger,
                    # logs and outcomes must see its own name, not its class's.
                    instance.name = name  # type: ignore[misc]
                self._channels[name] = ActiveChannel(instance, chs)
        return self._channels

    def run(self) -> Run:
        """The steps of one run, built afresh (a run owns its claims)."""
        if not self.sends:
            raise UsageError("this Publisher was built with sends=False; it cannot send")
        ledger = self.ledger  # a run records: create the ledger before intake looks
        return Run(
            settings=self.settings,
            pm=self.pm,
            channels=self.channels,
            ledger=ledger,
            intake=self.intake(),
            clock=self.clock,
            sleep=self.sleep,
            monotonic=self.monotonic,
        )

    def _local_remote(self, cls: type[Channel], options: Any) -> Any:
        """``options`` with ``base_url = "sandbox"`` replaced by the URL of a sandbox
        started in this process (once, on a free loopback port, its state under the
        state directory): the shipped config publishes to simulators and needs no
        service. Any other base_url is left as it is."""
        if getattr(options, "base_url", None) != SANDBOX or not getattr(cls, "sandbox", None):
            return options
        if self._sandbox is None:
            self._sandbox = sandbox.start(self.settings.state_dir)
            log.info("sandbox started", url=self._sandbox.url)
        return options.model_copy(update={"base_url": self._sandbox.url_for(cls.sandbox)})

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- verbs ---------------------------------------------------------------------------

    def publish(
        self,
        items: Item | Iterable[Item | LoadedItem] = (),
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> RunResult:
        """Run once: settle earlier work, take ``items`` in, deliver what is due.

        Items that fail validation are reported in ``result.problems``; the others go
        on. With no items, only ledger work (retries, schedules, remote jobs) is done.
        """
        if isinstance(items, Item):
            items = [items]
        loaded = [i if isinstance(i, LoadedItem) else LoadedItem(i, "<python>") for i in items]
        return self._run(loaded, RunResult(), progress)

    def publish_paths(
        self,
        paths: Iterable[str | Path],
        *,
        progress: Callable[[int, int], None] | None = None,
        reread: bool = False,
    ) -> RunResult:
        """Load item files (bad ones become problems) and publish the rest.

        Files the ledger holds as taken in, unchanged since (same size and time, for
        the file and its attachments, under the same config), are skipped unread and
        counted in ``result.files_skipped``; ``reread`` reads every file anyway."""
        files = list(expand(paths))
        ledger = self.ledger if self.has_ledger else None
        found = sources.scan(files, ledger, self.intake_context(), reread=reread)
        result = RunResult(files_read=len(found.changed), files_skipped=len(found.skipped))
        batch = FileBatch(
            found, result, attachments_root=self.settings.attachments_root, skipped=found.skipped
        )
        self._run(batch, result, progress)
        if not result.halted:
            sources.remember(found, self.ledger, batch.files, result)
        return result

    def intake_context(self) -> str:
        """A fingerprint of everything besides an item file that shapes what intake
        makes of it: a change here makes the next run read every file again."""
        if self._context is None:
            from gongkai import __version__  # the package, loaded by now

            self._context = sources.fingerprint(
                __version__,
                # Where the config file is does not shape an item; what it says does.
                self.settings.model_dump(mode="json", exclude={"source"}),
                [e.model_dump(mode="json") for e in self.catalogue.entries.values()],
                self.catalogue.domains,
                # By what they are, not by pluggy's name for them, which for a plugin
                # object registered without a name is its id() and differs per run.
                sorted(_plugin_identity(plugin) for _, plugin in self.pm.list_name_plugin()),
            )
        return self._context

    def load(self, paths: Iterable[str | Path]) -> tuple[list[LoadedItem], list[ItemProblem]]:
        """Read item files (attachments confined to each file's folder or the
        configured ``attachments_root``); bad files become problems."""
        return load_paths(paths, attachments_root=self.settings.attachments_root)

    def _run(
        self,
        loaded: Iterable[LoadedItem],
        result: RunResult,
        progress: Callable[[int, int], None] | None,
    ) -> RunResult:
        run = self.run()
        if progress is not None:
            run.progress = progress
        return run.publish(loaded, result)

    def intake(self) -> Intake:
        """The intake steps alone (prepare, validate, version), for verbs that record
        and send nothing. Without a ledger yet, none is created: nothing has numbers."""
        return Intake(
            settings=self.settings,
            pm=self.pm,
            channels=self.channel_settings,
            ledger=self.ledger if self.has_ledger else None,
            catalogue=self.catalogue,
            calendar=self.calendar,
            clock=self.clock,
            # Instances (``type``) are channels too, enabled or not.
            known_channels={*self.channel_classes, *self.settings.channels},
        )

    def validate(self, paths: Iterable[str | Path]) -> tuple[list[LoadedItem], list]:
        """Parse and check items without recording or sending anything."""
        loaded, problems = self.load(paths)
        good, found = self.intake().check(loaded)
        return good, problems + found

    def explain(self, paths: Iterable[str | Path]) -> tuple[list[Explanation], list]:
        """What preparing (masking…) would change in each item, and what would stop
        it, with nothing recorded or sent. The second value is the files' load
        problems. Before-values are described, never shown."""
        loaded, problems = self.load(paths)
        return explain(self.intake(), loaded), problems

    def status(self, item_id: str | None = None) -> list[DeliveryRow]:
        """The ledger's delivery rows (all, or one item's). In-flight rows whose
        process is gone are settled first, so they show as what they now are."""
        if not self.has_ledger:
            return []
        expire(self.ledger, self.clock)
        return self.ledger.rows(item_id=item_id)

    def history(self, item_id: str) -> ItemHistory:
        """An item's editions, its attempt log on every channel and its withdrawal."""
        if not self.has_ledger:
            raise UnknownItem(f"the ledger has no item '{item_id}'; nothing is published yet")
        return ItemHistory(
            item_id,
            self.ledger.editions(item_id),
            self.ledger.attempts(item_id),
            self.ledger.withdrawal(item_id),
        )

    def render(self, item: Item | str, channel: str) -> Rendition:
        """What ``channel`` would send for ``item`` (an Item, or an id in the ledger),
        without sending or recording anything."""
        active = self._channel(channel)
        if isinstance(item, str):
            if not self.has_ledger:
                raise UnknownItem(f"the ledger has no item '{item}'; nothing is published yet")
            payload, edition, digest = self.ledger.edition(item)
            prepared = PreparedItem.from_stored(payload, edition, digest)
        else:
            prepared = self._preview(item)
        return active.instance.render(prepared)

    def _preview(self, item: Item) -> PreparedItem:
        """Prepare exactly as publish would, without recording anything."""
        intake = self.intake()
        numbers = intake.index_numbers([item], allocate=False)
        ready, problems = intake.prepare(item, "<render>", numbers)
        if ready is None:
            raise ItemRejected(problems)
        try:
            if not self.has_ledger:
                raise UnknownItem(ready.id)
            _, latest, latest_hash = self.ledger.edition(ready.id)
        except UnknownItem:
            latest, latest_hash = 0, ""
        digest = content_hash(ready)
        edition = latest if digest == latest_hash else latest + 1
        return PreparedItem(**ready.model_dump(), edition=edition, content_hash=digest)

    def _channel(self, name: str) -> ActiveChannel:
        if name not in self.channels:
            known = ", ".join(sorted(self.channels)) or "none"
            raise ConfigError(
                self.settings.source,
                f"channels.{name}",
                f"channel '{name}' is not enabled (enabled: {known})",
                "enable it in config.toml or pick an enabled channel",
            )
        return self.channels[name]

    def withdraw(self, item_id: str, reason: str) -> RunResult:
        """Take an item down from every channel that may carry it, and cancel every
        delivery that never went out. Withdrawal wins over anything else pending on
        the item, in this process or another; the id cannot be published again.

        Take-downs go along the same path as deliveries (claim, retries, classified
        errors); one that fails is retried by later runs. A delivery that another
        process is sending at this moment is taken down as soon as it ends."""
        if not reason.strip():
            raise UsageError("a withdrawal needs a reason (--reason); it is recorded and shown")
        if not self.has_ledger or not self.ledger.rows(item_id=item_id):
            raise UnknownItem(f"the ledger has no item '{item_id}'; check the id (gongkai status)")
        result = RunResult()
        earlier = self.ledger.withdrawal(item_id)
        if earlier is not None:
            # Again: the first reason stands, and any take-down still owed is retried.
            at, first_reason = earlier
            result.notes.append(
                f"'{item_id}' was already withdrawn on {at.astimezone(CST):%Y-%m-%d %H:%M}"
                f"+08:00 ({first_reason}); that reason stands"
            )
        return self.run().withdraw(item_id, reason, result)

    def describe_channels(self) -> list[dict[str, Any]]:
        """Installed channels (entry points and ``[plugins] load``) and the further
        instances config makes of them (``type``), where each comes from, whether
        config enables it, and its settings with secrets masked; the plugin's
        ``distribution``, ``version``, ``module`` and ``hooks``. A plugin that failed
        to load or was refused is listed with name ``?`` and why."""
        rows: list[dict[str, Any]] = []
        listed = {name: name for name in self.channel_classes}
        for name, table in self.settings.channels.items():
            if isinstance(table, dict) and table.get("type", name) != name:
                listed[name] = table["type"]  # another instance of that channel
        for name, kind in sorted(listed.items()):
            info = self.channel_classes[kind]
            table = self.settings.channels.get(name)
            configured = "no"
            if table is not None:
                configured = "enabled" if table.get("enabled", True) else "disabled"
            doc = (info.cls.__doc__ or "").strip()
            rows.append(
                {
                    "name": name,
                    "type": kind,
                    "plugin": info.plugin,
                    "mode": info.cls.mode,
                    "guarantee": info.cls.guarantee,
                    "configured": configured,
                    "doc": doc.splitlines()[0] if doc else "",
                    "config": self._shown_config(name),
                    # Whether check() tests anything (the base class's passes always).
                    "has_check": info.cls.check is not Channel.check,
                    **self._plugin_fields(info.plugin),
                }
            )
        rows.extend(
            {
                "name": "?",
                "type": "",
                "plugin": problem.plugin,
                "mode": "",
                "guarantee": "",
                "configured": f"broken: {problem.problem}",
                "doc": "",
                "config": {},
                "has_check": False,
                **self._plugin_fields(problem.plugin),
            }
            for problem in self.pm.problems
        )
        return rows

    def _plugin_fields(self, plugin: str) -> dict[str, Any]:
        """Where a channel's plugin comes from and the hooks it implements."""
        origin = self.pm.origin(plugin)
        registered = self.pm.get_plugin(plugin)
        return {
            "distribution": origin.distribution if origin else "",
            "version": origin.version if origin else "",
            "module": origin.module if origin else "",
            "hooks": hooks_of(self.pm, registered) if registered is not None else [],
        }

    def _shown_config(self, name: str) -> dict[str, Any]:
        """An enabled channel's effective settings as JSON data: SecretStr fields dump
        as ``**********`` and anything read from the environment is scrubbed."""
        chs = self.channel_settings.get(name)
        if chs is None:
            return {}
        core = chs.model_dump(mode="json", exclude={"name", "type", "options", "enabled"})
        own = chs.options.model_dump(mode="json") if chs.options is not None else {}
        # A field whose type marks its secrets (the webhook's headers: text or SecretStr)
        # is shown as its type says, text as it is, as `gongkai render` shows it; the
        # safety net for header values is for fields that mark none.
        fields = type(chs.options).model_fields if chs.options is not None else {}
        marked = {name for name, field in fields.items() if holds_secrets(field.annotation)}
        shown = {
            key: _hide_credentials(value, "" if key in marked else key)
            for key, value in {**own, **core}.items()
        }
        return scrub_data(shown)

    def check_channels(self) -> dict[str, str | None]:
        """Run every enabled channel's ``check()``: None where it passed, else what
        failed. ``publish`` runs the same check once per channel before its first
        action, and pauses a channel that fails it."""
        if not self.sends:
            # A check talks to the remote, and its secrets may be placeholders here.
            raise UsageError("this Publisher was built with sends=False; it cannot check")
        found: dict[str, str | None] = {}
        for name, active in self.channels.items():
            try:
                active.instance.check()
            except Exception as exc:  # noqa: BLE001 - report any failure, never crash
                found[name] = scrub(str(exc)) or type(exc).__name__
            else:
                found[name] = None
        return found

    def confirm(
        self,
        item_id: str,
        channel: str,
        *,
        at: datetime | date,
        by: str,
        area: str | None = None,
        photo: str | Path | None = None,
        taken_down: bool = False,
    ) -> Confirmation:
        """Record that a person confirmed an ``awaiting-confirmation`` delivery (the
        upload batch was imported, the notice posted in ``area``) at ``at`` (a date
        alone means that day), by ``by``, optionally with a ``photo`` (copied under
        ``<state_dir>/photos/``). ``taken_down`` records its removal instead: a
        withdrawn item's take-down, or a posting whose 公示期 ended. Raises
        :class:`UsageError` with what to do when it cannot be recorded."""
        if not self.has_ledger:
            raise UnknownItem(f"the ledger has no item '{item_id}'; nothing is published yet")
        return confirm(
            self.ledger,
            item_id,
            channel,
            at=at,
            by=by,
            now=self.clock(),
            area=area,
            photo=photo,
            taken_down=taken_down,
            photos_dir=self.settings.state_dir / "photos",
        )

    def confirm_csv(self, path: str | Path) -> ConfirmBatch:
        """Confirm every row of a CSV a township sent back (columns item, channel,
        area, date, name, optional photo and taken_down; see :mod:`gongkai.confirm_csv`).
        Bad rows are reported in ``problems`` with their line numbers; good rows are
        recorded."""
        return confirm_rows(Path(path), self.confirm)

    def parity(
        self, *, overdue_days: int | None = None, now: datetime | None = None
    ) -> ParityReport:
        """Whether every channel each item needs carries its current edition, online
        and on every wall (see :mod:`gongkai.parity`). ``overdue_days`` overrides
        ``[parity] overdue_days``; ``now`` the Publisher's clock."""
        setup = self._parity_setup(overdue_days)
        now = now or self.clock()
        if not self.has_ledger:
            return ParityReport(now, setup.overdue_days)
        return compute_parity(self.ledger, setup, now)

    def _parity_setup(self, overdue_days: int | None = None) -> ParitySetup:
        return ParitySetup(
            catalogue=self.catalogue,
            enabled={
                name: self.channel_classes[chs.type or name].cls.mode
                for name, chs in self.channel_settings.items()
            },
            overdue_days=(
                self.settings.parity.overdue_days if overdue_days is None else overdue_days
            ),
        )

    def parity_history(self, now: datetime | None = None, days: int = 90) -> list[DayParity]:
        """How many items were at parity at the end of each of the last ``days`` days,
        replayed from the attempt log (see :mod:`gongkai.parity_history`)."""
        if not self.has_ledger:
            return []
        return parity_history(self.ledger, now or self.clock(), days)

    def ledger_export(
        self,
        *,
        start: date | None = None,
        end: date | None = None,
        now: datetime | None = None,
    ) -> LedgerExport:
        """The standing work ledger (工作台账): every item with its 索引号, catalogue
        entry, unit, dates, editions, channels, confirmations and withdrawal, as typed
        rows (see :mod:`gongkai.ledger_export`); with ``start``/``end`` (days, Beijing
        time), the items formed or acted on in that period.
        :func:`gongkai.ledger_xlsx.write_xlsx` writes it as a workbook."""
        now = now or self.clock()
        if not self.has_ledger:
            return LedgerExport(now, start, end)
        return collect_ledger(self.ledger, self.catalogue, now, start, end)

    def report(
        self,
        start: date,
        end: date,
        *,
        unit: str | None = None,
        area: str | None = None,
        now: datetime | None = None,
    ) -> Report:
        """The assessment (考核) of every responsible unit over ``start``–``end`` (days,
        Beijing time, inclusive): timeliness, update cycles, interpretations, responses,
        parity, corrections and withdrawals, a score from ``[report.weights]`` and a
        ranking (see :mod:`gongkai.report`). ``unit`` narrows it to one responsible
        unit, ``area`` to one key area (domain key or Chinese name); an unknown area
        raises ValueError."""
        now = now or self.clock()
        if not self.has_ledger:
            export, parity, related = LedgerExport(now), ParityReport(now, 0), {}
        else:
            # The work ledger and parity both read every delivery, confirmation and
            # item: read each once.
            reads = cast(Ledger, SharedReads(self.ledger))
            export = collect_ledger(reads, self.catalogue, now)
            parity = compute_parity(reads, self._parity_setup(), now)
            related = {
                s.item_id: s.payload.get("related") or []
                for s in reads.item_summaries()
                if s.payload.get("kind") == "interpretation"
            }
        return compute_report(
            export,
            parity,
            self.catalogue,
            self.calendar,
            self.settings.report,
            start,
            end,
            related=related,
            unit=unit,
            area=area,
        )

    def retry(
        self, item_id: str | None = None, channel: str | None = None, *, unknown: bool = False
    ) -> list[DeliveryRow]:
        """Queue ``failed`` deliveries again (and ``unknown`` ones with ``unknown=True``,
        once an operator has checked that the remote does not have them)."""
        states = ("failed", "unknown") if unknown else ("failed",)
        queued: list[DeliveryRow] = []
        if not self.has_ledger:
            return queued
        for row in self.ledger.rows(item_id=item_id, states=states):
            if channel and row.channel != channel:
                continue
            note = f"re-queued by operator from {row.state}"
            if self.ledger.requeue(row.item_id, row.channel, (row.state,), self.clock(), note):
                queued.append(row)
        return queued


#: Header names whose values are never credentials; any other header may carry one.
_PLAIN_HEADERS = frozenset({"accept", "accept-language", "content-type", "user-agent"})


def _hide_credentials(value: Any, key: str = "") -> Any:
    """Credentials a plugin keeps in plain fields, hidden for display: a password in
    a URL, query values of a URL, and header values (``X-Api-Key``) other than a few
    harmless ones. Declaring them SecretStr is better; this is the safety net."""
    if isinstance(value, dict):
        headers = "header" in key.lower()
        return {
            k: "**********"
            if headers and isinstance(v, str) and k.lower() not in _PLAIN_HEADERS
            else _hide_credentials(v, str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hide_credentials(v, key) for v in value]
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "**********@" + netloc.rpartition("@")[2]
        query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
        if netloc != parts.netloc or query != parts.query:
            return urlunsplit(parts._replace(netloc=netloc, query=query))
    return value


def _configured_kinds(settings: Settings) -> set[str]:
    """The installed channels config.toml enables (a table's ``type``, else its name)."""
    return {
        table.get("type", name)
        for name, table in settings.channels.items()
        if isinstance(table, dict) and table.get("enabled", True)
    }


def _secret_env(table: Any) -> dict[str, str]:
    """The top-level ``key = { env = "VAR" }`` entries of a channel's config table."""
    if not isinstance(table, dict):
        return {}
    return {
        key: value["env"]
        for key, value in table.items()
        if isinstance(value, dict) and set(value) == {"env"} and isinstance(value["env"], str)
    }


def _plugin_identity(plugin: object) -> str:
    name = getattr(plugin, "__name__", None)  # a module
    if isinstance(name, str):
        return name
    kind = type(plugin)
    return f"{kind.__module__}.{kind.__qualname__}"
