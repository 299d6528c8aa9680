"""Intake: load → validate → prepare → version → plan.

Items become prepared editions here: defaults from the catalogue, an index number, the
prepare hooks (masking, sanitising), validation, the content hash, then one ledger
transaction per chunk that records editions and plans deliveries. ``validate`` and
``render`` use the same steps without recording anything.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from gongkai.plugins.diagnostics import call_impl

from .catalogue import Catalogue
from .channel import PreparedItem
from .config import ChannelSettings, Settings
from .errors import ItemProblem
from .item import CST, KIND_LABELS, Item, content_hash
from .ledger import IngestRecord, Ledger
from .loader import LoadedItem, problems_from_validation
from .log import get_logger
from .results import DeliveryOutcome, RunResult
from .workdays import WorkCalendar

if TYPE_CHECKING:
    import pluggy

log = get_logger(__name__)
#: Items recorded per ledger transaction; delivery of a chunk starts while the next
#: one is read and hashed.
INGEST_BATCH = 500


class Intake:
    """Prepares items and records their editions; caches the prepared editions a run
    delivers, so a delivery does not rebuild what intake just built."""

    def __init__(
        self,
        *,
        settings: Settings,
        pm: pluggy.PluginManager,
        channels: Mapping[str, ChannelSettings],
        ledger: Ledger | None,
        catalogue: Catalogue,
        calendar: WorkCalendar,
        clock: Callable[[], datetime],
        known_channels: Collection[str] = (),
    ) -> None:
        self.settings = settings
        self.pm = pm
        self.channel_names = tuple(channels)
        self.every_item = tuple(name for name, chs in channels.items() if chs.every_item)
        self.ledger = ledger
        self.catalogue = catalogue
        self.calendar = calendar
        self.clock = clock
        # Names an item may add or skip: installed channels and those the catalogue
        # routes to (a catalogue channel not installed yet is a note, not an error).
        self.installed = frozenset(known_channels)
        self.known_channels = self.installed | catalogue.channel_names()
        self._items: dict[tuple[str, int], PreparedItem] = {}
        self._fresh: dict[tuple[str, int], tuple[Item, str]] = {}
        #: Deliveries still to take each fresh edition; at zero it leaves the cache, so
        #: a run over 100,000 items does not hold them all (a later need reads the
        #: ledger).
        self._uses: dict[tuple[str, int], int] = {}
        #: Ids taken in together in this run: a release named by an interpretation may
        #: be among them rather than in the ledger yet.
        self.batch_ids: frozenset[str] = frozenset()
        self._reasons: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def _recording(self) -> Ledger:
        if self.ledger is None:  # a bug in the caller, not an input problem
            raise RuntimeError("this Intake was built without a ledger; it cannot record")
        return self.ledger

    # --- preparing ------------------------------------------------------------------------

    def index_numbers(self, items: Iterable[Item], *, allocate: bool = True) -> dict[str, str]:
        """Index numbers for items that do not carry one, in one ledger call."""
        wanted = [
            (i.id, f"{code}/{i.formed_on.year:04d}")
            for i in items
            if i.index_number is None and (code := self.settings.org_code_for(i.publisher))
        ]
        if not wanted or self.ledger is None:
            return {}
        return self.ledger.index_numbers(wanted, allocate=allocate)

    def prepare(
        self, item: Item, source: str, numbers: dict[str, str] | None = None
    ) -> tuple[Item | None, list[ItemProblem]]:
        """Fill in defaults, run the prepare hooks, then validate. ``numbers`` holds
        index numbers from :meth:`index_numbers` (absent: the item gets none yet)."""
        prepared, problems = self.transform(item, source, numbers)
        if prepared is None:
            return None, problems
        problems = self.problems(prepared, source)
        return (None if problems else prepared), problems

    def transform(
        self, item: Item, source: str, numbers: dict[str, str] | None = None
    ) -> tuple[Item | None, list[ItemProblem]]:
        """The item with defaults filled in and the prepare hooks run, not yet
        validated (``gongkai validate --explain`` compares it with the original)."""
        entry = self.catalogue.get(item.catalog)
        updates: dict = {}
        if item.openness is None and entry is not None:
            updates["openness"] = entry.openness
        if entry is not None and set(entry.public_by_law) - set(item.public_by_law):
            updates["public_by_law"] = tuple(
                sorted(set(item.public_by_law) | set(entry.public_by_law))
            )
        if item.index_number is None and numbers and item.id in numbers:
            updates["index_number"] = numbers[item.id]
        if updates:
            item = item.model_copy(update=updates)
        for impl in reversed(self.pm.hook.gongkai_prepare_item.get_hookimpls()):
            try:
                changed = call_impl(
                    self.pm, "gongkai_prepare_item", impl, item=item, settings=self.settings
                )
            except Exception as exc:  # noqa: BLE001 - a plugin bug must not eat the batch
                return None, [
                    ItemProblem(
                        source,
                        "",
                        f"plugin '{impl.plugin_name}' failed to prepare it ({exc})",
                        "report it to the plugin's author, or disable the plugin",
                        item.id,
                    )
                ]
            if changed is not None:
                try:
                    # Re-validate: a plugin's copy must still be a valid item.
                    item = Item.model_validate(changed.model_dump())
                except ValidationError as exc:
                    return None, problems_from_validation(source, exc, item.id)
        return item, []

    def problems(self, item: Item, source: str) -> list[ItemProblem]:
        """What stops a prepared item: the catalogue's rules, the deployment's, and
        every validate hook's."""
        problems = self.catalogue.problems(item, source) + self._intake_problems(item, source)
        for found in self.pm.hook.gongkai_validate_item(
            item=item,
            entry=self.catalogue.get(item.catalog),
            source=source,
            settings=self.settings,
        ):
            problems.extend(found or [])
        return problems

    def _intake_problems(self, item: Item, source: str) -> list[ItemProblem]:
        """Checks that need the deployment: today's date, the org codes, the channels."""
        found = []
        today = self.clock().astimezone(CST).date()
        if item.formed_on > today:
            found.append(
                ItemProblem(
                    source,
                    "formed_on",
                    f"{item.formed_on} is after today ({today}); formed_on is the date the "
                    "document was made (成文日期)",
                    "write the date the document was signed; to publish later, set publish_at",
                    item.id,
                )
            )
        if item.index_number is None and self.settings.org_code_for(item.publisher) is None:
            found.append(
                ItemProblem(
                    source,
                    "publisher",
                    f"no org code to mint its 索引号 from: {self.settings.source} has no "
                    f"[org_codes] entry for '{item.publisher}' and no [gongkai] org_code",
                    f'add "{item.publisher}" = "<统一社会信用代码>" under [org_codes] (or '
                    "org_code under [gongkai]) in config.toml, or give the item its "
                    "index_number; an index number is permanent, so none is made up",
                    item.id,
                )
            )
        if item.kind != "release" and item.related:
            found += self._unknown_releases(item, source)
        for kind in ("add", "skip"):
            for name in getattr(item.channels, kind):
                if name not in self.known_channels:
                    found.append(
                        ItemProblem(
                            source,
                            f"channels.{kind}",
                            f"no channel is named '{name}'",
                            "use an installed channel (gongkai channels) or one the "
                            "catalogue names (gongkai catalogue)",
                            item.id,
                        )
                    )
        return found

    def _unknown_releases(self, item: Item, source: str) -> list[ItemProblem]:
        """An interpretation or response names releases that exist: in this run's batch
        or in the ledger. A link to nothing would be a dead link on every channel."""
        # Its own id is in the batch too, but an item cannot explain itself.
        missing = [r for r in item.related if r == item.id or r not in self.batch_ids]
        found = []
        if missing and self.ledger is not None:
            known = self.ledger.latest_editions(missing)
            found = [r for r in missing if known.get(r)]
            missing = [r for r in missing if not known.get(r)]
        problems = [
            ItemProblem(
                source,
                "related",
                f"'{related}' is neither in this batch nor in the ledger",
                "publish the release first (or with it), or correct the id",
                item.id,
            )
            for related in missing
        ]
        return problems + self._not_releases(item, source, found)

    def _not_releases(self, item: Item, source: str, ids: list[str]) -> list[ItemProblem]:
        """Of the related ids the ledger holds, those an interpretation or response
        cannot belong to: a withdrawn item (the link would lead to a withdrawal
        notice) or another interpretation or response."""
        problems = []
        ledger = self._recording()
        for related in ids:
            withdrawn = ledger.withdrawal(related)
            if withdrawn is not None:
                problems.append(
                    ItemProblem(
                        source,
                        "related",
                        f"'{related}' was withdrawn on {withdrawn[0].astimezone(CST):%Y-%m-%d} "
                        f"({withdrawn[1]}); a {KIND_LABELS[item.kind]} cannot belong to it",
                        "name the release that replaced it, or withdraw this item too",
                        item.id,
                    )
                )
                continue
            kind = ledger.edition(related)[0].get("kind", "release")
            if kind != "release":
                problems.append(
                    ItemProblem(
                        source,
                        "related",
                        f"'{related}' is a {KIND_LABELS.get(kind, kind)}, not a release "
                        f"(发布); a {KIND_LABELS[item.kind]} belongs to the release itself",
                        "name the release that one belongs to",
                        item.id,
                    )
                )
        return problems

    def check(self, loaded: Sequence[LoadedItem]) -> tuple[list[LoadedItem], list[ItemProblem]]:
        """The checks publish makes, on the prepared item, with nothing recorded or
        allocated (``gongkai validate``)."""
        self.batch_ids = frozenset(e.item.id for e in loaded)
        numbers = self.index_numbers((e.item for e in loaded), allocate=False)
        good, problems = [], []
        for entry in loaded:
            ready, found = self.prepare(entry.item, entry.source, numbers)
            if ready is not None:
                found = self._ledger_problems(ready, entry.source)
            problems.extend(found)
            if ready is not None and not found:
                good.append(entry)
        return good, problems

    def _ledger_problems(self, item: Item, source: str) -> list[ItemProblem]:
        """What publish would refuse because of the ledger (a withdrawn id, an older
        edition's content), found without writing."""
        if self.ledger is None:
            return []
        editions = self.ledger.editions(item.id)
        if not editions:
            return []
        digest = content_hash(item)
        edition = next((e.edition for e in editions if e.content_hash == digest), 0)
        latest = editions[-1].edition
        if self.ledger.withdrawal(item.id) is not None:
            # The unchanged file of a withdrawn item is skipped with a note, not refused.
            status = "withdrawn" if edition == 0 else "unchanged"
        else:
            status = "stale" if 0 < edition < latest else "unchanged"
        problem = _refusal(status, edition, latest)
        return [ItemProblem(source, *problem, item.id)] if problem else []

    # --- recording --------------------------------------------------------------------------

    def ingest(
        self,
        loaded: Iterable[LoadedItem],
        result: RunResult,
        on_chunk: Callable[[list[str]], None] = lambda ids: None,
        plans: dict[tuple[str, str], str] | None = None,
    ) -> dict[tuple[str, str], str]:
        """Record editions and plan deliveries, a chunk per ledger transaction, calling
        ``on_chunk`` with the chunk's recorded item ids so delivery can start before
        the whole batch is in. Returns the plan of every planned (item, channel), in
        ``plans`` if given (filled as chunks are recorded). ``loaded`` may be a stream
        (a :class:`~gongkai.batch.FileBatch`): it is taken a chunk at a time."""
        planned = {} if plans is None else plans
        stream = iter(loaded)
        while chunk := list(itertools.islice(stream, INGEST_BATCH)):
            pairs = self._ingest_chunk(chunk, result)
            planned.update(((item_id, channel), plan) for item_id, channel, plan in pairs)
            on_chunk(list(dict.fromkeys(item_id for item_id, _, _ in pairs)))
        return planned

    def _route(self, item: Item) -> tuple[list[str], list[DeliveryOutcome]]:
        routed = list(self.catalogue.route(item, self.catalogue.get(item.catalog)))
        routed += [n for n in self.every_item if n not in routed]
        enabled = [n for n in routed if n in self.channel_names]
        missing = [
            DeliveryOutcome(item.id, name, "not-enabled", detail=self._why_not(item.catalog, name))
            for name in routed
            if name not in self.channel_names
        ]
        return enabled, missing

    def _why_not(self, catalog: str, name: str) -> str:
        # One string per (entry, channel), shared by every outcome that names it.
        key = (catalog, name)
        if key not in self._reasons:
            self._reasons[key] = f"catalogue entry '{catalog}' routes it to '{name}', " + (
                "which config.toml does not enable"
                if name in self.installed
                else "for which no plugin is installed"
            )
        return self._reasons[key]

    def _ingest_chunk(
        self, loaded: Sequence[LoadedItem], result: RunResult
    ) -> list[tuple[str, str, str]]:
        now = self.clock()
        records: list[tuple[IngestRecord, str, Item]] = []
        not_enabled: list[DeliveryOutcome] = []
        numbers = self.index_numbers(entry.item for entry in loaded)
        for entry in loaded:
            item, problems = self.prepare(entry.item, entry.source, numbers)
            result.problems.extend(problems)
            if item is None:
                continue
            enabled, missing = self._route(item)
            not_enabled += missing
            record = IngestRecord(
                item_id=item.id,
                content_hash=content_hash(item),
                payload=item.model_dump(mode="json"),
                catalog=item.catalog,
                title=item.title,
                channels=tuple(enabled),
                not_before=item.publish_at if item.publish_at and item.publish_at > now else None,
                due_on=self.catalogue.deadline(item, self.calendar),
            )
            records.append((record, entry.source, item))
        if not records:
            return []
        planned: list[tuple[str, str, str]] = []
        answers = self._recording().ingest([r for r, _, _ in records], now)
        for (record, source, item), answer in zip(records, answers, strict=True):
            if answer.status == "withdrawn" and answer.edition:
                # The file of a withdrawn item, unchanged, still in the folder that cron
                # publishes: nothing to do, and no error every ten minutes.
                result.notes.append(
                    f"{record.item_id} ({source}) was withdrawn and is not published "
                    "again; move the file out of the items folder"
                )
                continue
            problem = _refusal(answer.status, answer.edition, answer.latest_edition)
            if problem is not None:
                result.problems.append(ItemProblem(source, *problem, record.item_id))
                continue
            result.editions[record.item_id] = answer.edition
            with self._lock:
                # Built into a PreparedItem only if a delivery needs it (see item()).
                key = (record.item_id, answer.edition)
                self._fresh[key] = (item, record.content_hash)
                sends = sum(p in ("queued", "update", "superseded") for p in answer.plans.values())
                self._uses[key] = self._uses.get(key, 0) + sends
            if answer.status in ("new", "changed"):
                log.info(
                    "edition recorded",
                    item_id=record.item_id,
                    edition=answer.edition,
                    content_hash=record.content_hash[:12],
                )
                late = item.publish_at.astimezone(CST).date() if item.publish_at else None
                if record.due_on and late and late > record.due_on:
                    result.notes.append(
                        f"{record.item_id}: publish_at {late} is after its statutory "
                        f"deadline {record.due_on}"
                    )
                if record.due_on and now.astimezone(CST).date() > record.due_on:
                    result.notes.append(
                        f"{record.item_id}: published after its statutory deadline {record.due_on}"
                    )
                    log.warning(
                        "published after its statutory deadline",
                        item_id=record.item_id,
                        due_on=record.due_on.isoformat(),
                    )
            planned.extend((record.item_id, c, plan) for c, plan in answer.plans.items())
        result.outcomes.extend(o for o in not_enabled if o.item_id in result.editions)
        return planned

    # --- editions for delivery --------------------------------------------------------------

    def item(self, item_id: str, edition: int) -> PreparedItem:
        """The prepared edition a channel receives."""
        key = (item_id, edition)
        with self._lock:
            cached = self._items.get(key)
            fresh = self._fresh.get(key) if cached is None else None
        if cached is None and fresh is not None:
            ready, digest = fresh
            cached = PreparedItem(**ready.model_dump(), edition=edition, content_hash=digest)
        elif cached is None:
            payload, number, digest = self._recording().edition(item_id, edition)
            cached = PreparedItem.from_stored(payload, number, digest)
        with self._lock:
            left = self._uses.get(key)
            if left is None:
                self._items[key] = cached  # work from earlier runs: few, kept
            elif left <= 1:
                del self._uses[key]
                self._items.pop(key, None)
                self._fresh.pop(key, None)
            else:
                self._uses[key] = left - 1
                self._items[key] = cached
        return cached


def _refusal(status: str, edition: int, latest: int) -> tuple[str, str, str] | None:
    """(field, problem, fix) when the ledger refused an item's content."""
    if status == "stale":
        return (
            "",
            f"its content is edition {edition}, but edition {latest} is newer",
            "an older edition never replaces a newer one; edit the file to the current "
            "text, or make the change you meant",
        )
    if status == "withdrawn":
        return (
            "id",
            "this item was withdrawn, and this is new content under its id",
            "publish it under a new id if it must go out again, and move this file out of "
            "the folder you publish (it is refused on every run while it is there)",
        )
    return None
