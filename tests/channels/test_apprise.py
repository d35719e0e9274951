"""The Apprise bridge with the real apprise package posting ``json://`` to local servers."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from alertcast.channels.apprise_bridge import AppriseChannel, from_config
from alertcast.channels.registry import ChannelContext
from alertcast.config import ChannelConfig
from alertcast.errors import ConfigError, Transient
from alertcast.ports import Channel, OutboundMessage
from tests.fakes.http_provider import FakeProvider

apprise = pytest.importorskip("apprise", reason="the optional extra alertcast[apprise]")

MESSAGE = OutboundMessage(parts=("SIMULACRO / EXERCISE Sismo", "parte 2"), subject="Sismo")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    """A JSON receiver: what Apprise's json:// plugin posts, recorded."""
    got: list[dict[str, object]] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(json.loads(await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"json://127.0.0.1:{runner.addresses[0][1]}/", got
    finally:
        await runner.cleanup()


def config(tmp_path: Path, **secrets: str) -> ChannelConfig:
    return ChannelConfig(name="bridge", kind="apprise", file=tmp_path / "a.toml", secrets=secrets)


async def test_sends_through_apprise(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    receiver: tuple[str, list[dict[str, object]]],
) -> None:
    url, got = receiver
    monkeypatch.setenv("APPRISE_TEST_URL", url)
    channel = from_config(config(tmp_path, url="APPRISE_TEST_URL"), ChannelContext(tmp_path))
    assert isinstance(channel, Channel)
    assert url not in repr(channel)
    try:
        receipt = await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert receipt.provider_message_id is None
    assert len(got) == 1
    assert got[0]["title"] == "Sismo"
    assert got[0]["message"] == "SIMULACRO / EXERCISE Sismo\n\nparte 2"


async def test_a_refusing_service_is_transient(tmp_path: Path) -> None:
    async with FakeProvider(errors=1.0, kinds=("error_500",)) as fake:
        port = fake.url.split(":")[2].split("/")[0]
        channel = AppriseChannel("bridge", f"json://127.0.0.1:{port}/hook", module=apprise)
        try:
            with pytest.raises(Transient):
                await channel.send(MESSAGE, "post")
        finally:
            await channel.aclose()
    assert fake.requests == 1


def test_missing_secret_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        from_config(config(tmp_path), ChannelContext(tmp_path))
    assert caught.value.problems[0].key == "secrets.url"


def test_missing_package_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # import apprise now raises ImportError
    with pytest.raises(ConfigError) as caught:
        from_config(config(tmp_path, url="X"), ChannelContext(tmp_path))
    assert "pip install 'alertcast[apprise]'" in str(caught.value)
