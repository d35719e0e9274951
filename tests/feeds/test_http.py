"""Fetching over HTTP against a local server that misbehaves the way real ones do."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from alertcast.feeds.http import (
    MAX_REDIRECTS,
    USER_AGENT,
    FetchError,
    HttpFetcher,
    allowed_host_check,
    looks_like_html,
    make_session,
    refuse_url,
)
from tests.feeds.feed_server import FeedServer, cap_alert


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as running:
        yield running


@pytest.fixture
async def fetcher() -> AsyncIterator[HttpFetcher]:
    session = make_session()
    try:
        yield HttpFetcher(session)
    finally:
        await session.close()


async def fetch(fetcher: HttpFetcher, url: str, **kwargs: object):  # type: ignore[no-untyped-def]
    options: dict[str, object] = {"feed": "test", "timeout_s": 5.0, "max_bytes": 100_000}
    options.update(kwargs)
    return await fetcher.fetch(url, **options)  # type: ignore[arg-type]


async def test_a_second_conditional_get_is_not_modified(
    server: FeedServer, fetcher: HttpFetcher
) -> None:
    body = cap_alert("A-1")
    server.publish("/cap.xml", body)
    first = await fetch(fetcher, server.link("/cap.xml"))
    assert (first.status, first.not_modified, first.body) == (200, False, body)
    assert first.etag and first.last_modified
    second = await fetch(
        fetcher, server.link("/cap.xml"), etag=first.etag, last_modified=first.last_modified
    )
    assert (second.status, second.not_modified, second.body) == (304, True, b"")
    assert second.etag == first.etag
    request = server.hits("/cap.xml")[1]
    assert request.if_none_match == first.etag
    assert request.if_modified_since == first.last_modified


async def test_last_modified_alone_is_used_when_there_is_no_etag(fetcher: HttpFetcher) -> None:
    async with FeedServer(etags=False) as server:
        server.publish("/cap.xml", cap_alert("A-1"))
        first = await fetch(fetcher, server.link("/cap.xml"))
        assert first.etag is None
        second = await fetch(fetcher, server.link("/cap.xml"), last_modified=first.last_modified)
        assert second.not_modified


async def test_gzip_is_asked_for_and_undone(server: FeedServer, fetcher: HttpFetcher) -> None:
    body = cap_alert("A-1") * 20
    server.publish("/big.xml", body)
    result = await fetch(fetcher, server.link("/big.xml"))
    assert result.body == body
    (request,) = server.hits("/big.xml")
    assert request.gzipped and "gzip" in (request.accept_encoding or "")


async def test_a_user_agent_is_sent_and_a_feed_may_set_its_own(
    server: FeedServer, fetcher: HttpFetcher
) -> None:
    server.publish("/cap.xml", cap_alert("A-1"))
    await fetch(fetcher, server.link("/cap.xml"))
    await fetch(fetcher, server.link("/cap.xml"), headers={"User-Agent": "alertcast (ops@x.mx)"})
    first, second = server.hits("/cap.xml")
    assert first.user_agent == USER_AGENT
    assert second.user_agent == "alertcast (ops@x.mx)"


async def test_a_server_error_is_a_clear_failure(server: FeedServer, fetcher: HttpFetcher) -> None:
    server.publish("/cap.xml", cap_alert("A-1"))
    server.fail("/cap.xml", times=1, status=500)
    with pytest.raises(FetchError) as caught:
        await fetch(fetcher, server.link("/cap.xml"))
    assert caught.value.reason == "the server answered 500 Internal Server Error"
    assert caught.value.status == 500
    assert caught.value.feed == "test"


async def test_retry_after_is_read_from_a_503(server: FeedServer, fetcher: HttpFetcher) -> None:
    server.fail("/cap.xml", times=1, status=503, headers={"Retry-After": "120"})
    with pytest.raises(FetchError) as caught:
        await fetch(fetcher, server.link("/cap.xml"))
    assert caught.value.retry_after == 120.0
    assert "503 Service Unavailable" in caught.value.reason


async def test_an_html_page_is_not_taken_for_a_feed(
    server: FeedServer, fetcher: HttpFetcher
) -> None:
    with pytest.raises(FetchError, match="HTML page, not a feed"):
        await fetch(fetcher, server.link("/html"))


async def test_an_empty_body_is_refused(server: FeedServer, fetcher: HttpFetcher) -> None:
    with pytest.raises(FetchError, match="empty body"):
        await fetch(fetcher, server.link("/empty"))


async def test_a_redirect_loop_ends(server: FeedServer, fetcher: HttpFetcher) -> None:
    with pytest.raises(FetchError, match=f"more than {MAX_REDIRECTS} redirects"):
        await fetch(fetcher, server.link("/loop-a"))
    assert len(server.seen) == MAX_REDIRECTS + 1


async def test_a_redirect_is_followed_on_the_same_host(
    server: FeedServer, fetcher: HttpFetcher
) -> None:
    server.publish("/cap.xml", cap_alert("A-1"))
    result = await fetch(
        fetcher,
        server.link("/redirect?to=/cap.xml"),
        host_ok=allowed_host_check(server.url, ()),
    )
    assert result.final_url == server.link("/cap.xml")


@pytest.mark.parametrize(
    "target",
    ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/x"],
)
async def test_a_redirect_to_anything_but_http_is_refused(
    server: FeedServer, fetcher: HttpFetcher, target: str
) -> None:
    with pytest.raises(FetchError, match="only http and https"):
        await fetch(fetcher, server.link(f"/redirect?to={target}"))


async def test_a_redirect_to_another_host_needs_allowing(
    server: FeedServer, fetcher: HttpFetcher
) -> None:
    server.publish("/cap.xml", cap_alert("A-1"))
    elsewhere = server.url.replace("127.0.0.1", "localhost") + "/cap.xml"
    own_only = allowed_host_check(server.url, ())
    with pytest.raises(FetchError, match="localhost is neither the feed's host"):
        await fetch(fetcher, server.link(f"/redirect?to={elsewhere}"), host_ok=own_only)
    allowed = allowed_host_check(server.url, ("localhost",))
    result = await fetch(fetcher, server.link(f"/redirect?to={elsewhere}"), host_ok=allowed)
    assert result.final_url == elsewhere


async def test_a_trickle_is_cut_off_at_the_deadline(
    server: FeedServer, fetcher: HttpFetcher
) -> None:
    with pytest.raises(FetchError, match="no complete answer within 1 s"):
        await fetch(fetcher, server.link("/trickle"), timeout_s=1.0)


@pytest.mark.parametrize("announce", ["1", "0"])
async def test_a_body_over_the_limit_is_refused(
    server: FeedServer, fetcher: HttpFetcher, announce: str
) -> None:
    with pytest.raises(FetchError, match="limit of 10000 bytes"):
        await fetch(fetcher, server.link(f"/big?bytes=50000&announce={announce}"), max_bytes=10_000)


async def test_a_gzip_bomb_is_refused_by_its_decompressed_size(
    server: FeedServer, fetcher: HttpFetcher
) -> None:
    server.publish("/bomb.xml", b"<x>" + b" " * 5_000_000 + b"</x>")
    with pytest.raises(FetchError, match="limit of 100000 bytes"):
        await fetch(fetcher, server.link("/bomb.xml"))
    assert server.hits("/bomb.xml")[0].gzipped


async def test_a_closed_port_is_a_connection_failure(fetcher: HttpFetcher) -> None:
    with pytest.raises(FetchError, match=r"cannot connect to 127\.0\.0\.1:9"):
        await fetch(fetcher, "http://127.0.0.1:9/feed.xml")


async def test_a_refused_first_url_sends_no_request(
    server: FeedServer, fetcher: HttpFetcher
) -> None:
    with pytest.raises(FetchError, match="refused"):
        await fetch(
            fetcher, server.link("/cap.xml"), host_ok=allowed_host_check("https://x.example", ())
        )
    assert server.seen == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("http://user:pw@alerts.example.org/a.xml", "user information"),
        ("http:///a.xml", "names no host"),
        ("https://evil.example.net/a.xml", "evil.example.net is neither"),
    ],
)
def test_urls_that_are_refused(url: str, reason: str) -> None:
    check = allowed_host_check("https://alerts.example.org/feed", ("*.cdn.example.org",))
    refusal = refuse_url(url, check)
    assert refusal is not None and reason in refusal


@pytest.mark.parametrize(
    "url",
    [
        "https://alerts.example.org/a.xml",
        "http://ALERTS.example.org:8080/a.xml",
        "https://cdn.example.org/a.xml",
        "https://eu.cdn.example.org/a.xml",
    ],
)
def test_urls_that_are_allowed(url: str) -> None:
    check = allowed_host_check("https://alerts.example.org/feed", ("*.cdn.example.org",))
    assert refuse_url(url, check) is None


def test_html_is_recognised_but_xml_with_html_inside_is_not() -> None:
    assert looks_like_html(b"\xef\xbb\xbf  <!DOCTYPE html><html>")
    assert looks_like_html(b"<HTML><body>")
    assert not looks_like_html(b"<?xml version='1.0'?><rss><description>&lt;html&gt;")
    assert not looks_like_html(b"<feed><content type='html'><html></html></content></feed>")


async def test_the_session_is_the_one_given(server: FeedServer) -> None:
    server.publish("/cap.xml", cap_alert("A-1"))
    async with aiohttp.ClientSession() as session:
        fetcher = HttpFetcher(session)
        result = await fetch(fetcher, server.link("/cap.xml"))
        assert result.status == 200
    assert session.closed
