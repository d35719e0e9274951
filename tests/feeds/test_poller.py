"""The poller against a local feed server: conditional GET, backoff, recovery, lifecycle."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.feed_health import health_of
from alertcast.feeds.base import LinkedDocument
from alertcast.feeds.http import HttpFetcher
from alertcast.feeds.linked import LinkedFetcher
from alertcast.feeds.poller import Poller, backoff_s, next_delay_s
from alertcast.feeds.registry import parser_for
from alertcast.store.feed_state import FeedState, FeedStateRepository, QuietSuccessWriter
from tests.feeds.conftest import (
    CountingIngestor,
    actions,
    alert_states,
    feed_config,
    make_poller,
)
from tests.feeds.feed_server import FeedServer, atom_embedded, atom_index, cap_alert

SENDER = "alertas@example.gob.mx"
SENT_A = "2026-01-19T11:00:00-06:00"
SENT_B = "2026-01-19T11:30:00-06:00"
SENT_C = "2026-01-19T12:00:00-06:00"


# --------------------------------------------------------------------------- conditional GET


async def test_a_second_poll_gets_304_and_ingests_nothing(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    server.publish("/index.atom", atom_embedded([cap_alert("A-1"), cap_alert("A-2")]))
    feed = feed_config("avisos", server.link("/index.atom"))
    ingestor = CountingIngestor(engine)
    poller = make_poller(feed, engine, session, ingestor)

    first = await poller.poll_once()
    assert (first.status, first.items, first.new) == ("changed", 2, 2)
    assert len(ingestor.offered) == 2

    second = await poller.poll_once(on_schedule=False)
    assert (second.status, second.items, second.new) == ("not-modified", 0, 0)
    assert len(ingestor.offered) == 2  # nothing offered again
    requests = server.hits("/index.atom")
    assert [r.status for r in requests] == [200, 304]
    assert requests[1].if_none_match is not None
    assert await ingestor.inner.repository.count() == 2

    state = await FeedStateRepository(engine).get("avisos")
    assert state is not None
    assert state.etag == requests[1].if_none_match
    assert state.items_seen == 2
    assert state.last_change_at == state.last_success_at or state.last_change_at is not None


async def test_the_same_body_from_a_server_without_validators_is_not_read_again(
    engine: AsyncEngine, session: aiohttp.ClientSession
) -> None:
    async with FeedServer(etags=False, last_modified=False) as server:
        server.publish("/index.atom", atom_embedded([cap_alert("A-1")]))
        ingestor = CountingIngestor(engine)
        poller = make_poller(
            feed_config("plain", server.link("/index.atom")), engine, session, ingestor
        )
        assert (await poller.poll_once()).status == "changed"
        again = await poller.poll_once(on_schedule=False)
        assert again.status == "unchanged"
        assert len(ingestor.offered) == 1


async def test_a_changed_index_offers_only_its_new_alerts(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    server.publish("/index.atom", atom_embedded([cap_alert("A-1")]))
    ingestor = CountingIngestor(engine)
    poller = make_poller(
        feed_config("avisos", server.link("/index.atom")), engine, session, ingestor
    )
    await poller.poll_once()
    server.publish("/index.atom", atom_embedded([cap_alert("A-1"), cap_alert("A-2")]))
    outcome = await poller.poll_once(on_schedule=False)
    assert (outcome.status, outcome.new) == ("changed", 1)
    assert [item.alert.identifier for item in ingestor.offered] == ["A-1", "A-2"]


# --------------------------------------------------------------------------- backoff, health


def test_backoff_doubles_from_the_interval_up_to_the_cap() -> None:
    feed = feed_config("f", "https://x.example/f", interval_s=60, max_backoff_s=1800)
    assert [backoff_s(feed, n) for n in range(8)] == [60, 60, 120, 240, 480, 960, 1800, 1800]
    fast = feed_config("f", "https://x.example/f", interval_s=5, max_backoff_s=60)
    assert [backoff_s(fast, n) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 40, 60]
    slow = feed_config("f", "https://x.example/f", interval_s=3600, max_backoff_s=1800)
    assert backoff_s(slow, 3) == 3600  # never waits less than the interval


def test_each_wait_is_spread_by_the_jitter() -> None:
    feed = feed_config("f", "https://x.example/f", interval_s=60, jitter=0.1)
    rng = random.Random(7)
    waits = [next_delay_s(feed, 0, rng) for _ in range(200)]
    assert all(54 <= w <= 66 for w in waits)
    assert len({round(w, 3) for w in waits}) > 150
    failing = [next_delay_s(feed, 3, rng) for _ in range(200)]
    assert all(216 <= w <= 264 for w in failing)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    feed = feed_config("f", "https://x.example/f", interval_s=60, jitter=0, max_backoff_s=1800)
    rng = random.Random(1)
    assert next_delay_s(feed, 1, rng, retry_after=300) == 300
    assert next_delay_s(feed, 1, rng, retry_after=10) == 60
    assert next_delay_s(feed, 1, rng, retry_after=86400) == 1800


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "batched"])
async def test_failures_back_off_warn_once_and_recovery_is_recorded(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession, batched: bool
) -> None:
    server.publish("/index.atom", atom_embedded([cap_alert("A-1")]))
    server.fail("/index.atom", times=4, status=500)
    feed = feed_config("avisos", server.link("/index.atom"), failure_threshold=3, jitter=0)
    writer = QuietSuccessWriter(engine, linger_s=0.01) if batched else None
    poller = make_poller(feed, engine, session, CountingIngestor(engine), quiet_writer=writer)
    repository = FeedStateRepository(engine)

    waits = []
    for attempt in range(1, 5):
        before = datetime.now(UTC)
        outcome = await poller.poll_once(on_schedule=False)
        assert outcome.status == "failed"
        assert outcome.error == "the server answered 500 Internal Server Error"
        assert outcome.next_poll_at is not None
        waits.append(round((outcome.next_poll_at - before).total_seconds()))
        state = await repository.get("avisos")
        assert state is not None and state.consecutive_failures == attempt
        health = health_of(feed, state, datetime.now(UTC))
        assert health.status == ("unhealthy" if attempt >= 3 else "failing")
        assert health.last_error == "the server answered 500 Internal Server Error"
        assert health.last_success_at is None
    assert waits == [60, 120, 240, 480]

    (warning,) = await actions(engine, "feed.unhealthy")  # once per episode, not per failure
    assert warning.subject == "feed:avisos"
    assert warning.data["failures"] == 3
    assert warning.data["reason"] == "the server answered 500 Internal Server Error"
    assert await actions(engine, "feed.recovered") == []

    recovered = await poller.poll_once(on_schedule=False)
    assert (recovered.status, recovered.new) == ("changed", 1)
    state = await repository.get("avisos")
    assert state is not None
    assert (state.consecutive_failures, state.last_error) == (0, None)
    assert state.last_success_at is not None
    assert health_of(feed, state, datetime.now(UTC)).status == "ok"
    (back,) = await actions(engine, "feed.recovered")
    assert back.data["failures"] == 4
    assert back.data["last_error"] == "the server answered 500 Internal Server Error"
    assert recovered.next_poll_at is not None
    assert abs((recovered.next_poll_at - datetime.now(UTC)).total_seconds() - 60) < 5

    quiet = await poller.poll_once(on_schedule=False)
    assert quiet.status == "not-modified"
    after = await repository.get("avisos")
    assert after is not None and after.last_success_at is not None
    assert after.last_success_at > state.last_success_at
    assert after.last_change_at == state.last_change_at
    assert len(await actions(engine, "feed.recovered")) == 1


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/html", "HTML page, not a feed"),
        ("/empty", "empty body"),
        ("/broken", "the server answered 500 Internal Server Error"),
        ("/loop-a", "redirects (a redirect loop?)"),
        ("/trickle", "no complete answer within 1 s"),
        ("/garbage", "not an Atom or RSS index"),
    ],
)
async def test_bad_answers_mark_the_feed_unhealthy_with_the_reason(
    engine: AsyncEngine,
    server: FeedServer,
    session: aiohttp.ClientSession,
    path: str,
    reason: str,
) -> None:
    server.fail("/broken", times=100, status=500)
    server.publish("/garbage", b"<?xml version='1.0'?><kml><Document/></kml>")
    feed = feed_config("bad", server.link(path), failure_threshold=1, timeout_s=1.0)
    outcome = await make_poller(feed, engine, session, CountingIngestor(engine)).poll_once()
    assert outcome.status == "failed"
    assert outcome.error is not None and reason in outcome.error
    state = await FeedStateRepository(engine).get("bad")
    health = health_of(feed, state, datetime.now(UTC))
    assert health.unhealthy and health.last_error is not None and reason in health.last_error
    (warning,) = await actions(engine, "feed.unhealthy")
    assert reason in warning.data["reason"]


async def test_one_stuck_feed_never_delays_another(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    server.publish("/good.atom", atom_embedded([cap_alert("G-1")]))
    stuck = feed_config("stuck", server.link("/trickle"), interval_s=0.1, timeout_s=30, jitter=0)
    good = feed_config("good", server.link("/good.atom"), interval_s=0.1, jitter=0)
    poller = Poller(
        [stuck, good],
        fetcher=HttpFetcher(session),
        ingestor=CountingIngestor(engine),
        repository=FeedStateRepository(engine),
    )
    task = asyncio.create_task(poller.run())
    try:
        for _ in range(200):
            if len(server.hits("/good.atom")) >= 4:
                break
            await asyncio.sleep(0.05)
        stuck_state = await FeedStateRepository(engine).get("stuck")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(server.hits("/good.atom")) >= 4
    assert len(server.hits("/trickle")) == 1  # still on its first, unfinished request
    assert stuck_state is None or stuck_state.last_attempt_at is None


# --------------------------------------------------------------------------- linked documents


async def test_linked_documents_are_fetched_once_each(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    for n in (1, 2, 3):
        server.publish(f"/cap/{n}.xml", cap_alert(f"L-{n}"))
    server.publish(
        "/index.atom", atom_index(server.url, [("e1", "/cap/1.xml"), ("e2", "/cap/2.xml")])
    )
    ingestor = CountingIngestor(engine)
    poller = make_poller(feed_config("smn", server.link("/index.atom")), engine, session, ingestor)

    first = await poller.poll_once()
    assert (first.links_fetched, first.new) == (2, 2)
    server.publish(
        "/index.atom",
        atom_index(server.url, [("e1", "/cap/1.xml"), ("e2", "/cap/2.xml"), ("e3", "/cap/3.xml")]),
    )
    second = await poller.poll_once(on_schedule=False)
    assert (second.links_fetched, second.new) == (1, 1)
    third = await poller.poll_once(on_schedule=False)
    assert third.status == "not-modified"
    assert [len(server.hits(f"/cap/{n}.xml")) for n in (1, 2, 3)] == [1, 1, 1]
    assert all(
        "application/cap+xml" in (hit.accept or "")
        for n in (1, 2, 3)
        for hit in server.hits(f"/cap/{n}.xml")
    )
    entries = await FeedStateRepository(engine).entries("smn")
    assert set(entries) == {server.link(f"/cap/{n}.xml") for n in (1, 2, 3)}
    assert all(e.alert_id is not None and e.content_sha256 for e in entries.values())
    assert (await FeedStateRepository(engine).get("smn")).items_seen == 3  # type: ignore[union-attr]


async def test_a_link_that_failed_is_tried_again_and_only_it(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    server.publish("/cap/1.xml", cap_alert("L-1"))
    server.publish("/cap/2.xml", cap_alert("L-2"))
    server.fail("/cap/2.xml", times=1, status=503)
    server.publish(
        "/index.atom", atom_index(server.url, [("e1", "/cap/1.xml"), ("e2", "/cap/2.xml")])
    )
    poller = make_poller(
        feed_config("smn", server.link("/index.atom")), engine, session, CountingIngestor(engine)
    )

    first = await poller.poll_once()
    assert (first.status, first.new) == ("changed", 1)
    assert len(first.errors) == 1 and "503 Service Unavailable" in first.errors[0]
    state = await FeedStateRepository(engine).get("smn")
    assert state is not None and state.etag is None  # not fully handled: read again next time

    second = await poller.poll_once(on_schedule=False)
    assert (second.status, second.new, second.errors) == ("changed", 1, ())
    assert server.hits("/index.atom")[1].if_none_match is None
    assert [len(server.hits(p)) for p in ("/cap/1.xml", "/cap/2.xml")] == [1, 2]
    assert (await poller.poll_once(on_schedule=False)).status == "not-modified"


async def test_links_to_other_hosts_or_schemes_are_never_requested(
    server: FeedServer, session: aiohttp.ClientSession
) -> None:
    feed = feed_config("smn", server.link("/index.atom"))
    other_host = server.url.replace("127.0.0.1", "localhost") + "/cap/1.xml"
    links = [
        LinkedDocument(url=other_host, entry_id="a"),
        LinkedDocument(url="file:///etc/passwd", entry_id="b"),
        LinkedDocument(url="http://169.254.169.254/latest/meta-data/", entry_id="c"),
    ]
    fetcher = LinkedFetcher(HttpFetcher(session), parser_for("cap"))
    results = await fetcher.fetch_all(feed, links, {}, now=datetime.now(UTC))
    assert [r.status for r in results] == ["refused", "refused", "refused"]
    assert "localhost is neither the feed's host" in (results[0].error or "")
    assert "only http and https" in (results[1].error or "")
    assert server.seen == []

    allowed = feed_config("smn", server.link("/index.atom"), allowed_hosts=("localhost",))
    server.publish("/cap/1.xml", cap_alert("L-1"))
    (result,) = await fetcher.fetch_all(allowed, links[:1], {}, now=datetime.now(UTC))
    assert result.status == "fetched" and result.items[0].alert.identifier == "L-1"


# --------------------------------------------------------------------------- lifecycle


async def test_an_alert_gone_from_a_complete_index_is_withdrawn(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    server.publish("/index.atom", atom_embedded([cap_alert("W-1"), cap_alert("W-2")]))
    feed = feed_config("nws", server.link("/index.atom"), mapping={"complete": True})
    poller = make_poller(feed, engine, session, CountingIngestor(engine, [feed]))
    assert (await poller.poll_once()).new == 2

    server.publish("/index.atom", atom_embedded([cap_alert("W-1")]))
    outcome = await poller.poll_once(on_schedule=False)
    assert outcome.withdrawn == 1
    assert await alert_states(engine) == {"W-1": "active", "W-2": "withdrawn"}
    (record,) = await actions(engine, "alert.withdrawn")
    assert record.subject.split(",")[1] == "W-2"
    entries = await FeedStateRepository(engine).entries("nws")
    gone = {e.entry_id.split(",")[1]: e.gone_at is not None for e in entries.values()}
    assert gone == {"W-1": False, "W-2": True}


async def test_an_alert_gone_from_an_incomplete_index_stays(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    server.publish("/index.atom", atom_embedded([cap_alert("W-1"), cap_alert("W-2")]))
    feed = feed_config("rss-like", server.link("/index.atom"), mapping={"complete": False})
    poller = make_poller(feed, engine, session, CountingIngestor(engine, [feed]))
    await poller.poll_once()
    server.publish("/index.atom", atom_embedded([cap_alert("W-1")]))
    assert (await poller.poll_once(on_schedule=False)).withdrawn == 0
    assert await alert_states(engine) == {"W-1": "active", "W-2": "active"}


async def test_alert_update_and_cancel_flow_through_the_lifecycle(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """The issue's end-to-end: a local server publishes an Alert, then an Update, then a Cancel."""
    feed = feed_config("capufe", server.link("/latest.xml"), kind="cap")
    ingestor = CountingIngestor(engine, [feed])
    poller = make_poller(feed, engine, session, ingestor)

    server.publish("/latest.xml", cap_alert("R-1", sent=SENT_A))
    assert (await poller.poll_once()).new == 1
    assert await alert_states(engine) == {"R-1": "active"}
    assert (await poller.poll_once(on_schedule=False)).status == "not-modified"

    server.publish(
        "/latest.xml",
        cap_alert(
            "R-2",
            sent=SENT_B,
            msg_type="Update",
            references=f"{SENDER},R-1,{SENT_A}",
            headline="Cierre ampliado hasta el km 25",
        ),
    )
    assert (await poller.poll_once(on_schedule=False)).new == 1
    assert await alert_states(engine) == {"R-1": "superseded", "R-2": "active"}

    server.publish(
        "/latest.xml",
        cap_alert("R-3", sent=SENT_C, msg_type="Cancel", references=f"{SENDER},R-2,{SENT_B}"),
    )
    assert (await poller.poll_once(on_schedule=False)).new == 1
    states = await alert_states(engine)
    assert states["R-1"] == "superseded" and states["R-2"] == "cancelled"
    assert states["R-3"] in ("active", "cancelled")

    ingested = [r.subject.split(",")[1] for r in await actions(engine, "alert.ingested")]
    assert ingested == ["R-1", "R-2", "R-3"]
    (superseded,) = await actions(engine, "alert.superseded")
    assert superseded.subject.split(",")[1] == "R-1"
    assert superseded.data["by"].split(",")[1] == "R-2"
    (cancelled,) = await actions(engine, "alert.cancelled")
    assert cancelled.subject.split(",")[1] == "R-2"
    assert cancelled.data["by"].split(",")[1] == "R-3"
    assert all(r.actor == "feed:capufe" for r in await actions(engine, "alert.ingested"))
    assert [r.status for r in server.hits("/latest.xml")] == [200, 304, 200, 200]


async def test_an_item_that_breaks_the_ingest_stage_hides_no_other_and_is_offered_again(
    engine: AsyncEngine, server: FeedServer, session: aiohttp.ClientSession
) -> None:
    class Flaky(CountingIngestor):
        broke = False

        async def ingest_item(self, item, *, feed, actor):  # type: ignore[no-untyped-def]
            if item.alert.identifier == "B-2" and not self.broke:
                self.broke = True
                raise RuntimeError("disk full")
            return await super().ingest_item(item, feed=feed, actor=actor)

    server.publish("/index.atom", atom_embedded([cap_alert("B-1"), cap_alert("B-2")]))
    ingestor = Flaky(engine)
    poller = make_poller(feed_config("f", server.link("/index.atom")), engine, session, ingestor)
    first = await poller.poll_once()
    assert (first.status, first.new) == ("changed", 1)
    assert first.errors == (
        "alert alertas@example.gob.mx,B-2,2026-01-19T11:00:00-06:00: RuntimeError: disk full",
    )
    second = await poller.poll_once(on_schedule=False)
    assert (second.status, second.new, second.errors) == ("changed", 1, ())
    # B-1 (stored) was not offered again; B-2 was, and taken this time.
    assert [i.alert.identifier for i in ingestor.offered] == ["B-1", "B-2"]
    assert (await poller.poll_once(on_schedule=False)).status == "not-modified"


async def test_the_service_polls_its_configured_feeds(
    database_url: str,
    server: FeedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alertcast import audit
    from alertcast.app import Runtime, serve
    from alertcast.config import load_config

    monkeypatch.setenv("ALERTCAST_DATABASE_URL", database_url)
    server.publish("/index.atom", atom_embedded([cap_alert("S-1")]))
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "avisos.toml").write_text(
        f'kind = "cap-index"\nurl = "{server.link("/index.atom")}"\ninterval_s = 0.2\n',
        encoding="utf-8",
    )
    (tmp_path / "feeds" / "off.toml").write_text(
        f'kind = "cap"\nurl = "{server.link("/off.xml")}"\nenabled = false\n', encoding="utf-8"
    )
    config_file = tmp_path / "alertcast.toml"
    config_file.write_text('[service]\nlog_level = "warning"\n', encoding="utf-8")
    config = load_config(config_file)
    stop = asyncio.Event()
    seen: dict[str, object] = {}

    async def scenario(runtime: Runtime) -> None:
        try:
            for _ in range(200):
                if len(server.hits("/index.atom")) >= 3:
                    break
                await asyncio.sleep(0.05)
            seen["count"] = await runtime.repository.count()
            seen["actions"] = [r.action for r in await audit.tail(runtime.engine, 10)]
            seen["state"] = await FeedStateRepository(runtime.engine).get("avisos")
        finally:
            stop.set()

    await asyncio.wait_for(serve(config, port=0, stop=stop, on_ready=scenario), timeout=60)
    assert seen["count"] == 1
    # stored once, and routed once (to nothing: this configuration has no rules)
    assert seen["actions"] == ["alert.ingested", "dispatch.routed"]
    assert [hit.status for hit in server.hits("/index.atom")][:3] == [200, 304, 304]
    assert server.hits("/off.xml") == []
    state = seen["state"]
    assert isinstance(state, FeedState) and state.items_seen == 1
    after = await _state_after_stop(database_url)
    assert after is not None and after.lease_owner is None  # handed back on the way out


async def _state_after_stop(url: str) -> FeedState | None:
    from alertcast.store.engine import make_engine

    engine = make_engine(url)
    try:
        return await FeedStateRepository(engine).get("avisos")
    finally:
        await engine.dispose()
