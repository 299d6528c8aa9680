"""``gongkai sandbox``: serve the remote simulators until stopped."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from . import sandbox
from .cli_output import EXIT_OK, emit
from .config import load_settings
from .sandbox import Faults


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("give a share from 0 to 1, such as 0.3 for 30%")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8900, help="port (8900; 0: any free port)")
    p.add_argument(
        "--state",
        type=Path,
        help="folder for the simulators' state (default: the config's state_dir)",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=sorted(sandbox.SIMULATORS),
        help="serve only this simulator (repeatable)",
    )
    faults = p.add_argument_group("faults")
    faults.add_argument("--failure-rate", type=_share, default=0.0, help="share answered 503")
    faults.add_argument(
        "--read-timeout-rate",
        type=_share,
        default=0.0,
        help="share done but never answered (the connection drops)",
    )
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added to answers")
    faults.add_argument(
        "--token-expiry-every", type=int, default=0, help="access tokens die every N calls"
    )
    faults.add_argument(
        "--quota-after", type=int, default=0, help="after N calls, refuse for quota once"
    )
    faults.add_argument(
        "--quota-calls", type=int, default=5, help="how many calls the quota refuses (5)"
    )
    faults.add_argument(
        "--slow-jobs", type=int, default=0, help="publish jobs stay running for N polls"
    )
    faults.add_argument("--seed", type=int, help="seed for the fault dice (repeatable runs)")


def cmd_sandbox(args: argparse.Namespace) -> int:
    state = args.state or load_settings(args.config).state_dir
    faults = Faults(
        failure_rate=args.failure_rate,
        read_timeout_rate=args.read_timeout_rate,
        latency=args.latency,
        token_expiry_every=args.token_expiry_every,
        quota_after=args.quota_after,
        quota_calls=args.quota_calls,
        slow_jobs=args.slow_jobs,
        seed=args.seed,
    )
    running = sandbox.start(state, faults, host=args.host, port=args.port, names=args.only)
    urls = {name: running.url_for(name) for name in (args.only or sandbox.SIMULATORS)}
    data: dict[str, Any] = {"url": running.url, "simulators": urls, "state": str(state)}
    lines = [f"sandbox on {running.url} (state in {state / 'sandbox'}); Ctrl-C stops it"]
    lines += [f'  {name}: base_url = "{url}"' for name, url in urls.items()]
    emit(args, data, "\n".join(lines))
    sys.stdout.flush()
    stop = threading.Event()
    # SIGTERM (systemd, docker stop) ends it as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    running.close()
    return EXIT_OK
