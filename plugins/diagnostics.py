"""What an operator needs to see about plugins: where each comes from (distribution,
version, module), which hooks it implements, and, with ``GONGKAI_TRACE_PLUGINS=1``,
every hook call with its duration.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Any

import pluggy

from gongkai.log import get_logger

TRACE_ENV = "GONGKAI_TRACE_PLUGINS"
#: Where traced hook calls are logged. Its own level lets the trace show on a terminal,
#: where the CLI otherwise shows only warnings: asking for a trace is asking to see it.
TRACE_LOGGER = "gongkai.plugins.trace"
#: Shown for a plugin module that no installed distribution owns ([plugins] load of a
#: module on PYTHONPATH, or an object a library caller registered).
NOT_PACKAGED = "(not packaged)"

trace_log = get_logger(TRACE_LOGGER)


@dataclass(frozen=True)
class PluginOrigin:
    """Where a plugin comes from: the distribution pip installed (``gongkai`` for the
    built-ins), its version, and the module the entry point or dotted name names."""

    distribution: str
    version: str
    module: str

    @property
    def label(self) -> str:
        if self.distribution == NOT_PACKAGED:
            return f"module '{self.module}', {NOT_PACKAGED}"
        return f"distribution '{self.distribution}' {self.version}".rstrip()


@cache
def _owners() -> dict[str, list[str]]:
    # Scans every installed distribution once: only needed when something is shown.
    return metadata.packages_distributions()


def origin_of_module(module: str) -> PluginOrigin:
    """The origin of a plugin loaded by dotted name (built-ins, ``[plugins] load``)."""
    top = module.split(".", 1)[0]
    owners = ["gongkai"] if top == "gongkai" else _owners().get(top, [])
    if not owners:
        return PluginOrigin(NOT_PACKAGED, "", module)
    return PluginOrigin(owners[0], _version(owners[0]), module)


@cache
def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def origin_of_entry_point(ep: metadata.EntryPoint) -> PluginOrigin:
    dist = ep.dist
    if dist is None:
        return origin_of_module(ep.module)
    return PluginOrigin(dist.name, dist.version or "", ep.module)


def hooks_of(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """The gongkai hooks a registered plugin implements, sorted."""
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())


def tracing_requested() -> bool:
    return os.environ.get(TRACE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def trace_hook_calls(pm: pluggy.PluginManager) -> Callable[[], None]:
    """Log every hook call through ``pm.hook`` with the plugins that ran and how long
    it took. Returns the function that stops it."""
    logging.getLogger(TRACE_LOGGER).setLevel(logging.INFO)
    started = threading.local()  # hooks run on worker threads and may nest

    def before(hook_name: str, impls: Sequence[Any], kwargs: dict[str, Any]) -> None:
        stack = getattr(started, "stack", None)
        if stack is None:
            stack = started.stack = []
        stack.append(time.perf_counter())

    def after(outcome: Any, hook_name: str, impls: Sequence[Any], kwargs: dict[str, Any]) -> None:
        began = started.stack.pop()
        failed = outcome.exception
        trace_log.info(
            "plugin hook call",
            hook=hook_name,
            plugins=[impl.plugin_name for impl in impls],
            ms=round((time.perf_counter() - began) * 1000, 3),
            error=type(failed).__name__ if failed is not None else None,
        )

    return pm.add_hookcall_monitoring(before, after)


def call_impl(pm: Any, hook: str, impl: Any, **kwargs: Any) -> Any:
    """Call one hook implementation directly, as core does where it must know which
    plugin answered, and trace it as ``trace_hook_calls`` traces a hook call."""
    if not getattr(pm, "tracing", False):
        return impl.function(**kwargs)
    began = time.perf_counter()
    error: str | None = None
    try:
        return impl.function(**kwargs)
    except Exception as exc:
        error = type(exc).__name__
        raise
    finally:
        trace_log.info(
            "plugin hook call",
            hook=hook,
            plugins=[impl.plugin_name],
            ms=round((time.perf_counter() - began) * 1000, 3),
            error=error,
        )


def describe_plugins(pm: Any, channels: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Every plugin: registered ones with their origin, hooks and the channels they
    offer (``channels``: plugin → channel names), then the broken ones with why."""
    rows: list[dict[str, Any]] = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda pair: pair[0]):
        origin = pm.origin(name)
        rows.append(
            {
                "plugin": name,
                "distribution": origin.distribution if origin else "",
                "version": origin.version if origin else "",
                "module": origin.module if origin else "",
                "hooks": hooks_of(pm, plugin),
                "channels": channels.get(name, []),
                "problem": None,
            }
        )
    for problem in pm.problems:
        origin = problem.origin
        rows.append(
            {
                "plugin": problem.plugin,
                "distribution": origin.distribution if origin else "",
                "version": origin.version if origin else "",
                "module": origin.module if origin else "",
                "hooks": [],
                "channels": [problem.channel] if problem.channel else [],
                "problem": problem.problem,
            }
        )
    return rows
