"""The shipped catalogue: valid, safe to start offline, and each entry reads its source's format."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alertcast.config import FeedConfig, load_config
from alertcast.feeds.http import allowed_host_check, refuse_url
from alertcast.feeds.registry import parser_for

ROOT = Path(__file__).resolve().parents[2]

SAMPLES = {
    "smn-avisos": "index/smn_conagua_avisos_feed_2022.atom.xml",
    "sasmex": "index/sasmex_alert_format.atom.xml",
    "nws-texas": "index/nws_api_alerts_active_zone.geojson",
    "meteoalarm-spain": "index/meteoalarm_legacy_atom_france.xml",
    "who-don": "health/au_health_gov_latest_news_rss_2021.xml",
    "drivebc-open511": "road/drivebc_open511_events_list_of_five.json",
    "capufe-carreteras": "road/capufe_road_reports_es-MX.jsonl",
}


@pytest.fixture(scope="module")
def catalogue() -> dict[str, FeedConfig]:
    return {feed.name: feed for feed in load_config(ROOT / "alertcast.toml").feeds}


def test_every_public_source_is_there_and_disabled(catalogue: dict[str, FeedConfig]) -> None:
    assert set(SAMPLES) <= set(catalogue)
    assert catalogue["local-inbox"].enabled
    for name in SAMPLES:
        feed = catalogue[name]
        assert not feed.enabled, f"{name} must ship disabled (a new machine may be offline)"
        assert feed.url is not None and feed.url.startswith("https://"), name
        assert feed.file.read_text(encoding="utf-8").startswith("#"), f"{name} needs comments"


def test_api_weather_gov_gets_a_user_agent(catalogue: dict[str, FeedConfig]) -> None:
    assert "User-Agent" in catalogue["nws-texas"].headers


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_entry_reads_a_real_document_of_its_source(
    catalogue: dict[str, FeedConfig], corpus_dir: Path, name: str
) -> None:
    feed = catalogue[name]
    batch = parser_for(feed.kind).parse((corpus_dir / SAMPLES[name]).read_bytes(), feed)
    assert batch.items or batch.links, batch.errors
    host_ok = allowed_host_check(feed.url, feed.allowed_hosts)
    if name == "meteoalarm-spain":
        assert batch.complete  # the MeteoAlarm producer lists active warnings only
    for link in batch.links:
        assert refuse_url(link.url, host_ok) is None, link.url
    for item in batch.items:
        assert item.alert.sent.tzinfo is not None
        assert item.alert.sent < datetime.now(UTC)
