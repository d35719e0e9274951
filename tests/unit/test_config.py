"""Configuration: every problem is found at once, with its file and key; secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertcast.config import DATABASE_URL_ENV, load_config
from alertcast.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_env_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    monkeypatch.delenv("ALERTCAST_CONFIG", raising=False)


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.file is None
    assert config.service.host == "127.0.0.1"
    assert config.service.port == 8080
    assert config.database_url == f"sqlite:///{tmp_path / 'data' / 'alertcast.db'}"
    assert config.feeds == () and config.channels == ()


def test_a_valid_configuration_loads(tmp_path: Path) -> None:
    cfg = write(tmp_path / "alertcast.toml", "[service]\nport = 9000\n[cap]\nstrict = true\n")
    write(tmp_path / "feeds" / "inbox.toml", 'kind = "cap-dir"\npath = "in"\ninterval_s = 5\n')
    write(tmp_path / "channels" / "console.toml", 'kind = "console"\n')
    config = load_config(cfg)
    assert config.service.port == 9000
    assert config.cap.strict is True
    (feed,) = config.feeds
    assert (feed.name, feed.kind, feed.interval_s, feed.path) == (
        "inbox",
        "cap-dir",
        5.0,
        tmp_path / "in",
    )
    assert config.channels[0].name == "console"


def test_environment_database_url_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path / "alertcast.toml", '[database]\nurl = "sqlite:///x.db"\n')
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql://db.example/alertcast")
    assert load_config(cfg).database_url == "postgresql://db.example/alertcast"


def test_every_problem_is_reported_with_file_and_key(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "alertcast.toml",
        '[service]\nport = "eighty"\nhots = "0.0.0.0"\nlog_format = "xml"\n[cap]\nmax_bytes = -1\n',
    )
    write(tmp_path / "feeds" / "a.toml", 'kind = "cap-dir"\n')  # path missing
    write(tmp_path / "feeds" / "b.toml", 'kind = "carrier-pigeon"\nurl = "ftp://x"\n')
    write(tmp_path / "feeds" / "broken.toml", "kind = \n")
    with pytest.raises(ConfigError) as caught:
        load_config(cfg)
    found = {(Path(p.file).name, p.key): p.message for p in caught.value.problems}
    assert "must be int" in found[("alertcast.toml", "service.port")]
    assert "did you mean 'host'" in found[("alertcast.toml", "service.hots")]
    assert ("alertcast.toml", "service.log_format") in found
    assert "greater than 0" in found[("alertcast.toml", "cap.max_bytes")]
    assert "required" in found[("a.toml", "path")]
    assert "not a feed kind" in found[("b.toml", "kind")]
    assert "must start with" in found[("b.toml", "url")]
    assert "not valid TOML" in found[("broken.toml", "")]


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    cfg = write(tmp_path / "alertcast.toml", "")
    write(tmp_path / "feeds" / "a.toml", 'name = "same"\nkind = "cap-dir"\npath = "a"\n')
    write(tmp_path / "feeds" / "b.toml", 'name = "same"\nkind = "cap-dir"\npath = "b"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(cfg)
    assert any("already used" in p.message for p in caught.value.problems)


def test_a_secret_pasted_into_a_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    cfg = write(tmp_path / "alertcast.toml", "")
    write(
        tmp_path / "channels" / "tg.toml",
        'kind = "console"\n[secrets]\ntoken = "123456:AAH-very-secret-token"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(cfg)
    text = str(caught.value)
    assert "secrets.token" in text
    assert "very-secret" not in text


def test_a_missing_secret_variable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEMO_TOKEN_FOR_TEST", raising=False)
    cfg = write(tmp_path / "alertcast.toml", "")
    write(
        tmp_path / "channels" / "c.toml",
        'kind = "console"\n[secrets]\ntoken = "DEMO_TOKEN_FOR_TEST"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(cfg)
    assert "DEMO_TOKEN_FOR_TEST is not set" in str(caught.value)
    monkeypatch.setenv("DEMO_TOKEN_FOR_TEST", "s3cret")
    channel = load_config(cfg).channels[0]
    assert channel.secret("token") == "s3cret"
    assert "s3cret" not in repr(channel)


def test_a_password_in_the_database_url_is_refused(tmp_path: Path) -> None:
    cfg = write(tmp_path / "alertcast.toml", '[database]\nurl = "postgresql://u:hunter2@db/x"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(cfg)
    assert "database.url" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "nope.toml")


def test_the_shipped_configuration_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "alertcast.toml")
    assert {f.name for f in config.feeds} >= {"local-inbox"}
