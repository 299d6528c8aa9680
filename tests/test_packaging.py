"""The built wheel installs gongkai, gongkai.plugins and gongkai.channels, and nothing
as a bare `core`, `plugins` or `channels` package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from clihelp import ROOT


def _build_sources(dest: Path) -> Path:
    """Copy what the build reads (pyproject.toml, the readme it names, the folders its
    package-dir maps) to ``dest``: an in-tree build writes build/ and *.egg-info/ next
    to its sources, and those must not land in the checkout."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    dest.mkdir()
    for name in ("pyproject.toml", pyproject["project"]["readme"]):
        shutil.copy2(ROOT / name, dest / name)
    for folder in pyproject["tool"]["setuptools"]["package-dir"].values():
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _checkout_files() -> dict[str, int | None]:
    """Every path in the checkout with its file's mtime (None for a folder), leaving out
    .git and the running environment when it lives in the checkout (pip's subprocess
    may compile a module there)."""
    skipped = {ROOT / ".git", Path(sys.prefix)}
    found: dict[str, int | None] = {}
    for folder, folders, files in os.walk(ROOT):
        here = Path(folder)
        folders[:] = [f for f in folders if here / f not in skipped]
        found.update({str(here / f): None for f in folders})
        found.update({str(here / f): (here / f).stat().st_mtime_ns for f in files})
    return found


def test_wheel_contents(tmp_path: Path) -> None:
    before = _checkout_files()
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
            str(tmp_path / "dist"),
            str(_build_sources(tmp_path / "src")),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    after = _checkout_files()
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert not changed, f"building the wheel wrote into the checkout: {changed[:10]}"
    [wheel] = (tmp_path / "dist").glob("gongkai-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"gongkai", next(t for t in tops if t.endswith(".dist-info"))}
    for required in (
        "gongkai/__init__.py",
        "gongkai/cli.py",
        "gongkai/data/catalogue.toml",
        "gongkai/py.typed",
        "gongkai/data/scaffold/config.toml",
        "gongkai/data/scaffold/example-item.md",
        "gongkai/scaffold.py",
        "gongkai/testing.py",
        "gongkai/pytest_plugin.py",
        "gongkai/cli_new_channel.py",
        "gongkai/data/channel_template/channel_http.py.j2",
        "gongkai/data/channel_template/channel_offline.py.j2",
        "gongkai/data/channel_template/test_channel.py.j2",
        "gongkai/ledger/sqlite.py",
        "gongkai/plugins/hookspecs.py",
        "gongkai/plugins/privacy.py",
        "gongkai/channels/archive.py",
        "gongkai/channels/webhook.py",
        "gongkai/channels/wechat.py",
        "gongkai/channels/data/covers/general.jpg",
    ):
        assert required in names, required
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )
    assert "gongkai = gongkai.cli:main" in entry_points
    # The contract suite's fixtures load in any project that has gongkai installed.
    assert "[pytest11]\ngongkai = gongkai.pytest_plugin" in entry_points
