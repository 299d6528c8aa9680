"""The ``archive`` channel: the office's own proof of what was published, and when.

Every delivered edition is written as canonical JSON, with its attachments, into a
record folder that the item id and edition alone decide::

    <state_dir>/archive/da/jt-2026-land-001/edition-2/
        item.json          exactly what was rendered (its sha256 is in meta.json)
        meta.json          when it was archived (Beijing time) and the content hash
        attachments/…      the attachment files, checked against their sha256
        withdrawn.json     written by `gongkai withdraw`

``da`` is the shard: the first two hex digits of the sha256 of the item id, so that
the editions of an item sit together and each shard folder holds about a 256th of the
items. Records that older versions wrote under ``<year>/<month-day>/`` folders stay where
they are: their receipts name them, so withdrawal still finds them.

It is the reference example for channel authors: a Config, a pure ``render``, a
``deliver`` that classifies its errors, a ``reconcile`` that checks what it finds is this
edition, and guarantee ``upsert``: a resend after a crash writes into the same folder
and overwrites what an interrupted attempt left, with no checkpoint to read.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from gongkai.channel import Channel, PreparedItem, Receipt, Rendition
from gongkai.errors import PermanentError, TransientError
from gongkai.fileio import write_atomic
from gongkai.item import CST, canonical_json, sha256_file
from gongkai.ledger import AttemptRecord
from gongkai.plugins.hookspecs import hookimpl


class ArchiveChannel(Channel):
    """Writes each edition to a record folder under ``dir``."""

    name = "archive"
    # Done as soon as the files are written: no person has to confirm it.
    mode = "online"
    # The record folder follows from the item id and edition, and every file in it is
    # replaced whole: writing an edition twice leaves one record, the second copy.
    guarantee = "upsert"

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        #: Where records go; relative paths are under the state directory.
        dir: Path = Path("archive")

    @property
    def root(self) -> Path:
        path = self.config.dir
        return path if path.is_absolute() else self.context.state_dir / path

    def record_folder(self, item: PreparedItem) -> Path:
        """Where an edition's record goes: decided by the item id and edition alone, so
        a resend after a crash finds the folder again without asking the ledger."""
        shard = hashlib.sha256(item.id.encode("utf-8")).hexdigest()[:2]
        return self.root / shard / item.id / f"edition-{item.edition}"

    def _folder(self, item: PreparedItem) -> Path:
        # A delivery begun by an older gongkai, which dated its folders and saved the
        # one it chose with checkpoint(), is finished (or looked up) where it began.
        begun = self.resumed().get("dir")
        return Path(begun) if begun else self.record_folder(item)

    def render(self, item: PreparedItem) -> Rendition:
        record = {
            "item": item.public_fields(),
            "edition": item.edition,
            "content_hash": item.content_hash,
        }
        return Rendition(media_type="application/json", body=canonical_json(record) + "\n")

    def deliver(self, item: PreparedItem, rendition: Rendition, previous: Receipt | None):
        record = self._folder(item)
        body = rendition.body.encode("utf-8")
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
                # Beijing time: at 07:00 in Jintang it is still yesterday in UTC.
                "archived_at": self.context.clock().astimezone(CST).isoformat(),
                "content_hash": item.content_hash,
                "edition": item.edition,
                "rendition_sha256": hashlib.sha256(body).hexdigest(),
            }
            write_atomic(record / "meta.json", (canonical_json(meta) + "\n").encode())
            # Last: a folder with an item.json holds a whole record (see reconcile).
            write_atomic(record / "item.json", body)
        except FileNotFoundError as exc:
            raise PermanentError(f"attachment file missing: {exc.filename}; restore it") from exc
        except OSError as exc:
            # A full disk or a busy network share may clear; core retries.
            raise TransientError(f"cannot write the archive record ({exc.strerror})") from exc
        return _receipt(item, record)

    def withdraw(self, item: PreparedItem, receipt: Receipt, reason: str) -> Receipt:
        if receipt.artifact:
            # The receipt names the record, in whichever layout it was written.
            record = Path(receipt.artifact).parent
            if not record.is_dir():
                raise PermanentError(f"the archive record {record} is missing; nothing to withdraw")
        else:
            # The delivery's outcome was unknown: the record, whole or in part, is where
            # deliver puts it, or nowhere, and then there is nothing to take down.
            record = self._folder(item)
            if not record.is_dir():
                return receipt.model_copy(update={"status": "withdrawn"})
        note = {"reason": reason, "withdrawn_at": self.context.clock().isoformat()}
        try:
            write_atomic(
                record / "withdrawn.json", (json.dumps(note, ensure_ascii=False) + "\n").encode()
            )
        except OSError as exc:
            raise TransientError(f"cannot write the withdrawal note ({exc.strerror})") from exc
        return receipt.model_copy(update={"status": "withdrawn"})

    def reconcile(self, item: PreparedItem, attempt: AttemptRecord) -> Receipt | None:
        record = self._folder(item)
        try:
            written = json.loads((record / "item.json").read_text("utf-8"))
        except FileNotFoundError:
            return None  # never written, or cut short before its last file
        except ValueError:
            return None  # not a record this channel wrote: sending again replaces it
        except OSError as exc:
            raise TransientError(f"cannot read the archive record ({exc.strerror})") from exc
        # The folder is this edition's, but check the content too: an edition number
        # says nothing if the ledger was replaced and numbering began again.
        if written.get("content_hash") != item.content_hash:
            return None
        return _receipt(item, record)


def _receipt(item: PreparedItem, record: Path) -> Receipt:
    return Receipt(
        external_id=f"{item.id}/edition-{item.edition}",
        artifact=os.fspath(record / "item.json"),
    )


@hookimpl
def gongkai_register_channels():
    return [ArchiveChannel]
