"""deploy/alertcast.example.toml: it loads, and it documents every key the loader accepts.

The key sets come from ``alertcast/config.py`` itself, so a key added to the
loader and not to the example (or a key left in the example after the loader
dropped it) fails here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from alertcast import config as config_module
from alertcast.config import load_config
from tests.deploy.deployfiles import EXAMPLE_CONFIG, catalogue_blocks, uncommented

TEXT = EXAMPLE_CONFIG.read_text(encoding="utf-8")

TABLE_KEYS = {
    "service": config_module._SERVICE_KEYS,
    "database": config_module._DATABASE_KEYS,
    "cap": config_module._CAP_KEYS,
    "paths": config_module._PATHS_KEYS,
}
"""Each table of alertcast.toml and the keys the loader accepts in it."""

SECRET_VALUES = {
    "ALERTCAST_PUSH_TOKEN": "push-token-for-tests",
    "TELEGRAM_BOT_TOKEN": "123456:telegram-token-for-tests",
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No configuration or database from the developer's shell leaks into the load."""
    monkeypatch.delenv("ALERTCAST_CONFIG", raising=False)
    monkeypatch.delenv("ALERTCAST_DATABASE_URL", raising=False)
    return monkeypatch


def test_the_loader_key_tables_are_the_ones_described_here() -> None:
    # A new table in alertcast.toml must be added to TABLE_KEYS (and to the example).
    assert set(TABLE_KEYS) == config_module._TOP_KEYS


def test_every_key_of_alertcast_toml_is_in_the_example_once() -> None:
    documented = tomllib.loads(uncommented(TEXT))  # a key written twice would not parse
    assert set(documented) == config_module._TOP_KEYS
    for table, accepted in TABLE_KEYS.items():
        assert set(documented[table]) == accepted, table


def test_the_catalogue_blocks_show_every_feed_and_channel_key() -> None:
    blocks = {path: tomllib.loads(text) for path, text in catalogue_blocks(TEXT).items()}
    feed_keys: set[str] = set()
    channel_keys: set[str] = set()
    for path, data in blocks.items():
        (feed_keys if path.startswith("feeds/") else channel_keys).update(data)
    assert feed_keys == config_module._FEED_KEYS
    assert channel_keys == config_module._CHANNEL_KEYS


def test_the_example_loads_as_shipped_with_the_defaults_it_states(
    clean_env: pytest.MonkeyPatch,
) -> None:
    loaded = load_config(EXAMPLE_CONFIG)
    assert loaded.service.host == "0.0.0.0"
    assert loaded.service.port == 8080
    assert loaded.service.data_dir == Path("/var/lib/alertcast")
    assert loaded.database_url == "sqlite:////var/lib/alertcast/alertcast.db"
    # The database URL with its password comes from the environment, never from the file.
    url = "postgresql://alertcast:secret@db.example.internal:5432/alertcast"
    clean_env.setenv("ALERTCAST_DATABASE_URL", url)
    assert load_config(EXAMPLE_CONFIG).database_url == url


def test_the_example_loads_with_every_key_and_every_catalogue_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every value the example shows, commented or not, is one the loader accepts."""
    for name, value in SECRET_VALUES.items():
        clean_env.setenv(name, value)
    config_file = tmp_path / "alertcast.toml"
    text = uncommented(TEXT).replace("/var/lib/alertcast", (tmp_path / "data").as_posix())
    config_file.write_text(text, encoding="utf-8")
    (tmp_path / "rules.toml").write_text('[route]\nchannels = ["telegram"]\n', encoding="utf-8")
    blocks = catalogue_blocks(TEXT)
    for relative, body in blocks.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(body, encoding="utf-8")

    loaded = load_config(config_file)

    assert sorted(f"feeds/{f.file.name}" for f in loaded.feeds) == sorted(
        p for p in blocks if p.startswith("feeds/")
    )
    assert [c.name for c in loaded.channels] == ["telegram"]
    assert loaded.channels[0].secret("token") == SECRET_VALUES["TELEGRAM_BOT_TOKEN"]
    assert loaded.service.public_url == "https://alertas.example.gob.mx"
    assert loaded.rules_file == tmp_path / "rules.toml"


def test_a_catalogue_secret_that_is_not_set_is_reported(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The example's [secrets] name variables: without them the load fails, naming them."""
    for name in SECRET_VALUES:
        clean_env.delenv(name, raising=False)
    (tmp_path / "alertcast.toml").write_text(TEXT, encoding="utf-8")
    for relative, body in catalogue_blocks(TEXT).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(body, encoding="utf-8")
    with pytest.raises(config_module.ConfigError) as caught:
        load_config(tmp_path / "alertcast.toml")
    message = str(caught.value)
    for name in SECRET_VALUES:
        assert name in message


def test_the_stated_defaults_are_the_loaders_defaults(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each ``# default X`` note beside a key is what the loader uses when the key is absent."""
    defaults = load_config(_empty_config(tmp_path))
    stated = _stated_defaults(TEXT)
    assert stated, "the example states no defaults"
    actual = {
        "service.host": defaults.service.host,
        "service.port": defaults.service.port,
        "service.data_dir": "data",
        "service.log_level": defaults.service.log_level,
        "service.log_format": defaults.service.log_format,
        "service.sender": defaults.service.sender,
        "cap.max_bytes": defaults.cap.max_bytes,
        "cap.strict": defaults.cap.strict,
        "paths.feeds": defaults.feeds_dir.name,
        "paths.channels": defaults.channels_dir.name,
    }
    assert defaults.service.data_dir == tmp_path / "data"
    for key, value in stated.items():
        assert key in actual, f"no check for the stated default of {key}"
        assert value == actual[key], key


def _empty_config(folder: Path) -> Path:
    path = folder / "alertcast.toml"
    path.write_text("", encoding="utf-8")
    return path


def _stated_defaults(text: str) -> dict[str, Any]:
    """``table.key`` → the value after ``# default`` on its line (TOML-parsed)."""
    stated: dict[str, Any] = {}
    table = ""
    for line in uncommented(text).splitlines():
        if line.startswith("["):
            table = line.strip("[]")
            continue
        if " # default " not in line or line.startswith("#"):
            continue
        key = line.split("=", 1)[0].strip()
        note = line.split(" # default ", 1)[1]
        literal = note.split(";", 1)[0].split(" (", 1)[0].strip()
        stated[f"{table}.{key}"] = tomllib.loads(f"v = {literal}")["v"]
    return stated
