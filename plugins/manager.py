"""Building the plugin manager: specs, then built-ins, then entry points.

Built-in channels and processing plugins load exactly like third-party ones, from a
list of dotted names; core never imports a channel module by name.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType

import pluggy
from pydantic import BaseModel

from gongkai.channel import GUARANTEES, Channel
from gongkai.errors import PluginError
from gongkai.log import get_logger

from . import hookspecs
from .diagnostics import (
    PluginOrigin,
    call_impl,
    origin_of_entry_point,
    origin_of_module,
    trace_hook_calls,
    tracing_requested,
)

ENTRY_POINT_GROUP = "gongkai"
DISABLED_ENV = "GONGKAI_DISABLED_PLUGINS"
DEFAULT_PLUGINS: tuple[str, ...] = (
    "gongkai.plugins.privacy",
    "gongkai.plugins.safety",
    "gongkai.plugins.sensitive",
    "gongkai.channels.archive",
    "gongkai.channels.webhook",
    "gongkai.channels.wechat",
    "gongkai.channels.municipal",
    "gongkai.channels.portal",
    "gongkai.channels.notice_board",
    "gongkai.channels.broadcast",
)
#: What every channel must implement; the rest of the contract is optional.
REQUIRED_METHODS = ("render", "deliver")
CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

log = get_logger(__name__)


@dataclass(frozen=True)
class ChannelInfo:
    cls: type[Channel]
    plugin: str


@dataclass
class PluginProblem:
    """A plugin gongkai skipped (or, with ``--strict``, refused to start with)."""

    plugin: str
    problem: str
    #: The channel name a refused class offered, when it had one.
    channel: str | None = None
    #: Where the plugin comes from, when known.
    origin: PluginOrigin | None = None

    def __str__(self) -> str:
        where = f" ({self.origin.label})" if self.origin else ""
        return f"plugin '{self.plugin}'{where}: {self.problem}"


class GongkaiPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers what failed to load and where each plugin
    came from."""

    def __init__(self) -> None:
        super().__init__("gongkai")
        self.problems: list[PluginProblem] = []
        #: Plugin name → origin, for every plugin registered by name or entry point.
        self.origins: dict[str, PluginOrigin] = {}
        #: Plugins loaded by dotted name (built-ins, ``[plugins] load``).
        self.dotted: set[str] = set()
        self.strict = False
        self.tracing = False

    def short_names(self) -> dict[str, str]:
        return {name.rsplit(".", 1)[-1]: name for name, _ in self.list_name_plugin()}

    def origin(self, plugin: str) -> PluginOrigin | None:
        """Where a plugin comes from; looked up when first asked, since a manager is
        built for every Publisher and most never show it."""
        if plugin not in self.origins:
            obj = self.get_plugin(plugin)
            if isinstance(obj, ModuleType):
                module = obj.__name__
            elif obj is not None:
                module = type(obj).__module__
            elif plugin in self.dotted:
                module = plugin  # a built-in or [plugins] load module that failed
            else:
                return None
            self.origins[plugin] = origin_of_module(module)
        return self.origins[plugin]

    def refuse(
        self,
        plugin: str,
        problem: str,
        exc: BaseException | None = None,
        *,
        channel: str | None = None,
    ) -> None:
        """Record a broken plugin and go on without it, or raise under ``strict``."""
        found = PluginProblem(plugin, problem, channel, self.origin(plugin))
        if self.strict:
            raise PluginError(f"{found}; --strict makes a broken plugin fatal") from exc
        self.problems.append(found)
        log.warning(
            "plugin skipped",
            plugin=plugin,
            distribution=found.origin.distribution if found.origin else None,
            problem=str(found),
        )


def _disabled_names(disabled: Iterable[str] | None) -> set[str]:
    names = set(disabled or ())
    names.update(n.strip() for n in os.environ.get(DISABLED_ENV, "").split(",") if n.strip())
    return names


def _is_disabled(name: str, disabled: set[str]) -> bool:
    return name in disabled or name.rsplit(".", 1)[-1] in disabled


def get_plugin_manager(
    *,
    strict: bool = False,
    disabled: Iterable[str] | None = None,
    builtins: Iterable[str] = DEFAULT_PLUGINS,
    load_entry_points: bool = True,
    extra: Iterable[object] = (),
) -> GongkaiPluginManager:
    """Build a fresh plugin manager.

    A plugin that fails to import is recorded in ``pm.problems`` and skipped, unless
    ``strict`` is set, which raises :class:`PluginError`. Names in ``disabled`` or in
    ``$GONGKAI_DISABLED_PLUGINS`` (comma-separated; a dotted name or its last part) are
    blocked. ``extra`` registers plugin objects directly (tests, library callers).
    With ``$GONGKAI_TRACE_PLUGINS`` set, every hook call is logged with its duration.
    """
    pm = GongkaiPluginManager()
    pm.strict = strict
    pm.add_hookspecs(hookspecs)
    if tracing_requested():
        pm.tracing = True
        trace_hook_calls(pm)
    blocked = _disabled_names(disabled)

    for dotted in builtins:
        if _is_disabled(dotted, blocked):
            continue
        pm.dotted.add(dotted)
        try:
            pm.register(importlib.import_module(dotted), name=dotted)
        except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's fault
            pm.refuse(dotted, f"failed to load ({type(exc).__name__}: {exc})", exc)

    if load_entry_points:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if _is_disabled(ep.name, blocked) or pm.has_plugin(ep.name):
                continue
            pm.origins[ep.name] = origin_of_entry_point(ep)
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # noqa: BLE001
                pm.refuse(
                    ep.name,
                    f"failed to load ({type(exc).__name__}: {exc}); fix or uninstall it, "
                    f"or add {ep.name} to {DISABLED_ENV}",
                    exc,
                    # The entry point is usually named after its channel: a config
                    # table for it then says why the channel is missing.
                    channel=ep.name,
                )

    for plugin in extra:
        pm.register(plugin)

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or str(exc.plugin)
        pm.unregister(exc.plugin)
        pm.refuse(name, str(exc), exc)
    return pm


def contract_problem(cls: object) -> str | None:
    """What is wrong with a class offered as a channel, or None if it keeps the contract."""
    if not (isinstance(cls, type) and issubclass(cls, Channel)):
        return f"{cls!r} is not a subclass of gongkai.Channel"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not CHANNEL_NAME.match(name):
        return f"{cls.__qualname__}.name must be lowercase letters, digits and _, got {name!r}"
    if cls.mode not in ("online", "offline"):
        return f"{cls.__qualname__}.mode must be 'online' or 'offline'"
    if cls.guarantee not in GUARANTEES:
        return f"{cls.__qualname__}.guarantee must be one of {', '.join(GUARANTEES)}"
    if not (isinstance(cls.Config, type) and issubclass(cls.Config, BaseModel)):
        return f"{cls.__qualname__}.Config must be a pydantic model"
    settings = cls.Config.model_config
    if settings.get("extra") != "forbid" or not settings.get("frozen"):
        # A typo in config.toml would otherwise be ignored, and the channel run on
        # a default the operator meant to change.
        return (
            f"{cls.__qualname__}.Config must reject unknown keys and be frozen: give it "
            'model_config = ConfigDict(extra="forbid", frozen=True)'
        )
    missing = [m for m in REQUIRED_METHODS if not cls.supports(m)]
    if missing:
        return f"{cls.__qualname__} must implement {' and '.join(missing)}"
    return None


def collect_channels(pm: GongkaiPluginManager, *, strict: bool = False) -> dict[str, ChannelInfo]:
    """Every registered channel class by name.

    A class that breaks the contract is skipped and recorded in ``pm.problems``. A
    name two plugins offer is refused for both, naming them: picking one would
    deliver through code the operator did not choose. With ``strict`` either is a
    :class:`PluginError`.
    """
    pm.strict = strict
    found: dict[str, ChannelInfo] = {}
    offered: dict[str, list[str]] = {}
    for impl in pm.hook.gongkai_register_channels.get_hookimpls():
        plugin = impl.plugin_name
        try:
            classes = list(call_impl(pm, "gongkai_register_channels", impl) or [])
        except Exception as exc:  # noqa: BLE001
            pm.refuse(
                plugin, f"gongkai_register_channels failed ({type(exc).__name__}: {exc})", exc
            )
            continue
        for cls in classes:
            problem = contract_problem(cls)
            if problem:
                name = getattr(cls, "name", None)
                pm.refuse(plugin, problem, channel=name if isinstance(name, str) else None)
                continue
            offered.setdefault(cls.name, []).append(plugin)
            found.setdefault(cls.name, ChannelInfo(cls, plugin))
    for name, plugins in offered.items():
        if len(plugins) < 2:
            continue
        del found[name]
        both = " and ".join(f"'{p}' ({_label(pm, p)})" for p in plugins)
        for plugin in plugins:
            pm.refuse(
                plugin,
                f"channel name '{name}' is offered by both {both}; uninstall one or "
                f"disable it with {DISABLED_ENV}",
                channel=name,
            )
    return found


def _label(pm: GongkaiPluginManager, plugin: str) -> str:
    origin = pm.origin(plugin)
    return origin.label if origin else "origin unknown"
