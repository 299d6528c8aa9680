"""The ``archive`` channel: the office's own proof of what was published, and when.

Every delivered edition is written as canonical JSON, with its attachments, into a
dated record directory::

    <state_dir>/archive/2026/11-26/jt-2026-land-001/edition-2/
        item.json          exactly what was rendered (its sha256 is in meta.json)
        meta.json          when it was archived and the content hash
        attachments/…      the attachment files, checked against their sha256
        withdrawn.json     written by `gongkai withdraw`

It is the reference example for channel authors: a Config, a pure ``render``, a
``deliver`` that classifies its errors, and a ``checkpoint`` so that a resend after a
crash writes into the same directory (guarantee ``upsert``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from gongkai.channel import Channel, PreparedItem, Receipt, Rendition
from gongkai.errors import PermanentError, TransientError
from gongkai.fileio import write_atomic
from gongkai.item import CST, canonical_json, sha256_file
from gongkai.ledger import AttemptRecord
from gongkai.plugins.hookspecs import hookimpl


class ArchiveChannel(Channel):
    """Writes each edition to a dated record directory under ``dir``."""

    name = "archive"
    # Done as soon as the files are written: no person has to confirm it.
    mode = "online"
    guarantee = "upsert"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        #: Where records go; relative paths are under the state directory.
        dir: Path = Path("archive")

    @property
    def root(self) -> Path:
        path = self.config.dir
        return path if path.is_absolute() else self.context.state_dir / path

    def render(self, item: PreparedItem) -> Rendition:
        record = {
            "item": item.public_fields(),
            "edition": item.edition,
            "content_hash": item.content_hash,
        }
        return Rendition(media_type="application/json", body=canonical_json(record) + "\n")

    def deliver(self, item: PreparedItem, rendition: Rendition, previous: Receipt | None):
        # Reuse the directory an interrupted attempt chose, so a resend overwrites it.
        folder = self.resumed().get("dir")
        if folder is None:
            # Dated by the Beijing calendar day: at 07:00 in Jintang it is still
            # yesterday in UTC.
            now = self.context.clock().astimezone(CST)
            folder = str(
                self.root / f"{now:%Y}" / f"{now:%m-%d}" / item.id / f"edition-{item.edition}"
            )
            self.checkpoint(dir=folder, archived_at=now.isoformat())
        record = Path(folder)
        try:
            for attachment in item.attachments:
                target = record / "attachments" / attachment.filename
                if target.exists() and sha256_file(target) == attachment.sha256:
                    continue  # an interrupted attempt already wrote it
                # Checked in memory before anything is written: a file swapped since
                # the item was read (a symlink pointed elsewhere) never reaches the
                # archive, not even for a moment.
                data = attachment.path.read_bytes()
                if hashlib.sha256(data).hexdigest() != attachment.sha256:
                    raise PermanentError(
                        f"attachment {attachment.filename} changed after the item was read; "
                        "publish the item again"
                    )
                write_atomic(target, data)
            meta = {
                "archived_at": self.resumed().get("archived_at"),
                "content_hash": item.content_hash,
                "edition": item.edition,
                "rendition_sha256": rendition.digest,
            }
            write_atomic(record / "meta.json", (canonical_json(meta) + "\n").encode())
            write_atomic(record / "item.json", rendition.body.encode("utf-8"))
        except FileNotFoundError as exc:
            raise PermanentError(f"attachment file missing: {exc.filename}; restore it") from exc
        except OSError as exc:
            # A full disk or a busy network share may clear; core retries.
            raise TransientError(f"cannot write the archive record ({exc.strerror})") from exc
        return Receipt(
            external_id=f"{item.id}/edition-{item.edition}",
            artifact=str(record / "item.json"),
        )

    def withdraw(self, item: PreparedItem, receipt: Receipt, reason: str) -> Receipt:
        record = Path(receipt.artifact).parent if receipt.artifact else None
        if record is None or not record.is_dir():
            raise PermanentError("the archive record is missing; nothing to withdraw")
        note = {"reason": reason, "withdrawn_at": self.context.clock().isoformat()}
        write_atomic(
            record / "withdrawn.json", (json.dumps(note, ensure_ascii=False) + "\n").encode()
        )
        return receipt.model_copy(update={"status": "withdrawn"})

    def reconcile(self, item: PreparedItem, attempt: AttemptRecord) -> Receipt | None:
        folder = self.resumed().get("dir")
        if folder and (Path(folder) / "item.json").is_file():
            written = json.loads((Path(folder) / "item.json").read_text("utf-8"))
            if written.get("content_hash") == item.content_hash:
                return Receipt(
                    external_id=f"{item.id}/edition-{item.edition}",
                    artifact=str(Path(folder) / "item.json"),
                )
        return None


@hookimpl
def gongkai_register_channels():
    return [ArchiveChannel]
