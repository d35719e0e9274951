"""The feed keys of the configuration: fetched kinds, push, hosts, health and timing settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertcast.config import DATABASE_URL_ENV, load_config
from alertcast.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    monkeypatch.delenv("ALERTCAST_CONFIG", raising=False)


def configure(tmp_path: Path, **feeds: str) -> Path:
    (tmp_path / "feeds").mkdir(exist_ok=True)
    for name, text in feeds.items():
        (tmp_path / "feeds" / f"{name}.toml").write_text(text, encoding="utf-8")
    cfg = tmp_path / "alertcast.toml"
    cfg.write_text("", encoding="utf-8")
    return cfg


def problems(cfg: Path) -> dict[tuple[str, str], str]:
    with pytest.raises(ConfigError) as caught:
        load_config(cfg)
    return {(Path(p.file).stem, p.key): p.message for p in caught.value.problems}


def test_every_fetched_kind_loads_with_its_settings(tmp_path: Path) -> None:
    cfg = configure(
        tmp_path,
        smn=(
            'kind = "cap-index"\nurl = "https://smn.example.gob.mx/cap.php"\n'
            'allowed_hosts = ["cdn.example.org", "*.Example.NET"]\nstale_after_s = 7200\n'
            "failure_threshold = 5\njitter = 0.2\nmax_backoff_s = 600\n"
            '[headers]\nUser-Agent = "alertcast (ops@example.org)"\n'
            '[mapping]\nlanguage = "es-MX"\ncategory = "Met"\ntimezone = "America/Mexico_City"\n'
            'geocode_scheme = "INEGI"\nsender = "smn.example.gob.mx"\n'
        ),
        who='kind = "rss"\nurl = "https://who.example/rss.xml"\n',
        road='kind = "road-text"\nurl = "https://relay.example/posts.jsonl"\n',
        bc='kind = "open511"\nurl = "https://open511.example/events"\n',
        one='kind = "cap"\nurl = "http://alerts.example/latest.xml"\n',
    )
    feeds = {feed.name: feed for feed in load_config(cfg).feeds}
    smn = feeds["smn"]
    assert smn.allowed_hosts == ("cdn.example.org", "*.example.net")
    assert (smn.stale_after_s, smn.failure_threshold, smn.jitter, smn.max_backoff_s) == (
        7200.0,
        5,
        0.2,
        600.0,
    )
    assert smn.headers == {"User-Agent": "alertcast (ops@example.org)"}
    assert smn.fetched
    defaults = feeds["who"]
    assert (defaults.stale_after_s, defaults.failure_threshold) == (None, 3)
    assert (defaults.jitter, defaults.max_backoff_s, defaults.allowed_hosts) == (0.1, 1800.0, ())
    assert {f.kind for f in feeds.values()} == {"cap-index", "rss", "road-text", "open511", "cap"}


def test_fetched_kinds_need_an_http_url(tmp_path: Path) -> None:
    found = problems(
        configure(
            tmp_path,
            nourl='kind = "cap-index"\n',
            local='kind = "rss"\nurl = "file:///etc/passwd"\n',
        )
    )
    assert found[("nourl", "url")] == "is required for kind 'cap-index'"
    assert "http:// or https://" in found[("local", "url")]


def test_a_push_feed_needs_a_token_named_by_an_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PUSH_TOKEN_FOR_TEST", raising=False)
    found = problems(configure(tmp_path, p='kind = "push"\n'))
    assert "is required for kind 'push'" in found[("p", "secrets.token")]

    cfg = configure(
        tmp_path,
        p='kind = "push"\n[secrets]\ntoken = "PUSH_TOKEN_FOR_TEST"\n'
        '[mapping]\nsenders = ["civil@example.gob.mx"]\n',
    )
    assert "PUSH_TOKEN_FOR_TEST is not set" in problems(cfg)[("p", "secrets.token")]
    monkeypatch.setenv("PUSH_TOKEN_FOR_TEST", "s3cret-value")
    (feed,) = load_config(cfg).feeds
    assert feed.secret("token") == "s3cret-value"
    assert feed.mapping["senders"] == ["civil@example.gob.mx"]
    assert "s3cret-value" not in repr(feed)


def test_a_token_pasted_into_a_feed_file_is_refused_unseen(tmp_path: Path) -> None:
    found = problems(configure(tmp_path, p='kind = "push"\n[secrets]\ntoken = "abc-123-xyz"\n'))
    assert "must name an environment variable" in found[("p", "secrets.token")]
    assert all("abc-123-xyz" not in message for message in found.values())
    assert ("p", "secrets.token") in found and len(found) == 1  # reported once


def test_every_bad_feed_setting_is_named_with_its_file_and_key(tmp_path: Path) -> None:
    found = problems(
        configure(
            tmp_path,
            bad=(
                'kind = "cap-index"\nurl = "https://x.example/feed"\n'
                'allowed_hosts = ["https://cdn.example.org/path", 7]\n'
                "failure_threshold = 0\njitter = 1.5\nmax_backoff_s = -1\nstale_after_s = 0\n"
                '[mapping]\ncategory = "Weather"\nlanguage = "spanish please"\n'
                'timezone = "Mars/Olympus_Mons"\nsenders = "one@example.org"\nsender = ""\n'
            ),
        )
    )
    assert "host name" in found[("bad", "allowed_hosts[0]")]
    assert "host name" in found[("bad", "allowed_hosts[1]")]
    assert "at least 1" in found[("bad", "failure_threshold")]
    assert "fraction" in found[("bad", "jitter")]
    assert "greater than 0" in found[("bad", "max_backoff_s")]
    assert "greater than 0" in found[("bad", "stale_after_s")]
    assert "not a CAP category" in found[("bad", "mapping.category")]
    assert "did you mean 'Met'" not in found[("bad", "mapping.category")]
    assert "language tag" in found[("bad", "mapping.language")]
    assert "time zone" in found[("bad", "mapping.timezone")]
    assert "list of CAP sender names" in found[("bad", "mapping.senders")]
    assert "non-empty string" in found[("bad", "mapping.sender")]


def test_a_disabled_feed_of_an_unknown_kind_is_tolerated(tmp_path: Path) -> None:
    cfg = configure(tmp_path, later='kind = "carrier-pigeon"\nenabled = false\n')
    assert load_config(cfg).feeds[0].enabled is False
