"""What the officers', API, console and preview tests all set up: a database and a configuration.

:func:`migrated_engine` opens an engine on a database migrated to head;
:func:`write_config_files` lays out a configuration directory (channels,
feeds, rules, ``alertcast.toml``) the way an operator would, so each suite
states only what its own channels and rules are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.store.engine import make_engine
from alertcast.store.migrate import upgrade

DRILLS_ROUTE = """
[[route.routes]]
name = "drills"
exercise = true
channels = ["drills"]
test_audience = "channel-post"
"""
"""A route that sends exercises only to the ``drills`` channel, as a post."""


@asynccontextmanager
async def migrated_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the database at ``url``, migrated to head; disposed of afterwards."""
    await upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


def write_config_files(
    root: Path,
    *,
    channels: Mapping[str, str],
    rules: str,
    service: str = "[service]\n",
    feeds: Mapping[str, str] | None = None,
    templates: Mapping[str, str] | None = None,
) -> Path:
    """Write a configuration under ``root``; return its ``alertcast.toml``.

    ``channels`` and ``feeds`` map a name to the text of ``NAME.toml``;
    ``templates`` maps a path under ``channels/templates`` to its text.
    """
    for folder, files in (("channels", channels), ("feeds", feeds or {})):
        (root / folder).mkdir(exist_ok=True)
        for name, text in files.items():
            (root / folder / f"{name}.toml").write_text(text, encoding="utf-8")
    for relative, text in (templates or {}).items():
        path = root / "channels" / "templates" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "rules.toml").write_text(rules, encoding="utf-8")
    config_file = root / "alertcast.toml"
    config_file.write_text(service, encoding="utf-8")
    return config_file
