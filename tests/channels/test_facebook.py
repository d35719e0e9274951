"""The Facebook Page channel over real HTTP against the fake Graph API.

Shapes follow the Graph API Pages reference: ``POST /{page-id}/feed``
answers ``{"id": "{page-id}_{post-id}"}``, an edit (``POST /{post-id}``) and
a ``DELETE`` answer ``{"success": true}``; errors are
``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``;
throttling is told by code (4, 17, 32, 613) with
``X-Business-Use-Case-Usage`` naming ``estimated_time_to_regain_access``
in minutes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from alertcast.channels.facebook import FacebookChannel, from_config, regain_access_s
from alertcast.channels.registry import ChannelContext
from alertcast.config import ChannelConfig
from alertcast.errors import ConfigError, Permanent, RateLimited, SentButUnknown, Transient
from alertcast.ports import OutboundMessage
from tests.fakes.graph_api import FakeGraph

MESSAGE = OutboundMessage(
    parts=("SISMO M6.1 en Oaxaca: aléjese de muros y ventanas.",),
    language="es",
    severity="Extreme",
    extra={"alert_id": 7},
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraph]:
    async with FakeGraph() as server:
        yield server


def channel_for(fake: FakeGraph, **kwargs: object) -> FacebookChannel:
    return FacebookChannel(
        "facebook",
        page_id=fake.page_id,
        page_token=fake.token,
        api_url=fake.url,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_send_publishes_on_the_page_with_a_link(fake: FakeGraph) -> None:
    channel = channel_for(fake, site_url="https://alertas.example.gob.mx/", api_version="v21.0")
    try:
        receipt = await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    post_id = fake.published[0]
    assert receipt.provider_message_id == post_id
    assert post_id.startswith(f"{fake.page_id}_")
    assert fake.posts[post_id] == {
        "message": MESSAGE.parts[0],
        "link": "https://alertas.example.gob.mx/alerts/7",
    }
    assert fake.versions == ["v21.0"]


async def test_several_parts_make_one_post(fake: FakeGraph) -> None:
    channel = channel_for(fake)
    try:
        await channel.send(OutboundMessage(parts=("uno", "dos")), "post")
    finally:
        await channel.aclose()
    assert [p["message"] for p in fake.posts.values()] == ["uno\n\ndos"]
    assert next(iter(fake.posts.values()))["link"] is None


async def test_a_wrong_token_is_permanent(fake: FakeGraph) -> None:
    channel = FacebookChannel("facebook", page_id=fake.page_id, page_token="x", api_url=fake.url)
    try:
        with pytest.raises(Permanent, match="190"):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()


async def test_an_expired_token_warns_the_operator(fake: FakeGraph) -> None:
    fake.faults = ["token_expired"]
    channel = channel_for(fake)
    try:
        with structlog.testing.capture_logs() as logs, pytest.raises(Permanent, match="expired"):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    warnings = [e for e in logs if e["event"] == "facebook.token_invalid"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["subcode"] == 463
    assert fake.token not in json.dumps(logs, default=str)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("app_rate_limited", RateLimited),
        ("user_rate_limited", RateLimited),
        ("page_rate_limited", RateLimited),
        ("policy_rate_limited", RateLimited),
        ("unknown_error", Transient),
        ("service_error", Transient),
        ("invalid_parameter", Permanent),
        ("blocked", Permanent),
    ],
)
async def test_graph_error_codes_map_to_error_classes(
    fake: FakeGraph, fault: str, error: type[Exception]
) -> None:
    fake.faults = [fault]
    channel = channel_for(fake)
    try:
        with pytest.raises(error):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert fake.published == []


async def test_throttling_waits_the_estimated_time_to_regain_access(fake: FakeGraph) -> None:
    fake.faults = ["page_rate_limited", "page_rate_limited"]
    fake.regain_minutes = 7
    channel = channel_for(fake)
    try:
        with pytest.raises(RateLimited) as caught:
            await channel.send(MESSAGE, "post")
        assert caught.value.retry_after == 7 * 60
        fake.regain_minutes = 0  # no estimate in the header: a minute
        with pytest.raises(RateLimited) as caught:
            await channel.send(MESSAGE, "post")
        assert caught.value.retry_after == 60
    finally:
        await channel.aclose()


def test_regain_access_reads_every_usage_header() -> None:
    buc = {"1": [{"type": "pages", "estimated_time_to_regain_access": 3}]}
    assert regain_access_s({"X-Business-Use-Case-Usage": json.dumps(buc)}) == 180
    app = {"call_count": 100, "estimated_time_to_regain_access": 10}
    assert regain_access_s({"X-App-Usage": json.dumps(app)}) == 600
    assert regain_access_s({"X-App-Usage": "not json"}) is None
    assert regain_access_s({}) is None


async def test_timeout_after_sending_is_sent_but_unknown(fake: FakeGraph) -> None:
    fake.faults = ["timeout"]
    channel = channel_for(fake, timeout_s=0.3)
    try:
        with pytest.raises(SentButUnknown):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert len(fake.published) == 1


async def test_update_edits_and_cancel_deletes(fake: FakeGraph) -> None:
    channel = channel_for(fake)
    update = OutboundMessage(parts=("ACTUALIZACIÓN: M6.3",))
    try:
        assert channel.follow_up_for("Update") == "edit"
        assert channel.follow_up_for("Cancel") == "delete"
        first = await channel.send(MESSAGE, "post")
        post_id = str(first.provider_message_id)
        edited = await channel.edit(post_id, update, "post")
        await channel.delete(post_id, "post")
        with pytest.raises(Permanent, match="does not exist"):
            await channel.edit(post_id, update, "post")
        with pytest.raises(Permanent):
            await channel.delete(post_id, "post")
    finally:
        await channel.aclose()
    assert edited.provider_message_id == post_id
    assert fake.edits == [(post_id, "ACTUALIZACIÓN: M6.3")]
    assert fake.deleted == [post_id]


def test_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_FB_TOKEN", "page-secret")
    context = ChannelContext(data_dir=tmp_path, site_url="https://alertas.example.org")
    config = ChannelConfig(
        name="fb",
        kind="facebook",
        file=tmp_path / "fb.toml",
        secrets={"page_token": "TEST_FB_TOKEN"},
        options={"page_id": "1234567890", "api_version": "v22.0"},
    )
    channel = from_config(config, context)
    assert channel.link_for(MESSAGE) == "https://alertas.example.org/alerts/7"
    assert "page-secret" not in repr(channel)
    bad = ChannelConfig(
        name="fb",
        kind="facebook",
        file=tmp_path / "fb.toml",
        options={"page_id": "my page", "api_version": "21", "link_alert_page": "yes"},
    )
    with pytest.raises(ConfigError) as caught:
        from_config(bad, context)
    assert {p.key for p in caught.value.problems} == {
        "options.page_id",
        "options.api_version",
        "options.link_alert_page",
        "secrets.page_token",
    }
