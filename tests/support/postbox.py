"""A channel with guarantee ``none`` that POSTs to a URL: a remote with no idempotency
key, where a resend would make a duplicate post. Loaded in subprocess tests through
``[plugins] load = ["support.postbox"]``."""

from __future__ import annotations

import requests
from pydantic import BaseModel, ConfigDict

from gongkai import Channel, Receipt, Rendition
from gongkai.http import classify_exception, new_session, raise_for_status
from gongkai.item import canonical_json
from gongkai.plugins.hookspecs import hookimpl


class PostboxChannel(Channel):
    """POSTs each edition; no idempotency key."""

    name = "postbox"
    guarantee = "none"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        url: str

    def __init__(self, config, context):
        super().__init__(config, context)
        self.session = new_session(context)

    def render(self, item):
        return Rendition(body=canonical_json({"id": item.id, "edition": item.edition}))

    def deliver(self, item, rendition, previous):
        try:
            response = self.session.post(self.config.url, data=rendition.body)
        except requests.RequestException as exc:
            raise classify_exception(exc, "postbox POST") from None
        raise_for_status(response, "postbox POST")
        return Receipt(external_id=response.json()["id"])


@hookimpl
def gongkai_register_channels():
    return [PostboxChannel]
