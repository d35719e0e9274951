"""``alertcast feeds list | check | poll`` as an operator meets them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertcast.cli import main
from alertcast.store.engine import make_engine
from alertcast.store.feed_state import FeedStateRepository
from tests.feeds.feed_server import FeedServer, atom_embedded, atom_index, cap_alert


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "en")
    monkeypatch.delenv("ALERTCAST_DATABASE_URL", raising=False)
    monkeypatch.delenv("ALERTCAST_CONFIG", raising=False)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer().in_thread() as running:
        running.publish("/embedded.atom", atom_embedded([cap_alert("E-1")]))
        running.publish("/cap/1.xml", cap_alert("L-1"))
        running.publish("/linked.atom", atom_index(running.url, [("e1", "/cap/1.xml")]))
        running.fail("/down.xml", times=1000, status=502)
        yield running


@pytest.fixture
def config(tmp_path: Path, server: FeedServer) -> Path:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "embedded.toml").write_text(
        f'kind = "cap-index"\nurl = "{server.link("/embedded.atom")}"\n', encoding="utf-8"
    )
    (feeds / "linked.toml").write_text(
        f'kind = "cap-index"\nurl = "{server.link("/linked.atom")}"\nenabled = false\n',
        encoding="utf-8",
    )
    (feeds / "down.toml").write_text(
        f'kind = "cap"\nurl = "{server.link("/down.xml")}"\nfailure_threshold = 1\n',
        encoding="utf-8",
    )
    (feeds / "inbox.toml").write_text('kind = "cap-dir"\npath = "inbox"\n', encoding="utf-8")
    (tmp_path / "inbox").mkdir()
    cfg = tmp_path / "alertcast.toml"
    cfg.write_text('[service]\nlog_level = "warning"\n', encoding="utf-8")
    return cfg


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_shows_every_feed_before_and_after_polls(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "feeds", "list", "--config", str(config))
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["NAME", "KIND", "ENABLED", "STATUS"]
    by_name = {row.split()[0]: row for row in rows}
    assert set(by_name) == {"down", "embedded", "inbox", "linked"}
    assert "never polled" in by_name["embedded"]
    assert "disabled" in by_name["linked"]

    assert run(capsys, "feeds", "poll", "embedded", "--once", "--config", str(config))[0] == 0
    assert run(capsys, "feeds", "poll", "down", "--once", "--config", str(config))[0] == 1

    code, out, _ = run(capsys, "feeds", "list", "--json", "--config", str(config))
    assert code == 0
    health = {record["name"]: record for record in map(json.loads, out.splitlines())}
    assert health["embedded"]["status"] == "ok"
    assert health["embedded"]["items_seen"] == 1
    assert health["embedded"]["last_success_at"] is not None
    assert health["down"]["status"] == "unhealthy"
    assert health["down"]["consecutive_failures"] == 1
    assert health["down"]["last_error"] == "the server answered 502 Bad Gateway"

    code, out, _ = run(capsys, "feeds", "list", "--config", str(config))
    down = next(row for row in out.splitlines() if row.startswith("down"))
    assert "unhealthy" in down and "the server answered 502 Bad Gateway" in down


def test_check_prints_what_would_be_ingested_and_stores_nothing(
    config: Path, server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "feeds", "check", "linked", "--config", str(config))
    assert code == 0, err
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["identifier"] == "L-1"
    assert record["source_file"] == server.link("/cap/1.xml")
    assert "1 alert(s) would be ingested" in err

    code, out, err = run(capsys, "feeds", "check", "embedded", "--config", str(config))
    assert code == 0
    assert [json.loads(line)["identifier"] for line in out.splitlines()] == ["E-1"]
    assert not (config.parent / "data").exists()  # no database was even opened

    code, out, _ = run(capsys, "feeds", "check", "linked", "--no-links", "--config", str(config))
    assert json.loads(out) == {
        "source_file": server.link("/linked.atom"),
        "linked": server.link("/cap/1.xml"),
    }


def test_check_reports_a_failing_feed(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "feeds", "check", "down", "--config", str(config))
    assert (code, out) == (1, "")
    assert "error: down: the server answered 502 Bad Gateway" in err


def test_poll_once_stores_and_a_second_poll_finds_nothing_new(
    config: Path, server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "feeds", "poll", "linked", "--once", "--config", str(config))
    assert code == 0
    first = json.loads(out)
    assert (first["status"], first["new"], first["links_fetched"]) == ("changed", 1, 1)
    code, out, _ = run(capsys, "feeds", "poll", "linked", "--once", "--config", str(config))
    assert (code, json.loads(out)["status"]) == (0, "not-modified")
    assert [hit.status for hit in server.hits("/linked.atom")] == [200, 304]
    assert len(server.hits("/cap/1.xml")) == 1

    code, out, _ = run(capsys, "audit", "tail", "--config", str(config))
    assert [json.loads(line)["action"] for line in out.splitlines()] == ["alert.ingested"]


def test_poll_respects_another_instance_s_lease_unless_forced(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{config.parent / 'data' / 'alertcast.db'}"
    assert run(capsys, "db", "upgrade", "--config", str(config))[0] == 0

    async def hold() -> None:
        engine = make_engine(url)
        now = datetime.now(UTC)
        await FeedStateRepository(engine).acquire_lease(
            "embedded", owner="other-host:1:abc", now=now, until=now + timedelta(minutes=5)
        )
        await engine.dispose()

    asyncio.run(hold())
    code, _, err = run(capsys, "feeds", "poll", "embedded", "--once", "--config", str(config))
    assert code == 1
    assert "is being polled by other-host:1:abc" in err and "--force" in err
    code, out, _ = run(
        capsys, "feeds", "poll", "embedded", "--once", "--force", "--config", str(config)
    )
    assert (code, json.loads(out)["new"]) == (0, 1)


def test_poll_once_takes_a_drop_folder(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (config.parent / "inbox" / "a.xml").write_bytes(cap_alert("D-1"))
    code, out, _ = run(capsys, "feeds", "poll", "inbox", "--once", "--config", str(config))
    assert (code, json.loads(out)["files"]) == (0, 1)
    assert (config.parent / "inbox" / "done" / "a.xml").is_file()


def test_check_reads_a_drop_folder_without_moving_anything(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (config.parent / "inbox" / "a.xml").write_bytes(cap_alert("D-1"))
    code, out, _ = run(capsys, "feeds", "check", "inbox", "--config", str(config))
    assert (code, json.loads(out)["identifier"]) == (0, "D-1")
    assert (config.parent / "inbox" / "a.xml").is_file()


def test_an_unknown_feed_is_named_with_the_ones_there_are(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for action in ("check", "poll"):
        code, _, err = run(capsys, "feeds", action, "nope", "--config", str(config))
        assert code == 2
        assert "no feed named 'nope'" in err and "down, embedded, inbox, linked" in err
