"""Loaded by a subprocess test through ``[plugins] load = ["support.wechat_pause"]``:
once the wechat channel has saved a draft's media_id, and before it sends
freepublish/submit, the process writes its pid to the file named by
``GONGKAI_TEST_PAUSE_FILE`` and waits there for the test to SIGKILL it. Without that
variable it does nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path

from gongkai.channels.wechat import WeChatChannel

_checkpoint = WeChatChannel.checkpoint


def _checkpoint_then_stop(self, **data):
    _checkpoint(self, **data)
    signal_file = os.environ.get("GONGKAI_TEST_PAUSE_FILE")
    if signal_file and data.get("media_id"):
        Path(signal_file).write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(600)


WeChatChannel.checkpoint = _checkpoint_then_stop
