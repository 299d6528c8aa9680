"""``gongkai new-channel NAME``: a ready package for a channel gongkai does not ship.

It writes a distribution into a new folder: a pyproject with the entry point in the
``gongkai`` group, the channel module (HTTP, file or offline, each with its guarantee
explained in a comment), a test module running the contract suite plus a test of its
own rendering, and a README. Its tests pass with no edits once it is installed
(``pip install -e .``), and ``gongkai channels`` then lists it.

The templates ship as package data (``gongkai/data/channel_template/``) and are
rendered with jinja2. Nothing that exists is overwritten: the folder must be new or
empty.
"""

from __future__ import annotations

import argparse
import keyword
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from . import __version__
from .cli_output import EXIT_OK, emit
from .errors import UsageError

KINDS: dict[str, str] = {
    "http": "sends each edition to a URL over HTTP (guarantee idempotency-key)",
    "file": "writes each item to a file in a folder (guarantee upsert)",
    "offline": "writes a notice per area for a person to post; waits for confirmation",
}
#: Template → where it goes in the new package (``{package}`` is the import name).
FILES: dict[str, str] = {
    "pyproject.toml.j2": "pyproject.toml",
    "README.md.j2": "README.md",
    "channel_{kind}.py.j2": "src/{package}/channel.py",
    "package_init.py.j2": "src/{package}/__init__.py",
    "test_channel.py.j2": "tests/test_channel.py",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "name",
        help="the channel's name: lowercase letters, digits and _, starting with a letter "
        "(it names the [channels.<name>] table and the package gongkai_<name>)",
    )
    kind = p.add_mutually_exclusive_group()
    for flag, text in KINDS.items():
        kind.add_argument(f"--{flag}", dest="kind", action="store_const", const=flag, help=text)
    p.add_argument(
        "--dir",
        metavar="DIR",
        help="the new package's folder (default: ./gongkai-<name>); it must not exist or be empty",
    )


def names(name: str) -> dict[str, str]:
    """What the templates call the channel: its package, distribution and class."""
    return {
        "name": name,
        "package": f"gongkai_{name}",
        "dist": "gongkai-" + name.replace("_", "-"),
        "class_name": "".join(part.capitalize() for part in name.split("_")) + "Channel",
        "env_prefix": f"GONGKAI_{name.upper()}",
        "gongkai_version": __version__,
    }


def check_name(name: str, taken: Callable[[], set[str]] | None = None) -> None:
    """Raise UsageError unless ``name`` is a valid channel name, a Python identifier, and
    not the name of a channel gongkai already has."""
    from gongkai.plugins.manager import CHANNEL_NAME

    if not CHANNEL_NAME.match(name) or keyword.iskeyword(name):
        raise UsageError(
            f"'{name}' cannot name a channel: use lowercase letters, digits and _, starting "
            "with a letter, at most 32 characters (e.g. tv_subtitles)"
        )
    if taken is not None and name in taken():
        raise UsageError(
            f"a channel named '{name}' is already installed (gongkai channels lists them); "
            "pick another name"
        )


def _installed_names() -> set[str]:
    from gongkai.plugins.manager import collect_channels, get_plugin_manager

    return set(collect_channels(get_plugin_manager()))


def render_package(name: str, kind: str) -> dict[str, str]:
    """The new package's files, path → text, for ``name`` and ``kind``."""
    from jinja2 import Environment, StrictUndefined

    if kind not in KINDS:
        raise UsageError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    values = {**names(name), "kind": kind}
    env = Environment(keep_trailing_newline=True, undefined=StrictUndefined, autoescape=False)
    folder = resources.files("gongkai").joinpath("data/channel_template")
    files: dict[str, str] = {}
    for template, target in FILES.items():
        text = folder.joinpath(template.format(kind=kind)).read_text("utf-8")
        files[target.format(**values)] = env.from_string(text).render(**values)
    return files


def write_package(name: str, kind: str, directory: Path) -> list[Path]:
    """Write the package into ``directory`` (new or empty); return the files written."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageError(
            f"{directory} exists and is not an empty folder; give a new one with --dir"
        )
    written = []
    for relative, text in render_package(name, kind).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def ask_kind(read: Callable[[str], str] = input) -> str:
    """Ask which kind of channel to make, until the answer is one."""
    choices = list(KINDS)
    lines = [f"  {n}. {kind}: {KINDS[kind]}" for n, kind in enumerate(choices, 1)]
    print("What does the channel do?\n" + "\n".join(lines), file=sys.stderr)
    while True:
        answer = read(f"1-{len(choices)} or a name: ").strip().lower()
        if answer.isdigit() and 1 <= int(answer) <= len(choices):
            return choices[int(answer) - 1]
        if answer in KINDS:
            return answer


def cmd_new_channel(args: argparse.Namespace) -> int:
    check_name(args.name, _installed_names)
    kind = args.kind
    if kind is None:
        if not sys.stdin.isatty():
            raise UsageError("say what the channel does: give --http, --file or --offline")
        kind = ask_kind()
    directory = Path(args.dir or names(args.name)["dist"])
    written = write_package(args.name, kind, directory)
    steps = [
        f"cd {directory}",
        "pip install -e '.[test]'",
        "pytest",
        f"gongkai channels   (lists {args.name})",
        f"edit src/{names(args.name)['package']}/channel.py; gongkai's guide "
        "(docs/writing-a-channel.md in its repository) explains the contract",
    ]
    lines = [f"created {p}" for p in written]
    lines += ["", "next steps:", *(f"  {n}. {step}" for n, step in enumerate(steps, 1))]
    emit(
        args,
        {
            "name": args.name,
            "kind": kind,
            "directory": str(directory),
            "created": [str(p) for p in written],
            "next": steps,
        },
        "\n".join(lines),
    )
    return EXIT_OK
