"""Logs never carry secrets, and say in which language people are spoken to."""

from __future__ import annotations

import json

import pytest
import structlog

from alertcast.i18n import t
from alertcast.log import configure_logging, mask_secrets


def test_secret_looking_keys_are_masked() -> None:
    event = mask_secrets(
        None, "info", {"event": "x", "token": "abc", "api_key": "k", "token_env": "T"}
    )
    assert event["token"] == "***"
    assert event["api_key"] == "***"
    assert event["token_env"] == "T"  # the *name* of a variable is not a secret


def test_json_logs_are_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    structlog.get_logger("t").info("thing.happened", password="hunter2", count=3)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "thing.happened"
    assert record["count"] == 3
    assert record["password"] == "***"


def test_messages_follow_the_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "es_MX.UTF-8")
    assert t("audit.ok", count=3).startswith("bitácora")
    monkeypatch.setenv("ALERTCAST_LANG", "en")
    assert t("audit.ok", count=3) == "audit trail intact: 3 records checked"
