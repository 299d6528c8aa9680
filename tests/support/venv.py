"""A fresh virtual environment for a plugin package, as an office would install it.

Made with ``python -m venv --system-site-packages`` so gongkai and its dependencies come
from this interpreter and only the packages under test go into it (``pip install
--no-deps --no-build-isolation --no-index``): fast, and offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def venv_with(folder: Path, *packages: str) -> Path:
    """A venv in ``folder`` with ``packages`` (pip arguments: paths, ``-e PATH``)
    installed; returns its python."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(folder)],
        check=True,
    )
    python = folder / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
        + ["--no-deps", "--no-build-isolation", "--no-index", *packages],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    return python


def gongkai_in(python: Path, *args: str, config: Path) -> subprocess.CompletedProcess:
    """``gongkai ARGS --config CONFIG`` run by that venv's python, in the config's folder."""
    return subprocess.run(
        [str(python), "-m", "gongkai.cli", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=config.parent,
        timeout=120,
    )
