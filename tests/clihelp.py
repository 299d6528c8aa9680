"""Running the real `gongkai` command in a subprocess, as an operator or cron would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent
ROOT = TESTS.parent
EXAMPLES = ROOT / "examples" / "items"


def run(
    *args: str,
    config: Path | None = None,
    env: dict | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run `gongkai ARGS` in ``cwd`` (default: the config's folder, else the repo)."""
    full_env = {**os.environ, "PYTHONPATH": str(TESTS), **(env or {})}
    full_env.pop("GONGKAI_CONFIG", None)
    command = [sys.executable, "-m", "gongkai.cli", *args]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd or (config.parent if config else ROOT),
    )


def start(*args: str, config: Path, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONPATH": str(TESTS), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "gongkai.cli", *args, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        cwd=config.parent,
    )


def write_config(
    tmp_path: Path, extra: str = "", archive: bool = True, concurrency: int = 8
) -> Path:
    text = (
        f'[gongkai]\nstate_dir = "{tmp_path / "state"}"\norg_code = "11510121009087532X"\n'
        f"concurrency = {concurrency}\n"
    )
    if archive:
        text += "[channels.archive]\nevery_item = true\n"
    path = tmp_path / "config.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def as_json(result: subprocess.CompletedProcess):
    assert result.stdout, result.stderr
    return json.loads(result.stdout)
