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

import pluggy
from pydantic import BaseModel

from gongkai.channel import GUARANTEES, Channel
from gongkai.errors import PluginError
from gongkai.log import get_logger

from . import hookspecs

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
    plugin: str
    problem: str
    #: The channel name a refused class offered, when it had one.
    channel: str | None = None

    def __str__(self) -> str:
        return f"plugin '{self.plugin}': {self.problem}"


class GongkaiPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers what failed to load."""

    def __init__(self) -> None:
        super().__init__("gongkai")
        self.problems: list[PluginProblem] = []

    def short_names(self) -> dict[str, str]:
        return {name.rsplit(".", 1)[-1]: name for name, _ in self.list_name_plugin()}


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
    """
    pm = GongkaiPluginManager()
    pm.add_hookspecs(hookspecs)
    blocked = _disabled_names(disabled)

    def report(name: str, problem: str, exc: BaseException | None = None) -> None:
        if strict:
            raise PluginError(f"plugin '{name}': {problem}") from exc
        pm.problems.append(PluginProblem(name, problem))
        log.warning("plugin skipped", plugin=name, problem=problem)

    for dotted in builtins:
        if _is_disabled(dotted, blocked):
            continue
        try:
            pm.register(importlib.import_module(dotted), name=dotted)
        except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's fault
            report(dotted, f"failed to load ({type(exc).__name__}: {exc})", exc)

    if load_entry_points:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if _is_disabled(ep.name, blocked) or pm.has_plugin(ep.name):
                continue
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # noqa: BLE001
                dist = getattr(ep.dist, "name", "?")
                report(
                    ep.name,
                    f"failed to load from distribution '{dist}' ({type(exc).__name__}: {exc}); "
                    f"fix or uninstall it, or add it to {DISABLED_ENV}",
                    exc,
                )

    for plugin in extra:
        pm.register(plugin)

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        if strict:
            raise PluginError(str(exc)) from exc
        pm.unregister(exc.plugin)
        report(str(getattr(exc, "plugin", "?")), str(exc), exc)
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
    missing = [m for m in REQUIRED_METHODS if not cls.supports(m)]
    if missing:
        return f"{cls.__qualname__} must implement {' and '.join(missing)}"
    return None


def collect_channels(pm: GongkaiPluginManager, *, strict: bool = False) -> dict[str, ChannelInfo]:
    """Every registered channel class by name.

    Two plugins offering the same name is a :class:`PluginError` naming both, since
    picking one silently would deliver through code the operator did not choose.
    """
    found: dict[str, ChannelInfo] = {}
    for impl in pm.hook.gongkai_register_channels.get_hookimpls():
        plugin = impl.plugin_name
        try:
            classes = impl.function() or []
        except Exception as exc:  # noqa: BLE001
            if strict:
                raise PluginError(f"plugin '{plugin}': gongkai_register_channels failed") from exc
            pm.problems.append(PluginProblem(plugin, f"gongkai_register_channels failed: {exc}"))
            continue
        for cls in classes:
            problem = contract_problem(cls)
            if problem:
                if strict:
                    raise PluginError(f"plugin '{plugin}': {problem}")
                offered = getattr(cls, "name", None)
                pm.problems.append(
                    PluginProblem(plugin, problem, offered if isinstance(offered, str) else None)
                )
                continue
            if cls.name in found:
                raise PluginError(
                    f"channel name '{cls.name}' is offered by both '{found[cls.name].plugin}' "
                    f"and '{plugin}'; uninstall one or disable it with {DISABLED_ENV}"
                )
            found[cls.name] = ChannelInfo(cls, plugin)
    return found
