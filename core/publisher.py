"""The library API: ``Publisher.from_config("config.toml").publish(items)``.

It prints nothing and never exits; errors are exceptions from :mod:`gongkai.errors`
and results are typed (:class:`gongkai.results.RunResult`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from .catalogue import Catalogue
from .channel import ChannelContext, PreparedItem, Receipt, Rendition
from .config import Settings, build_channel_settings, load_settings
from .dispatcher import ActiveChannel, Dispatcher
from .errors import ConfigError, DeliveryError, ItemRejected, UnknownItem
from .item import Item, content_hash
from .ledger import DONE_STATES, DeliveryRow, Finish, Ledger, SQLiteLedger
from .loader import LoadedItem, load_paths
from .log import scrub
from .results import DeliveryOutcome, RunResult
from .workdays import WorkCalendar


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

    ``clock`` and ``sleep`` can be injected (tests, simulations); ``plugins`` registers
    extra plugin objects besides the installed ones.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
        plugins: Iterable[object] = (),
        strict: bool | None = None,
        load_entry_points: bool = True,
    ) -> None:
        from gongkai.plugins.manager import DEFAULT_PLUGINS, collect_channels, get_plugin_manager

        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        strict = settings.plugins.strict if strict is None else strict
        self.pm = get_plugin_manager(
            strict=strict,
            disabled=settings.plugins.disabled,
            extra=plugins,
            load_entry_points=load_entry_points,
            builtins=(*DEFAULT_PLUGINS, *settings.plugins.load),
        )
        self.channel_classes = collect_channels(self.pm, strict=strict)
        self.channel_settings = build_channel_settings(
            settings, {n: i.cls for n, i in self.channel_classes.items()}
        )
        self.catalogue = Catalogue.load(settings.catalogue)
        self.calendar = WorkCalendar.from_lists(
            settings.calendar.extra_holidays, settings.calendar.extra_workdays
        )
        self._ledger: Ledger | None = None
        self._channels: dict[str, ActiveChannel] | None = None

    @classmethod
    def from_config(cls, path: str | Path | None = None, **kwargs) -> Publisher:
        """Build from a config file (``None``: ``$GONGKAI_CONFIG``, ``./config.toml``,
        then built-in defaults)."""
        return cls(load_settings(path), **kwargs)

    # --- parts, built on first use -----------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = SQLiteLedger(self.settings.ledger_path, sync=self.settings.ledger_sync)
        return self._ledger

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
                )
                instance = self.channel_classes[name].cls(chs.options, context)
                self._channels[name] = ActiveChannel(instance, chs)
        return self._channels

    def dispatcher(self) -> Dispatcher:
        return Dispatcher(
            settings=self.settings,
            pm=self.pm,
            channels=self.channels,
            ledger=self.ledger,
            catalogue=self.catalogue,
            calendar=self.calendar,
            clock=self.clock,
            sleep=self.sleep,
        )

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc) -> None:
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
    ) -> RunResult:
        """Load item files (bad ones become problems) and publish the rest."""
        loaded, problems = load_paths(paths)
        return self._run(loaded, RunResult(problems=list(problems)), progress)

    def _run(self, loaded, result: RunResult, progress) -> RunResult:
        dispatcher = self.dispatcher()
        if progress is not None:
            dispatcher.progress = progress
        return dispatcher.run(loaded, result)

    def validate(self, paths: Iterable[str | Path]) -> tuple[list[LoadedItem], list]:
        """Parse and check items without recording or sending anything."""
        loaded, problems = load_paths(paths)
        dispatcher = self.dispatcher()
        # The same checks as publish, on the prepared item, but nothing is allocated.
        numbers = dispatcher.index_numbers((e.item for e in loaded), allocate=False)
        good = []
        for entry in loaded:
            ready, found = dispatcher.prepare(entry.item, entry.source, numbers)
            problems.extend(found)
            if ready is not None:
                good.append(entry)
        return good, problems

    def status(self, item_id: str | None = None) -> list[DeliveryRow]:
        """The ledger's delivery rows (all, or one item's)."""
        return self.ledger.rows(item_id=item_id)

    def render(self, item: Item | str, channel: str) -> Rendition:
        """What ``channel`` would send for ``item`` (an Item, or an id in the ledger),
        without sending or recording anything."""
        active = self._channel(channel)
        if isinstance(item, str):
            payload, edition, digest = self.ledger.edition(item)
            prepared = PreparedItem(**payload, edition=edition, content_hash=digest)
        else:
            prepared = self._preview(item)
        return active.instance.render(prepared)

    def _preview(self, item: Item) -> PreparedItem:
        """Prepare exactly as publish would, without recording anything."""
        dispatcher = self.dispatcher()
        numbers = dispatcher.index_numbers([item], allocate=False)
        ready, problems = dispatcher.prepare(item, "<render>", numbers)
        if ready is None:
            raise ItemRejected(problems)
        try:
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
        """Take an item down from every channel that carries it, and stop any delivery
        still queued. The item id cannot be published again."""
        rows = self.ledger.rows(item_id=item_id)
        if not rows:
            raise UnknownItem(f"the ledger has no item '{item_id}'; check the id (gongkai status)")
        now = self.clock()
        self.ledger.mark_withdrawn(item_id, reason, now)
        dispatcher = self.dispatcher()
        result = RunResult()
        for row in rows:
            outcome = self._withdraw_one(dispatcher, row, reason)
            result.outcomes.append(outcome)
        return result

    def _withdraw_one(self, dispatcher: Dispatcher, row: DeliveryRow, reason: str):
        now = self.clock()
        if row.state in ("pending", "retry-wait", "failed"):
            self.ledger.settle(
                row.item_id,
                row.channel,
                (row.state,),
                Finish(
                    state="withdrawn",
                    action="withdraw",
                    outcome="cancelled before delivery",
                    error=reason,
                ),
                now,
            )
            return DeliveryOutcome(
                row.item_id, row.channel, "withdrawn", row.edition, "cancelled before delivery"
            )
        if row.state not in DONE_STATES:
            return DeliveryOutcome(
                row.item_id,
                row.channel,
                row.state,
                row.edition,
                f"cannot withdraw while {row.state}; settle it, then retry",
            )
        active = self.channels.get(row.channel)
        if active is None or not active.instance.supports("withdraw"):
            return DeliveryOutcome(
                row.item_id,
                row.channel,
                "failed",
                row.edition,
                "the channel cannot withdraw; take it down by hand",
            )
        claimed = self.ledger.claim(
            row.item_id,
            row.channel,
            dispatcher.owner,
            now,
            dispatcher.lease_until(now),
            states=DONE_STATES,
        )
        if claimed is None:
            return DeliveryOutcome(
                row.item_id,
                row.channel,
                "in-flight",
                row.edition,
                "another process holds it; try again",
            )
        item = dispatcher.item(row.item_id, row.delivered_edition or row.edition)
        try:
            receipt = active.instance.withdraw(
                item, Receipt.model_validate(row.receipt or {}), reason
            )
        except DeliveryError as exc:
            self.ledger.finish(
                row.item_id,
                row.channel,
                dispatcher.owner,
                row.edition,
                Finish(
                    state=row.state,
                    action="withdraw",
                    error=scrub(str(exc)),
                    outcome="failed",
                    started_at=now,
                ),
                self.clock(),
            )
            return DeliveryOutcome(row.item_id, row.channel, "failed", row.edition, scrub(str(exc)))
        self.ledger.finish(
            row.item_id,
            row.channel,
            dispatcher.owner,
            row.edition,
            Finish(
                state="withdrawn",
                action="withdraw",
                error=reason,
                receipt=receipt.model_dump(),
                started_at=now,
            ),
            self.clock(),
        )
        return DeliveryOutcome(
            row.item_id,
            row.channel,
            "withdrawn",
            row.edition,
            reason,
            receipt.url,
            receipt.artifact,
        )

    def retry(
        self, item_id: str | None = None, channel: str | None = None, *, unknown: bool = False
    ) -> list[DeliveryRow]:
        """Queue ``failed`` deliveries again (and ``unknown`` ones with ``unknown=True``,
        once an operator has checked that the remote does not have them)."""
        states = ("failed", "unknown") if unknown else ("failed",)
        queued = []
        for row in self.ledger.rows(item_id=item_id, states=states):
            if channel and row.channel != channel:
                continue
            if self.ledger.settle(
                row.item_id,
                row.channel,
                (row.state,),
                Finish(
                    state="pending",
                    action="requeue",
                    outcome=f"re-queued by operator from {row.state}",
                ),
                self.clock(),
            ):
                queued.append(row)
        return queued
