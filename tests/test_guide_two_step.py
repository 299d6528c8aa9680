"""The guide's two-step create (docs/writing-a-channel.md, "Two-step creates"): a remote
that makes a draft, then publishes it. ``checkpoint`` saves the draft's id before the
second step, so a rerun after a failure there publishes that draft instead of making a
second one. The guide's snippet is an excerpt of this file."""

from __future__ import annotations

import pytest
import requests
from pydantic import BaseModel, ConfigDict, Field

from gongkai import Channel, ChannelContext, OutcomeUnknown, PreparedItem, Receipt, Rendition
from gongkai.channel import DeliveryProgress, bind_progress, unbind_progress
from gongkai.http import classify_exception, new_session, raise_for_status
from gongkai.testing import ChannelContract


class DraftingChannel(Channel):
    name = "drafting"
    guarantee = "none"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        url: str = Field(pattern=r"^https?://")

    def __init__(self, config: Config, context: ChannelContext) -> None:
        super().__init__(config, context)
        self.session = new_session(context)

    def render(self, item: PreparedItem) -> Rendition:
        return Rendition(body=f"{item.title}\n\n{item.body}")

    def deliver(
        self, item: PreparedItem, rendition: Rendition, previous: Receipt | None
    ) -> Receipt:
        draft_id = self.resumed().get("draft_id")
        if draft_id is None:
            draft = self._post("/drafts", {"title": item.title, "body": rendition.body})
            draft_id = draft["id"]
            # Saved by core before the next step: a rerun resumes from here.
            self.checkpoint(draft_id=draft_id)
        published = self._post(f"/drafts/{draft_id}/publish", {})
        return Receipt(external_id=str(published["id"]), data={"draft_id": draft_id})

    def _post(self, path: str, body: dict) -> dict:
        try:
            response = self.session.post(self.config.url + path, json=body)
        except requests.RequestException as exc:
            raise classify_exception(exc, f"drafting POST {path}") from None
        raise_for_status(response, f"drafting POST {path}")
        return response.json()


class TestDraftingContract(ChannelContract):
    channel_class = DraftingChannel
    config = {"url": "https://drafts.example.test"}
    http = True
    discoverable = False  # defined here, not installed


def test_a_rerun_publishes_the_saved_draft_instead_of_making_another(
    gongkai_http_server, gongkai_clock, gongkai_sample_items, tmp_path
):
    context = ChannelContext(name="drafting", state_dir=tmp_path, clock=gongkai_clock)
    channel = DraftingChannel(DraftingChannel.Config(url=gongkai_http_server.url), context)
    item = gongkai_sample_items["release"]
    saved: list[dict] = []  # what core would persist in the ledger

    first = DeliveryProgress(save=saved.append)
    token = bind_progress(first)
    gongkai_http_server.answer(201, {"id": "d-1"})
    gongkai_http_server.drop()  # the publish step's answer never comes
    try:
        with pytest.raises(OutcomeUnknown):
            channel.deliver(item, channel.render(item), None)
    finally:
        unbind_progress(token)
    assert saved == [{"draft_id": "d-1"}]

    rerun = DeliveryProgress(saved=dict(saved[-1]), save=saved.append)
    token = bind_progress(rerun)
    gongkai_http_server.answer(200, {"id": "p-1"})
    try:
        receipt = channel.deliver(item, channel.render(item), None)
    finally:
        unbind_progress(token)
    assert (receipt.external_id, receipt.data) == ("p-1", {"draft_id": "d-1"})
    paths = [r.path for r in gongkai_http_server.requests]
    assert paths == ["/drafts", "/drafts/d-1/publish", "/drafts/d-1/publish"]
