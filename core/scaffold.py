"""``gongkai init``: a new working folder with a commented config and one example item.

The templates ship as package data (``gongkai/data/scaffold/``). Nothing that exists is
ever overwritten: an operator's config or item may be the only copy of their work.
"""

from __future__ import annotations

import re
import shlex
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from string import Template

from .errors import UsageError
from .item import CST

#: 统一社会信用代码: 18 digits and capital letters.
ORG_CODE_PATTERN = re.compile(r"^[0-9A-Z]{18}$")
CONFIG_NAME = "config.toml"
ITEMS_DIR = "items"
EXAMPLE_NAME = "dilapidated-acceptance-example.md"
# Uncommented as it is, this line fails config validation instead of minting permanent
# index numbers from a placeholder.
_ORG_CODE_UNSET = '# org_code = "<your 18-character 统一社会信用代码>"   # set it, then uncomment'


def _template(name: str) -> Template:
    text = resources.files("gongkai").joinpath(f"data/scaffold/{name}").read_text("utf-8")
    return Template(text)


def check_org_code(org_code: str) -> str:
    """Return ``org_code`` if it has the form of a 统一社会信用代码, else raise
    :class:`UsageError` saying what is wrong with it."""
    if ORG_CODE_PATTERN.match(org_code):
        return org_code
    hint = "it must be 18 characters, digits and capital letters"
    if ORG_CODE_PATTERN.match(org_code.upper()):
        hint = "write its letters in capitals"
    elif len(org_code) != 18:
        hint += f" (this one has {len(org_code)})"
    raise UsageError(
        f"org code '{org_code}' is not a 统一社会信用代码: {hint}; copy it from the "
        "organisation's registration certificate"
    )


def _already_there(path: Path) -> UsageError:
    return UsageError(
        f"{path} already exists and gongkai init never overwrites a file; "
        "move it aside, or run gongkai init in an empty folder"
    )


def init_project(
    directory: str | Path, org_code: str | None = None, *, today: date | None = None
) -> list[Path]:
    """Write ``config.toml`` and ``items/<example>.md`` into ``directory`` (created if
    missing) and return the paths created, folders included.

    ``org_code`` (the 统一社会信用代码 index numbers are minted from) is written into
    the config; without it the line is left commented out for the operator to fill
    in. ``today`` dates the example item (default: today in Beijing).

    Raises :class:`UsageError` for a malformed ``org_code`` or when the config or the
    example already exists; nothing is written then.
    """
    if org_code is not None:
        check_org_code(org_code)
    root = Path(directory)
    config = root / CONFIG_NAME
    items = root / ITEMS_DIR
    example = items / EXAMPLE_NAME
    for folder in (root, items):
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{folder} is a file, not a folder; pick another place to init")
    for path in (config, example):
        if path.exists():
            raise _already_there(path)
    today = today or datetime.now(CST).date()
    org_code_line = f'org_code = "{org_code}"' if org_code else _ORG_CODE_UNSET
    texts = {
        config: _template("config.toml").substitute(org_code_line=org_code_line),
        example: _template("example-item.md").substitute(
            year=f"{today.year:04d}", formed_on=today.isoformat()
        ),
    }
    created = [p for p in (root, items) if not p.is_dir()]
    try:
        items.mkdir(parents=True, exist_ok=True)
        for path, text in texts.items():
            # "x": fail rather than overwrite a file that appeared since the check above.
            with path.open("x", encoding="utf-8") as fh:
                fh.write(text)
            created.append(path)
    except FileExistsError as exc:
        raise _already_there(Path(exc.filename)) from exc
    except OSError as exc:
        raise UsageError(
            f"cannot write {exc.filename} ({exc.strerror}); check the folder's permissions"
        ) from exc
    return created


def next_steps(directory: str | Path, org_code: str | None = None) -> list[str]:
    """What an operator does after :func:`init_project`, in order."""
    steps = []
    if Path(directory).resolve() != Path.cwd().resolve():
        steps.append(f"cd {shlex.quote(str(directory))}")
    if org_code is None:
        steps.append(
            f"in {CONFIG_NAME}, uncomment org_code and set it to your organisation's "
            "统一社会信用代码 (index numbers are made from it and never change)"
        )
    steps += [
        f"edit {ITEMS_DIR}/{EXAMPLE_NAME} into a real notice, or replace it with your own",
        f"gongkai validate {ITEMS_DIR}",
        f"gongkai publish {ITEMS_DIR}",
        "gongkai status",
    ]
    return steps
