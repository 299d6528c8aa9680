"""The built wheel installs gongkai, gongkai.plugins and gongkai.channels, and nothing
as a bare `core`, `plugins` or `channels` package."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from clihelp import ROOT


def test_wheel_contents(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("gongkai-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"gongkai", next(t for t in tops if t.endswith(".dist-info"))}
    for required in (
        "gongkai/__init__.py",
        "gongkai/cli.py",
        "gongkai/data/catalogue.toml",
        "gongkai/data/scaffold/config.toml",
        "gongkai/data/scaffold/example-item.md",
        "gongkai/scaffold.py",
        "gongkai/testing.py",
        "gongkai/ledger/sqlite.py",
        "gongkai/plugins/hookspecs.py",
        "gongkai/plugins/privacy.py",
        "gongkai/channels/archive.py",
        "gongkai/channels/webhook.py",
    ):
        assert required in names, required
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )
    assert "gongkai = gongkai.cli:main" in entry_points
