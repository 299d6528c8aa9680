"""Worker scale-out benchmark (issue 14): throughput of 1, 2 and 4 ``gongkai worker``
processes draining one ledger into a latency-bound remote.

The remote is a loopback HTTP server that answers each POST after ``--latency``
seconds (50 ms); the channel is ``slowpost`` (guarantee ``none``, tests/support), so
every delivery is claimed one at a time just before it is sent, as on a real portal
without idempotency. Each worker runs ``--concurrency`` deliveries at once. For each
worker count, a fresh ledger gets ``--deliveries`` deliveries and the workers drain
it; throughput is counted at the remote, from its first request to its last answer, so
process start-up is left out. The ratios are against one worker in the same process;
the issue's target is 4 workers ≥ 3× one.

Run:

    python bench/workers.py                       # SQLite ledger
    python bench/workers.py --postgresql            # db test on 127.0.0.1:5432
    python bench/workers.py --deliveries 2000 --concurrency 8

No test asserts these figures; they are for people.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the loopback remote, the channel, the drain

from support import drain, pg  # noqa: E402  (needs the path above)


def measure(workers: int, args: argparse.Namespace) -> tuple[float, dict[str, int]]:
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gongkai-workers-")))
        # A fresh ledger per measurement: on PostgreSQL, a schema of its own, dropped after.
        ledger = stack.enter_context(pg.fresh_schema(args.postgresql)) if args.postgresql else None
        with drain.remote(args.latency) as remote:
            config = drain.write_config(
                folder, remote.url, ledger=ledger, concurrency=args.concurrency
            )
            drain.fill(config, args.deliveries)
            done = drain.drain(config, folder, total=args.deliveries, workers=workers)
            if remote.duplicates():
                raise SystemExit(f"duplicates at the remote: {remote.duplicates()}")
            return remote.throughput(), done.counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1200)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=4, help="per worker")
    parser.add_argument(
        "--postgresql",
        nargs="?",
        const=pg.SERVER_URL,
        metavar="URL",
        help=f"a PostgreSQL ledger in this database, a fresh schema per run (default URL: "
        f"{pg.SERVER_URL}); without it, SQLite",
    )
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    kind = "PostgreSQL" if args.postgresql else "SQLite"
    print(
        f"{args.deliveries} deliveries, {args.latency * 1000:g} ms remote latency, "
        f"{args.concurrency} at once per worker, {kind} ledger"
    )
    base = None
    for n in (int(w) for w in args.workers.split(",")):
        rate, counts = measure(n, args)
        base = base or rate
        print(f"{n} worker(s): {rate:7.1f} deliveries/s   {rate / base:4.2f}x one   {counts}")


if __name__ == "__main__":
    main()
