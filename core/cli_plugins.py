"""``gongkai channels --verbose``: the plugins behind the channels, for an operator
finding out why a channel is missing or which package supplies it."""

from __future__ import annotations

from typing import Any

from gongkai.plugins.diagnostics import TRACE_ENV, describe_plugins

from .cli_output import table
from .publisher import Publisher


def _shown_status(configured: str) -> str:
    return "not configured" if configured == "no" else configured


def plugins_text(publisher: Publisher, rows: list[dict[str, Any]], limit: int) -> str:
    """The plugins table: every plugin, where it comes from, its hooks, its channels
    with their config status, and what is wrong with a broken one."""
    status = {row["name"]: row["configured"] for row in rows if row["name"] != "?"}
    offered: dict[str, list[str]] = {}
    for row in rows:
        if row["name"] != "?":
            offered.setdefault(row["plugin"], []).append(row["name"])
    lines = []
    for plugin in describe_plugins(publisher.pm, offered):
        channels = ", ".join(
            f"{name} ({_shown_status(status.get(name, 'refused'))})" for name in plugin["channels"]
        )
        hooks = ", ".join(hook.removeprefix("gongkai_") for hook in plugin["hooks"])
        lines.append(
            [
                plugin["plugin"],
                plugin["distribution"],
                plugin["version"],
                plugin["module"],
                f"BROKEN: {plugin['problem']}" if plugin["problem"] else hooks,
                channels,
            ]
        )
    header = ("plugin", "distribution", "version", "module", "hooks", "channels (config)")
    return (
        "plugins (hooks without their gongkai_ prefix; "
        f"{TRACE_ENV}=1 logs every hook call):\n" + table(lines, header, limit=limit)
    )
