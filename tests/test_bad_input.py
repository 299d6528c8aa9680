"""The bad-input corpus (issue 6): bad item files, bad configs and broken state
directories, each a small real file under ``tests/corpus/``.

Every case checks what an operator running ``gongkai`` from cron depends on:

* the exit code: 2 for bad input, config or state (1 is allowed only when the disk
  fills in the middle of a run);
* stderr names the file and, on a line that names the file, the field (items: the
  dotted field such as ``attachments.0.path``) or the config key (``privacy.id_keep``);
  the file's own name is taken out of the line first, so ``missing-title.md`` does not
  count as naming ``title``;
* no ``Traceback``: the CLI runs in-process through ``gongkai.cli.main``, so an
  uncaught exception fails the case and shows what the operator would have seen;
* items: the good items of the same batch are delivered to the archive and listed by
  ``gongkai status --json``; the bad item is not in the ledger, or, when an earlier
  run had published it, its rows are exactly as they were;
* configs and state: the file in question is left byte for byte as it was.

State-directory cases and a few smoke cases run the real command in a subprocess.
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import clihelp
from gongkai.cli import main

CORPUS = Path(__file__).parent / "corpus"
ITEMS = CORPUS / "items"
BAD = ITEMS / "bad"
GOOD = ITEMS / "good"
ACCEPTED = ITEMS / "accepted"
CONFIGS = CORPUS / "configs"

HOUSING = "jt-corpus-housing-0301.md"  # no index_number: numbered from org_code
GAS = "jt-corpus-gas-0601.json"  # carries its own index_number
GOODS = (HOUSING, GAS)
EARLIER = ITEMS / "earlier" / "jt-corpus-subsidy-0401.md"
EARLIER_ID = "jt-corpus-subsidy-0401"
ORG_CODE = "11510121009087532X"
#: C0 and C1 controls other than tab and newline, and the bidi overrides and isolates.
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _item_id(name: str) -> str:
    return Path(name).stem


# --- running the command ---------------------------------------------------------------


@dataclass
class Ran:
    code: int
    out: str
    err: str


Runner = Callable[..., Ran]


@pytest.fixture(autouse=True)
def _restore_gongkai_logging():
    """``main`` points the ``gongkai`` logger at the captured stderr of one test; put
    the logger back so later tests do not write to a closed capture."""
    logger = logging.getLogger("gongkai")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.fixture
def in_process(capsys) -> Runner:
    """``gongkai ARGS --config CONFIG`` in this process."""

    def run(*args, config: Path) -> Ran:
        argv = [str(a) for a in args] + ["--config", str(config)]
        capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
        except Exception as exc:  # noqa: BLE001 - this is what the test is about
            captured = capsys.readouterr()
            pytest.fail(
                f"`gongkai {' '.join(argv)}` raised {type(exc).__name__}: {exc}\n"
                f"(an operator would see a traceback)\nstderr so far:\n{captured.err}"
            )
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


@pytest.fixture
def in_subprocess() -> Runner:
    """The real ``gongkai`` command, as cron runs it."""

    def run(*args, config: Path) -> Ran:
        done = clihelp.run(*(str(a) for a in args), config=config)
        return Ran(done.returncode, done.stdout, done.stderr)

    return run


def write_config(tmp_path: Path, *, org_code: bool = True, rest: str = "") -> Path:
    """The item cases' config: the archive channel alone, state under ``tmp_path``."""
    text = f"[gongkai]\nstate_dir = {json.dumps(str(tmp_path / 'state'))}\n"
    if org_code:
        text += f'org_code = "{ORG_CODE}"\n'
    text += "\n[channels.archive]\nevery_item = true\n" + rest
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def ledger_rows(runner: Runner, config: Path) -> list[dict]:
    ran = runner("status", "--json", config=config)
    assert ran.code in (0, 1), ran.err
    assert "Traceback" not in ran.err, ran.err
    return json.loads(ran.out)


def _token(name: str) -> re.Pattern[str]:
    """``name`` as a whole field or key: not part of a longer name (``org_code`` is not
    ``org_codes``), but ``keywords`` does match ``keywords.1``."""
    return re.compile(r"(?<![\w.])" + re.escape(name) + r"(?!\w)")


def _alternatives(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


def assert_names(err: str, file: str, field: str | tuple[str, ...] | None) -> None:
    """stderr names ``file``, and a line naming it names ``field`` (or one of several)."""
    lines = [line for line in err.splitlines() if file in line]
    assert lines, f"stderr does not name the file {file!r}:\n{err}"
    if field is None:
        return
    rest = [line.replace(file, "") for line in lines]
    wanted = _alternatives(field)
    assert any(_token(f).search(line) for f in wanted for line in rest), (
        f"no line naming {file!r} names the field/key {' or '.join(wanted)}:\n{err}"
    )


def assert_mentions(err: str, names: tuple[str | tuple[str, ...], ...]) -> None:
    for name in names:
        wanted = _alternatives(name)
        assert any(n in err for n in wanted), f"stderr does not mention {wanted}:\n{err}"


def copy_goods(folder: Path, goods: tuple[str, ...] = GOODS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in goods:
        shutil.copy(GOOD / name, folder / name)


# --- bad items -------------------------------------------------------------------------


def outside_file(tmp_path: Path, items: Path) -> None:
    """A real file beside the items folder, so an escaping path finds something."""
    (tmp_path / "outside").mkdir(exist_ok=True)
    (tmp_path / "outside" / "户籍底册.csv").write_text(
        "户主,身份证号\n刘国强,510121197001011234\n", encoding="utf-8"
    )


def symlink_to_outside(tmp_path: Path, items: Path) -> None:
    outside_file(tmp_path, items)
    (items / "files").mkdir()
    (items / "files" / "户籍底册.csv").symlink_to(tmp_path / "outside" / "户籍底册.csv")


@dataclass(frozen=True)
class ItemCase:
    #: A file or a folder under corpus/items/bad (a folder's contents join the batch).
    path: str
    #: The field stderr must name; a tuple lists acceptable alternatives.
    field: str | tuple[str, ...] | None
    #: The files stderr must name (default: the file itself).
    files: tuple[str, ...] = ()
    #: More text stderr must contain anywhere.
    names: tuple[str | tuple[str, ...], ...] = ()
    setup: Callable[[Path, Path], None] | None = None
    goods: tuple[str, ...] = GOODS
    #: Publish the good earlier edition of jt-corpus-subsidy-0401 in a first run.
    earlier: bool = False
    org_code: bool = True
    config_rest: str = ""

    @property
    def named_files(self) -> tuple[str, ...]:
        return self.files or (Path(self.path).name,)


def item(path, field, id=None, **kw):  # noqa: A002 - pytest's name
    return pytest.param(ItemCase(path, field, **kw), id=id or Path(path).stem)


ITEM_CASES = [
    # The file as a whole.
    item("front-matter-invalid-toml.md", None),
    item("front-matter-unclosed.md", None),
    item("front-matter-missing.md", None),
    item("front-matter-yaml-dashes.md", None),
    item("empty-file.md", None, id="empty-markdown-file"),
    item("empty-file.json", None, id="empty-json-file"),
    item("gbk-encoded.md", None, id="gbk-bytes-not-utf8"),
    item("json-syntax-error.json", None),
    item("json-array-non-object.json", None),
    item("json-missing-id.json", "id"),
    item("json-body-as-list-of-lines.json", "body"),
    item("json-formed-on-with-slashes.json", "formed_on"),
    # Required and unknown fields.
    item("missing-title.md", "title"),
    item("missing-body.md", "body"),
    item("missing-publisher.md", "publisher"),
    item("missing-formed-on.md", "formed_on"),
    item("missing-catalog.md", "catalog"),
    item("unknown-field.md", "author"),
    item("unknown-field-typo.md", "formed"),
    # One value wrong.
    item("id-uppercase.md", "id"),
    item("id-with-spaces.md", "id"),
    item("title-too-long.md", "title", id="title-over-200-chars"),
    item("title-blank.md", "title"),
    item("formed-on-bad-string.md", "formed_on"),
    item("formed-on-impossible-date.md", "formed_on"),
    item("formed-on-in-future.md", "formed_on"),
    item("publish-at-words.md", "publish_at"),
    item("publish-at-hour-25.md", "publish_at"),
    item("posting-days-zero.md", "posting_days"),
    item("posting-days-negative.md", "posting_days"),
    item("posting-days-huge.md", "posting_days"),
    item("posting-days-in-words.md", "posting_days"),
    item("posting-days-below-catalogue-minimum.md", "posting_days"),
    item("catalog-unknown-key.md", "catalog"),
    item("catalog-not-a-key.md", "catalog"),
    item("kind-interpretation-without-related.md", "related"),
    item("kind-not-allowed.md", "kind"),
    item("openness-not-allowed.md", "openness"),
    item("audience-not-allowed.md", "audience"),
    item("index-number-wrong-form.md", "index_number"),
    item("document-number-not-text.md", "document_number"),
    item("area-is-a-list.md", "area"),
    item("keywords-not-a-list.md", "keywords"),
    item("keywords-blank-entry.md", "keywords.1"),
    item("related-not-an-id.md", "related.0"),
    item("missing-catalogue-elements.md", "body"),
    item("channels-skip-required.md", "channels.skip"),
    item("channels-add-unknown.md", "channels.add", names=("no_such_channel",)),
    item("channels-as-list.md", "channels"),
    # Attachments.
    item("attachments-not-a-list.md", "attachments"),
    item("attachment-missing-file.md", "attachments.0.path"),
    item("attachment-without-path.md", "attachments.0.path"),
    item(
        "attachment-sha256-mismatch",
        "attachments.0.sha256",
        files=("attachment-sha256-mismatch.md",),
    ),
    item("attachment-without-title", "attachments.0.title", files=("attachment-without-title.md",)),
    item("attachment-path-dotdot-to-etc-passwd.md", "attachments.0.path"),
    item("attachment-path-dotdot-to-sibling-folder.md", "attachments.0.path", setup=outside_file),
    item("attachment-path-absolute.md", "attachments.0.path"),
    item("attachment-symlink-to-outside.md", "attachments.0.path", setup=symlink_to_outside),
    item(
        "attachment-duplicate-file-name",
        "attachments.1.path",
        files=("attachment-duplicate-file-name.md",),
    ),
    # Two files, one id: neither goes out.
    item(
        "duplicate-id-two-files",
        "id",
        files=("dibao-initial-zhaozhen.md", "dibao-initial-huaikou.md"),
    ),
    item(
        "duplicate-id-md-and-json",
        "id",
        files=("dibao-initial-zhaozhen.md", "dibao-initial-export.json"),
    ),
    # Invisible characters in one-line fields.
    item("title-nul.json", "title"),
    item("title-ansi-escape.md", "title"),
    item("title-bidi-override.md", "title"),
    item("publisher-bidi-isolate.md", "publisher"),
    item("document-number-ansi-escape.md", "document_number"),
    item("area-bidi-override.md", "area"),
    item("contact-nul.md", "contact"),
    item("keywords-bidi-isolate.md", "keywords"),
    item(
        "attachment-title-ansi-escape",
        "attachments.0.title",
        files=("attachment-title-ansi-escape.md",),
    ),
    # No org code for the publisher: the config must say which key to set.
    item(
        "publisher-without-org-code.md",
        None,
        id="org-code-missing-from-config",
        names=("config.toml", "金堂县教育局", ("org_code", "org_codes")),
        goods=(GAS,),
        org_code=False,
    ),
    item(
        "publisher-without-org-code.md",
        None,
        id="org-codes-only-for-another-publisher",
        names=("config.toml", "金堂县教育局", ("org_code", "org_codes")),
        goods=(GAS,),
        org_code=False,
        config_rest='\n[org_codes]\n"金堂县民政局" = "115101210090875413"\n',
    ),
    # Bad edits of an item an earlier run published: its rows stay as they were.
    item("edit-formed-on-in-future.md", "formed_on", earlier=True),
    item("edit-title-bidi-override.md", "title", earlier=True),
    item("edit-attachment-path-absolute.md", "attachments.0.path", earlier=True),
    item("edit-missing-elements.md", "body", earlier=True),
    item("edit-unknown-field.md", "signed_by", earlier=True),
    item("edit-posting-days-below-minimum.md", "posting_days", earlier=True),
]


def run_item_case(case: ItemCase, tmp_path: Path, runner: Runner) -> None:
    config = write_config(tmp_path, org_code=case.org_code, rest=case.config_rest)
    good_ids = {_item_id(name) for name in case.goods}
    before: list[dict] = []
    if case.earlier:
        first = tmp_path / "first"
        copy_goods(first, case.goods)
        shutil.copy(EARLIER, first / EARLIER.name)
        ran = runner("publish", first, config=config)
        assert ran.code == 0, ran.err
        before = [r for r in ledger_rows(runner, config) if r["item_id"] == EARLIER_ID]
        assert before and before[0]["state"] == "delivered"

    items = tmp_path / "items"
    copy_goods(items, case.goods)
    source = BAD / case.path
    if source.is_dir():
        shutil.copytree(source, items, dirs_exist_ok=True)
    else:
        shutil.copy(source, items / source.name)
    if case.setup is not None:
        case.setup(tmp_path, items)

    ran = runner("publish", items, config=config)
    err = ran.err.replace(str(tmp_path), "<tmp>")
    assert "Traceback" not in err, err
    assert ran.code == 2, f"exit {ran.code}, not 2\n{err}"
    for file in case.named_files:
        assert_names(err, file, case.field)
    assert_mentions(err, case.names)

    rows = ledger_rows(runner, config)
    expected = good_ids | ({EARLIER_ID} if case.earlier else set())
    assert {r["item_id"] for r in rows} == expected, "the bad item reached the ledger"
    for good in good_ids:
        [row] = [r for r in rows if r["item_id"] == good]
        assert (row["channel"], row["state"]) == ("archive", "delivered"), row
        assert Path(row["artifact"]).is_file()
    if case.earlier:
        assert [r for r in rows if r["item_id"] == EARLIER_ID] == before


@pytest.mark.parametrize("case", ITEM_CASES)
def test_bad_item(case, tmp_path, in_process):
    run_item_case(case, tmp_path, in_process)


# --- bad configs -----------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigCase:
    file: str
    key: str | tuple[str, ...] | None
    verb: str = "publish"
    #: Other corpus files the config names (copied beside it, and checked untouched).
    extra: tuple[str, ...] = ()
    #: The file stderr must name (default: the config).
    named: str | None = None
    names: tuple[str | tuple[str, ...], ...] = ()
    #: Text that must not appear in any output (a secret written in the file).
    secret: str | None = None


def config(file, key, id=None, **kw):  # noqa: A002
    case = ConfigCase(file, key, **kw)
    return pytest.param(case, id=id or f"{case.verb}-{Path(file).stem}")


CONFIG_CASES = [
    config("not-toml.toml", None),
    config("gbk-bytes.toml", None, id="publish-gbk-bytes-not-utf8"),
    config("unknown-section.toml", "channel"),
    config("unknown-gongkai-key.toml", "gongkai.concurency"),
    config("concurrency-zero.toml", "gongkai.concurrency"),
    config("concurrency-string.toml", "gongkai.concurrency"),
    config("org-code-bad-form.toml", "gongkai.org_code"),
    config("org-codes-bad-code.toml", "org_codes"),
    config("org-codes-not-text.toml", "org_codes"),
    config("privacy-id-keep-negative.toml", "privacy.id_keep"),
    config("privacy-id-keep-shows-whole-number.toml", "privacy.id_keep"),
    config("privacy-id-keep-three-numbers.toml", "privacy.id_keep"),
    config("privacy-phone-keep-shows-whole-number.toml", "privacy.phone_keep"),
    config("privacy-enabled-not-bool.toml", "privacy.enabled"),
    config("channel-not-installed.toml", "channels.nope"),
    config("channel-table-not-a-table.toml", "channels.archive"),
    config("archive-unknown-option.toml", "channels.archive.colour"),
    config("archive-concurrency-zero.toml", "channels.archive.concurrency"),
    config("archive-retry-attempts-zero.toml", "channels.archive.retry.attempts"),
    config(
        "webhook-token-written-in-file.toml",
        "channels.webhook.token",
        secret="wx-token-in-file-7f3a9c",
    ),
    config("webhook-token-env-unset.toml", "channels.webhook.token", names=("UNSET_VAR_XYZ",)),
    config("webhook-url-not-http.toml", "channels.webhook.url"),
    config(
        "catalogue-path-missing.toml", "gongkai.catalogue", names=("jintang-local-entries.toml",)
    ),
    config(
        "catalogue-bad-toml.toml", None, extra=("local-entries.toml",), named="local-entries.toml"
    ),
    config("plugins-load-missing-module.toml", "plugins.load", names=("no.such.module",)),
    config("ledger-sync-bad.toml", "gongkai.ledger_sync"),
    config("lease-seconds-negative.toml", "gongkai.lease_seconds"),
    config("state-dir-not-text.toml", "gongkai.state_dir"),
    config("calendar-holiday-not-a-date.toml", "calendar.extra_holidays"),
    config("calendar-workday-impossible-date.toml", "calendar.extra_workdays"),
    # validate reads the same config: the same refusal, nothing checked against it.
    config("not-toml.toml", None, verb="validate"),
    config("privacy-id-keep-negative.toml", "privacy.id_keep", verb="validate"),
    config("org-codes-bad-code.toml", "org_codes", verb="validate"),
    config("channel-not-installed.toml", "channels.nope", verb="validate"),
]


def run_config_case(case: ConfigCase, tmp_path: Path, runner: Runner) -> None:
    path = tmp_path / case.file
    shutil.copy(CONFIGS / case.file, path)
    for name in case.extra:
        shutil.copy(CONFIGS / name, tmp_path / name)
    watched = [path, *(tmp_path / name for name in case.extra)]
    before = {p: p.read_bytes() for p in watched}
    items = tmp_path / "items"
    copy_goods(items)

    ran = runner(case.verb, items, config=path)
    err = ran.err.replace(str(tmp_path), "<tmp>")
    assert "Traceback" not in err, err
    assert ran.code == 2, f"exit {ran.code}, not 2\n{err}"
    assert_names(err, case.named or case.file, case.key)
    assert_mentions(err, case.names)
    if case.secret:
        assert case.secret not in ran.out + ran.err
    for p in watched:
        assert p.read_bytes() == before[p], f"{p.name} was changed"
    assert not (tmp_path / "state" / "archive").exists(), "a bad config still delivered"


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_bad_config(case, tmp_path, in_process, monkeypatch):
    monkeypatch.delenv("UNSET_VAR_XYZ", raising=False)
    run_config_case(case, tmp_path, in_process)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: t / "no-such-config.toml", id="config-file-missing"),
        pytest.param(
            lambda t: (t / "conf.d").mkdir() or t / "conf.d", id="config-path-is-a-folder"
        ),
    ],
)
def test_config_path_unusable(make, tmp_path, in_process):
    path = make(tmp_path)
    copy_goods(tmp_path / "items")
    ran = in_process("publish", tmp_path / "items", config=path)
    assert "Traceback" not in ran.err, ran.err
    assert ran.code == 2, f"exit {ran.code}, not 2\n{ran.err}"
    assert_names(ran.err.replace(str(tmp_path), "<tmp>"), path.name, None)


# --- a few of the same cases through the real command ------------------------------------

SMOKE_ITEMS = [p for p in ITEM_CASES if p.id in ("gbk-bytes-not-utf8", "attachment-path-absolute")]
SMOKE_CONFIGS = [
    p for p in CONFIG_CASES if p.id in ("publish-not-toml", "publish-gbk-bytes-not-utf8")
]


@pytest.mark.parametrize("case", SMOKE_ITEMS)
def test_bad_item_in_a_subprocess(case, tmp_path, in_subprocess):
    run_item_case(case, tmp_path, in_subprocess)


@pytest.mark.parametrize("case", SMOKE_CONFIGS)
def test_bad_config_in_a_subprocess(case, tmp_path, in_subprocess, monkeypatch):
    monkeypatch.delenv("UNSET_VAR_XYZ", raising=False)
    run_config_case(case, tmp_path, in_subprocess)


# --- input that is accepted ------------------------------------------------------------


def _archived(tmp_path: Path, item_id: str) -> dict:
    [record] = (tmp_path / "state" / "archive").rglob(f"{item_id}/edition-1/item.json")
    return json.loads(record.read_text("utf-8"))["item"]


def test_json_with_a_utf8_bom_is_published(tmp_path, in_process):
    config = write_config(tmp_path)
    items = tmp_path / "items"
    copy_goods(items)
    shutil.copy(ACCEPTED / "jt-corpus-gas-0602-bom.json", items)
    ran = in_process("publish", items, config=config)
    assert ran.code == 0, ran.err
    states = {(r["item_id"], r["state"]) for r in ledger_rows(in_process, config)}
    assert ("jt-corpus-gas-0602", "delivered") in states
    assert _archived(tmp_path, "jt-corpus-gas-0602")["title"].startswith("金堂县燃气")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("jt-corpus-water-0701-body-ansi.md", id="body-ansi-colour-codes"),
        pytest.param("jt-corpus-water-0702-body-nul.md", id="body-nul-bytes-in-markdown"),
        pytest.param("jt-corpus-water-0703-body-nul.json", id="body-nul-and-ansi-in-json"),
    ],
)
def test_control_characters_in_the_body_are_stripped_with_a_warning(name, tmp_path, in_process):
    config = write_config(tmp_path)
    items = tmp_path / "items"
    copy_goods(items)
    shutil.copy(ACCEPTED / name, items)
    item_id = "-".join(name.split("-")[:4])
    ran = in_process("publish", items, config=config)
    assert "Traceback" not in ran.err
    assert ran.code == 0, ran.err
    warned = [line for line in ran.err.splitlines() if name in line or item_id in line]
    assert any("body" in line for line in warned), f"no warning about the body:\n{ran.err}"
    states = {(r["item_id"], r["state"]) for r in ledger_rows(in_process, config)}
    assert (item_id, "delivered") in states
    body = _archived(tmp_path, item_id)["body"]
    assert not CONTROLS.search(body), repr(body)
    assert "[31m" not in body and "[0m" not in body and "[1m" not in body, repr(body)
    assert "检测结果" in body


def test_attachment_under_the_configured_attachments_root_is_accepted(tmp_path, in_process):
    case = tmp_path / "case"
    shutil.copytree(ACCEPTED / "attachments-root", case)
    config = write_config(tmp_path)
    config.write_text(
        config.read_text("utf-8").replace(
            "[gongkai]\n", f"[gongkai]\nattachments_root = {json.dumps(str(case / 'shared'))}\n"
        ),
        encoding="utf-8",
    )
    ran = in_process("publish", case / "items", config=config)
    assert ran.code == 0, ran.err
    states = {(r["item_id"], r["state"]) for r in ledger_rows(in_process, config)}
    assert states == {("jt-corpus-housing-0302", "delivered")}
    [attachment] = _archived(tmp_path, "jt-corpus-housing-0302")["attachments"]
    assert attachment["filename"] == "公共租赁住房申请表.csv"


def test_validate_an_empty_folder_says_no_items_found(tmp_path, in_process):
    (tmp_path / "inbox").mkdir()
    ran = in_process("validate", tmp_path / "inbox", config=write_config(tmp_path))
    assert "Traceback" not in ran.err
    assert ran.code == 2, f"exit {ran.code}\n{ran.out}{ran.err}"
    assert "no items found" in ran.err


# --- broken state directories (real subprocesses) ----------------------------------------


def _state_config(tmp_path: Path, state_dir: Path, rest: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[gongkai]\nstate_dir = {json.dumps(str(state_dir))}\norg_code = "{ORG_CODE}"\n'
        f"\n[channels.archive]\nevery_item = true\n{rest}",
        encoding="utf-8",
    )
    return path


def state_dir_is_a_file(tmp_path: Path) -> tuple[Path, Path]:
    state = tmp_path / "gongkai-state"
    state.write_text("这里本应是状态目录\n", encoding="utf-8")
    return state, state


def ledger_is_garbage(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "gongkai-state").mkdir()
    ledger = tmp_path / "gongkai-state" / "ledger.sqlite3"
    ledger.write_bytes(bytes(range(256)) * 16)
    return tmp_path / "gongkai-state", ledger


def ledger_is_a_folder(tmp_path: Path) -> tuple[Path, Path]:
    ledger = tmp_path / "gongkai-state" / "ledger.sqlite3"
    ledger.mkdir(parents=True)
    return tmp_path / "gongkai-state", ledger


def ledger_from_a_newer_gongkai(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "gongkai-state").mkdir()
    ledger = tmp_path / "gongkai-state" / "ledger.sqlite3"
    db = sqlite3.connect(ledger)
    db.execute("CREATE TABLE future (x)")
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    return tmp_path / "gongkai-state", ledger


def state_dir_read_only(tmp_path: Path) -> tuple[Path, Path]:
    state = tmp_path / "gongkai-state"
    state.mkdir()
    state.chmod(0o555)
    return state, state


def _snapshot(path: Path):
    if path.is_dir():
        return sorted(str(p.relative_to(path)) for p in path.rglob("*"))
    return path.read_bytes()


STATE_CASES = [
    pytest.param(state_dir_is_a_file, id="state-dir-is-a-regular-file"),
    pytest.param(ledger_is_garbage, id="ledger-file-full-of-garbage"),
    pytest.param(ledger_is_a_folder, id="ledger-path-is-a-folder"),
    pytest.param(ledger_from_a_newer_gongkai, id="ledger-schema-newer-than-this-gongkai"),
    pytest.param(
        state_dir_read_only,
        id="state-dir-read-only",
        marks=pytest.mark.skipif(
            hasattr(os, "geteuid") and os.geteuid() == 0,
            reason="running as root: chmod 0o555 does not stop root from writing",
        ),
    ),
]


@pytest.mark.parametrize("make", STATE_CASES)
@pytest.mark.parametrize("verb", ["publish", "status"])
def test_broken_state_directory(make, verb, tmp_path, in_subprocess):
    state, watched = make(tmp_path)
    before = _snapshot(watched)
    config = _state_config(tmp_path, state)
    items = tmp_path / "items"
    copy_goods(items)
    try:
        ran = in_subprocess(*((verb, items) if verb == "publish" else (verb,)), config=config)
    finally:
        if state.is_dir():
            state.chmod(0o755)
    assert "Traceback" not in ran.err, ran.err
    assert ran.code == 2, f"exit {ran.code}, not 2\n{ran.err}"
    named = (str(watched), str(watched.relative_to(tmp_path)))
    assert any(n in ran.err for n in named), f"stderr does not name {watched}:\n{ran.err}"
    assert _snapshot(watched) == before, f"{watched} was changed"


def _limit_file_size(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        # A write past the limit fails with EFBIG instead of killing the process,
        # which is what a full disk looks like to the program.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE and SIGXFSZ")
@pytest.mark.parametrize(
    "where",
    [
        pytest.param("ledger", id="disk-fills-while-the-ledger-grows"),
        pytest.param("archive", id="disk-fills-while-archiving-an-attachment"),
    ],
)
def test_disk_fills_mid_run(where, tmp_path, in_subprocess):
    # One try per run: the in-run backoff would only sleep.
    config = _state_config(
        tmp_path, tmp_path / "state", "\n[channels.archive.retry]\nattempts = 1\n"
    )
    first = tmp_path / "first"
    copy_goods(first)
    assert in_subprocess("publish", first, config=config).code == 0
    ledger = tmp_path / "state" / "ledger.sqlite3"

    items = tmp_path / "items"
    if where == "ledger":
        # Nineteen new items: the write-ahead log grows past the limit part way.
        shutil.copytree(clihelp.EXAMPLES, items)
        limit = ledger.stat().st_size + 48 * 1024
    else:
        # One attachment larger than any file the run may write.
        shutil.copytree(ACCEPTED / "attachments-root", tmp_path / "case")
        items = tmp_path / "case" / "items"
        text = (items / "jt-corpus-housing-0302.md").read_text("utf-8")
        (items / "files").mkdir()
        (items / "files" / "申请表.csv").write_bytes(b"0123456789abcdef\n" * 80_000)
        (items / "jt-corpus-housing-0302.md").write_text(
            text.replace("../shared/公共租赁住房申请表.csv", "files/申请表.csv"), "utf-8"
        )
        limit = 1024 * 1024
    env = {**os.environ, "PYTHONPATH": str(clihelp.TESTS)}
    env.pop("GONGKAI_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "gongkai.cli", "publish", str(items), "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        preexec_fn=_limit_file_size(limit),
    )
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode in (1, 2), f"exit {done.returncode}\n{done.stderr[-3000:]}"
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    if where == "ledger" or done.returncode == 2:
        # The run stops with one line that says what could not be written.
        assert len(errors) == 1, f"not a one-line summary:\n{done.stderr[-3000:]}"
        if where == "ledger":
            assert "ledger.sqlite3" in errors[0], errors[0]
    else:
        # The archive write failed like any delivery: the summary counts it.
        assert "retry-wait" in done.stdout, done.stdout
    # Without the limit the ledger still opens and answers.
    status = in_subprocess("status", "--json", config=config)
    assert "Traceback" not in status.err, status.err
    assert status.code in (0, 1), status.err
    rows = json.loads(status.out)
    assert {"jt-corpus-housing-0301", "jt-corpus-gas-0601"} <= {r["item_id"] for r in rows}
    if where == "archive":
        # The limit really was hit: the big attachment is not archived, and says why.
        [row] = [r for r in rows if r["item_id"] == "jt-corpus-housing-0302"]
        assert row["state"] in ("retry-wait", "failed"), row
        assert row["error"], row
