"""The demo: a fresh data directory with a drop-folder feed, a console channel and samples.

Every sample is an Exercise and says SIMULACRO / EXERCISE in its headline; one
is deliberately broken, to show that a bad document is refused, logged and
audited without stopping the rest.
"""

from __future__ import annotations

import asyncio
import shutil
from importlib import resources
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

CONFIG_TOML = """\
# alertcast demo configuration (written by `alertcast demo`).
[service]
host = "127.0.0.1"
port = {port}
data_dir = "data"

[cap]
strict = false
"""

FEED_TOML = """\
name = "demo-inbox"
kind = "cap-dir"
description = "Demo drop folder: CAP files put here are ingested"
path = "data/inbox"
interval_s = 1
"""

CHANNEL_TOML = """\
name = "console"
kind = "console"
description = "Writes announcements to the log and data/outbox/console.jsonl; reaches nobody"

[options]
language = "es"
test_only = true  # a channel for drills: it reaches nobody
"""

RULES_TOML = """\
# Demo routing: every drill goes to the console channel, which reaches nobody.
# Real routes reach the public only after one or two people approve (see rules.toml
# in the project for a full example).
[route]

[[route.routes]]
name = "drills"
description = "Exercises and tests, to the console channel only"
channels = ["console"]
exercise = true
test_audience = "channel-post"
approval = "auto"
"""


def write_demo_config(root: Path, port: int) -> Path:
    """Lay out a demo configuration under ``root``; return the path of its alertcast.toml."""
    (root / "feeds").mkdir(parents=True, exist_ok=True)
    (root / "channels").mkdir(parents=True, exist_ok=True)
    (root / "data" / "inbox").mkdir(parents=True, exist_ok=True)
    config = root / "alertcast.toml"
    config.write_text(CONFIG_TOML.format(port=port), encoding="utf-8")
    (root / "feeds" / "demo-inbox.toml").write_text(FEED_TOML, encoding="utf-8")
    (root / "channels" / "console.toml").write_text(CHANNEL_TOML, encoding="utf-8")
    (root / "rules.toml").write_text(RULES_TOML, encoding="utf-8")
    return config


def sample_names() -> list[str]:
    folder = resources.files("alertcast.demo") / "samples"
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".xml"))


async def drip_samples(inbox: Path, delay_s: float = 2.0) -> None:
    """Drop the bundled samples into ``inbox`` one by one, as a feed would deliver them."""
    folder = resources.files("alertcast.demo") / "samples"
    for name in sample_names():
        await asyncio.sleep(delay_s)
        data = (folder / name).read_bytes()
        partial = inbox / (name + ".part")
        partial.write_bytes(data)
        partial.replace(inbox / name)
        log.info("demo.sample_dropped", file=name)


def reset(root: Path) -> None:
    """Empty a demo directory that alertcast made before (never anything else)."""
    if (root / "alertcast.toml").is_file() and (root / "feeds" / "demo-inbox.toml").is_file():
        shutil.rmtree(root)
