"""Every error gongkai raises, under one root.

Two families live here:

* **Delivery errors** are what a channel raises from ``deliver``/``withdraw``/``poll``
  to *classify* a failure. Channels never retry or sleep; core reads the class and
  decides (see DESIGN.md, "Channel contract" and "Retries").
* **Input errors** (config, items) say where the problem is (file, key path or field)
  and what to do next. They are raised before anything is sent.
"""

from __future__ import annotations


class GongkaiError(Exception):
    """Root of every error gongkai raises on purpose."""


# --- delivery errors: raised by channels, handled by core -------------------------------


class DeliveryError(GongkaiError):
    """A channel could not complete an action. Subclasses say what core should do.

    ``http_status`` is recorded in the attempt log when the failure came from HTTP.
    The message must never contain a secret: it is written to the ledger and logs.
    """

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class TransientError(DeliveryError):
    """A blip (5xx, 429 without quota semantics, connection refused, WeChat -1): retry it.

    ``retry_after`` (seconds) is honoured by the in-run retry when the remote gave one.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(message, http_status=http_status)
        self.retry_after = retry_after


class AuthError(DeliveryError):
    """Credentials were refused or expired. Core refreshes them once and retries; a
    second AuthError pauses the channel for the rest of the run."""


class RateLimited(DeliveryError):
    """A quota is used up (WeChat 45009, a daily limit). Core stops sending to this
    channel for the run and schedules the delivery ``retry_after`` seconds later."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(message, http_status=http_status)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """The remote rejected the content (4xx validation, a rejected draft). No retry:
    an operator must fix the item and publish it again, or run ``gongkai retry``."""


class OutcomeUnknown(DeliveryError):
    """The request may have reached the remote but no answer came (read timeout).

    Never resend blindly: the delivery becomes ``unknown`` and core asks the channel to
    ``reconcile`` it, or resends only when the channel's guarantee makes that safe.
    """


class ChannelPaused(GongkaiError):
    """Raised by core when a second AuthError in a row means the credentials are really
    bad, or when a channel's ``check()`` fails: the channel sends nothing more this run."""

    def __init__(self, cause: BaseException | str) -> None:
        super().__init__(str(cause))
        self.cause = cause


class ChannelContractError(GongkaiError):
    """A channel used the contract wrongly (for example ``checkpoint()`` outside a
    delivery). A bug in the channel: its author must fix it."""


# --- input errors: config and items -----------------------------------------------------


class ConfigError(GongkaiError):
    """The configuration cannot be used. The message names the file, the key path and
    the fix."""

    def __init__(self, file: str, key: str, problem: str, fix: str) -> None:
        self.file, self.key, self.problem, self.fix = file, key, problem, fix
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}; {fix}")


class PluginError(GongkaiError):
    """A plugin could not be loaded or breaks the contract (duplicate channel name)."""


class ItemProblem(GongkaiError):
    """One problem with one item. ``source`` is the file path (or ``<python>``),
    ``field`` the dotted field path, ``fix`` what the author should do."""

    def __init__(
        self, source: str, field: str, problem: str, fix: str, item_id: str | None = None
    ) -> None:
        self.source, self.field, self.problem, self.fix, self.item_id = (
            source,
            field,
            problem,
            fix,
            item_id,
        )
        where = f"{source}: field '{field}'" if field else source
        super().__init__(f"{where}: {problem}; {fix}")

    def as_dict(self) -> dict[str, str | None]:
        return {
            "source": self.source,
            "item_id": self.item_id,
            "field": self.field,
            "problem": self.problem,
            "fix": self.fix,
        }


class ItemRejected(GongkaiError):
    """Raised by the library API when an item fails validation; carries every problem."""

    def __init__(self, problems: list[ItemProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UsageError(GongkaiError):
    """A verb was called with arguments it cannot use; the message says which."""


class UnknownItem(GongkaiError):
    """An item id was named that the ledger has never seen."""


# --- state errors: the state directory and the ledger -------------------------------------


class StateError(GongkaiError):
    """The state directory or the ledger file cannot be used (a garbage file, a
    read-only folder, a file where the folder should be). Nothing was changed; the
    message names the path and what to do."""


class LedgerWriteError(GongkaiError):
    """The ledger could not record a step in the middle of a run (the disk filled up,
    the file became read-only). What was recorded before stays; deliveries caught in
    flight are settled by the next run."""
