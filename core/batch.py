"""A batch of item files, read a chunk at a time.

A first publish over 100,000 files must not hold 100,000 items in memory. But two
files that share an id must both be refused (which one the author meant is a guess),
and that can only be known once every id is known. So the batch looks first: each
file's ids are peeked at cheaply (:func:`gongkai.loader.peek_ids`, a full front-matter
parse only where that is unsure), ids shared by two files (or by a file and a skipped
one) are refused up front, and then the files are read, validated and handed to intake
a chunk at a time, so items are dropped once their chunk is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from .errors import ItemProblem
from .ledger import FileRecord
from .loader import (
    ITEM_SUFFIXES,
    LoadedItem,
    decode,
    load_paths,
    peek_ids,
    shared_id_problem,
    split_front_matter,
)
from .results import RunResult
from .sources import Scan

#: Files read and validated at a time: the same as intake records per transaction.
CHUNK = 500


def _ids_of(path: Path) -> list[str]:
    """The ids of one file's items, as far as a look can tell ([] if unreadable: the
    real read reports why)."""
    try:
        text = decode(path.read_bytes())
    except (OSError, UnicodeDecodeError):
        return []
    suffix = path.suffix.lower()
    if suffix not in ITEM_SUFFIXES:
        return []
    ids = peek_ids(text, suffix, path.stem)
    if ids is not None:
        return ids
    try:
        data, _ = split_front_matter(text, str(path))
    except ItemProblem:
        return []
    found = data.get("id", path.stem)
    return [found] if isinstance(found, str) else []


class FileBatch:
    """Iterate to get the batch's good items, chunk by chunk; problems go straight
    into ``result.problems``. ``files`` maps each item file read to its items' ids
    and attachments, for :func:`gongkai.sources.remember`."""

    def __init__(
        self,
        scan: Scan,
        result: RunResult,
        *,
        attachments_root: Path | None,
        skipped: Mapping[str, FileRecord],
    ) -> None:
        self.scan = scan
        self.result = result
        self.attachments_root = attachments_root
        self.files: dict[str, tuple[tuple[str, ...], tuple[Path, ...]]] = {}
        self._early: list[LoadedItem] = []
        owners: dict[str, list[str]] = {}
        for file in scan.changed:
            if file is None:  # stdin is read once, so it is read now, whole
                loaded, problems = self._load([None])
                self._early = loaded
                result.problems.extend(problems)
                ids = [entry.item.id for entry in loaded]
                source = "<stdin>"
            else:
                ids, source = _ids_of(file), str(file)
            for item_id in dict.fromkeys(ids):
                owners.setdefault(item_id, []).append(source)
        # Skipped files count too, but only for ids a file read now also has.
        for path, record in skipped.items():
            for item_id in record.item_ids:
                if item_id in owners:
                    owners[item_id].append(path)
        self.refused = {i: where for i, where in owners.items() if len(where) > 1}
        #: Every id the batch's files hold (an interpretation may name any of them).
        self.ids = frozenset(owners)
        for item_id, where in self.refused.items():
            result.problems.extend(shared_id_problem(item_id, where))

    def _load(self, files: list[Path | None]) -> tuple[list[LoadedItem], list[ItemProblem]]:
        return load_paths(
            files,
            attachments_root=self.attachments_root,
            read=self.scan.read,
            expanded=True,
            refuse_shared=False,
        )

    def __iter__(self) -> Iterator[LoadedItem]:
        taken: dict[str, str] = {}
        files = [f for f in self.scan.changed if f is not None]
        chunks = [self._early] + [files[i : i + CHUNK] for i in range(0, len(files), CHUNK)]
        for number, chunk in enumerate(chunks):
            if number == 0:
                loaded = self._early
                self._early = []
            else:
                loaded, problems = self._load(chunk)
                self.result.problems.extend(problems)
            for entry in loaded:
                item_id = entry.item.id
                if item_id in self.refused:
                    continue  # reported up front
                earlier = taken.setdefault(item_id, entry.source)
                if earlier != entry.source:
                    # The look missed it: the earlier file may be taken in already,
                    # so only this one can still be refused.
                    self.result.problems.append(
                        ItemProblem(
                            entry.source,
                            "id",
                            f"id '{item_id}' is also used by {earlier}, which this run "
                            "took in first; this file is not published",
                            "give each item its own id, then run it again",
                            item_id,
                        )
                    )
                    continue
                ids, attachments = self.files.get(entry.source, ((), ()))
                self.files[entry.source] = (
                    (*ids, item_id),
                    (*attachments, *(a.path for a in entry.item.attachments)),
                )
                yield entry
