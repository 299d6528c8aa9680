"""Watching actions: the structured log lines and the observer hooks
(``gongkai_after_delivery``, ``gongkai_on_delivery_error``). An observer that raises
is logged and ignored: watching must never change what happens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gongkai.plugins.diagnostics import call_impl

from .errors import DeliveryError
from .ledger import Event
from .log import get_logger, scrub
from .retry import Decision

if TYPE_CHECKING:
    import pluggy
    from structlog.stdlib import BoundLogger

    from .channel import Channel, PreparedItem

log = get_logger("gongkai.attempt")


class Watchers:
    """Reports each try, retry and result of an action to the log and the hooks."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def retrying(
        self,
        item: PreparedItem | None,
        channel: Channel,
        bound: BoundLogger,
        exc: BaseException,
        number: int,
        wait: float,
    ) -> None:
        bound.info(
            "retrying", error=scrub(str(exc)), try_number=number, wait_seconds=round(wait, 3)
        )
        self.observe(
            "gongkai_on_delivery_error", item=item, channel=channel, error=exc, final=False
        )

    def report(
        self,
        bound: BoundLogger,
        item: PreparedItem | None,
        channel: Channel,
        decision: Decision,
        answer: Any,
    ) -> None:
        if isinstance(answer, BaseException) or decision.event in (
            Event.FAILED,
            Event.OUTCOME_UNKNOWN,
        ):
            bound.warning(
                "action failed", status=decision.status, error=scrub(decision.error or "")
            )
            if item is not None:
                error = (
                    answer
                    if isinstance(answer, DeliveryError)
                    else DeliveryError(scrub(decision.error or ""))
                )
                self.observe(
                    "gongkai_on_delivery_error", item=item, channel=channel, error=error, final=True
                )
            return
        receipt = decision.receipt
        event = "delivered" if decision.event is Event.SUCCEEDED else decision.status
        bound.info(event, status=decision.status, url=receipt.url if receipt else None)
        if decision.event is Event.SUCCEEDED and receipt is not None:
            self.observe("gongkai_after_delivery", item=item, channel=channel, receipt=receipt)

    def observe(self, hook: str, **kwargs: object) -> None:
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                call_impl(self.pm, hook, impl, **{k: kwargs[k] for k in impl.argnames})
            except Exception as exc:  # noqa: BLE001 - observers never break delivery
                log.warning(
                    "observer failed", plugin=impl.plugin_name, hook=hook, error=scrub(str(exc))
                )
