"""Every ``alertcast`` command written in docs/operations.md and deploy/README.md is one
the command line accepts, so an operator following a runbook at 3 a.m. never meets
"invalid choice". Placeholders (ALERT_ID, NAME, ...) are given sample values first.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from alertcast.cli import _parser
from tests.deploy.deployfiles import DEPLOY, REPO, dockerfile_stages, install_commands

GUIDE = REPO / "docs" / "operations.md"
DEPLOY_README = DEPLOY / "README.md"

PLACEHOLDERS = {
    "ALERT_ID": "7",
    "CANCEL_ID": "8",
    "OLD_TOKEN_ID": "3",
    "ID": "3",
    "NAME": "telegram",
    "ALERT_FILE": "alert.xml",
    "ROLE": "web",
    "...": "x",
}
SHELL_STOPS = {"<", ">", "|", "&&", ";", "||"}


def _snippets(path: Path) -> list[str]:
    """Inline code spans and the lines of fenced code blocks."""
    text = path.read_text(encoding="utf-8")
    snippets: list[str] = []
    fenced = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    for block in fenced:
        snippets.extend(line for line in block.splitlines() if line.strip())
    without_blocks = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    snippets.extend(re.findall(r"`([^`\n]+)`", without_blocks))
    return snippets


def _command_words(snippet: str) -> list[str] | None:
    """The words after the ``alertcast`` program in ``snippet``, or None when it runs none."""
    try:
        words = shlex.split(snippet, comments=True)
    except ValueError:
        return None
    for index, word in enumerate(words):
        is_program = word == "alertcast" or word.endswith("/bin/alertcast")
        previous = words[index - 1] if index else ""
        if is_program and (
            index == 0
            or previous in ("--", "alertcast-1", "sudo")
            or word.endswith("/bin/alertcast")
        ):
            rest: list[str] = []
            for follower in words[index + 1 :]:
                if follower in SHELL_STOPS:
                    break
                rest.append(follower)
            return rest
    return None


def _subcommand_depth(parser: argparse.ArgumentParser, words: list[str]) -> int:
    """How many leading words name existing (sub)commands."""
    depth = 0
    while depth < len(words):
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or words[depth] not in actions[0].choices:
            break
        parser = actions[0].choices[words[depth]]
        depth += 1
    return depth


def _commands(path: Path) -> list[list[str]]:
    found = []
    for snippet in _snippets(path):
        words = _command_words(snippet)
        if words is None or not words or words[0] == "...":
            continue
        found.append([PLACEHOLDERS.get(w, w) for w in words])
    return found


@pytest.mark.parametrize(
    ("path", "at_least"), [(GUIDE, 40), (DEPLOY_README, 2)], ids=["guide", "readme"]
)
def test_every_command_written_is_one_alertcast_accepts(path: Path, at_least: int) -> None:
    commands = _commands(path)
    assert len(commands) >= at_least, "the reader misses commands: is the format still the same?"
    for words in commands:
        if words == ["--help"]:
            continue
        depth = _subcommand_depth(_parser(), words)
        assert depth >= 1, f"not an alertcast command: {words}"
        if depth == len(words):
            continue  # a bare mention of a command, such as `alertcast status`
        try:
            _parser().parse_args(words)
        except SystemExit as exc:
            raise AssertionError(f"alertcast refuses {words} (written in {path.name})") from exc


def test_the_reader_tells_a_wrong_command() -> None:
    assert _command_words("alertcast delivery retry") == ["delivery", "retry"]
    assert _subcommand_depth(_parser(), ["delivery", "retry"]) == 0
    assert _command_words("ALTER ROLE alertcast PASSWORD 'x'") is None
    with pytest.raises(SystemExit):
        _parser().parse_args(["deliveries", "retry", "--state", "sent"])


def test_the_guide_covers_the_four_runbooks_with_their_commands() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.MULTILINE)
    runbooks = {
        "A failing feed": ["alertcast feeds list", "alertcast feeds check", "alertcast feeds poll"],
        "A provider outage": ["alertcast channels check", "alertcast deliveries retry"],
        "A stuck queue": ["alertcast status", "alertcast deliveries list", "/readyz"],
        "Suspected tampering": ["alertcast audit verify", "alertcast audit export"],
    }
    for title, commands in runbooks.items():
        (section,) = [s for s in sections if re.match(rf"7\.\d+ {title}", s)]
        for command in commands:
            assert command in section, (title, command)


def test_the_deploy_readme_installs_with_the_images_exact_lines() -> None:
    text = DEPLOY_README.read_text(encoding="utf-8")
    for command in install_commands(dockerfile_stages()[0]):
        assert f"\n{command}\n" in text
