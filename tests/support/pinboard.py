"""An offline channel for tests: it "prints" a notice into a folder and waits for a
person to confirm the posting. Loaded through ``[plugins] load = ["support.pinboard"]``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from gongkai import Channel, Receipt, Rendition
from gongkai.fileio import write_atomic
from gongkai.plugins.hookspecs import hookimpl


class PinboardChannel(Channel):
    name = "pinboard"
    mode = "offline"
    guarantee = "upsert"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    def render(self, item):
        return Rendition(body=f"{item.title}\n{item.body}\n第{item.edition}版")

    def deliver(self, item, rendition, previous):
        path = self.context.state_dir / "pinboard" / f"{item.id}-{item.edition}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, rendition.body.encode("utf-8"))
        return Receipt(status="awaiting-confirmation", artifact=str(path))

    def withdraw(self, item, receipt, reason):
        return receipt.model_copy(update={"status": "withdrawn"})


@hookimpl
def gongkai_register_channels():
    return [PinboardChannel]
