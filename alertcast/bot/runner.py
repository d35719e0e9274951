"""The citizens' bot as a part of the service: started and stopped inside alertcast's own loop.

python-telegram-bot's ``run_polling`` would own the event loop; here the
:class:`~telegram.ext.Application` is only initialised, started and stopped,
so the bot lives next to the poller, the dispatcher and the web server of
:func:`alertcast.app.serve` and shares their shutdown.

Two ways to receive what people send, chosen with ``options.bot_mode``:

* ``polling`` (the default): long polling with ``getUpdates``. Works behind
  any firewall; one process per bot token (Telegram refuses a second poller).
* ``webhook``: Telegram POSTs each update to
  ``{public_url}/webhooks/telegram/{channel}``, which alertcast's web server
  serves (:meth:`CitizenBot.aiohttp_routes`). The request must carry the
  secret named by ``[secrets] webhook_secret`` in the
  ``X-Telegram-Bot-Api-Secret-Token`` header; anything else is refused
  before it is read, so nobody can pose as Telegram.

With several instances on one database, only the holder of the bot's lease
``bot:{channel}`` consumes (:meth:`CitizenBot.start_consuming`: polls, or
registers the webhook); the others keep the application open (webhook mode:
to handle what Telegram posts to them) or stand by, and take over when the
holder dies (:mod:`alertcast.ha.leases`).

The Bot API base URL is ``options.api_url``, as for the sending side
(:mod:`alertcast.channels.telegram`), so a local Bot API server or a fake can
stand in.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

import structlog
from aiohttp import web
from telegram import Update
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from alertcast.areas import AreaCatalogue
from alertcast.bot.handlers import Conversation
from alertcast.bot.ports import RecentAlerts
from alertcast.config import ChannelConfig
from alertcast.errors import ConfigError, ConfigProblem
from alertcast.subscribers.store import SubscriberStore

log = structlog.get_logger(__name__)

DEFAULT_API_URL = "https://api.telegram.org"
MODES = ("polling", "webhook")
POLL_TIMEOUT_S = 30
"""Seconds one ``getUpdates`` call waits for news (long polling)."""
ALLOWED_UPDATES = ["message", "callback_query"]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_UPDATE_BYTES = 1024 * 1024

BotApplication = Application[Any, Any, Any, Any, Any, Any]


def webhook_path(channel: str) -> str:
    return f"/webhooks/telegram/{channel}"


class CitizenBot:
    """One citizens' bot: ``await start()`` with the service, ``await stop()`` on the way out."""

    def __init__(
        self,
        channel: ChannelConfig,
        store: SubscriberStore,
        catalogue: AreaCatalogue,
        *,
        recent_alerts: RecentAlerts | None = None,
        public_url: str | None = None,
        poll_timeout_s: int = POLL_TIMEOUT_S,
    ) -> None:
        file = str(channel.file)
        problems: list[ConfigProblem] = []
        options = channel.options
        token = (channel.secret("token") or "").strip()
        if not token:
            name = channel.secrets.get("token")
            problems.append(
                ConfigProblem(
                    file,
                    "secrets.token",
                    f"environment variable {name} is not set" if name else "is required",
                )
            )
        api_url = options.get("api_url", DEFAULT_API_URL)
        if not isinstance(api_url, str) or not api_url.startswith(("https://", "http://")):
            problems.append(ConfigProblem(file, "options.api_url", "must be an http(s) URL"))
            api_url = DEFAULT_API_URL
        mode = options.get("bot_mode", "polling")
        if mode not in MODES:
            problems.append(ConfigProblem(file, "options.bot_mode", "must be polling or webhook"))
        secret = (channel.secret("webhook_secret") or "").strip()
        url = options.get("webhook_url")
        if mode == "webhook":
            if not secret:
                name = channel.secrets.get("webhook_secret")
                problems.append(
                    ConfigProblem(
                        file,
                        "secrets.webhook_secret",
                        f"environment variable {name} is not set"
                        if name
                        else "is required in webhook mode",
                    )
                )
            if url is None and public_url:
                url = f"{public_url.rstrip('/')}{webhook_path(channel.name)}"
            if not isinstance(url, str) or not url.startswith("https://"):
                problems.append(
                    ConfigProblem(
                        file,
                        "options.webhook_url",
                        "webhook mode needs an https URL Telegram can reach "
                        "(or a public https site URL)",
                    )
                )
        if problems:
            raise ConfigError(problems)
        self.name = channel.name
        self.mode = str(mode)
        self.api_url = str(api_url).rstrip("/")
        self.webhook_url = str(url) if mode == "webhook" else None
        self.poll_timeout_s = poll_timeout_s
        self._secret = secret
        self.conversation = Conversation(
            channel.name, store, catalogue, recent_alerts=recent_alerts
        )
        self._token = token
        self._app: BotApplication | None = None
        self._consuming = False

    def __repr__(self) -> str:  # never the token or the secret
        return f"CitizenBot(name={self.name!r}, mode={self.mode!r}, api_url={self.api_url!r})"

    @property
    def application(self) -> BotApplication:
        if self._app is None:
            raise RuntimeError("the bot is not started")
        return self._app

    def _build(self) -> BotApplication:
        # httpx logs every request URL at INFO, and the URL carries the token.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        builder = (
            ApplicationBuilder()
            .token(self._token)
            .base_url(f"{self.api_url}/bot")
            .base_file_url(f"{self.api_url}/file/bot")
            .request(HTTPXRequest(connection_pool_size=8))
            .get_updates_request(HTTPXRequest(connection_pool_size=1))
        )
        if self.mode == "webhook":
            builder = builder.updater(None)
        app: BotApplication = builder.build()
        self.conversation.install(app)
        return app

    @property
    def consuming(self) -> bool:
        """True while this instance polls ``getUpdates`` or has registered the webhook."""
        return self._consuming

    async def open(self) -> None:
        """Initialise and start the application, consuming nothing yet (idempotent).

        An open webhook-mode bot handles the updates Telegram POSTs to this
        instance, whichever instance registered the webhook.
        """
        if self._app is not None:
            return
        app = self._build()
        await app.initialize()
        try:
            await app.start()
        except BaseException:
            await app.shutdown()
            raise
        self._app = app

    async def start_consuming(self) -> None:
        """Poll ``getUpdates``, or register the webhook with Telegram.

        Telegram allows one consumer per bot token, so with several instances
        only the holder of the bot's lease calls this (:mod:`alertcast.ha.leases`).
        """
        await self.open()
        app = self.application
        if self.mode == "webhook":
            assert self.webhook_url is not None
            await app.bot.set_webhook(
                self.webhook_url, secret_token=self._secret, allowed_updates=ALLOWED_UPDATES
            )
        elif app.updater is not None and not app.updater.running:
            await app.updater.start_polling(
                timeout=self.poll_timeout_s,
                allowed_updates=ALLOWED_UPDATES,
                error_callback=self._polling_failed,
            )
        self._consuming = True
        log.info("bot.consuming", channel=self.name, mode=self.mode)

    async def stop_consuming(self) -> None:
        """Stop polling at once (the request in flight is cancelled); the application stays up.

        Updates already fetched are still handled and confirmed to Telegram;
        the rest wait there for the next consumer. A webhook stays registered:
        Telegram keeps posting to the web instances, whichever holds the lease.
        """
        self._consuming = False
        app = self._app
        if app is not None and app.updater is not None and app.updater.running:
            await app.updater.stop()
            log.info("bot.polling_stopped", channel=self.name)

    async def start(self) -> None:
        """Initialise and start the application; then poll, or tell Telegram the webhook."""
        await self.open()
        await self.start_consuming()
        log.info("bot.started", channel=self.name, mode=self.mode)

    def _polling_failed(self, error: Exception) -> None:
        # PTB retries by itself; the error's text may carry the request URL (and the token).
        log.warning("bot.polling_failed", channel=self.name, error=type(error).__name__)

    async def stop(self) -> None:
        """Stop polling (the webhook stays registered: updates wait at Telegram), then shut down."""
        app, self._app = self._app, None
        self._consuming = False
        if app is None:
            return
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        log.info("bot.stopped", channel=self.name)

    # ------------------------------------------------------------------ webhook

    def aiohttp_routes(self) -> list[web.RouteDef]:
        """The webhook route for alertcast's web server (webhook mode only)."""
        if self.mode != "webhook":
            return []
        return [web.post(webhook_path(self.name), self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        """One update from Telegram: checked against the secret, then handled before answering."""
        given = request.headers.get(SECRET_HEADER, "")
        if not self._secret or not hmac.compare_digest(given.encode(), self._secret.encode()):
            log.warning("bot.webhook_refused", channel=self.name)
            return web.Response(status=403)
        if self._app is None:
            return web.Response(status=503)  # Telegram tries again later
        if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
            return web.Response(status=413)
        try:
            data = json.loads(await request.read())
            update = Update.de_json(data, self._app.bot)
        except (ValueError, TypeError, KeyError):
            log.warning("bot.webhook_bad_update", channel=self.name)
            return web.Response(status=400)
        await self._app.process_update(update)
        return web.Response(status=200)
