"""The Bluesky channel over real HTTP against the fake PDS.

Shapes follow the atproto lexicons: ``com.atproto.server.createSession``
answers ``{did, handle, accessJwt, refreshJwt}``; ``createRecord`` takes
``{repo, collection, record}`` and answers ``{uri, cid}``; an
``app.bsky.feed.post`` record has ``$type``, ``text``, ``createdAt``,
``langs``, link ``facets`` indexed in UTF-8 bytes and ``reply.root`` /
``reply.parent`` strong refs; errors are ``{"error", "message"}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from alertcast.channels.bluesky import BlueskyChannel, PostRef, from_config, link_facets
from alertcast.channels.registry import ChannelContext
from alertcast.config import ChannelConfig
from alertcast.errors import ConfigError, Permanent, RateLimited, SentButUnknown, Transient
from alertcast.ports import OutboundMessage
from tests.fakes.bluesky_pds import FakePDS

MESSAGE = OutboundMessage(
    parts=("⚠️ SISMO M6.1: aléjese de muros. Más: alertas.example.gob.mx/a/7",),
    language="es-MX",
    severity="Extreme",
    extra={"alert_id": 7, "delivery_id": 70},
)
THREAD = OutboundMessage(
    parts=("1/3 Evacúe la costa.", "2/3 Suba a zonas altas.", "3/3 https://example.org/x"),
    language="es",
    extra={"alert_id": 8, "delivery_id": 80},
)


@pytest.fixture
async def fake() -> AsyncIterator[FakePDS]:
    async with FakePDS() as server:
        yield server


def channel_for(fake: FakePDS, **kwargs: object) -> BlueskyChannel:
    return BlueskyChannel(
        "bluesky",
        identifier=fake.identifier,
        app_password=fake.password,
        api_url=fake.url,
        **kwargs,  # type: ignore[arg-type]
    )


def test_link_facets_use_utf8_byte_offsets() -> None:
    text = "⚠️ Más: alertas.example.gob.mx/a/7 y https://example.org/ñ."
    facets = link_facets(text)
    raw = text.encode("utf-8")
    spans = [raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode() for f in facets]
    assert spans == ["alertas.example.gob.mx/a/7", "https://example.org/ñ"]
    uris = [f["features"][0]["uri"] for f in facets]
    assert uris == ["https://alertas.example.gob.mx/a/7", "https://example.org/ñ"]
    assert facets[0]["features"][0]["$type"] == "app.bsky.richtext.facet#link"
    # A link cut for display no longer says where it points: left as text.
    assert link_facets("Más: alertas.example.gob.mx/alert…") == []


async def test_send_logs_in_once_and_creates_a_post_record(fake: FakePDS) -> None:
    channel = channel_for(fake)
    try:
        receipt = await channel.send(MESSAGE, "post")
        await channel.send(OutboundMessage(parts=("otro",), extra={"alert_id": 9}), "post")
    finally:
        await channel.aclose()
    assert fake.sessions_created == 1
    uri = fake.posted[0]
    record = fake.records[uri.rsplit("/", 1)[1]]
    assert record["$type"] == "app.bsky.feed.post"
    assert record["text"] == MESSAGE.parts[0]
    assert record["langs"] == ["es-MX"]
    assert record["createdAt"].endswith("Z")
    assert record["facets"][0]["features"][0]["uri"] == "https://alertas.example.gob.mx/a/7"
    ref = PostRef.decode(str(receipt.provider_message_id))
    assert ref.uri == uri and ref.cid.startswith("bafy")
    assert ref.rkey == uri.rsplit("/", 1)[1]


async def test_facets_given_with_the_message_are_used(fake: FakePDS) -> None:
    shown = "Más: example.org/alerta-larg…"
    start = len("Más: ".encode())
    link = {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org/alerta-larga/7"}
    given = [{"index": {"byteStart": start, "byteEnd": len(shown.encode())}, "features": [link]}]
    message = OutboundMessage(parts=(shown,), extra={"facets": [given]})
    channel = channel_for(fake)
    try:
        await channel.send(message, "post")
    finally:
        await channel.aclose()
    assert next(iter(fake.records.values()))["facets"] == given


async def test_several_parts_are_a_thread_with_root_and_parent(fake: FakePDS) -> None:
    channel = channel_for(fake)
    try:
        receipt = await channel.send(THREAD, "post")
    finally:
        await channel.aclose()
    first, second, third = (fake.records[u.rsplit("/", 1)[1]] for u in fake.posted)
    root = PostRef.decode(str(receipt.provider_message_id))
    assert "reply" not in first
    assert second["reply"]["root"] == {"uri": root.uri, "cid": root.cid}
    assert second["reply"]["parent"] == {"uri": root.uri, "cid": root.cid}
    assert third["reply"]["root"]["uri"] == root.uri
    assert third["reply"]["parent"]["uri"] == fake.posted[1]


async def test_an_expired_access_token_is_refreshed_once(fake: FakePDS) -> None:
    channel = channel_for(fake)
    try:
        await channel.send(MESSAGE, "post")
        fake.expire_access()
        await channel.send(THREAD, "post")
        fake.expire_access()
        fake.expire_refresh()  # refresh refused as well: a new login
        await channel.send(OutboundMessage(parts=("tres",)), "post")
    finally:
        await channel.aclose()
    assert fake.refreshes == 1
    assert fake.sessions_created == 2
    assert len(fake.posted) == 5


async def test_a_wrong_app_password_is_permanent(fake: FakePDS) -> None:
    channel = BlueskyChannel(
        "bluesky", identifier=fake.identifier, app_password="wrong", api_url=fake.url
    )
    try:
        with pytest.raises(Permanent, match="AuthenticationRequired"):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("invalid_request", Permanent),
        ("auth_required", Permanent),
        ("server_error", Transient),
        ("rate_limited", RateLimited),
    ],
)
async def test_failures_map_to_error_classes(
    fake: FakePDS, fault: str, error: type[Exception]
) -> None:
    fake.faults = [fault]
    channel = channel_for(fake)
    try:
        with pytest.raises(error):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert fake.posted == []


async def test_429_waits_for_ratelimit_reset(fake: FakePDS) -> None:
    fake.faults = ["rate_limited"]
    channel = channel_for(fake)
    try:
        with pytest.raises(RateLimited) as caught:
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()
    assert 110 <= caught.value.retry_after <= 120


async def test_a_record_the_pds_refuses_is_permanent(fake: FakePDS) -> None:
    channel = channel_for(fake)
    try:
        with pytest.raises(Permanent, match="InvalidRequest"):
            await channel.send(OutboundMessage(parts=("x" * 301,)), "post")
    finally:
        await channel.aclose()


async def test_timeout_after_sending_is_sent_but_unknown(fake: FakePDS) -> None:
    channel = channel_for(fake, timeout_s=0.3)
    try:
        await channel.send(OutboundMessage(parts=("uno",)), "post")  # logs in first
        fake.faults = ["timeout"]
        with pytest.raises(SentButUnknown):
            await channel.send(MESSAGE, "post")
    finally:
        await channel.aclose()


async def test_update_replies_and_cancel_deletes(fake: FakePDS) -> None:
    channel = channel_for(fake)
    update = OutboundMessage(parts=("ACTUALIZACIÓN: M6.3",))
    again = OutboundMessage(parts=("SEGUNDA ACTUALIZACIÓN",))
    try:
        assert channel.follow_up_for("Update") == "reply"
        assert channel.follow_up_for("Cancel") == "delete"
        first = await channel.send(MESSAGE, "post")
        earlier = str(first.provider_message_id)
        replied = await channel.reply(earlier, update, "post")
        second = await channel.reply(str(replied.provider_message_id), again, "post")
        await channel.delete(earlier, "post")
        with pytest.raises(Permanent):
            await channel.edit(earlier, update, "post")
        with pytest.raises(Permanent):
            await channel.delete("not-a-ref", "post")
    finally:
        await channel.aclose()
    root = PostRef.decode(earlier)
    reply_ref = PostRef.decode(str(replied.provider_message_id))
    assert reply_ref.root == {"uri": root.uri, "cid": root.cid}
    reply_record = fake.records[reply_ref.rkey]
    assert reply_record["reply"]["parent"]["uri"] == root.uri
    # A reply to the reply still names the first post as its thread's root.
    second_record = fake.records[PostRef.decode(str(second.provider_message_id)).rkey]
    assert second_record["reply"]["root"]["uri"] == root.uri
    assert second_record["reply"]["parent"]["uri"] == reply_ref.uri
    assert fake.deleted == [root.rkey]


def test_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_BSKY_ID", "alertas.example.org")
    monkeypatch.setenv("TEST_BSKY_PASSWORD", "app-pass-word")
    config = ChannelConfig(
        name="bsky",
        kind="bluesky",
        file=tmp_path / "b.toml",
        secrets={"identifier": "TEST_BSKY_ID", "app_password": "TEST_BSKY_PASSWORD"},
        options={"api_url": "https://pds.example.org/"},
    )
    channel = from_config(config, ChannelContext(data_dir=tmp_path))
    assert channel.api_url == "https://pds.example.org"
    assert "app-pass-word" not in repr(channel)
    with pytest.raises(ConfigError):
        from_config(
            ChannelConfig(name="b", kind="bluesky", file=tmp_path / "b.toml"),
            ChannelContext(data_dir=tmp_path),
        )
