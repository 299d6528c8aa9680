"""A channel with guarantee ``none`` that POSTs each edition to a loopback remote: the
drain tests and ``bench/workers.py`` load it into ``gongkai worker`` processes as an
unpackaged plugin (``[plugins] load = ["slowpost"]``, this folder on ``PYTHONPATH``). ``safepost`` is
the same with guarantee ``upsert``.
The remote, not the channel, adds the latency (see :mod:`drain`)."""

from __future__ import annotations

import requests
from pydantic import BaseModel, ConfigDict

from gongkai import Channel, Receipt, Rendition
from gongkai.http import classify_exception, new_session, raise_for_status
from gongkai.plugins.hookspecs import hookimpl


class SlowPostChannel(Channel):
    name = "slowpost"
    mode = "online"
    # A resend would make a second copy: an interrupted send must stay unknown.
    guarantee = "none"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        url: str

    def __init__(self, config, context) -> None:
        super().__init__(config, context)
        self.session = new_session(context)

    def render(self, item):
        return Rendition(body=item.title)

    def deliver(self, item, rendition, previous):
        try:
            response = self.session.post(
                self.config.url, json={"id": item.id, "edition": item.edition}
            )
        except requests.RequestException as exc:
            raise classify_exception(exc, "slowpost") from exc
        raise_for_status(response, "slowpost")
        return Receipt(external_id=f"{item.id}/{item.edition}")


class SafePostChannel(SlowPostChannel):
    """The same POST to a remote that keeps one copy per (item, edition): a resend is
    harmless, so core claims its deliveries in batches."""

    name = "safepost"
    guarantee = "upsert"


@hookimpl
def gongkai_register_channels():
    return [SlowPostChannel, SafePostChannel]
