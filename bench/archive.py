"""Archive benchmark: a first publish of N items to the archive channel alone.

Every --attached-every'th item carries one small attachment. Prints items per second
for gongkai, and two baselines run in this process: bare threads (as many as gongkai's
workers) writing each item's record files the way an archive must (write, fsync,
rename) with nothing around them, and gongkai publishing the same items to a channel
that renders as the archive does and writes nothing (the ceiling the rest of gongkai
leaves the archive). Each is run --repeat times, alternating, after one untimed warm-up
of each; best and median are printed. --profile prints a cProfile of one more archive
run, every worker thread included, top --top functions by own time.

Records go under --dir (default: the system's temporary folder), which should be on
the filesystem being measured, and nothing is deleted until the end (with --keep, not
at all). ext4 passes over inodes freed in the last minutes when it allocates new ones:
a run soon after a mass deletion on the same filesystem (another run's clean-up, a test
suite's temporary folders) pays many times the system time per file, whatever the
code. To compare two versions, run them one after the other with --keep and remove the
folders afterwards.

Run: python bench/archive.py [--items 5000] [--attached-every 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import itertools
import os
import pstats
import shutil
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

from gongkai import Item, Publisher, Receipt
from gongkai.channels.archive import ArchiveChannel
from gongkai.config import settings_from_dict
from gongkai.item import Attachment
from gongkai.plugins.hookspecs import hookimpl

ATTACHMENT = "申请表（样表）。\n".encode() * 120  # about 2.6 kB
_runs = itertools.count()


class NothingChannel(ArchiveChannel):
    """Renders as the archive does and writes nothing: what the rest of gongkai costs."""

    name = "nothing"

    def deliver(self, item, rendition, previous):
        record = self.root / item.id / f"edition-{item.edition}"
        return Receipt(external_id=f"{item.id}/edition-{item.edition}", artifact=str(record))


class BenchPlugin:
    @hookimpl
    def gongkai_register_channels(self):
        return [NothingChannel]


def make_items(count: int, attached_every: int, folder: Path) -> list[Item]:
    items = []
    for n in range(count):
        attachments = []
        if attached_every and n % attached_every == 0:
            path = folder / f"application-{n:05d}.txt"
            data = ATTACHMENT + str(n).encode()
            path.write_bytes(data)
            digest = hashlib.sha256(data).hexdigest()
            attachments = [Attachment(title="申请表", path=path, sha256=digest)]
        items.append(
            Item(
                id=f"jt-bench-{n:05d}",
                catalog="housing.policy",
                title=f"金堂县公共租赁住房申请指南（第{n}号）",
                body=(
                    "申请条件：在本县有稳定工作。申请材料：身份证明。"
                    f"办理流程：个人申请，审核后公示。编号{n}。"
                ),
                publisher="金堂县房产管理局",
                formed_on=date(2026, 11, 20),
                attachments=attachments,
            )
        )
    return items


def publish_once(items: list[Item], concurrency: int, work: Path, channel: str) -> float:
    settings = settings_from_dict(
        {
            "gongkai": {
                "state_dir": str(work / f"state-{next(_runs)}"),
                "concurrency": concurrency,
                "org_code": "11510121009087532X",
            },
            "channels": {channel: {"every_item": True}},
        }
    )
    with Publisher(settings, plugins=[BenchPlugin()], load_entry_points=False) as pub:
        start = time.perf_counter()
        result = pub.publish(items)
        wall = time.perf_counter() - start
    assert result.counts().get("delivered") == len(items), result.counts()
    return wall


_names = itertools.count()


def _write_synced(path: Path, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.{next(_names)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def files_once(items: list[Item], concurrency: int, work: Path) -> float:
    """The files an archive record needs (a folder per item, the rendered JSON, the
    attachment), each written, fsynced and renamed, from bare threads."""
    root = work / f"files-{next(_runs)}"

    def write(item: Item) -> None:
        folder = root / hashlib.sha256(item.id.encode()).hexdigest()[:2] / item.id
        folder.mkdir(parents=True, exist_ok=True)
        for attachment in item.attachments:
            (folder / "attachments").mkdir(exist_ok=True)
            data = attachment.path.read_bytes()
            _write_synced(folder / "attachments" / attachment.filename, data)
        _write_synced(folder / "item.json", item.model_dump_json().encode())

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(write, items))
    return time.perf_counter() - start


def profile_once(items: list[Item], concurrency: int, work: Path, top: int) -> None:
    """One archive run under cProfile, a profiler in every thread, merged."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()
        try:
            original_run(self)
        finally:
            profile.disable()

    threading.Thread.run = profiled_run
    main = cProfile.Profile()
    try:
        main.enable()
        wall = publish_once(items, concurrency, work, "archive")
        main.disable()
    finally:
        threading.Thread.run = original_run
    out = io.StringIO()
    stats = pstats.Stats(main, stream=out)
    for profile in profiles:
        stats.add(profile)
    stats.sort_stats("tottime").print_stats(top)
    print(
        f"profile: {len(items)} items in {wall:.2f} s under cProfile "
        f"({len(profiles)} threads merged; times are summed over threads)"
    )
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("\n".join(lines[start - 1 :]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--attached-every", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where records go (a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="leave the records there")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        measure(args, work)
    finally:
        if args.keep:
            print(f"  records kept in {work}")
        else:
            shutil.rmtree(work)


def measure(args: argparse.Namespace, work: Path) -> None:
    items = make_items(args.items, args.attached_every, work)
    runs = {
        "files": lambda: files_once(items, args.concurrency, work),
        "nothing": lambda: publish_once(items, args.concurrency, work, "nothing"),
        "archive": lambda: publish_once(items, args.concurrency, work, "archive"),
    }
    for run in runs.values():
        run()  # warm-up
    walls: dict[str, list[float]] = {label: [] for label in runs}
    # Alternate the runs so that a noisy neighbour on the machine hits all alike.
    for _ in range(args.repeat):
        for label, run in runs.items():
            walls[label].append(run())
    attached = sum(1 for item in items if item.attachments)
    print(
        f"archive: {args.items} items ({attached} with an attachment), "
        f"concurrency {args.concurrency}, {args.repeat} runs"
    )
    for label, times in walls.items():
        best, median = min(times), statistics.median(times)
        print(
            f"  {label:8} best {best:6.2f} s = {args.items / best:6,.0f} items/s   "
            f"median {median:6.2f} s = {args.items / median:6,.0f} items/s"
        )
    print("  (files: bare threads writing, fsyncing and renaming each record's files;")
    print("   nothing: gongkai publishing to a channel that writes nothing)")
    archive = walls["archive"]
    for label in ("files", "nothing"):
        print(
            f"  archive / {label}: best {min(archive) / min(walls[label]):.2f}x, "
            f"median {statistics.median(archive) / statistics.median(walls[label]):.2f}x"
        )
    if args.profile:
        profile_once(items, args.concurrency, work, args.top)


if __name__ == "__main__":
    main()
