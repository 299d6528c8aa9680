"""``gongkai worker``: run passes until SIGTERM (or one pass with ``--once``), logging
JSON lines; see docs/worker.md."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from .cli_output import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from .lease import set_host, this_host
from .log import configure, get_logger
from .worker import Worker

if TYPE_CHECKING:
    from .publisher import Publisher

log = get_logger(__name__)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds, 0 or more")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--once", action="store_true", help="run one pass, then exit")
    p.add_argument(
        "--host-id",
        metavar="ID",
        help="the host name in this worker's claims (default: the machine's name); give "
        "each container or VM sharing a name its own",
    )
    p.add_argument(
        "--grace",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM, how long deliveries under way may take to finish (default: 30)",
    )
    p.add_argument(
        "--poll",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="longest wait for new work between idle passes (default: 5); new work "
        "recorded in a PostgreSQL ledger wakes the worker at once",
    )


def cmd_worker(args: argparse.Namespace, publisher_for: Callable[..., Publisher]) -> int:
    # A worker runs under systemd or a container: always JSON lines, whatever stderr is.
    configure(json_lines=True, level=logging.DEBUG if args.verbose else logging.INFO)
    try:
        set_host(args.host_id)
    except ValueError as exc:
        print(f"error: --host-id {exc}", file=sys.stderr)
        return EXIT_USAGE
    with publisher_for(args, sends=True) as publisher:
        worker = Worker(publisher, grace=args.grace, poll=args.poll)
        if args.once:
            worker.run_once()
        else:
            # SIGTERM (systemd, docker stop) and Ctrl-C alike: stop taking work, finish.
            stops = (signal.SIGTERM, signal.SIGINT)
            previous = {sig: signal.signal(sig, lambda *_: worker.request_stop()) for sig in stops}
            try:
                log.info("worker started", host=this_host(), grace=args.grace, poll=args.poll)
                worker.serve()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
    # Told to stop, a worker has done its job; one pass reports whether it could record.
    return EXIT_FAILED if args.once and worker.halted else EXIT_OK
