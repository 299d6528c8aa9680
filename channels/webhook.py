"""The ``webhook`` channel: POST each edition as JSON to a URL you run.

For systems gongkai has no dedicated channel for (an intranet portal, a message bus
bridge). Each request carries an ``Idempotency-Key`` made of the item id, edition and
content hash, so a receiver that honours it never stores the same edition twice and
core may resend after an unknown outcome. Configure::

    [channels.webhook]
    url = "https://portal.example.gov.cn/api/gongkai"
    token = { env = "GONGKAI_WEBHOOK_TOKEN" }     # optional, sent as a Bearer token

The receiver answers 2xx with an optional JSON body ``{"id": …, "url": …}``; to
withdraw, gongkai sends ``DELETE <url>/<item id>``.
"""

from __future__ import annotations

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gongkai.channel import Channel, PreparedItem, Receipt, Rendition
from gongkai.http import classify_exception, new_session, raise_for_status
from gongkai.item import canonical_json
from gongkai.plugins.hookspecs import hookimpl


class WebhookChannel(Channel):
    """POSTs canonical JSON with an Idempotency-Key header."""

    name = "webhook"
    mode = "online"
    guarantee = "idempotency-key"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        url: str = Field(pattern=r"^https?://")
        token: SecretStr | None = None
        headers: dict[str, str] = {}

    def __init__(self, config, context) -> None:
        super().__init__(config, context)
        self.session = new_session(context)

    def _headers(self, item: PreparedItem) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": f"{item.id}:{item.edition}:{item.content_hash[:16]}",
            **self.config.headers,
        }
        if self.config.token is not None:
            headers["Authorization"] = f"Bearer {self.config.token.get_secret_value()}"
        return headers

    def render(self, item: PreparedItem) -> Rendition:
        payload = {
            "id": item.id,
            "edition": item.edition,
            "content_hash": item.content_hash,
            "item": item.public_fields(),
        }
        return Rendition(media_type="application/json", body=canonical_json(payload))

    def deliver(self, item: PreparedItem, rendition: Rendition, previous: Receipt | None):
        try:
            response = self.session.post(
                self.config.url, data=rendition.body.encode("utf-8"), headers=self._headers(item)
            )
        except requests.RequestException as exc:
            raise classify_exception(exc, "webhook POST") from None
        raise_for_status(response, "webhook POST")
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        return Receipt(
            external_id=str(answer.get("id") or item.id),
            url=answer.get("url"),
            data={"http_status": response.status_code},
        )

    def withdraw(self, item: PreparedItem, receipt: Receipt, reason: str) -> Receipt:
        url = f"{self.config.url.rstrip('/')}/{item.id}"
        try:
            response = self.session.delete(
                url, json={"reason": reason}, headers=self._headers(item)
            )
        except requests.RequestException as exc:
            raise classify_exception(exc, "webhook DELETE") from None
        if response.status_code != 404:  # already gone is what we wanted
            raise_for_status(response, "webhook DELETE")
        return receipt.model_copy(update={"status": "withdrawn"})


@hookimpl
def gongkai_register_channels():
    return [WebhookChannel]
