"""The plugin contract of gongkai. Specs only; each says what it returns and shows an
example. Arguments are only ever added, never renamed, so old plugins keep working
(pluggy passes an implementation just the arguments it names)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from gongkai.catalogue import Entry
    from gongkai.channel import Channel, PreparedItem, Receipt
    from gongkai.config import Settings
    from gongkai.errors import DeliveryError, ItemProblem
    from gongkai.item import Item

hookspec = pluggy.HookspecMarker("gongkai")
hookimpl = pluggy.HookimplMarker("gongkai")


@hookspec
def gongkai_register_channels() -> list[type[Channel]]:
    """Return the channel classes this plugin provides (classes, not instances).

    Not firstresult: every plugin's list is collected. Core checks that names are
    unique across plugins and instantiates a class once per enabled
    ``[channels.<name>]`` table, with its validated ``Config``.

    Example::

        @hookimpl
        def gongkai_register_channels():
            return [LedScreenChannel]
    """


@hookspec
def gongkai_prepare_item(item: Item, settings: Settings) -> Item | None:
    """Return a changed copy of ``item`` (masking, sanitising), or None to leave it.

    Not firstresult: implementations run in turn, each seeing the previous one's
    result, so what every channel carries is the same prepared item. They must be
    deterministic: the prepared item is hashed to find its edition.

    Example::

        @hookimpl
        def gongkai_prepare_item(item, settings):
            return item.model_copy(update={"body": item.body.replace("\\t", " ")})
    """


@hookspec
def gongkai_validate_item(
    item: Item, entry: Entry | None, source: str, settings: Settings
) -> list[ItemProblem]:
    """Return the problems found with a prepared item (an empty list if none).

    ``entry`` is its catalogue entry (None if the catalogue lacks it); ``source`` is the
    file path for messages; ``settings`` the deployment's settings (an implementation
    may leave out any argument it does not use). Any problem stops the item; the rest
    of the batch goes on.

    Example::

        @hookimpl
        def gongkai_validate_item(item, entry, source):
            if "（此处填写）" in item.body:
                return [ItemProblem(source, "body", "placeholder text left in",
                                    "fill it in", item.id)]
            return []
    """


@hookspec
def gongkai_after_delivery(item: PreparedItem, channel: Channel, receipt: Receipt) -> None:
    """Observe a successful delivery (including ``publishing`` and
    ``awaiting-confirmation`` receipts). An exception here is logged, never fatal.

    Example::

        @hookimpl
        def gongkai_after_delivery(item, channel, receipt):
            metrics.increment("delivered", tags=[channel.name])
    """


@hookspec
def gongkai_on_delivery_error(
    item: PreparedItem, channel: Channel, error: DeliveryError, final: bool
) -> None:
    """Observe a failed delivery attempt. ``final`` is True when core gives up for this
    run (retry-wait, failed or unknown). An exception here is logged, never fatal.

    Example::

        @hookimpl
        def gongkai_on_delivery_error(item, channel, error, final):
            if final:
                pager.notify(f"{item.id} on {channel.name}: {error}")
    """
