"""Who holds a claim, and whether that holder is still alive.

A claim's owner is ``host:pid:random``. On the same host a dead pid settles the
question at once, so a cron rerun after a crash need not wait for the lease to run
out; an owner on another host is presumed alive until its lease expires.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool:
    """False only when the owner surely died: same host, and its process is gone."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
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
