"""The ``console`` channel: writes each message it is given to the log and a local file.

It reaches nobody: it is the demo's and the developer's channel, so that a
newcomer sees an alert go all the way through routing, rendering, the ledger
and the worker without a provider account. The text is the rendered message,
so a drill carries the same SIMULACRO / EXERCISE prefix it would carry on a
real channel.
"""

from __future__ import annotations

import asyncio
import json
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from alertcast.ports import OutboundMessage, Receipt

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig

log = structlog.get_logger(__name__)


class ConsoleChannel:
    """Appends one JSON line per message to ``outbox`` and logs it; implements ``Channel``."""

    kind = "console"

    def __init__(self, name: str, outbox: Path) -> None:
        self._name = name
        self.outbox = outbox
        self._numbers = count(1)
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return self._name

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        text = "\n\n".join(message.parts)
        message_id = f"{self._name}-{next(self._numbers)}"
        record = {
            "channel": self._name,
            "target": target,
            "id": message_id,
            "alert": message.extra.get("alert"),
            "language": message.language,
            "text": text,
        }
        async with self._lock:  # one writer at a time keeps lines whole
            await asyncio.to_thread(self._append, json.dumps(record, ensure_ascii=False))
        log.info("console.sent", channel=self._name, target=target, text=text)
        return Receipt(provider_message_id=message_id, delivered=True)

    async def aclose(self) -> None:
        return None

    def _append(self, line: str) -> None:
        self.outbox.parent.mkdir(parents=True, exist_ok=True)
        with self.outbox.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def from_config(channel: ChannelConfig, context: ChannelContext) -> ConsoleChannel:
    """The console channel of ``channels/NAME.toml``: writes ``data/outbox/NAME.jsonl``."""
    return ConsoleChannel(channel.name, context.data_dir / "outbox" / f"{channel.name}.jsonl")
