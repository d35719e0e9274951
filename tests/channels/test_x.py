"""The X channel over real HTTP against the fake API v2, which checks every OAuth 1.0a signature.

Shapes follow X's API v2 reference: ``POST /2/tweets`` takes
``{"text", "reply": {"in_reply_to_tweet_id"}}`` and answers 201
``{"data": {"id", "text"}}``; ``DELETE /2/tweets/:id`` answers
``{"data": {"deleted": true}}``; errors are ``{"title", "detail", "type",
"status"}``; 429s carry ``x-rate-limit-reset`` in epoch seconds.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from alertcast.channels.registry import ChannelContext
from alertcast.channels.x import (
    XChannel,
    from_config,
    hmac_sha1_signature,
    signature_base_string,
)
from alertcast.config import ChannelConfig
from alertcast.errors import ConfigError, Permanent, RateLimited, SentButUnknown, Transient
from alertcast.ports import OutboundMessage
from tests.fakes.x_api import FakeX, parse_oauth_header

MESSAGE = OutboundMessage(
    parts=("SISMO M6.1: aléjese de muros https://alertas.example.gob.mx/a/7",),
    language="es",
    severity="Extreme",
    extra={"alert_id": 7, "delivery_id": 70},
)
THREAD = OutboundMessage(
    parts=("1/3 Evacúe la costa.", "2/3 Suba a zonas altas.", "3/3 Siga a Protección Civil."),
    extra={"alert_id": 8, "delivery_id": 80},
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeX]:
    async with FakeX() as server:
        yield server


def channel_for(fake: FakeX, **kwargs: object) -> XChannel:
    return XChannel(
        "x",
        consumer_key=fake.consumer_key,
        consumer_secret=fake.consumer_secret,
        access_token=fake.access_token,
        access_token_secret=fake.access_token_secret,
        api_url=fake.url,
        **kwargs,  # type: ignore[arg-type]
    )


def test_signature_matches_the_documented_example() -> None:
    """X's "Creating a signature" walk-through: its inputs give exactly its signature."""
    params = [
        ("include_entities", "true"),
        ("status", "Hello Ladies + Gentlemen, a signed OAuth request!"),
        ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
        ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "1318622958"),
        ("oauth_token", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"),
        ("oauth_version", "1.0"),
    ]
    base = signature_base_string("POST", "https://api.twitter.com/1.1/statuses/update.json", params)
    assert base.startswith("POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&")
    assert "status%3DHello%2520Ladies%2520%252B%2520Gentlemen" in base
    signature = hmac_sha1_signature(
        base,
        "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
        "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
    )
    assert signature == "hCtSmYh+iHYCEqBWrE7C7hYmtUk="


async def test_send_is_signed_and_posted(fake: FakeX) -> None:
    channel = channel_for(fake)
    try:
        receipt = await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert fake.rejected_signatures == 0
    assert receipt.provider_message_id == fake.posted[0]
    assert fake.tweets[fake.posted[0]]["text"] == MESSAGE.parts[0]
    header = channel.authorization("POST", f"{fake.url}/2/tweets")
    params = parse_oauth_header(header)
    assert params is not None
    assert params["oauth_signature_method"] == "HMAC-SHA1"
    assert fake.consumer_secret not in header and fake.access_token_secret not in header


async def test_the_fake_rejects_a_wrong_signature(fake: FakeX) -> None:
    channel = XChannel(
        "x",
        consumer_key=fake.consumer_key,
        consumer_secret="not-the-secret",
        access_token=fake.access_token,
        access_token_secret=fake.access_token_secret,
        api_url=fake.url,
    )
    try:
        with pytest.raises(Permanent, match="OAuth"):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert fake.rejected_signatures == 1
    assert fake.posted == []


async def test_a_stale_clock_is_refused(fake: FakeX) -> None:
    channel = channel_for(fake, clock=lambda: time.time() - 3600)
    try:
        with pytest.raises(Permanent, match="clock"):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert fake.rejected_signatures == 1


async def test_several_parts_are_a_reply_chain(fake: FakeX) -> None:
    channel = channel_for(fake)
    try:
        receipt = await channel.send(THREAD, "post")
    finally:
        await channel.aclose()
    first, second, third = fake.posted
    assert receipt.provider_message_id == first
    assert fake.tweets[first]["in_reply_to"] is None
    assert fake.tweets[second]["in_reply_to"] == first
    assert fake.tweets[third]["in_reply_to"] == second


async def test_a_cut_thread_continues_instead_of_reposting(fake: FakeX) -> None:
    fake.faults = [None, "server_error"]
    channel = channel_for(fake)
    try:
        with pytest.raises(Transient):
            await channel.send(THREAD, "post")
        await channel.send(THREAD, "post")
    finally:
        await channel.aclose()
    assert len(fake.posted) == 3  # no duplicate refused, nothing posted twice


async def test_duplicate_content_is_permanent(fake: FakeX) -> None:
    channel = channel_for(fake)
    other = OutboundMessage(parts=MESSAGE.parts, extra={"alert_id": 99})
    try:
        await channel.send(MESSAGE, "post")
        with pytest.raises(Permanent, match="duplicate"):
            await channel.send(other, "post")
    finally:
        await channel.aclose()


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("unauthorized", Permanent),
        ("forbidden", Permanent),
        ("server_error", Transient),
        ("rate_limited", RateLimited),
    ],
)
async def test_failures_map_to_error_classes(
    fake: FakeX, fault: str, error: type[Exception]
) -> None:
    fake.faults = [fault]
    channel = channel_for(fake)
    try:
        with pytest.raises(error):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()


async def test_429_waits_for_x_rate_limit_reset(fake: FakeX) -> None:
    fake.faults = ["rate_limited"]
    fake.reset_in_s = 300
    channel = channel_for(fake)
    try:
        with pytest.raises(RateLimited) as caught:
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert 290 <= caught.value.retry_after <= 300


async def test_a_spent_daily_quota_waits_for_its_own_reset(fake: FakeX) -> None:
    fake.faults = ["daily_limit"]
    channel = channel_for(fake)
    try:
        with pytest.raises(RateLimited) as caught:
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert caught.value.retry_after > 80_000


async def test_a_spent_window_pauses_the_next_send(fake: FakeX) -> None:
    fake.remaining = 1
    channel = channel_for(fake)
    try:
        await channel.send(MESSAGE, "post")
        with pytest.raises(RateLimited):
            await channel.send(THREAD, "post")
    finally:
        await channel.aclose()
    assert len(fake.posted) == 1


async def test_timeout_after_sending_is_sent_but_unknown(fake: FakeX) -> None:
    fake.faults = ["timeout"]
    channel = channel_for(fake, timeout_s=0.3)
    try:
        with pytest.raises(SentButUnknown):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()


async def test_follow_ups_reply_on_update_and_delete_on_cancel(fake: FakeX) -> None:
    channel = channel_for(fake)
    update = OutboundMessage(parts=("ACTUALIZACIÓN: M6.3",))
    try:
        assert channel.follow_up_for("Update") == "reply"
        assert channel.follow_up_for("Cancel") == "delete"
        assert channel.follow_up_for("Cancel") in channel.follow_ups
        first = await channel.send(MESSAGE, "post")
        assert first.provider_message_id is not None
        replied = await channel.reply(first.provider_message_id, update, "post")
        await channel.delete(first.provider_message_id, "post")
        with pytest.raises(Permanent):
            await channel.delete(first.provider_message_id, "post")
        with pytest.raises(Permanent):
            await channel.edit(first.provider_message_id, update, "post")
    finally:
        await channel.aclose()
    assert fake.tweets[str(replied.provider_message_id)]["in_reply_to"] == first.provider_message_id
    assert fake.deleted == [first.provider_message_id]


def test_from_config_needs_the_four_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for role in ("CK", "CS", "AT", "ATS"):
        monkeypatch.setenv(f"TEST_X_{role}", role.lower())
    config = ChannelConfig(
        name="x",
        kind="x",
        file=tmp_path / "x.toml",
        secrets={
            "consumer_key": "TEST_X_CK",
            "consumer_secret": "TEST_X_CS",
            "access_token": "TEST_X_AT",
            "access_token_secret": "TEST_X_ATS",
        },
    )
    channel = from_config(config, ChannelContext(data_dir=tmp_path))
    assert channel.api_url == "https://api.x.com"
    assert "cs" not in repr(channel).lower().replace("xchannel", "")
    missing = ChannelConfig(name="x", kind="x", file=tmp_path / "x.toml")
    with pytest.raises(ConfigError) as caught:
        from_config(missing, ChannelContext(data_dir=tmp_path))
    assert len(caught.value.problems) == 4
