"""A cluster of real ``alertcast serve`` processes on one database, and what they talk to.

The high-availability tests run alertcast as operators run it: separate
processes started with ``alertcast serve --config ... --port P`` on one
configuration folder and one database, each with every role. Around them,
in the test's own event loop:

* a feed server (:class:`FeedServer`) serving an Atom index with CAP alerts
  embedded, which logs every fetch with its time and the process that made it;
* the Twilio fake (:class:`tests.fakes.twilio_api.FakeTwilio`) for an SMS
  channel whose audience is ``recipients`` subscribers, written straight to
  the ``subscribers`` table encrypted with the cluster's key (thousands of
  opt-ins through the store would take longer than the fan-out itself);
* the Telegram fake (:class:`RecordingTelegram`, the demo's
  :class:`~alertcast.demo.fake_telegram.FakeTelegramAPI` with a request log)
  for a citizens' bot in polling mode, whose ``getUpdates`` consumer must run
  on one instance at a time.

Which process made a request is read from the kernel, not from anything the
process says: the request's peer port is looked up in ``/proc/net/tcp`` and
the socket's inode in each instance's ``/proc/PID/fd``. Every instance has
the same configuration, so nothing in the request could tell them apart.

Everything the cluster starts is stopped by :func:`running_cluster`, whatever
the test does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.demo.fake_telegram import TOKEN as TELEGRAM_TOKEN
from alertcast.demo.fake_telegram import FakeTelegramAPI
from alertcast.store.engine import make_engine
from alertcast.store.tables import alerts, deliveries, feed_state, subscribers
from alertcast.subscribers.crypto import KEY_ENV, SubscriberKeys, generate_secret
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, SID_ENV, TOKEN_ENV, FakeTwilio
from tests.officers.service_files import SERVED_TOML

FEED_NAME = "proteccion-civil"
FEED_PATH = "/avisos.atom"
FEED_INTERVAL_S = 2.0
SMS_CHANNEL = "sms"
BOT_CHANNEL = "ciudadanos"
BOT_LEASE = f"bot:{BOT_CHANNEL}"
TOPIC = "avisos"
TELEGRAM_TOKEN_ENV = "ALERTCAST_TEST_TELEGRAM_TOKEN"
START_TIMEOUT_S = 30.0
"""How long an instance may take to answer /healthz."""
STOP_TIMEOUT_S = 15.0
CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
OPEN_STATES = ("pending", "claimed")
"""Ledger states of a delivery that is not finished."""

FEED_TOML = """\
name = "{name}"
kind = "cap-index"
description = "Civil protection alerts (a local test server)"
url = "{url}"
interval_s = {interval}
jitter = 0
timeout_s = 5
"""

SMS_TOML = """\
name = "{name}"
kind = "sms"
description = "SMS to subscribers through the Twilio fake"
[options]
api_url = "{api_url}"
from = "+15005550006"
language = "es"
rate_per_s = {rate}
burst = 10
timeout_s = 5
# Status callbacks go to a host the fake never calls (it records them only).
status_callback_url = "https://status.invalid"
[secrets]
account_sid = "{sid_env}"
auth_token = "{token_env}"
"""

BOT_TOML = """\
name = "{name}"
kind = "telegram"
description = "Citizens' bot (long polling) on the Telegram fake"
[options]
api_url = "{api_url}"
bot_mode = "polling"
language = "es"
[secrets]
token = "{token_env}"
"""

RULES_TOML = """\
# Every real alert goes to the SMS subscribers of the topic, wherever they are,
# at once: an official feed relayed without a person's approval.
[route]
channels = ["{channel}"]
approval = "auto"
audience = {{ topics = ["{topic}"], areas = ["anywhere"] }}
"""


# --------------------------------------------------------------------------- who asked


def _socket_inodes(local_port: int, remote_port: int) -> set[str]:
    """Inodes of the TCP sockets from ``local_port`` to ``remote_port`` (any address)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            local = int(fields[1].rsplit(":", 1)[1], 16)
            remote = int(fields[2].rsplit(":", 1)[1], 16)
            if local == local_port and remote == remote_port:
                found.add(f"socket:[{fields[9]}]")
    return found


def socket_owner(peer_port: int, server_port: int, pids: Iterable[int]) -> int | None:
    """Which of ``pids`` holds the client end of a connection to ``server_port``."""
    inodes = _socket_inodes(peer_port, server_port)
    if not inodes:
        return None
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    return pid
    return None


def requester(request: web.Request, pids: Iterable[int]) -> int | None:
    """The process (among ``pids``) that sent ``request`` over loopback TCP."""
    transport = request.transport
    if transport is None:
        return None
    peer = transport.get_extra_info("peername")
    local = transport.get_extra_info("sockname")
    if not peer or not local:
        return None
    return socket_owner(int(peer[1]), int(local[1]), pids)


@dataclass(frozen=True)
class Hit:
    """One request: when it arrived (monotonic seconds), what it asked, which process sent it."""

    at: float
    what: str
    pid: int | None


# --------------------------------------------------------------------------- the feed


def cap_alert(identifier: str, sent: datetime) -> str:
    """A real (Actual) flood alert, current for an hour, as an issuer publishes it."""

    def stamp(at: datetime) -> str:
        return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")

    return (
        f'<alert xmlns="{CAP_NS}"><identifier>{identifier}</identifier>'
        "<sender>avisos@proteccion-civil.example.mx</sender>"
        f"<sent>{stamp(sent)}</sent><status>Actual</status><msgType>Alert</msgType>"
        "<scope>Public</scope><info><language>es-MX</language><category>Met</category>"
        "<event>Inundacion</event><urgency>Immediate</urgency><severity>Severe</severity>"
        f"<certainty>Observed</certainty><expires>{stamp(sent + timedelta(hours=1))}</expires>"
        "<headline>Inundacion: suba a un lugar alto</headline>"
        "<area><areaDesc>Zona baja del valle</areaDesc></area></info></alert>"
    )


def atom_index(alerts_xml: Sequence[str]) -> bytes:
    """An Atom index with each CAP alert embedded in its entry."""
    entries = "".join(
        f"<entry><id>urn:avisos:{n}</id><title>aviso {n}</title>"
        "<updated>2026-12-06T09:00:00-06:00</updated>"
        f'<content type="text/xml">{xml}</content></entry>'
        for n, xml in enumerate(alerts_xml)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<id>urn:avisos</id><title>Avisos</title>"
        f"<updated>2026-12-06T09:00:00-06:00</updated>{entries}</feed>"
    ).encode()


class FeedServer:
    """Serves one Atom index (ETag and 304 as real servers do) and logs every fetch."""

    def __init__(self, pids: Callable[[], Iterable[int]]) -> None:
        self.hits: list[Hit] = []
        self.url = ""
        self._pids = pids
        self._alerts: list[str] = []
        self._body = atom_index([])
        self._runner: web.AppRunner | None = None

    def publish(self, alert_xml: str) -> None:
        """Add an alert to the index from now on."""
        self._alerts.append(alert_xml)
        self._body = atom_index(self._alerts)

    def fetches(self) -> list[Hit]:
        return [hit for hit in self.hits if hit.what == FEED_PATH]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(FEED_PATH, self._serve)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        self.hits.append(Hit(time.monotonic(), request.path, requester(request, self._pids())))
        etag = '"' + hashlib.sha256(self._body).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=self._body, headers={"ETag": etag, "Content-Type": "application/atom+xml"}
        )


# --------------------------------------------------------------------------- Telegram


class RecordingTelegram(FakeTelegramAPI):
    """The Telegram fake, logging each request's time, method and sending process."""

    def __init__(self, pids: Callable[[], Iterable[int]]) -> None:
        super().__init__(token=TELEGRAM_TOKEN)
        self.hits: list[Hit] = []
        self._pids = pids

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        method = request.path.rsplit("/", 1)[-1]
        self.hits.append(Hit(time.monotonic(), method, requester(request, self._pids())))
        return await super()._dispatch(request)

    def polls(self) -> list[Hit]:
        """Every ``getUpdates`` call (the update consumer at work), in arrival order."""
        return [hit for hit in self.hits if hit.what.lower() == "getupdates"]


# --------------------------------------------------------------------------- processes


def alertcast_command() -> list[str]:
    """The ``alertcast`` entry point installed beside this Python."""
    script = Path(sys.executable).with_name("alertcast")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "alertcast"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_of(owner: str | None) -> int | None:
    """The process id inside an instance or worker name (``host:pid:tag``)."""
    if not owner:
        return None
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return int(parts[1])


@dataclass
class Instance:
    """One ``alertcast serve`` process."""

    name: str
    port: int
    root: Path
    env: dict[str, str]
    roles: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / f"serve-{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None, f"instance {self.name} was never started"
        return self.process.pid

    def log_tail(self, chars: int = 4000) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return text[-chars:]

    def start(self) -> None:
        command = [
            *alertcast_command(),
            "serve",
            "--config",
            str(self.root / "alertcast.toml"),
            "--port",
            str(self.port),
        ]
        for role in self.roles:
            command += ["--role", role]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.root
            )

    async def wait_healthy(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process else None
                raise AssertionError(
                    f"instance {self.name} exited ({code}) before answering /healthz;"
                    f" its log:\n{self.log_tail()}"
                )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(
                    self.url + "/healthz", timeout=aiohttp.ClientTimeout(total=2)
                ) as answer:
                    if answer.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise AssertionError(
            f"instance {self.name} did not answer /healthz within {START_TIMEOUT_S:.0f} s;"
            f" its log:\n{self.log_tail()}"
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def freeze(self) -> None:
        """SIGSTOP: the process does nothing more, not even commit, until killed."""
        os.kill(self.pid, signal.SIGSTOP)

    async def kill(self) -> None:
        """SIGKILL, as a host dying would: no drain, no lease released."""
        assert self.process is not None
        self.process.kill()
        await asyncio.to_thread(self.process.wait, STOP_TIMEOUT_S)

    async def stop(self) -> None:
        """SIGTERM and wait for the clean stop; SIGKILL when it does not come."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)  # a frozen process cannot stop cleanly
            process.terminate()
        try:
            await asyncio.to_thread(process.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, STOP_TIMEOUT_S)


# --------------------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    """The configuration folder, the fakes, the database and the instances on them."""

    root: Path
    database_url: str
    engine: AsyncEngine
    http: aiohttp.ClientSession
    feed: FeedServer
    twilio: FakeTwilio
    telegram: RecordingTelegram | None
    subscriber_key: str = field(default_factory=generate_secret, repr=False)
    instances: list[Instance] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("ALERTCAST_DATABASE_URL", KEY_ENV) and not k.startswith("ALERTCAST_TEST_")
        }
        env.update(
            {
                SID_ENV: ACCOUNT_SID,
                TOKEN_ENV: AUTH_TOKEN,
                TELEGRAM_TOKEN_ENV: TELEGRAM_TOKEN,
                KEY_ENV: self.subscriber_key,
                "ALERTCAST_LANG": "en",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    # ------------------------------------------------------------------ setting up

    def write_folder(self, *, rate_per_s: float) -> None:
        """alertcast.toml, the feed, the SMS channel, the bot channel and rules.toml."""
        (self.root / "feeds").mkdir(parents=True, exist_ok=True)
        channels = self.root / "channels"
        channels.mkdir(exist_ok=True)
        (self.root / "alertcast.toml").write_text(
            SERVED_TOML.format(port=free_port(), database_url=self.database_url),
            encoding="utf-8",
        )
        (self.root / "feeds" / f"{FEED_NAME}.toml").write_text(
            FEED_TOML.format(
                name=FEED_NAME, url=self.feed.url + FEED_PATH, interval=FEED_INTERVAL_S
            ),
            encoding="utf-8",
        )
        (channels / f"{SMS_CHANNEL}.toml").write_text(
            SMS_TOML.format(
                name=SMS_CHANNEL,
                api_url=self.twilio.url,
                rate=rate_per_s,
                sid_env=SID_ENV,
                token_env=TOKEN_ENV,
            ),
            encoding="utf-8",
        )
        if self.telegram is not None:
            (channels / f"{BOT_CHANNEL}.toml").write_text(
                BOT_TOML.format(
                    name=BOT_CHANNEL, api_url=self.telegram.api_url, token_env=TELEGRAM_TOKEN_ENV
                ),
                encoding="utf-8",
            )
        (self.root / "rules.toml").write_text(
            RULES_TOML.format(channel=SMS_CHANNEL, topic=TOPIC), encoding="utf-8"
        )

    async def cli(self, *args: str, timeout_s: float = 60.0) -> tuple[int, str]:
        """``alertcast ARGS --config ...`` on the cluster's folder: (exit code, output)."""
        process = await asyncio.create_subprocess_exec(
            *alertcast_command(),
            *args,
            "--config",
            str(self.root / "alertcast.toml"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            cwd=self.root,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(
                f"`alertcast {' '.join(args)}` took over {timeout_s:.0f} s"
            ) from None
        assert process.returncode is not None
        return process.returncode, output.decode("utf-8", "replace")

    async def add_subscribers(self, count: int) -> None:
        """``count`` SMS subscribers of the topic with distinct phones, stored as the store does."""
        keys = SubscriberKeys(base64.b64decode(self.subscriber_key))
        now = datetime.now(UTC)
        self.phones = [f"+5255{10_000_000 + n}" for n in range(count)]
        rows: list[dict[str, Any]] = [
            {
                "channel": SMS_CHANNEL,
                "address_hash": keys.lookup_hash(SMS_CHANNEL, phone),
                "address_enc": keys.encrypt(phone),
                "language": "es",
                "topics": json.dumps([TOPIC]),
                "areas": "[]",
                "active": True,
                "created_at": now,
                "updated_at": now,
                "last_seen_at": now,
            }
            for phone in self.phones
        ]
        async with self.engine.begin() as conn:
            for start in range(0, len(rows), 1000):
                await conn.execute(subscribers.insert(), rows[start : start + 1000])

    async def start_instance(self, name: str, *, roles: Sequence[str] = ()) -> Instance:
        instance = Instance(name, free_port(), self.root, self.env, tuple(roles))
        self.instances.append(instance)
        instance.start()
        await instance.wait_healthy(self.http)
        return instance

    async def readiness(self, instance: Instance) -> tuple[int, dict[str, Any]]:
        """``GET /readyz`` of ``instance``: (HTTP status, body)."""
        async with self.http.get(instance.url + "/readyz") as answer:
            return answer.status, await answer.json()

    # ------------------------------------------------------------------ what the ledger says

    async def claims_by_pid(self) -> dict[int | None, int]:
        """Rows claimed and not finished, per process holding them."""
        query = (
            select(deliveries.c.lease_owner, func.count())
            .where(deliveries.c.state == "claimed")
            .group_by(deliveries.c.lease_owner)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        counts: Counter[int | None] = Counter()
        for owner, count in rows:
            counts[pid_of(owner)] += int(count)
        return dict(counts)

    async def open_rows(self) -> int:
        """Deliveries not finished (pending or claimed)."""
        query = select(func.count()).where(deliveries.c.state.in_(OPEN_STATES))
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def delivery_rows(self) -> int:
        async with self.engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(deliveries))).scalar_one()
            )

    async def delivery_states(self) -> dict[str, int]:
        query = select(deliveries.c.state, func.count()).group_by(deliveries.c.state)
        async with self.engine.connect() as conn:
            return {str(state): int(n) for state, n in (await conn.execute(query)).all()}

    async def alerts_from_feed(self) -> int:
        query = select(func.count()).where(alerts.c.feed == FEED_NAME)
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def feed_lease_pid(self) -> int | None:
        query = select(feed_state.c.lease_owner).where(feed_state.c.feed == FEED_NAME)
        async with self.engine.connect() as conn:
            return pid_of((await conn.execute(query)).scalar_one_or_none())

    async def role_lease_pid(self, name: str) -> int | None:
        """The process holding the role lease ``name`` now (None when free or expired)."""
        from sqlalchemy import text

        query = text(
            "SELECT owner FROM role_leases WHERE name = :name AND expires_at > CURRENT_TIMESTAMP"
        )
        async with self.engine.connect() as conn:
            return pid_of((await conn.execute(query, {"name": name})).scalar_one_or_none())

    # ------------------------------------------------------------------ what the fakes saw

    def received(self) -> Counter[str]:
        """Messages the Twilio fake accepted, per recipient phone."""
        return Counter(str(m["to"]) for m in self.twilio.messages.values())


async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout_s: float,
    what: str,
    logs: Sequence[Instance] = (),
    every_s: float = 0.1,
) -> float:
    """Wait until ``check()`` is true; the seconds it took.

    After ``timeout_s`` an AssertionError names ``what``, followed by the end
    of the log of each instance in ``logs`` as it is then.
    """
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            tails = "".join(f"\n--- log of {i.name}:\n{i.log_tail()}" for i in logs)
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s{tails}")
        await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def running_cluster(
    root: Path,
    database_url: str,
    *,
    recipients: int,
    rate_per_s: float,
    bot: bool = True,
) -> AsyncIterator[Cluster]:
    """The fakes, the folder and a migrated database with ``recipients`` subscribers.

    No instance runs yet (``await cluster.start_instance(name)``); every one
    started is stopped on the way out, before the fakes and whatever happened.
    ``bot`` False leaves the Telegram fake and the bot channel out.
    """
    instances: list[Instance] = []

    def pids() -> list[int]:
        return [i.process.pid for i in instances if i.process is not None]

    feed = FeedServer(pids)
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    telegram = RecordingTelegram(pids) if bot else None
    engine = make_engine(database_url)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        await feed.start()
        stack.push_async_callback(feed.stop)
        await stack.enter_async_context(twilio)
        if telegram is not None:
            await stack.enter_async_context(telegram)
        cluster = Cluster(root, database_url, engine, http, feed, twilio, telegram)
        cluster.instances = instances
        cluster.write_folder(rate_per_s=rate_per_s)
        code, output = await cluster.cli("db", "upgrade")
        assert code == 0, f"`alertcast db upgrade` failed ({code}):\n{output}"
        await cluster.add_subscribers(recipients)
        try:
            yield cluster
        finally:
            for instance in instances:
                await instance.stop()
