"""``gongkai preview``: serve a channel's built site on 127.0.0.1 to look at it.

For an operator's look before syncing the folder to the real portal, never for the
public: it listens on the loopback address only and serves files, nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import signal
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .channel import ChannelContext
from .cli_output import EXIT_OK, emit
from .errors import UsageError
from .publisher import Publisher


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # the operator watches the browser, not a request log

    def list_directory(self, path: Any) -> None:
        # A folder without index.html is not a page of the site: a listing would show
        # files the site never links (a withdrawn item's leftovers, the build's own).
        self.send_error(404, "Not Found")
        return None


def serve(root: Path, port: int = 8000) -> ThreadingHTTPServer:
    """A file server for ``root`` on 127.0.0.1 (``port`` 0: any free one), serving in
    a background thread until ``shutdown()``."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def site_folder(publisher: Publisher, channel: str | None) -> tuple[str, Path]:
    """The enabled channel that builds a site (``preview_dir``), and its folder."""
    found: dict[str, Path] = {}
    for name, chs in publisher.channel_settings.items():
        cls = publisher.channel_classes[chs.type or name].cls
        if not cls.supports("preview_dir") or (channel and name != channel):
            continue
        # Only this channel is built: looking starts no sandbox and opens no session.
        context = ChannelContext(
            name=name,
            state_dir=publisher.settings.state_dir,
            clock=publisher.clock,
            catalogue=publisher.settings.catalogue,
            org_code=publisher.settings.org_code,
        )
        folder = cls(chs.options, context).preview_dir()
        if folder is not None:
            found[name] = folder
    if not found:
        wanted = f"'{channel}' is not an enabled channel that" if channel else "no enabled channel"
        raise UsageError(
            f"{wanted} builds a site to preview; enable [channels.portal] in config.toml "
            "and run `gongkai publish` first"
        )
    if len(found) > 1:
        raise UsageError(f"several channels build a site ({', '.join(found)}); pick one: --channel")
    return next(iter(found.items()))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--channel", help="the channel whose site to serve (default: the one that builds one)"
    )
    p.add_argument(
        "--port", type=int, default=8000, help="port on 127.0.0.1 (8000; 0: any free port)"
    )


def cmd_preview(args: argparse.Namespace) -> int:
    with Publisher.from_config(args.config, strict=args.strict or None, sends=False) as publisher:
        name, folder = site_folder(publisher, args.channel)
    if not (folder / "index.html").is_file():
        raise UsageError(
            f"{folder} holds no site yet; run `gongkai publish` to build it, then preview"
        )
    try:
        server = serve(folder, args.port)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); pick another --port"
        ) from exc
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    emit(
        args,
        {"channel": name, "folder": str(folder), "url": url},
        f"{name}: serving {folder} at {url}index.html; Ctrl-C stops it",
    )
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    server.shutdown()
    server.server_close()
    return EXIT_OK
