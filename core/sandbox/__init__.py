"""``gongkai sandbox``: faithful simulators of the remote APIs gongkai publishes to, on
a loopback port, for trying a deployment and for the end-to-end tests.

Each simulator speaks its API as documented (same paths, query parameters, JSON shapes,
error codes and limits), keeps its state under ``<state_dir>/sandbox/`` and takes the
faults of :class:`Faults`. A channel whose ``base_url`` is ``"sandbox"`` gets a sandbox
started in-process on an ephemeral port, so the shipped config needs no service.

Example::

    from gongkai.sandbox import Faults, start

    with start(Path(".gongkai"), Faults(failure_rate=0.3)) as sandbox:
        print(sandbox.url_for("wechat"))
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .base import Faults, Request, Response, Sandbox, SandboxServer, Simulator, Store

#: Simulator name → "module:Class". Each class takes (folder, faults).
SIMULATORS: dict[str, str] = {
    "wechat": "gongkai.sandbox.wechat:WeChatSimulator",
    "municipal": "gongkai.sandbox.municipal:MunicipalSimulator",
}


def simulator_class(name: str) -> type:
    module, _, cls = SIMULATORS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def start(
    state_dir: Path,
    faults: Faults | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    names: Iterable[str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Sandbox:
    """Start the simulators ``names`` (default: all) on ``host:port`` (0: any free
    port) in a background thread. State lives under ``state_dir/sandbox``."""
    faults = faults or Faults()
    folder = Path(state_dir) / "sandbox"
    simulators = [simulator_class(n)(folder, faults) for n in (names or SIMULATORS)]
    server = SandboxServer(simulators, faults, host=host, port=port, sleep=sleep)
    # A short poll interval: shutdown() waits for one, and tests stop many sandboxes.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="gongkai-sandbox", daemon=True
    )
    thread.start()
    return Sandbox(server, thread)


__all__ = [
    "SIMULATORS",
    "Faults",
    "Request",
    "Response",
    "Sandbox",
    "SandboxServer",
    "Simulator",
    "Store",
    "start",
]
