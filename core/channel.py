"""The channel contract: what a plugin implements to carry items somewhere.

A channel renders, sends and classifies errors. Everything else (retries, backoff,
leases, idempotency, the ledger) belongs to core. See ``channels/archive.py`` for the
reference implementation and ``docs/channels.md`` for a walk-through.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ChannelContractError, StateError
from .item import CST, Item
from .workdays import WorkCalendar

if TYPE_CHECKING:
    from .ledger.base import AttemptRecord

Mode = Literal["online", "offline"]
Guarantee = Literal["idempotency-key", "upsert", "versioned", "lookup", "none"]
GUARANTEES: tuple[str, ...] = ("idempotency-key", "upsert", "versioned", "lookup", "none")
#: Guarantees under which sending the same edition twice cannot make a second copy, so a
#: delivery whose outcome is unknown may simply be sent again.
RESEND_SAFE: frozenset[str] = frozenset({"idempotency-key", "upsert", "versioned"})


class PreparedItem(Item):
    """An item as one edition: after the prepare hooks (masking, sanitising), with the
    edition number the ledger gave its content hash. This is what channels receive."""

    edition: int
    content_hash: str

    @classmethod
    def from_stored(cls, payload: dict[str, Any], edition: int, digest: str) -> PreparedItem:
        """An edition as the ledger stored it. Input rules added since it was recorded
        (such as refusing control characters) are not applied again: what was
        published must stay readable, to deliver, update and withdraw it."""
        try:
            return cls.model_validate(
                {**payload, "edition": edition, "content_hash": digest}, context={"stored": True}
            )
        except ValidationError as exc:
            item_id = payload.get("id", "?") if isinstance(payload, dict) else "?"
            raise StateError(
                f"the ledger's edition {edition} of item '{item_id}' cannot be read by this "
                f"version of gongkai ({exc.error_count()} problem(s), first: "
                f"{exc.errors()[0]['msg']}); upgrade gongkai, or report it with the item id"
            ) from exc

    @property
    def short_hash(self) -> str:
        """The first 8 hex digits: printed on notices so a citizen can compare the wall
        with the web."""
        return self.content_hash[:8]


class Rendition(BaseModel):
    """What a channel would send for an item: pure data, used for delivery, dry runs
    and ``gongkai render``."""

    model_config = ConfigDict(frozen=True)

    media_type: str = "text/plain"
    body: str
    data: dict[str, Any] = {}

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.body.encode("utf-8")).hexdigest()


ReceiptStatus = Literal["delivered", "publishing", "awaiting-confirmation", "withdrawn"]


class Receipt(BaseModel):
    """What a channel reports after an action. ``data`` holds channel-specific ids
    (``media_id``, ``publish_id``) that later calls (update, poll, withdraw) need."""

    model_config = ConfigDict(frozen=True)

    status: ReceiptStatus = "delivered"
    external_id: str | None = None
    url: str | None = None
    artifact: str | None = None
    data: dict[str, Any] = {}


@dataclass(frozen=True)
class ChannelContext:
    """What core hands every channel instance."""

    name: str
    state_dir: Path
    clock: Callable[[], datetime]
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    pool_size: int = 8
    #: The deployment's catalogue files (``[gongkai] catalogue``), for channels that
    #: show what the catalogue says about an item (the portal's 主题分类).
    catalogue: tuple[str, ...] = ("default",)
    #: The default issuing organisation's code (``[gongkai] org_code``).
    org_code: str | None = None
    #: The deployment's working-day calendar (``[calendar]``), for channels that count
    #: days (an offline notice's 公示期).
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    #: Config field → the environment variable its secret was read from
    #: (``app_secret = { env = "GONGKAI_MUNICIPAL_SECRET" }``), so that an error about
    #: refused credentials can name the variable to fix.
    secret_env: dict[str, str] = field(default_factory=dict)

    def today(self) -> date:
        """Today in Beijing (UTC+8): at 07:00 in Jintang it is still yesterday in UTC."""
        return self.clock().astimezone(CST).date()

    def posting_period(self, item: Item, start: date | None = None) -> dict[str, Any] | None:
        """The item's 公示期 from ``start`` (default :meth:`today`), as the
        deployment's catalogue and calendar count it: ``{"from": "2026-11-26",
        "to": "2026-12-04", "days": 7, "unit": "working"}``, or None when neither the
        catalogue nor the item sets one. See :func:`gongkai.posting.posting_period`."""
        from .posting import minimum_for, posting_period

        when = self.today() if start is None else start
        return posting_period(item, minimum_for(item, self.catalogue), self.calendar, when)


@dataclass
class DeliveryProgress:
    """Per-delivery scratch space that core persists, for two-step creates."""

    saved: dict[str, Any] = field(default_factory=dict)
    #: None outside ``deliver``: other actions may read the checkpoint, not write it.
    save: Callable[[dict[str, Any]], None] | None = lambda data: None


_progress: contextvars.ContextVar[DeliveryProgress | None] = contextvars.ContextVar(
    "gongkai_delivery_progress", default=None
)


class Channel:
    """Base class of every channel. Subclass it and register the class through the
    ``gongkai_register_channels`` hook.

    Class attributes:
        name: unique channel name, used in config (``[channels.<name>]``) and the
            catalogue's routing.
        mode: ``online`` (done when the remote accepts) or ``offline`` (done when a
            person confirms the posting or broadcast).
        guarantee: what makes a resend safe: ``idempotency-key`` (the remote drops a
            repeated key), ``upsert`` (same key overwrites), ``versioned`` (the remote
            keeps editions apart), ``lookup`` (``reconcile`` can find what was sent) or
            ``none``.
        Config: a frozen pydantic model with ``extra="forbid"`` for the channel's own
            keys. Secrets are ``SecretStr`` and named in config by environment variable.
    """

    name: ClassVar[str]
    mode: ClassVar[Mode] = "online"
    guarantee: ClassVar[Guarantee] = "none"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, config: BaseModel, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    # --- the contract ---------------------------------------------------------------

    def render(self, item: PreparedItem) -> Rendition:
        """Required. Return what would be sent. Must be pure: no I/O, same input →
        same output."""
        raise NotImplementedError

    def deliver(
        self, item: PreparedItem, rendition: Rendition, previous: Receipt | None
    ) -> Receipt:
        """Required. Create (``previous`` is None) or update the item on the remote.

        Return a receipt with status ``delivered``, ``publishing`` (a remote job that
        :meth:`poll` follows) or ``awaiting-confirmation`` (a person must post it).
        Raise a :mod:`gongkai.errors` delivery error to classify a failure.
        """
        raise NotImplementedError

    def withdraw(self, item: PreparedItem, receipt: Receipt, reason: str) -> Receipt:
        """Optional. Take the item down; return a receipt with status ``withdrawn``.

        ``receipt`` is what the remote holds (empty if the delivery's outcome was
        unknown). Core may call it more than once for one item (after a crash, or when
        a take-down timed out), and for an item the remote never received: a remote
        that answers "not found" means the item is down, so return the receipt.
        """
        raise NotImplementedError

    def poll(self, receipt: Receipt) -> Receipt:
        """Optional: ask after a remote job (status ``publishing``). Return the new
        receipt; ``publishing`` again means ask later."""
        raise NotImplementedError

    def reconcile(self, item: PreparedItem, attempt: AttemptRecord) -> Receipt | None:
        """Optional: settle a delivery whose outcome is unknown.

        ``attempt`` is the logged delivery attempt of this edition whose answer never
        came. Look the item up on the remote and check that what is there is *this
        edition* (compare the edition number or content hash you sent), not just the
        item id: an older edition found there is not this delivery. Return its
        receipt if the remote has this edition, None if it surely does not (core then
        sends it again). Raise a delivery error if the remote cannot tell now. Leave
        it unimplemented if the remote cannot be asked.
        """
        raise NotImplementedError

    def check(self) -> None:
        """Optional: verify config and credentials; raise a delivery error if not."""

    def preview_dir(self) -> Path | None:
        """Optional: the folder of static files this channel builds (a web site),
        which ``gongkai preview`` serves on 127.0.0.1."""
        return None

    def refresh_auth(self) -> None:
        """Optional: drop cached credentials. Core calls it once after an AuthError."""

    # --- helpers for channels -------------------------------------------------------

    @classmethod
    def supports(cls, method: str) -> bool:
        return getattr(cls, method) is not getattr(Channel, method)

    def checkpoint(self, **data: Any) -> None:
        """Persist progress of a multi-step create before the next step, so a rerun
        resumes instead of creating twice (WeChat: save the draft's media_id before
        submitting it)."""
        progress = _progress.get()
        if progress is None or progress.save is None:
            raise ChannelContractError(
                f"channel '{self.name}' called checkpoint() outside a delivery; call it "
                "only from deliver(), where core can persist it"
            )
        progress.saved.update(data)
        progress.save(dict(progress.saved))

    def resumed(self) -> dict[str, Any]:
        """What an earlier, interrupted attempt at this edition saved with
        :meth:`checkpoint` (empty on a first attempt)."""
        progress = _progress.get()
        return dict(progress.saved) if progress is not None else {}


def bind_progress(progress: DeliveryProgress) -> contextvars.Token:
    return _progress.set(progress)


def unbind_progress(token: contextvars.Token) -> None:
    _progress.reset(token)
