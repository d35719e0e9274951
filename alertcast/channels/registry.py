"""Which adapter speaks each channel kind: the one place that maps configuration to adapters.

The core knows channels only through :class:`alertcast.ports.Channel`. Each
adapter module offers ``from_config(channel, context) -> Channel`` and is
named here by kind; it is imported only when its kind is configured, so an
installation that never speaks to a provider never loads its SDK. Building a
channel opens no connection (sessions open on the first send), so
``alertcast check`` can build every channel to find what is wrong.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.config import ChannelConfig
from alertcast.errors import ConfigError, ConfigProblem
from alertcast.ports import Channel

log = structlog.get_logger(__name__)

ADAPTERS: dict[str, str] = {
    "apprise": "alertcast.channels.apprise_bridge",
    "bluesky": "alertcast.channels.bluesky",
    "cap": "alertcast.channels.cap_feed",
    "console": "alertcast.channels.console",
    "email": "alertcast.channels.email",
    "facebook": "alertcast.channels.facebook",
    "file": "alertcast.channels.console",
    "mastodon": "alertcast.channels.mastodon",
    "sms": "alertcast.channels.twilio_sms",
    "telegram": "alertcast.channels.telegram",
    "webhook": "alertcast.channels.webhook",
    "whatsapp": "alertcast.channels.twilio_whatsapp",
    "x": "alertcast.channels.x",
}
"""Channel kind → the module whose ``from_config`` builds it."""


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What adapters may need besides their own configuration."""

    data_dir: Path
    site_url: str | None = None
    """The public base URL of this service (links to ``/alerts/{id}``), when known."""
    engine: AsyncEngine | None = None
    """The database, for channels that publish into it (our own CAP feed)."""


class _Factory(Protocol):
    def __call__(self, channel: ChannelConfig, context: ChannelContext) -> Channel: ...


def build_channel(channel: ChannelConfig, context: ChannelContext) -> Channel:
    """The adapter for one configured channel; ConfigError for what cannot be built."""
    module_name = ADAPTERS.get(channel.kind)
    if module_name is None:
        raise ConfigError(
            [ConfigProblem(str(channel.file), "kind", f"no adapter for kind {channel.kind!r}")]
        )
    module = importlib.import_module(module_name)
    factory = cast(_Factory, module.from_config)
    return factory(channel, context)


def build_channels(
    channels: Iterable[ChannelConfig], context: ChannelContext
) -> dict[str, Channel]:
    """Adapters for every enabled channel, by name; every problem is reported at once."""
    built: dict[str, Channel] = {}
    problems: list[ConfigProblem] = []
    for channel in channels:
        if not channel.enabled:
            continue
        try:
            built[channel.name] = build_channel(channel, context)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return built
