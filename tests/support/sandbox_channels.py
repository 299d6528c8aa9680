"""The channel tables that point gongkai's online channels at a running sandbox's
simulators, with the simulators' known apps (their secrets through the environment,
as a deployment gives them)."""

from __future__ import annotations

from typing import Any

from gongkai.sandbox import Sandbox
from gongkai.sandbox.municipal import DEFAULT_APP_KEY, DEFAULT_APP_SECRET
from gongkai.sandbox.wechat import DEFAULT_APPID, DEFAULT_SECRET


def sandbox_channels(sandbox: Sandbox, monkeypatch: Any, **extra: Any) -> dict[str, Any]:
    """``[channels.platform]`` and ``[channels.wechat]`` for ``sandbox``, each with the
    keys of ``extra`` added (e.g. ``retry``)."""
    monkeypatch.setenv("GONGKAI_MUNICIPAL_SECRET", DEFAULT_APP_SECRET)
    monkeypatch.setenv("GONGKAI_WECHAT_SECRET", DEFAULT_SECRET)
    return {
        "platform": {
            "every_item": True,
            "base_url": sandbox.url_for("municipal"),
            "app_key": DEFAULT_APP_KEY,
            "app_secret": {"env": "GONGKAI_MUNICIPAL_SECRET"},
            "default_column": "jt-qita",
            **extra,
        },
        "wechat": {
            "every_item": True,
            "base_url": sandbox.url_for("wechat"),
            "appid": DEFAULT_APPID,
            "secret": {"env": "GONGKAI_WECHAT_SECRET"},
            **extra,
        },
    }
