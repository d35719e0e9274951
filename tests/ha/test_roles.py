"""Process roles: ``serve --role`` runs only its share, and a bot consumes only under its lease."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.app import Runtime, serve
from alertcast.areas import AreaCatalogue
from alertcast.bot.runner import CitizenBot
from alertcast.bot.texts import consent_text
from alertcast.cli import main
from alertcast.config import ChannelConfig, Config, load_config
from alertcast.demo.fake_telegram import FakeTelegramAPI
from alertcast.ha.bots import LeasedBots, bot_lease_name
from alertcast.ha.roles import ALL_ROLES, ROLES, RoleError, parse_roles
from alertcast.store.engine import make_engine
from alertcast.store.tables import deliveries, feed_state, role_leases
from alertcast.subscribers.crypto import SubscriberKeys
from alertcast.subscribers.store import SubscriberStore
from tests.feeds.feed_server import FeedServer, atom_embedded, cap_alert

SAMPLES = Path(str(resources.files("alertcast.demo") / "samples"))
DRILL = SAMPLES / "01-sismo-simulacro.xml"
BOT_CHANNEL = "ciudadanos"
TOKEN_ENV = "ALERTCAST_TEST_ROLES_BOT_TOKEN"
SUBSCRIBER_KEY = base64.b64encode(bytes(range(32))).decode()
WAIT_S = 20.0


# --------------------------------------------------------------------------- parsing


def test_no_role_means_every_role() -> None:
    assert parse_roles([]) == ALL_ROLES == frozenset(ROLES)


def test_roles_are_repeatable_comma_separated_and_forgiving_about_case_and_spaces() -> None:
    assert parse_roles(["web"]) == {"web"}
    assert parse_roles(["web,worker", "bot"]) == {"web", "worker", "bot"}
    assert parse_roles([" Poller , WEB ", "web"]) == {"poller", "web"}


@pytest.mark.parametrize(
    ("values", "wrong"),
    [(["nope"], "'nope'"), (["web,wrker"], "'wrker'"), (["web", "all"], "'all'")],
)
def test_an_unknown_role_is_named_with_the_choices(
    values: list[str], wrong: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "en")
    with pytest.raises(RoleError) as caught:
        parse_roles(values)
    assert wrong in str(caught.value)
    assert "web, worker, poller, bot" in str(caught.value)


@pytest.mark.parametrize("value", ["", "web,", " , "])
def test_an_empty_role_name_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "en")
    with pytest.raises(RoleError, match="empty role name"):
        parse_roles([value])


def test_the_error_speaks_spanish_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "es")
    with pytest.raises(RoleError, match="rol desconocido 'web2'"):
        parse_roles(["web2"])


def test_serve_with_a_bad_role_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "en")
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--role", "web", "--role", "worker,webb"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --role: unknown role 'webb'" in err
    assert "web, worker, poller, bot" in err
    assert "Traceback" not in err


async def test_serve_refuses_an_unknown_role_before_starting_anything(tmp_path: Path) -> None:
    config = load_config(_write_config(tmp_path, f"sqlite:///{tmp_path / 'a.db'}"))
    with pytest.raises(RoleError):
        await serve(config, roles={"web", "cron"}, port=0)
    assert not (tmp_path / "a.db").exists()


def test_the_cli_passes_the_roles_to_serve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def fake_serve(config: Config, **kwargs: Any) -> None:
        seen.update(kwargs)

    monkeypatch.setattr("alertcast.app.serve", fake_serve)
    config = _write_config(tmp_path, f"sqlite:///{tmp_path / 'a.db'}")
    assert main(["serve", "--config", str(config), "--role", "web,worker", "--role", "web"]) == 0
    assert seen["roles"] == {"web", "worker"}
    assert main(["serve", "--config", str(config)]) == 0
    assert seen["roles"] == ALL_ROLES  # none given: all of them


# --------------------------------------------------------------------------- serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(root: Path, database_url: str, *, port: int = 0, feed_url: str = "") -> Path:
    """A drop folder, an HTTP feed (when given), the console channel and a drills route."""
    (root / "feeds").mkdir(exist_ok=True)
    (root / "channels").mkdir(exist_ok=True)
    (root / "feeds" / "inbox.toml").write_text(
        'kind = "cap-dir"\npath = "data/inbox"\ninterval_s = 0.05\n', encoding="utf-8"
    )
    if feed_url:
        (root / "feeds" / "avisos.toml").write_text(
            f'kind = "cap-index"\nurl = "{feed_url}"\ninterval_s = 0.2\njitter = 0\n',
            encoding="utf-8",
        )
    (root / "channels" / "console.toml").write_text(
        'kind = "console"\n[options]\ntest_only = true\n', encoding="utf-8"
    )
    (root / "rules.toml").write_text(
        '[route]\n[[route.routes]]\nname = "drills"\nchannels = ["console"]\n'
        'exercise = true\ntest_audience = "channel-post"\napproval = "auto"\n',
        encoding="utf-8",
    )
    cfg = root / "alertcast.toml"
    cfg.write_text(
        f'[service]\nhost = "127.0.0.1"\nport = {port}\nlog_format = "json"\n'
        f'log_level = "warning"\n\n[database]\nurl = "{database_url}"\n',
        encoding="utf-8",
    )
    return cfg


def _add_bot(root: Path, api_url: str) -> None:
    (root / "channels" / f"{BOT_CHANNEL}.toml").write_text(
        f'kind = "telegram"\n[options]\napi_url = "{api_url}"\nbot_mode = "polling"\n'
        f'[secrets]\ntoken = "{TOKEN_ENV}"\n',
        encoding="utf-8",
    )


async def until(predicate: Callable[[], Any], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


async def count_rows(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as running:
        running.publish("/index.atom", atom_embedded([cap_alert("ROLES-1")]))
        yield running


async def test_serve_role_web_answers_health_and_readiness_and_polls_no_feed(
    database_url: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    config = load_config(
        _write_config(tmp_path, database_url, feed_url=feed_server.link("/index.atom"))
    )
    inbox = config.service.data_dir / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "drill.xml").write_bytes(DRILL.read_bytes())
    stop = asyncio.Event()
    seen: dict[str, Any] = {}

    async def scenario(runtime: Runtime) -> None:
        try:
            async with aiohttp.ClientSession() as http:
                for path in ("/healthz", "/readyz", "/metrics", "/"):
                    async with http.get(runtime.site_url + path) as response:
                        seen[path] = (response.status, await response.text())
            seen["poller"] = runtime.poller
            seen["feed_rows"] = await count_rows(runtime.engine, feed_state)
            seen["officers"] = runtime.officers is not None
        finally:
            stop.set()

    await asyncio.wait_for(
        serve(config, roles={"web"}, port=0, stop=stop, on_ready=scenario), timeout=60
    )
    status, body = seen["/healthz"]
    assert status == 200 and json.loads(body)["status"] == "alive"
    status, body = seen["/readyz"]
    assert status == 200
    assert json.loads(body)["checks"] == {
        "database": "ok",
        "migrations": "current",
        "roles": {"roles": ["web"], "leases": {}},
    }
    status, body = seen["/metrics"]
    assert status == 200 and 'alertcast_info{roles="web"' in body
    assert seen["/"][0] == 200
    assert seen["officers"] is True  # the officers' desk is served
    # No poller: no feed fetched, no feed lease taken, the drop folder left alone.
    assert seen["poller"] is None
    assert feed_server.hits("/index.atom") == []
    assert seen["feed_rows"] == 0
    assert (inbox / "drill.xml").is_file()
    assert not (config.service.data_dir / "outbox").exists()


async def test_serve_role_poller_polls_and_plans_but_sends_nothing_and_serves_only_probes(
    database_url: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    port = free_port()
    config = load_config(
        _write_config(tmp_path, database_url, port=port, feed_url=feed_server.link("/index.atom"))
    )
    inbox = config.service.data_dir / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "drill.xml").write_bytes(DRILL.read_bytes())
    stop = asyncio.Event()
    seen: dict[str, Any] = {}

    async def scenario(runtime: Runtime) -> None:
        try:

            async def polled() -> bool:
                return bool(feed_server.hits("/index.atom")) and not (inbox / "drill.xml").exists()

            await until(polled, "the feed and the drop folder to be read")
            seen["operations_only"] = await _operations_only(port)
        finally:
            stop.set()

    await asyncio.wait_for(
        serve(config, roles={"poller"}, stop=stop, on_ready=scenario), timeout=60
    )
    assert seen["operations_only"] is True
    assert (inbox / "done" / "drill.xml").is_file()
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            states = (await conn.execute(select(deliveries.c.state))).scalars().all()
    finally:
        await engine.dispose()
    assert states == ["pending"]  # planned at once by the poller, left for a worker to send
    assert not (config.service.data_dir / "outbox").exists()


async def _operations_only(port: int) -> bool:
    """True when ``port`` answers the probes and ``/metrics``, and nothing else is routed."""
    async with aiohttp.ClientSession() as http:
        answers = {}
        for path in (
            "/healthz",
            "/readyz",
            "/metrics",
            "/",
            "/console/",
            "/api/v1/me",
            "/cap/index.atom",
        ):
            async with http.get(f"http://127.0.0.1:{port}{path}") as response:
                answers[path] = response.status
    return answers == {
        "/healthz": 200,
        "/readyz": 200,
        "/metrics": 200,
        "/": 404,
        "/console/": 404,
        "/api/v1/me": 404,
        "/cap/index.atom": 404,
    }


async def test_serve_role_worker_sends_and_serves_only_probes_and_metrics(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = load_config(_write_config(tmp_path, database_url, port=port))
    inbox = config.service.data_dir / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "drill.xml").write_bytes(DRILL.read_bytes())
    outbox = config.service.data_dir / "outbox" / "console.jsonl"
    stop = asyncio.Event()
    seen: dict[str, Any] = {}

    async def scenario(runtime: Runtime) -> None:
        try:
            assert runtime.site_url == ""
            outcome = await runtime.ingestor.ingest_bytes(
                DRILL.read_bytes(), source="test:drill", actor="test"
            )
            assert len(outcome.new) == 1

            async def sent() -> bool:
                return outbox.is_file() and outbox.read_text(encoding="utf-8").count("\n") >= 1

            await until(sent, "the worker to send the drill")
            seen["operations_only"] = await _operations_only(port)
            seen["poller"] = runtime.poller
        finally:
            stop.set()

    await asyncio.wait_for(
        serve(config, roles={"worker"}, stop=stop, on_ready=scenario), timeout=60
    )
    assert seen["operations_only"] is True
    assert seen["poller"] is None
    assert (inbox / "drill.xml").is_file()  # the drop folder is the poller's
    (announced,) = [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]
    assert announced["text"].startswith("SIMULACRO")


# --------------------------------------------------------------------------- bots


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI(limits=False) as api:
        yield api


def _bot(fake: FakeTelegramAPI, engine: AsyncEngine) -> CitizenBot:
    channel = ChannelConfig(
        name=BOT_CHANNEL,
        kind="telegram",
        file=Path(f"channels/{BOT_CHANNEL}.toml"),
        secrets={"token": TOKEN_ENV},
        options={"api_url": fake.api_url, "bot_mode": "polling"},
    )
    store = SubscriberStore(engine, SubscriberKeys.from_env())
    return CitizenBot(channel, store, AreaCatalogue(engine), poll_timeout_s=1)


@pytest.fixture
def _bot_secrets(monkeypatch: pytest.MonkeyPatch, fake: FakeTelegramAPI) -> None:
    monkeypatch.setenv(TOKEN_ENV, fake.token)
    monkeypatch.setenv("ALERTCAST_SUBSCRIBER_KEY", SUBSCRIBER_KEY)
    monkeypatch.setenv("ALERTCAST_LANG", "es")


async def _answered(fake: FakeTelegramAPI, chat_id: int, count: int) -> None:
    async def done() -> bool:
        return sum(1 for a in fake.activity if a["chat_id"] == chat_id) >= count

    await until(done, f"the bot to answer chat {chat_id}")


@pytest.mark.usefixtures("_bot_secrets")
async def test_the_bot_consumer_runs_only_on_the_lease_holder_and_moves_to_the_standby(
    fake: FakeTelegramAPI, engine: AsyncEngine, database_url: str
) -> None:
    other_engine = make_engine(database_url)  # each instance has its own pool
    bot_a, bot_b = _bot(fake, engine), _bot(fake, other_engine)
    a = LeasedBots([bot_a], engine, "instance-a", ttl_s=1.0, renew_every_s=0.1)
    b = LeasedBots([bot_b], other_engine, "instance-b", ttl_s=1.0, renew_every_s=0.1)
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    task_a = asyncio.create_task(a.run(stop_a))
    task_b: asyncio.Task[None] | None = None

    async def a_consumes() -> bool:
        return bot_a.consuming

    try:
        await until(a_consumes, "instance A to consume")
        task_b = asyncio.create_task(b.run(stop_b))

        async def b_stood_by() -> bool:
            holder = await b.leases[0].holder()
            return holder is not None and holder.owner == "instance-a"

        await until(b_stood_by, "instance B to stand by")
        fake.push_message(1001, "/start", language_code="es")
        await _answered(fake, 1001, 2)
        assert bot_a.consuming and not bot_b.consuming
        assert bot_a.application.updater is not None and bot_a.application.updater.running
        with pytest.raises(RuntimeError, match="not started"):
            bot_b.application  # noqa: B018 - a standby has not even opened the bot

        # Instance A dies without a word: its consumer stops, its lease is not released.
        async def no_release() -> None:
            return None

        a.leases[0].release = no_release  # type: ignore[method-assign]
        stop_a.set()
        await task_a

        async def b_consumes() -> bool:
            return bot_b.consuming

        await until(b_consumes, "instance B to take the bot over")
        async with engine.connect() as conn:
            owner = (
                await conn.execute(
                    select(role_leases.c.owner).where(
                        role_leases.c.name == bot_lease_name(BOT_CHANNEL)
                    )
                )
            ).scalar_one()
        assert owner == "instance-b"
        assert bot_a.consuming is False
        fake.push_message(1002, "/start", language_code="es")
        await _answered(fake, 1002, 2)
        first = next(a["text"] for a in fake.activity if a["chat_id"] == 1002)
        assert first == consent_text("es")
    finally:
        stop_a.set()
        stop_b.set()
        await asyncio.gather(task_a, *([task_b] if task_b is not None else []))
        for bot in (bot_a, bot_b):
            await bot.stop()
        await other_engine.dispose()
    # Each person was answered once: nobody's /start was handled by both instances.
    assert sum(1 for a in fake.activity if a["chat_id"] == 1001) == 2
    assert sum(1 for a in fake.activity if a["chat_id"] == 1002) == 2


@pytest.mark.usefixtures("_bot_secrets")
async def test_two_services_with_the_bot_role_show_one_holder_and_one_standby(
    fake: FakeTelegramAPI, database_url: str, tmp_path: Path
) -> None:
    configs = []
    for name in ("a", "b"):
        root = tmp_path / name
        root.mkdir()
        cfg = _write_config(root, database_url)
        _add_bot(root, fake.api_url)
        configs.append(load_config(cfg))
    stops = [asyncio.Event(), asyncio.Event()]
    ready: list[Runtime] = []
    readiness: dict[str, Any] = {}

    async def keep(runtime: Runtime) -> None:
        ready.append(runtime)

    async def probe() -> None:
        async def both_up() -> bool:
            return len(ready) == 2

        await until(both_up, "both services to start")

        async def settled() -> bool:
            async with aiohttp.ClientSession() as http:
                states = []
                for runtime in ready:
                    async with http.get(runtime.site_url + "/readyz") as response:
                        body = await response.json()
                        readiness[runtime.instance] = (response.status, body)
                        states.append(body["checks"]["roles"]["leases"][f"bot:{BOT_CHANNEL}"])
            return sorted(states) == ["held", "standby"]

        try:
            await until(settled, "one holder and one standby")
        finally:
            for stop in stops:
                stop.set()

    await asyncio.wait_for(
        asyncio.gather(
            *(
                serve(config, roles={"web", "bot"}, port=0, stop=stop, on_ready=keep)
                for config, stop in zip(configs, stops, strict=True)
            ),
            probe(),
        ),
        timeout=60,
    )
    assert len(readiness) == 2
    for status, body in readiness.values():
        assert status == 200  # a standby is ready: it waits by design
        assert body["checks"]["roles"]["roles"] == ["web", "bot"]
    assert fake.calls_to("getUpdates")


SECRET_ENV = "ALERTCAST_TEST_ROLES_BOT_SECRET"
SECRET = "roles-webhook_secret"


@pytest.mark.usefixtures("_bot_secrets")
async def test_a_webhook_bot_receives_on_a_web_instance_and_only_the_bot_role_registers_it(
    fake: FakeTelegramAPI, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    cfg = _write_config(tmp_path, database_url)
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace(
            "[service]\n", '[service]\npublic_url = "https://alertas.example.org"\n'
        ),
        encoding="utf-8",
    )
    (tmp_path / "channels" / f"{BOT_CHANNEL}.toml").write_text(
        f'kind = "telegram"\n[options]\napi_url = "{fake.api_url}"\nbot_mode = "webhook"\n'
        f'[secrets]\ntoken = "{TOKEN_ENV}"\nwebhook_secret = "{SECRET_ENV}"\n',
        encoding="utf-8",
    )
    config = load_config(cfg)
    seen: dict[str, Any] = {}

    async def web_only(runtime: Runtime) -> None:
        try:
            fake.push_message(2001, "/start", language_code="es")
            chat = fake.chats[2001]
            update = {"update_id": 1, "message": chat.messages[max(chat.messages)]}
            async with aiohttp.ClientSession() as http:
                async with http.post(
                    f"{runtime.site_url}/webhooks/telegram/{BOT_CHANNEL}",
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                ) as response:
                    seen["status"] = response.status
                async with http.get(runtime.site_url + "/readyz") as response:
                    seen["readyz"] = await response.json()
        finally:
            stop.set()

    stop = asyncio.Event()
    await asyncio.wait_for(
        serve(config, roles={"web"}, port=0, stop=stop, on_ready=web_only), timeout=60
    )
    assert seen["status"] == 200
    assert sum(1 for a in fake.activity if a["chat_id"] == 2001) == 2  # handled here
    assert seen["readyz"]["checks"]["roles"] == {"roles": ["web"], "leases": {}}
    assert fake.calls_to("setWebhook") == []  # a web instance never registers the webhook
    assert fake.webhook is None

    async def bot_role(runtime: Runtime) -> None:
        async def registered() -> bool:
            return fake.webhook is not None

        try:
            await until(registered, "the lease holder to register the webhook")
        finally:
            stop.set()

    stop = asyncio.Event()
    await asyncio.wait_for(serve(config, roles={"bot"}, stop=stop, on_ready=bot_role), timeout=60)
    assert fake.webhook is not None
    assert fake.webhook["url"] == f"https://alertas.example.org/webhooks/telegram/{BOT_CHANNEL}"
    assert len(fake.calls_to("setWebhook")) == 1
    assert fake.calls_to("getUpdates") == []  # webhook mode: nobody polls
