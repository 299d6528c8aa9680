"""Which item files changed since their items were last taken in.

An office keeps every item it ever published in one folder that cron publishes daily,
so after a few years nearly every file is one the ledger already holds. A file is
skipped unread when the ledger's record of it still matches: the same size and
modification time for the file and for every attachment it names, taken in under the
same config, catalogue and plugins (the ``context``). Everything else is read and
taken in as before, and an unchanged item is then simply ``unchanged``.

Skipping must never hide an edit. Modification times are coarse (a second on some
file systems, two on FAT) and an edit within the same tick as the last read keeps the
time; so a time within :data:`RACY_NS` of the start of the run that recorded it is
*ambiguous*, and the file's bytes are hashed and compared with the recorded digest
(the rule git uses for its index). The digest is always that of the very bytes the
loader parsed, and the file's stamp is taken before they are read: an edit while a
run reads it gives a newer time, which the next run sees.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .ledger import FileRecord, Ledger
from .results import RunResult

#: A modification time this close to (or after) the start of the run that recorded
#: it may hide a later edit in the same tick: such a file is hashed, not trusted.
RACY_NS = 2_000_000_000

Stamp = tuple[str, int, int]


def stamp(path: Path) -> Stamp | None:
    """(path, size, mtime_ns), or None when the file cannot be looked at."""
    return _stamp(_key(path))


def _stamp(key: str) -> Stamp | None:
    try:
        st = os.stat(key)
    except OSError:
        return None
    return (key, st.st_size, st.st_mtime_ns)


def _key(path: Path | str, cwd: str | None = None) -> str:
    """A file's key in the ledger: its absolute path ("items/x.md" from the office
    and "/srv/items/x.md" from cron are one file)."""
    return os.path.normpath(os.path.join(cwd or os.getcwd(), path))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Scan:
    """The files of one run, sorted into those to read and those to skip."""

    started_ns: int
    context: str
    #: Files to read, in the order given; ``None`` is stdin.
    changed: list[Path | None] = field(default_factory=list)
    #: Bytes already read while checking an ambiguous file (the loader reuses them).
    contents: dict[Path, bytes] = field(default_factory=dict)
    #: The file's own stamp, taken before it was read.
    stamps: dict[Path, Stamp] = field(default_factory=dict)
    #: Skipped files: their record, by path.
    skipped: dict[str, FileRecord] = field(default_factory=dict)
    #: sha256 of the bytes handed to the loader, by path.
    digests: dict[Path, str] = field(default_factory=dict)
    #: Ambiguous files whose bytes proved unchanged: recorded again with this run's
    #: start, so the next run trusts their time.
    confirmed: list[FileRecord] = field(default_factory=list)

    def read(self, path: Path) -> bytes:
        """The bytes to parse. The stamp is taken first (see the module docstring)."""
        if path not in self.stamps:
            found = stamp(path)
            if found is not None:
                self.stamps[path] = found
        data = self.contents.pop(path, None)
        if data is None:
            data = path.read_bytes()
        self.digests[path] = _digest(data)
        return data


def _trusted(record: FileRecord) -> bool:
    """Whether every stamp of the record is old enough to rule out an unseen edit."""
    return all(mtime + RACY_NS <= record.seen_ns for _, _, mtime in record.stamps)


def scan(
    files: Sequence[Path | None],
    ledger: Ledger | None,
    context: str,
    *,
    reread: bool = False,
) -> Scan:
    """Sort ``files`` (from :func:`gongkai.loader.expand`) into changed and skipped."""
    found = Scan(time.time_ns(), context)
    cwd = os.getcwd()
    keys = {file: _key(file, cwd) for file in files if file is not None}
    records = ledger.file_records(list(keys.values())) if ledger and not reread else {}
    for file in files:
        key = keys[file] if file is not None else ""
        record = records.get(key)
        if file is None or record is None or record.context != context:
            found.changed.append(file)
            continue
        own = _stamp(key)
        if own is None or own != record.stamps[0]:
            found.changed.append(file)
            continue
        found.stamps[file] = own
        attachments = [_stamp(p) for p, _, _ in record.stamps[1:]]
        if attachments != list(record.stamps[1:]):
            found.changed.append(file)
            continue
        if _trusted(record):
            found.skipped[key] = record
            continue
        # Ambiguous: compare the bytes. Attachments are not hashed here; an ambiguous
        # attachment sends the file to the loader, which hashes them anyway.
        if any(mtime + RACY_NS > record.seen_ns for _, _, mtime in record.stamps[1:]):
            found.changed.append(file)
            continue
        try:
            data = file.read_bytes()
        except OSError:
            found.changed.append(file)
            continue
        if _digest(data) == record.digest:
            found.skipped[key] = record
            found.confirmed.append(
                FileRecord(
                    record.path,
                    record.digest,
                    context,
                    found.started_ns,
                    record.item_ids,
                    record.stamps,
                )
            )
        else:
            found.contents[file] = data
            found.changed.append(file)
    return found


def remember(
    found: Scan,
    ledger: Ledger,
    files: Mapping[str, tuple[tuple[str, ...], tuple[Path, ...]]],
    result: RunResult,
) -> int:
    """Record the files all of whose items the ledger now holds as they are: no
    problem, not withdrawn. ``files`` maps each file read to its items' ids and
    attachment paths. Returns how many were recorded."""
    troubled = {p.source.partition("[")[0] for p in result.problems}
    records = list(found.confirmed)
    for path, digest in found.digests.items():
        source = str(path)
        own = found.stamps.get(path)
        if source not in files or own is None or source in troubled:
            continue
        ids, attachments = files[source]
        if any(item_id not in result.editions for item_id in ids):
            continue  # withdrawn, or refused by the ledger: read it again next time
        stamps = [stamp(a) for a in attachments]
        if any(s is None for s in stamps):
            continue
        records.append(
            FileRecord(
                _key(path),
                digest,
                found.context,
                found.started_ns,
                ids,
                (own, *(s for s in stamps if s is not None)),
            )
        )
    ledger.remember_files(records)
    return len(records)


def fingerprint(*parts: object) -> str:
    """A digest of what shapes an item file's prepared items besides the file."""
    text = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return _digest(text.encode("utf-8"))


__all__ = ["RACY_NS", "Scan", "fingerprint", "remember", "scan", "stamp"]
