"""How gongkai's hooks change without breaking plugins (docs/writing-a-channel.md,
"Hook evolution"): the guide's snippets are excerpts of this file, and these tests show
that each rule holds with the pluggy gongkai depends on."""

from __future__ import annotations

import types
import warnings

import pluggy
import pytest

hookspec = pluggy.HookspecMarker("gongkai")
hookimpl = pluggy.HookimplMarker("gongkai")


def manager(*specs: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("gongkai")
    for spec in specs:
        pm.add_hookspecs(spec)
    return pm


# --- a hook gains a parameter ---------------------------------------------------------------


class ReleaseOne:
    @hookspec
    def gongkai_notice_footer(self, item_id):
        """The text under a notice."""


class ReleaseTwo:
    @hookspec
    def gongkai_notice_footer(self, item_id, area):
        """The text under a notice. ``area`` (added in 0.2): the village it is for."""


class OldPlugin:
    """Written against release one: it names only ``item_id``."""

    @hookimpl
    def gongkai_notice_footer(self, item_id):
        return f"{item_id} 公示"


class NewPlugin:
    """Written against release two: it asks for ``area`` as well."""

    @hookimpl
    def gongkai_notice_footer(self, item_id, area):
        return f"{area} {item_id} 公示"


def test_a_plugin_written_before_a_parameter_was_added_still_runs():
    pm = manager(ReleaseTwo)
    pm.register(OldPlugin())
    pm.register(NewPlugin())
    # Each implementation gets just the arguments it names (newest registered first).
    footers = pm.hook.gongkai_notice_footer(item_id="jt-1", area="花园村")
    assert footers == ["花园村 jt-1 公示", "jt-1 公示"]


def test_a_plugin_that_needs_the_new_parameter_is_refused_by_an_older_gongkai():
    """So a plugin that names a new argument requires the gongkai release that added it
    (``dependencies = ["gongkai>=0.2"]``): an older one refuses it at registration,
    with a message, instead of calling it wrongly."""
    pm = manager(ReleaseOne)
    with pytest.raises(pluggy.PluginValidationError, match="area"):
        pm.register(NewPlugin())


# --- a hook is deprecated -------------------------------------------------------------------


class DeprecatingRelease:
    @hookspec(
        warn_on_impl=DeprecationWarning(
            "gongkai_notice_footer is deprecated and will be removed in 0.4; "
            "implement gongkai_notice_parts instead"
        )
    )
    def gongkai_notice_footer(self, item_id, area):
        """Deprecated: see gongkai_notice_parts."""

    @hookspec(
        warn_on_impl_args={
            "area": DeprecationWarning("the area argument is deprecated; read item.area")
        }
    )
    def gongkai_notice_parts(self, item, area):
        """The parts of a notice's footer."""


def test_implementing_a_deprecated_hook_warns_when_the_plugin_is_registered():
    pm = manager(DeprecatingRelease)
    with pytest.warns(DeprecationWarning, match="implement gongkai_notice_parts instead"):
        pm.register(OldPlugin())
    # It still runs until the release that removes it.
    assert pm.hook.gongkai_notice_footer(item_id="jt-1", area="花园村") == ["jt-1 公示"]


def test_naming_a_deprecated_argument_warns_and_leaving_it_out_does_not():
    pm = manager(DeprecatingRelease)

    @hookimpl
    def gongkai_notice_parts(item, area):
        return [area]

    with pytest.warns(DeprecationWarning, match="read item.area"):
        pm.register(types.SimpleNamespace(gongkai_notice_parts=gongkai_notice_parts))

    @hookimpl(specname="gongkai_notice_parts")
    def parts_without_area(item):
        return [item]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pm.register(types.SimpleNamespace(parts=parts_without_area))
