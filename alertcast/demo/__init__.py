"""The demo: a fresh data directory with a drop-folder feed, two channels and samples.

Every sample is an Exercise and says SIMULACRO / EXERCISE in its headline; one
is deliberately broken, to show that a bad document is refused, logged and
audited without stopping the rest.

The drills go to a console channel and to a Telegram channel whose Bot API is
a fake on 127.0.0.1 (:mod:`alertcast.demo.fake_telegram`): the real
python-telegram-bot client talks real Bot API requests to it, and its page
shows the posts as they arrive, so a newcomer sees the whole path without a
bot, a token or a network.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from importlib import resources
from pathlib import Path

import structlog

from alertcast.demo.fake_telegram import FakeTelegramAPI
from alertcast.officers.roles import Role
from alertcast.officers.users import UserStore

log = structlog.get_logger(__name__)

TELEGRAM_TOKEN_ENV = "ALERTCAST_DEMO_TELEGRAM_TOKEN"  # noqa: S105 (a variable name)
"""The variable the demo's Telegram channel reads its token from; the demo sets it itself."""

# Not a secret: a token in the Bot API's shape that only the demo's fake accepts.
TELEGRAM_TOKEN = "123456789:AAFakeDemoTokenReachesNobody-0123456789"  # noqa: S105
TELEGRAM_CHANNEL = "simulacros_demo"

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

TELEGRAM_CHANNEL_TOML = """\
name = "telegram-demo"
kind = "telegram"
description = "Posts drills to a channel of a fake Telegram Bot API on this computer"

[options]
api_url = "{api_url}"
target = "@{channel}"
language = "es"
test_only = true  # a channel for drills: the fake Bot API reaches nobody

[secrets]
token = "{token_env}"
"""

OFFICERS_CHANNEL_TOML = """\
name = "console-officers"
kind = "console"
description = "Officers' Actual alerts in the demo: to the log and data/outbox; reaches nobody"

[options]
language = "es"
"""

RULES_TOML = """\
# Demo routing: every drill goes to the console channel and to the fake Telegram
# channel, both of which reach nobody. Real routes reach the public only after one
# or two people approve (see rules.toml in the project for a full example).
[route]

[[route.routes]]
name = "drills"
description = "Exercises and tests, to the console and the fake Telegram channel only"
channels = ["console", "telegram-demo"]
exercise = true
test_audience = "channel-post"
approval = "auto"

[[route.routes]]
name = "officers"
description = "Actual alerts composed in the console, after a second person approves them"
channels = ["console-officers"]
status = ["Actual"]
approval = "one"
"""

DEMO_OFFICERS = (("oficial", Role.OFFICER), ("supervisora", Role.APPROVER))
"""The demo's duty officer, who composes, and approver, who approves (two people)."""


def fake_telegram() -> FakeTelegramAPI:
    """The demo's Bot API, not started yet: it knows the demo's token and drill channel."""
    api = FakeTelegramAPI(token=TELEGRAM_TOKEN, bot_username="alertcast_demo_bot")
    api.add_channel(TELEGRAM_CHANNEL, title="Simulacros (demo)")
    return api


def write_demo_config(root: Path, port: int, telegram_api_url: str) -> Path:
    """Lay out a demo configuration under ``root``; return the path of its alertcast.toml.

    ``telegram_api_url`` is where the fake Bot API listens; it is known only
    once the fake has started, which is why the fake starts first.
    """
    (root / "feeds").mkdir(parents=True, exist_ok=True)
    (root / "channels").mkdir(parents=True, exist_ok=True)
    (root / "data" / "inbox").mkdir(parents=True, exist_ok=True)
    config = root / "alertcast.toml"
    config.write_text(CONFIG_TOML.format(port=port), encoding="utf-8")
    (root / "feeds" / "demo-inbox.toml").write_text(FEED_TOML, encoding="utf-8")
    (root / "channels" / "console.toml").write_text(CHANNEL_TOML, encoding="utf-8")
    (root / "channels" / "telegram-demo.toml").write_text(
        TELEGRAM_CHANNEL_TOML.format(
            api_url=telegram_api_url, channel=TELEGRAM_CHANNEL, token_env=TELEGRAM_TOKEN_ENV
        ),
        encoding="utf-8",
    )
    (root / "channels" / "console-officers.toml").write_text(
        OFFICERS_CHANNEL_TOML, encoding="utf-8"
    )
    (root / "rules.toml").write_text(RULES_TOML, encoding="utf-8")
    return config


async def add_demo_officers(users: UserStore) -> list[tuple[str, Role, str]]:
    """Create the demo's officer and approver with fresh random passwords, returned once.

    The passwords are printed for the person running the demo and stored only
    hashed, like any other; a fresh demo folder gets fresh ones.
    """
    created: list[tuple[str, Role, str]] = []
    for name, role in DEMO_OFFICERS:
        if await users.get(name) is not None:
            continue
        password = secrets.token_urlsafe(9)
        await users.add(name, role, password=password, actor="system:demo")
        created.append((name, role, password))
    return created


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
