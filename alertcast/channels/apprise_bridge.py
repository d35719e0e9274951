"""The ``apprise`` channel: forward messages to any service Apprise speaks (optional extra).

Apprise reaches some hundred services (Matrix, Discord, Slack, ntfy, Gotify,
Pushover...) through one URL scheme each. It is a bridge for the services
alertcast has no adapter of its own for, installed with
``pip install 'alertcast[apprise]'`` and imported only when such a channel
is configured, so the core never loads it.

The Apprise URL comes from the secret ``url`` (the environment variable
named by ``[secrets] url``), never from the channel file: Apprise URLs embed
the service's credentials (``tgram://TOKEN/CHAT``, ``json://user:pass@host``).

**A known limit.** Apprise reports only success or failure: no provider
message id, no status code, no rate-limit hint, no way to tell a refusal
from a timeout. Every failure is therefore :class:`~alertcast.errors.Transient`
(retried by the worker's policy, then dead after its attempts), and nothing
can be edited, replied to or deleted later. A message that Apprise times out
on after the service received it may be sent again on retry. Where an alert
must reach a service exactly once, use a dedicated adapter.

The target is ignored beyond the audit trail: an Apprise URL already names
its destination, so one channel is one destination (a ``post`` target).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import structlog

from alertcast.errors import ConfigError, ConfigProblem, Transient
from alertcast.ports import OutboundMessage, Receipt

if TYPE_CHECKING:
    from alertcast.channels.registry import ChannelContext
    from alertcast.config import ChannelConfig

log = structlog.get_logger(__name__)

INSTALL_HINT = "pip install 'alertcast[apprise]'"


def _apprise_module(file: str) -> Any:
    """The apprise package, or a ConfigError saying how to install it."""
    try:
        return importlib.import_module("apprise")
    except ImportError:
        raise ConfigError(
            [ConfigProblem(file, "kind", f"the apprise package is not installed ({INSTALL_HINT})")]
        ) from None


class AppriseChannel:
    """Notifies one Apprise URL; implements ``Channel``."""

    kind = "apprise"

    def __init__(self, name: str, url: str, *, module: Any) -> None:
        self._name = name
        self._module = module
        self._client: Any = None
        self._url = url

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:  # the URL holds credentials: never shown
        return f"AppriseChannel(name={self._name!r})"

    def _apprise(self) -> Any:
        if self._client is None:
            client = self._module.Apprise()
            if not client.add(self._url):
                from alertcast.errors import Permanent

                raise Permanent(f"channel {self._name}: Apprise does not accept its URL")
            self._client = client
        return self._client

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        client = self._apprise()
        body = "\n\n".join(message.parts)
        try:
            ok = await client.async_notify(body=body, title=message.subject or "")
        except Exception as exc:  # Apprise's own failures; cancellation passes through
            raise Transient(f"channel {self._name}: Apprise failed ({type(exc).__name__})") from exc
        if not ok:
            # All Apprise says is "not delivered": see the module's note on this limit.
            raise Transient(f"channel {self._name}: Apprise reported the notification failed")
        log.info("apprise.sent", channel=self._name)
        return Receipt(provider_message_id=None)

    async def aclose(self) -> None:
        self._client = None


def from_config(channel: ChannelConfig, context: ChannelContext) -> AppriseChannel:
    """The Apprise bridge of ``channels/NAME.toml``: the URL from the secret ``url``."""
    file = str(channel.file)
    module = _apprise_module(file)
    if "url" not in channel.secrets:
        raise ConfigError(
            [
                ConfigProblem(
                    file,
                    "secrets.url",
                    "name the environment variable holding the Apprise URL",
                )
            ]
        )
    url = channel.secret("url")
    if not url:
        raise ConfigError(
            [ConfigProblem(file, "secrets.url", f"{channel.secrets['url']} is not set")]
        )
    return AppriseChannel(channel.name, url, module=module)
