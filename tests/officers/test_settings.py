"""``[service] sender``: the CAP sender of composed alerts, validated like every setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertcast.config import DEFAULT_SENDER, load_config
from alertcast.errors import ConfigError


def _config(tmp_path: Path, service: str) -> Path:
    path = tmp_path / "alertcast.toml"
    path.write_text(f"[service]\n{service}\n", encoding="utf-8")
    return path


def test_the_sender_defaults_to_alertcast_at_localhost(tmp_path: Path) -> None:
    assert load_config(_config(tmp_path, "")).service.sender == DEFAULT_SENDER
    assert DEFAULT_SENDER == "alertcast@localhost"


def test_an_office_names_its_own_sender(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 'sender = "alertas@pc.example.mx"'))
    assert config.service.sender == "alertas@pc.example.mx"


@pytest.mark.parametrize("value", ['"two words"', '"a,b"', '""', "42"])
def test_a_sender_that_cannot_be_a_cap_sender_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"service\.sender"):
        load_config(_config(tmp_path, f"sender = {value}"))
