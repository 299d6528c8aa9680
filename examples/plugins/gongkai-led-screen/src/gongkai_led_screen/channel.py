"""The ``led_screen`` channel: an item's title scrolls on the service hall's LED screen
for the item's 公示期, and a withdrawal takes it off.

The controller keeps a playlist of text entries, each shown between two dates::

    PUT    <url>/playlist/<item id>   {"id", "edition", "hash", "lines": [...],
                                       "from": "2026-11-26", "to": "2026-12-04"}
                                      → 200 (replaced) or 201 (added)
    DELETE <url>/playlist/<item id>   → 204; 404 when it is not on the playlist
    GET    <url>/playlist             → {"entries": [...]}      (``gongkai channels --check``)

Guarantee ``upsert``: the controller keys entries by item id and a PUT replaces the
entry, so sending an edition twice (a retry, a resend after a lost answer) leaves one
entry, and a new edition overwrites the old one in place. gongkai may therefore resend
whenever the outcome of a send is unknown, and the screen never shows an item twice.

Uses only gongkai's public API: ``gongkai`` (Channel, Receipt, Rendition, errors,
``ChannelContext.posting_period``) and ``gongkai.http``.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gongkai import Channel, PermanentError, PreparedItem, Receipt, Rendition, hookimpl
from gongkai.http import classify_exception, new_session, raise_for_status

WHAT = "LED screen controller"
#: Punctuation that must not open a line: it is pulled up to end the line before.
NO_LINE_START = frozenset("，。、；：！？）》」』”’,.;:!?)")
ELLIPSIS = "…"


def screen_lines(text: str, width: int, max_lines: int) -> list[str]:
    """``text`` cut into lines of at most ``width`` characters for the panel, no line
    opening with closing punctuation; past ``max_lines`` the last line ends in …."""
    text = " ".join(text.split())
    lines: list[str] = []
    rest = text
    while rest:
        cut = min(width, len(rest))
        # A line may not start with "，" or "）": end this one a character early.
        while cut < len(rest) and rest[cut] in NO_LINE_START and cut > 1:
            cut -= 1
        lines.append(rest[:cut])
        rest = rest[cut:]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1] + ELLIPSIS
    return lines


def _month_day(value: str) -> str:
    day = date.fromisoformat(value)
    return f"{day.month}月{day.day}日"


class LedScreenChannel(Channel):
    """Scrolls each item's title on the service hall's LED screen for its 公示期."""

    name = "led_screen"
    mode = "online"
    guarantee = "upsert"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        #: The controller's base URL, e.g. http://192.168.10.20:8080/api
        url: str = Field(pattern=r"^https?://")
        #: Optional Bearer token; name it by environment variable in config.toml.
        token: SecretStr | None = None
        #: Characters one line of the panel shows (a 192-pixel row of 12-pixel glyphs: 16).
        line_chars: int = Field(default=16, ge=4, le=64)
        #: Lines of one entry, heading and period included; a longer title is cut with ….
        max_lines: int = Field(default=6, ge=3, le=32)
        #: The first line of every entry.
        heading: str = Field(default="【政务公开】", max_length=64)
        #: Days an item is shown when neither the catalogue nor the item sets a 公示期.
        default_days: int = Field(default=7, ge=1, le=365)

    def __init__(self, config: Config, context: Any) -> None:
        super().__init__(config, context)
        self.session = new_session(context)
        self.base = config.url.rstrip("/")

    # --- the contract ---------------------------------------------------------------

    def render(self, item: PreparedItem) -> Rendition:
        """The playlist entry: heading, title lines, the last day shown. Pure: the
        period is counted from the context's clock, which core fixes per run."""
        period = self.context.posting_period(item)
        if period is None:
            today = self.context.today()
            last = today + timedelta(days=self.config.default_days - 1)
            period = {"from": today.isoformat(), "to": last.isoformat()}
        width = self.config.line_chars
        until = screen_lines(f"公示至{_month_day(period['to'])}", width, 1)
        heading = screen_lines(self.config.heading, width, 1) if self.config.heading else []
        title_room = self.config.max_lines - len(heading) - len(until)
        lines = [*heading, *screen_lines(item.title, width, title_room), *until]
        entry = {
            "id": item.id,
            "edition": item.edition,
            "hash": item.short_hash,
            "lines": lines,
            "from": period["from"],
            "to": period["to"],
        }
        body = json.dumps(entry, ensure_ascii=False, sort_keys=True)
        return Rendition(media_type="application/json", body=body, data=entry)

    def deliver(
        self, item: PreparedItem, rendition: Rendition, previous: Receipt | None
    ) -> Receipt:
        response = self._call("PUT", item.id, data=rendition.body.encode("utf-8"))
        self._raise_for(response)
        return Receipt(
            external_id=item.id,
            data={
                "edition": item.edition,
                "from": rendition.data["from"],
                "to": rendition.data["to"],
            },
        )

    def withdraw(self, item: PreparedItem, receipt: Receipt, reason: str) -> Receipt:
        response = self._call("DELETE", item.id)
        if response.status_code != 404:  # not on the playlist: it is off the screen
            self._raise_for(response)
        return Receipt(status="withdrawn", external_id=item.id, data=dict(receipt.data))

    def check(self) -> None:
        self._raise_for(self._call("GET", None))

    # --- HTTP -----------------------------------------------------------------------

    def _call(self, method: str, item_id: str | None, **kwargs: Any) -> requests.Response:
        url = f"{self.base}/playlist" + (f"/{item_id}" if item_id else "")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.config.token is not None:
            headers["Authorization"] = f"Bearer {self.config.token.get_secret_value()}"
        try:
            return self.session.request(method, url, headers=headers, **kwargs)
        except requests.RequestException as exc:
            raise classify_exception(exc, WHAT) from exc

    @staticmethod
    def _raise_for(response: requests.Response) -> None:
        if response.status_code in (400, 413, 422):
            # The controller says why (a line too long for its panel): pass it on.
            try:
                reason = str(response.json().get("error", ""))[:200]
            except (ValueError, AttributeError):
                reason = ""
            raise PermanentError(
                f"{WHAT}: HTTP {response.status_code}"
                + (f": {reason}" if reason else "")
                + "; check line_chars and max_lines against the panel's size",
                http_status=response.status_code,
            )
        raise_for_status(response, WHAT)


@hookimpl
def gongkai_register_channels() -> list[type[Channel]]:
    return [LedScreenChannel]
