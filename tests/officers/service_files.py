"""What the officers', API, console and preview tests all set up: a configuration.

:func:`write_config_files` lays out a configuration directory (channels,
feeds, rules, ``alertcast.toml``) the way an operator would, so each suite
states only what its own channels and rules are. Their database comes from
:func:`tests.databases.migrated_engine`, as every suite's does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

SERVED_TOML = """\
[service]
host = "127.0.0.1"
port = {port}
data_dir = "data"
log_level = "info"
log_format = "json"

[database]
url = "{database_url}"
"""
"""``alertcast.toml`` of a service run as its own process on this computer (JSON logs)."""

DRILLS_ROUTE = """
[[route.routes]]
name = "drills"
exercise = true
channels = ["drills"]
test_audience = "channel-post"
"""
"""A route that sends exercises only to the ``drills`` channel, as a post."""


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
