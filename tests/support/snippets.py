"""Reading fenced code snippets out of Markdown, for tests/test_docs.py.

Just enough of CommonMark for our docs: fences of three or more backticks or tildes,
indented by at most a list item's worth of spaces, closed by the same character at
least as many times. The info string is a language and optional ``key="value"``
attributes: ```python title="gongkai_hello.py".
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_OPEN = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_ATTR = re.compile(r'(\w[\w-]*)="([^"]*)"')


@dataclass(frozen=True)
class Snippet:
    path: Path
    #: The line of the opening fence, counted from 1.
    line: int
    lang: str
    code: str
    attrs: dict[str, str] = field(default_factory=dict)

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root).as_posix()}:{self.line}"

    @property
    def title(self) -> str | None:
        return self.attrs.get("title")


def parse_fences(path: Path) -> tuple[list[Snippet], list[str]]:
    """The fenced blocks of a Markdown file, and what is malformed (unclosed fences)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    snippets: list[Snippet] = []
    problems: list[str] = []
    i = 0
    while i < len(lines):
        opened = _OPEN.match(lines[i])
        # A backtick fence's info string cannot hold a backtick (CommonMark): that is
        # inline code such as ```x```, not a fence.
        if opened is None or (opened["fence"][0] == "`" and "`" in opened["info"]):
            i += 1
            continue
        indent, fence = len(opened["indent"]), opened["fence"]
        lang, _, rest = opened["info"].strip().partition(" ")
        close = re.compile(rf"^ *{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            text = lines[j]
            strip = min(indent, len(text) - len(text.lstrip(" ")))
            body.append(text[strip:])
            j += 1
        if j == len(lines):
            problems.append(f"{path}:{i + 1}: the fence opened here is never closed")
            break
        code = "\n".join(body) + "\n"
        snippets.append(Snippet(path, i + 1, lang.lower(), code, dict(_ATTR.findall(rest))))
        i = j + 1
    return snippets, problems


#: Tokens after which a shell word is in command position.
_OPERATORS = frozenset({"&&", "||", ";", "|", "(", "&"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
#: Dummy values for the placeholders the docs use in command synopses.
PLACEHOLDERS = {
    "ITEM": "jt-2026-housing-0302",
    "C": "archive",
    "CHANNEL": "archive",
    "PATHS": "examples/items",
    "FILE": "config.toml",
    "DATE": "2026-11-28",
}


def _fill(token: str) -> str:
    """``[ITEM]`` → a dummy item id, ``[--json]`` → ``--json``, ``"…"`` → some text."""
    token = token.strip("[]")
    bare = token.replace("…", "").replace("...", "")
    if not bare:
        return "示例文字"
    if re.fullmatch(r"[A-Z][A-Z_]*", bare):
        return PLACEHOLDERS.get(bare, "placeholder")
    return token


def _lines(snippet: Snippet) -> list[tuple[int, str]]:
    """Logical command lines with their file line numbers: continuations joined,
    console output dropped, cron schedules cut off."""
    found: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for offset, raw in enumerate(snippet.code.splitlines(), start=1):
        number = snippet.line + offset
        text = raw.rstrip()
        if snippet.lang == "console" and not pending:
            if not text.startswith("$ "):
                continue  # output, not a command
            text = text[2:]
        if not pending:
            start = number
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        text, pending = pending + text, ""
        if snippet.lang == "cron" and text.strip() and not text.lstrip().startswith("#"):
            fields = text.split(None, 1 if text.lstrip().startswith("@") else 5)
            text = fields[-1] if len(fields) > 1 else ""
        found.append((start, text))
    return found


def gongkai_commands(snippet: Snippet) -> list[tuple[int, list[str]]]:
    """Every ``gongkai <verb> …`` invocation in a shell-like snippet, as (file line,
    arguments after ``gongkai`` with placeholders filled in)."""
    commands: list[tuple[int, list[str]]] = []
    for number, text in _lines(snippet):
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        at_command = True
        for index, token in enumerate(tokens):
            if token in _OPERATORS:
                at_command = True
                continue
            if at_command and _ASSIGNMENT.match(token):
                continue  # VAR=value before the command
            if at_command and token == "gongkai":
                args = []
                rest = tokens[index + 1 :]
                for position, arg in enumerate(rest):
                    following = rest[position + 1] if position + 1 < len(rest) else ""
                    if set(arg) <= set(";&|<>()") or (
                        arg.isdigit() and following[:1] in ("<", ">")
                    ):
                        break  # an operator or a redirection (2>&1) ends the command
                    args.append(_fill(arg))
                commands.append((number, args))
            at_command = False
    return commands
