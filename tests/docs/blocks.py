"""The shell commands of README.md and docs/*.md, as the documentation gives them.

A fenced block is a command block when it is tagged ``bash``, ``sh``, ``shell`` or ``console``,
or untagged and starting with a command (``prefshift``, ``uv``, ``make``, ``curl``). Each of its
commands (a line, ``\\``-continued lines joined, the trailing ``# comment`` dropped) is run by
``tests/docs/test_documented_commands.py``, unless an HTML comment right before the fence
(invisible where the Markdown is rendered) marks it:

    <!-- docs-test skip: REASON -->                 the whole block
    <!-- docs-test skip "COMMAND PREFIX": REASON --> the commands that start with the prefix

The reason is printed with the skip (``pytest -rs``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL_TAGS = {"bash", "sh", "shell", "console"}
COMMAND_STARTS = ("prefshift", "uv ", "make ", "curl ")
FENCE = re.compile(r"^```(\w*)\s*$")
MARK = re.compile(r'^<!--\s*docs-test skip(?:\s+"(?P<prefix>[^"]+)")?:\s*(?P<reason>.+?)\s*-->$')


@dataclass(frozen=True)
class Command:
    """One documented command and where it is."""

    text: str
    file: str
    line: int
    skip: str | None = None

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Block:
    file: str
    line: int
    commands: list[Command] = field(default_factory=list)


def documentation() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def command_blocks(paths: list[Path] | None = None) -> list[Block]:
    """Every command block of the documentation, in order, with its skip marks applied."""
    blocks = []
    for path in paths or documentation():
        lines = path.read_text().splitlines()
        name = str(path.relative_to(ROOT))
        index = 0
        while index < len(lines):
            fence = FENCE.match(lines[index])
            if fence is None:
                index += 1
                continue
            end = index + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            body = lines[index + 1 : end]
            tag = fence.group(1)
            first = next((line.strip() for line in body if line.strip()), "")
            if tag in SHELL_TAGS or (not tag and first.startswith(COMMAND_STARTS)):
                blocks.append(_block(name, index + 1, body, _marks(lines, index)))
            index = end + 1
    return blocks


def _marks(lines: list[str], fence: int) -> list[tuple[str | None, str]]:
    marks = []
    above = fence - 1
    while above >= 0 and (found := MARK.match(lines[above].strip())):
        marks.append((found.group("prefix"), found.group("reason")))
        above -= 1
    return marks


def _block(file: str, fence: int, body: list[str], marks: list[tuple[str | None, str]]) -> Block:
    block = Block(file, fence)
    pending, start = "", 0
    for offset, raw in enumerate(body, start=fence + 1):
        line = raw.rstrip()
        if not pending:
            start = offset
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        text = (pending + line.strip()).strip()
        pending = ""
        text = re.sub(r"\s+#\s.*$", "", text).strip()
        if not text or text.startswith("#"):
            continue
        skip = next(
            (reason for prefix, reason in marks if prefix is None or text.startswith(prefix)),
            None,
        )
        block.commands.append(Command(text, file, start, skip))
    return block


def commands() -> list[Command]:
    return [command for block in command_blocks() for command in block.commands]
