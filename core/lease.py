"""Who holds a claim, and whether that holder is still alive.

A claim's owner is ``host:pid:random``. On the same host a dead pid settles the
question at once, so a cron rerun after a crash need not wait for the lease to run
out; an owner on another host is presumed alive until its lease expires (a worker
holding a long delivery keeps renewing its lease; see :mod:`gongkai.worker`).

The host part is the machine's name unless :func:`set_host` names it otherwise
(``gongkai worker --host-id``): several workers on one machine can then stand for
distinct hosts, as tests and containers sharing a hostname need.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

_host: str | None = None


def set_host(host: str | None) -> None:
    """Name this process's host in the claims it makes (None: the machine's name)."""
    global _host
    if host is not None and (
        not host
        or any(c in host for c in ":#")
        or not host.isprintable()
        or any(c.isspace() for c in host)
    ):
        raise ValueError(f"{host!r}: give a name without ':', '#' or spaces")
    _host = host


def this_host() -> str:
    return _host or socket.gethostname()


def new_owner() -> str:
    return f"{this_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool:
    """False only when the owner surely died: same host, and its process is gone."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != this_host() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lease_until(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
