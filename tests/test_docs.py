"""The documentation is tested like code.

1. Every hookspec in ``gongkai.plugins.hookspecs`` is named somewhere in docs/, and some
   test other than this one implements it (a ``@hookimpl`` function) or calls it
   (``pm.hook.<name>``).
2. docs/ledger.md shows the code's delivery states, and its transition table (between
   ``<!-- transitions:start -->`` and ``<!-- transitions:end -->``) is the output of
   ``gongkai.ledger.states.markdown_table()``.
3. Every fenced snippet in docs/*.md and README.md is run. The fence's language picks
   the runner; the test id is ``file:line`` of the opening fence:

   ```python   Executed.
               - ``title="name.py"`` makes the block a module: it is written to a folder
                 on sys.path (so the page's other blocks can import it) and imported.
               - A block defining ``Test*`` classes or ``test_*`` functions is a test
                 module (the contract suite): pytest runs it in a subprocess, with the
                 page's modules on PYTHONPATH, and it must pass.
               - Any other block is exec'd in a scratch folder holding copies of the
                 repo's config.toml and examples/.
               Hook implementations a block defines must register against the hookspecs,
               and channel classes it defines must keep the contract.
   ```toml     Parsed. A config.toml (any of [gongkai], [channels.*], [plugins],
               [privacy], [calendar], [org_codes]) is validated by building a Publisher
               from it: ``{ env = "X" }`` secrets get dummy values, and the page's module
               blocks are added to ``[plugins] load`` so its own channel is installed.
               A pyproject.toml must have [build-system] and a ``gongkai`` entry point;
               its wheel is built with the page's modules and checked. A catalogue file
               ([[entry]]) is loaded over the default one.
   ```markdown An item file (``+++`` front matter), checked as ``gongkai validate`` does.
   ```json     Parsed; objects with a ``catalog`` key are item files, checked likewise.
   ```sh, ```bash, ```shell, ```console, ```cron
               Every ``gongkai <verb> …`` command must parse with the real argument
               parser; placeholders (ITEM, C, PATHS…, "…") get dummy values and optional
               ``[…]`` parts are filled in. Nothing is run; other commands are ignored.
   ```text     Not run: for what cannot be (directory trees, sample output).

   Any other language, or a fence without one, fails: give it a runner here or mark
   it ``text``.

   A fence of any language with ``excerpt="…"`` is not run but must appear, verbatim,
   in the file it names: a path in the repository (``excerpt="tests/test_x.py"``), or
   ``excerpt="<kind>:<path>"`` for a file of the package ``gongkai new-channel
   tv_subtitles --<kind>`` writes (``excerpt="http:src/gongkai_tv_subtitles/channel.py"``),
   whose own tests run it (tests/test_new_channel.py).
4. Every link in docs/*.md and README.md (outside code) is a relative path to a file
   or folder inside the repository: the docs travel with the code, and a reader of a
   checkout or a source archive can follow every one.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import importlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gongkai import Channel, Publisher
from gongkai.catalogue import Catalogue
from gongkai.cli import build_parser
from gongkai.cli_new_channel import KINDS, render_package
from gongkai.config import settings_from_dict
from gongkai.ledger.states import State, markdown_table
from gongkai.plugins import hookspecs
from gongkai.plugins.manager import (
    collect_channels,
    contract_problem,
    get_plugin_manager,
)
from gongkai.results import RunResult
from support.snippets import Snippet, gongkai_commands, parse_fences

TESTS = Path(__file__).parent
ROOT = TESTS.parent
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]
SHELLS = frozenset({"sh", "bash", "shell", "console", "cron"})
CONFIG_SECTIONS = frozenset({"gongkai", "channels", "plugins", "privacy", "calendar", "org_codes"})
DUMMY_SECRET = "docs-test-secret-7c1f"
#: Secrets whose form is checked when the config loads get a dummy of that form.
DUMMY_SECRETS = {"GONGKAI_WEBHOOK_SECRET": "whsec_ZG9jcy10ZXN0LXNpZ25pbmcta2V5LTMyYnl0ZXM="}

_PARSED = {page: parse_fences(page) for page in PAGES}
SNIPPETS = [snippet for snippets, _ in _PARSED.values() for snippet in snippets]


# --- 1. hooks ---------------------------------------------------------------------------


def _hookspec_names() -> list[str]:
    return sorted(name for name, value in vars(hookspecs).items() if hasattr(value, "gongkai_spec"))


@functools.cache
def _exercised_hooks() -> frozenset[str]:
    """Hook names implemented with @hookimpl or called as ``….hook.<name>`` in tests."""
    found: set[str] = set()
    for path in TESTS.rglob("*.py"):
        if path.resolve() == Path(__file__).resolve():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in node.decorator_list:
                    target = decorator.func if isinstance(decorator, ast.Call) else decorator
                    name = getattr(target, "id", None) or getattr(target, "attr", None)
                    if name == "hookimpl":
                        found.add(node.name)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "hook"
            ):
                found.add(node.attr)
    return frozenset(found)


def test_hookspecs_are_found():
    assert len(_hookspec_names()) >= 5, _hookspec_names()


@pytest.mark.parametrize("hook", _hookspec_names())
def test_hookspec_is_documented(hook):
    pages = [p for p in DOCS.rglob("*.md") if re.search(rf"\b{hook}\b", p.read_text("utf-8"))]
    assert pages, f"hook {hook} is not mentioned in any file under docs/; document it"


@pytest.mark.parametrize("hook", _hookspec_names())
def test_hookspec_is_exercised_by_a_test(hook):
    assert hook in _exercised_hooks(), (
        f"hook {hook} is not exercised by any test: implement it with @hookimpl in a test, "
        f"or call pm.hook.{hook}(…)"
    )


# --- 2. the ledger page -----------------------------------------------------------------

LEDGER = DOCS / "ledger.md"


def _between_markers() -> list[str]:
    text = LEDGER.read_text(encoding="utf-8")
    found = re.search(
        r"^<!-- transitions:start -->\n(.*?)\n?<!-- transitions:end -->$", text, re.S | re.M
    )
    assert found, "docs/ledger.md needs the transitions:start / transitions:end markers"
    return found[1].splitlines()


def test_ledger_transition_table_is_the_code_table():
    documented, actual = _between_markers(), markdown_table().splitlines()
    assert documented == actual, (
        "docs/ledger.md's transition table differs from markdown_table(); paste the output "
        "of `python -c 'from gongkai.ledger.states import markdown_table as t; print(t())'` "
        "between the markers"
    )


def test_markdown_table_is_the_same_in_every_process():
    code = "from gongkai.ledger.states import markdown_table; print(markdown_table())"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_ledger_states_table_lists_the_code_states():
    text = LEDGER.read_text(encoding="utf-8")
    table = re.search(r"^\| state \|.*?\n((?:\|.*\n)+)", text, re.M)
    assert table, "docs/ledger.md needs the table of delivery states"
    rows = [line for line in table[1].splitlines() if not line.startswith("|---")]
    documented = [row.split("|")[1].strip().strip("`") for row in rows]
    assert documented == [state.value for state in State]


# --- 3. snippets --------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_fences_are_well_formed(page):
    assert _PARSED[page][1] == []


def test_snippets_are_found():
    languages = {s.lang for s in SNIPPETS}
    assert {"python", "toml", "sh", "markdown"} <= languages, languages


def _modules(page: Path) -> dict[str, Snippet]:
    """The page's python blocks that are modules (``title="name.py"``), by module name."""
    return {
        s.title[: -len(".py")]: s
        for s in _PARSED[page][0]
        if s.lang == "python" and s.title and s.title.endswith(".py")
    }


@pytest.fixture(scope="session")
def module_folders(tmp_path_factory) -> dict[Path, Path]:
    """One folder per page holding the page's module blocks as files."""
    folders = {}
    for index, page in enumerate(PAGES):
        folder = tmp_path_factory.mktemp(f"doc-modules-{index}")
        for snippet in _modules(page).values():
            (folder / snippet.title).write_text(snippet.code, encoding="utf-8")
        folders[page] = folder
    return folders


@contextlib.contextmanager
def _page_modules(page: Path, folder: Path) -> Iterator[list[str]]:
    """The page's modules importable, and forgotten afterwards (another page may
    define a module of the same name)."""
    names = list(_modules(page))
    saved = list(sys.path)
    for name in names:
        sys.modules.pop(name, None)
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        yield names
    finally:
        sys.path[:] = saved
        for name in names:
            sys.modules.pop(name, None)


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A scratch folder as an operator has it: config.toml and examples/."""
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.where(ROOT) for s in SNIPPETS])
def test_snippet_runs(snippet: Snippet, request):
    if snippet.lang == "text":
        pytest.skip("text: not runnable by design")
    if "excerpt" in snippet.attrs:
        check_excerpt(snippet)
        return
    runner = RUNNERS.get(snippet.lang)
    assert runner is not None, (
        f"{snippet.where(ROOT)}: no runner for a ```{snippet.lang or '(no language)'} block; "
        "give it one of " + ", ".join(sorted(RUNNERS)) + ", or mark it ```text if it cannot run"
    )
    runner(snippet, request)


#: The channel name the guide's excerpts of the scaffold use.
SCAFFOLD_EXAMPLE = "tv_subtitles"


def check_excerpt(snippet: Snippet) -> None:
    source = snippet.attrs["excerpt"]
    kind, _, inner = source.partition(":")
    if inner and kind in KINDS:
        text = render_package(SCAFFOLD_EXAMPLE, kind).get(inner)
    else:
        path = ROOT / source
        text = path.read_text(encoding="utf-8") if path.is_file() else None
    assert text is not None, f"{snippet.where(ROOT)}: excerpt of {source}, which does not exist"
    assert _unindented(snippet.code) in _unindented(text), (
        f"{snippet.where(ROOT)}: not found verbatim in {source}; copy it again from there"
    )


def test_an_excerpt_that_drifted_from_its_file_fails():
    def excerpt(source: str, code: str) -> Snippet:
        return Snippet(DOCS / "page.md", 1, "python", code, {"excerpt": source})

    scaffold = "http:src/gongkai_tv_subtitles/channel.py"
    said = "# Done when the remote accepts it: no person has to confirm anything.\n"
    check_excerpt(excerpt(scaffold, said + '    mode = "online"\n'))
    with pytest.raises(AssertionError, match="not found verbatim"):
        check_excerpt(excerpt(scaffold, said + 'mode = "offline"\n'))
    with pytest.raises(AssertionError, match="does not exist"):
        check_excerpt(excerpt("tests/no_such_file.py", "x = 1\n"))


def _unindented(text: str) -> str:
    """Lines without their indentation: an excerpt of a method or of an indented block
    in a docstring may be shown at the margin."""
    return "\n".join(line.strip() for line in text.strip("\n").splitlines())


# --- python -------------------------------------------------------------------------------


def _is_test_module(tree: ast.Module) -> bool:
    return any(
        (isinstance(node, ast.ClassDef) and node.name.startswith("Test"))
        or (isinstance(node, ast.FunctionDef) and node.name.startswith("test_"))
        for node in tree.body
    )


def _check_plugin(namespace: dict, label: str) -> None:
    """Hook implementations must match the hookspecs, channel classes the contract."""
    hooks = {k: v for k, v in namespace.items() if hasattr(v, "gongkai_impl")}
    if hooks:
        plugin = types.SimpleNamespace(**hooks)
        pm = get_plugin_manager(builtins=(), load_entry_points=False, strict=True, extra=[plugin])
        collect_channels(pm, strict=True)
        assert pm.problems == [], f"{label}: {pm.problems}"
    for value in namespace.values():
        if isinstance(value, type) and issubclass(value, Channel) and value is not Channel:
            assert contract_problem(value) is None, f"{label}: {contract_problem(value)}"


def run_python(snippet: Snippet, request) -> None:
    folder = request.getfixturevalue("module_folders")[snippet.path]
    label = snippet.where(ROOT)
    tree = ast.parse(snippet.code, filename=label)
    if _is_test_module(tree):
        _run_with_pytest(snippet, folder, request.getfixturevalue("tmp_path"))
        return
    with _page_modules(snippet.path, folder):
        if snippet.title:
            module = importlib.import_module(snippet.title.removesuffix(".py"))
            _check_plugin(vars(module), label)
            return
        request.getfixturevalue("workspace")
        namespace: dict = {"__name__": "__docs_snippet__"}
        # Leading newlines make tracebacks point at the line in the Markdown file.
        code = compile("\n" * snippet.line + snippet.code, str(snippet.path), "exec")
        exec(code, namespace)
        _check_plugin(namespace, label)
        # An example that publishes must really publish: a snippet whose item is
        # refused (a formed_on gone stale, a wrong key) would teach the wrong thing.
        for value in namespace.values():
            if isinstance(value, RunResult):
                assert not value.problems, f"{label}: {[str(p) for p in value.problems]}"


def _run_with_pytest(snippet: Snippet, folder: Path, tmp_path: Path) -> None:
    test_file = tmp_path / f"test_docs_snippet_{snippet.line}.py"
    test_file.write_text(snippet.code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONGKAI_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{snippet.where(ROOT)} fails:\n{done.stdout}\n{done.stderr}"
    assert re.search(r"\d+ passed", done.stdout), done.stdout


# --- toml ---------------------------------------------------------------------------------


def _env_refs(value) -> Iterator[str]:
    if isinstance(value, dict):
        if set(value) == {"env"}:
            yield value["env"]
        for inner in value.values():
            yield from _env_refs(inner)


def run_toml(snippet: Snippet, request) -> None:
    data = tomllib.loads(snippet.code)
    if "build-system" in data or "project" in data:
        _check_pyproject(snippet, data, request)
    elif set(data) & CONFIG_SECTIONS:
        _check_config(snippet, data, request)
    elif "entry" in data or "domains" in data:
        path = request.getfixturevalue("tmp_path") / "catalogue.toml"
        path.write_text(snippet.code, encoding="utf-8")
        catalogue = Catalogue.load(["default", path])
        assert all(e["key"] in catalogue for e in data.get("entry", []))
    else:
        pytest.fail(
            f"{snippet.where(ROOT)}: a toml block must be a config.toml, a pyproject.toml or "
            f"a catalogue file; its tables are {sorted(data)}"
        )


def _check_config(snippet: Snippet, data: dict, request) -> None:
    monkeypatch = request.getfixturevalue("monkeypatch")
    tmp_path = request.getfixturevalue("tmp_path")
    for variable in _env_refs(data):
        monkeypatch.setenv(variable, DUMMY_SECRETS.get(variable, DUMMY_SECRET))
    documented_load = list(data.get("plugins", {}).get("load", []))
    data = copy.deepcopy(data)
    data.setdefault("gongkai", {}).setdefault("state_dir", str(tmp_path / "state"))
    plugins = data.setdefault("plugins", {})
    folder = request.getfixturevalue("module_folders")[snippet.path]
    with _page_modules(snippet.path, folder) as names:
        # The page's own channel, installed as `[plugins] load` installs it.
        plugins["load"] = [*documented_load, *(n for n in names if n not in documented_load)]
        settings = settings_from_dict(data, source=snippet.where(ROOT), base_dir=tmp_path)
        with Publisher(settings, load_entry_points=False, strict=True) as publisher:
            assert set(publisher.channels) == set(publisher.channel_settings)
            # What the docs promise: `gongkai channels` lists what [plugins] load brings.
            rows = publisher.describe_channels()
        listed = {row["plugin"] for row in rows if row["name"] != "?"}
        for module in documented_load:
            assert module in listed, f"`gongkai channels` does not list {module}'s channels"


def _check_pyproject(snippet: Snippet, data: dict, request) -> None:
    label = snippet.where(ROOT)
    build = data.get("build-system")
    assert build and build.get("requires") and build.get("build-backend"), (
        f"{label}: a pyproject.toml needs [build-system] with requires and build-backend"
    )
    entry_points = data.get("project", {}).get("entry-points", {}).get("gongkai")
    assert entry_points, f"{label}: no [project.entry-points.gongkai] table"
    # Build the wheel from the page's modules: the entry points' modules must be in it.
    project = request.getfixturevalue("tmp_path") / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(snippet.code, encoding="utf-8")
    for module in _modules(snippet.path).values():
        (project / module.title).write_text(module.code, encoding="utf-8")
    build_code = (
        "import importlib, sys; "
        f"print(importlib.import_module({build['build-backend']!r}).build_wheel(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", build_code, str(project / "dist")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{label}: the wheel does not build:\n{done.stderr[-3000:]}"
    wheel = zipfile.ZipFile(project / "dist" / done.stdout.strip().splitlines()[-1])
    names = wheel.namelist()
    [declared] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "[gongkai]" in wheel.read(declared).decode()
    for name, target in entry_points.items():
        top = target.split(":")[0].split(".")[0]
        assert f"{top}.py" in names or f"{top}/__init__.py" in names, (
            f"{label}: entry point {name} = {target}, but the wheel lacks module {top}"
        )


# --- items --------------------------------------------------------------------------------


def _check_item_file(snippet: Snippet, request, name: str) -> None:
    tmp_path = request.getfixturevalue("tmp_path")
    path = tmp_path / name
    path.write_text(snippet.code, encoding="utf-8")
    settings = settings_from_dict(
        {"gongkai": {"state_dir": str(tmp_path / "state"), "org_code": "11510121009087532X"}},
        base_dir=tmp_path,
    )
    with Publisher(settings, load_entry_points=False) as publisher:
        good, problems = publisher.validate([path])
    assert not problems, "\n".join(str(p) for p in problems)
    assert good


def run_markdown(snippet: Snippet, request) -> None:
    front = re.match(r"\+\+\+\n(.*?)\n\+\+\+\n", snippet.code, re.S)
    assert front, (
        f"{snippet.where(ROOT)}: a markdown block must be an item file with +++ front "
        "matter; mark other text ```text"
    )
    item_id = tomllib.loads(front[1]).get("id", "jt-docs-item")
    _check_item_file(snippet, request, f"{item_id}.md")


def run_json(snippet: Snippet, request) -> None:
    data = json.loads(snippet.code)
    objects = data if isinstance(data, list) else [data]
    if objects and all(isinstance(o, dict) and "catalog" in o for o in objects):
        _check_item_file(snippet, request, "items.json")


# --- shell --------------------------------------------------------------------------------


def run_shell(snippet: Snippet, request) -> None:
    parser = build_parser()
    for line, args in gongkai_commands(snippet):
        where = f"{snippet.path.relative_to(ROOT).as_posix()}:{line}"
        errors = io.StringIO()
        try:
            with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(args)
        except SystemExit as exc:
            assert exc.code == 0, f"{where}: `gongkai {' '.join(args)}`: {errors.getvalue()}"


RUNNERS = {
    "python": run_python,
    "toml": run_toml,
    "markdown": run_markdown,
    "json": run_json,
    **dict.fromkeys(SHELLS, run_shell),
}


# --- 4. links -------------------------------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+).+?\1")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
_AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]*)>")


def _links(page: Path) -> list[tuple[int, str]]:
    """(line, target) of every Markdown link outside fenced blocks and code spans."""
    found: list[tuple[int, str]] = []
    fence = ""
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        opened = _FENCE.match(line)
        if fence:
            if opened and opened[1][0] == fence[0] and len(opened[1]) >= len(fence):
                fence = ""
            continue
        if opened:
            fence = opened[1]
            continue
        text = _CODE_SPAN.sub("", line)
        targets = [m[1] for m in _INLINE_LINK.finditer(text)]
        targets += [m[1] for m in _REFERENCE.finditer(text)]
        targets += [m[1] for m in _AUTOLINK.finditer(text)]
        found += [(number, target) for target in targets]
    return found


def test_links_are_found():
    assert ("README.md", "docs/architecture.md") in {
        (page.name, target) for page in PAGES for _, target in _links(page)
    }


def test_link_finder_skips_code(tmp_path):
    page = tmp_path / "sample.md"
    page.write_text(
        "[a](x.md) `[b](y.md)` <https://e.test>\n```\n[c](z.md)\n```\n[d]: w.md\n",
        encoding="utf-8",
    )
    assert [target for _, target in _links(page)] == ["x.md", "https://e.test", "w.md"]


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_links_point_into_the_repository(page):
    bad = []
    for line, target in _links(page):
        where = f"{page.relative_to(ROOT).as_posix()}:{line}: {target}"
        path = target.split("#", 1)[0]
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//", target) or path.startswith("/"):
            bad.append(f"{where} leaves the repository; link a file in it by relative path")
            continue
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.is_relative_to(ROOT.resolve()):
            bad.append(f"{where} points outside the repository")
        elif not resolved.exists():
            bad.append(f"{where} does not exist; fix the path (relative to the page)")
    assert not bad, "\n".join(bad)
