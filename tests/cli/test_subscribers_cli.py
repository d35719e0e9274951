"""``alertcast subscribers``: export, delete, purge and count, audited, on both databases."""

from __future__ import annotations

import argparse
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.cli_subscribers import register
from alertcast.store.tables import subscribers
from alertcast.subscribers.crypto import KEY_ENV, SubscriberKeys
from alertcast.subscribers.store import SubscriberStore

SECRET = bytes(range(100, 132))
CONSENT = "Te suscribiste a las alertas. Envía BAJA para dejar de recibirlas."


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="alertcast")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "en")
    monkeypatch.setenv(KEY_ENV, base64.b64encode(SECRET).decode())
    monkeypatch.delenv("ALERTCAST_DATABASE_URL", raising=False)


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "sms.toml").write_text(
        'name = "sms-mx"\nkind = "sms"\nenabled = false\n', encoding="utf-8"
    )
    path = tmp_path / "alertcast.toml"
    path.write_text(
        f'[service]\ndata_dir = "data"\n[database]\nurl = "{database_url}"\n', encoding="utf-8"
    )
    return path


@pytest.fixture
def store(engine: AsyncEngine) -> SubscriberStore:
    return SubscriberStore(engine, SubscriberKeys(SECRET), kinds={"sms-mx": "sms"})


async def records(engine: AsyncEngine, action: str) -> list[audit.AuditRecord]:
    return [r async for r in audit.iter_records(engine) if r.action == action]


async def test_export_prints_everything_held_and_is_audited(
    config: Path, store: SubscriberStore, engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    person = await store.subscribe(
        "sms-mx", "55 1234 5678", topics=["sismos"], consent_text=CONSENT, source="sms-keyword"
    )
    code = await _in_thread(["subscribers", "export", str(person.id), "--config", str(config)])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["address"] == "+525512345678"
    assert data["channel"] == "sms-mx" and data["topics"] == ["sismos"]
    assert data["acknowledgements"] == []
    exported = await records(engine, "subscriber.exported")
    assert len(exported) == 1 and exported[0].actor.startswith("cli:")
    assert "5512345678" not in exported[0].data_json

    code = await _in_thread(["subscribers", "export", "999", "--config", str(config)])
    assert code == 1
    assert "no subscriber #999" in capsys.readouterr().err


async def test_delete_erases_the_subscriber_with_the_actor_given(
    config: Path, store: SubscriberStore, engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    person = await store.subscribe("sms-mx", "5512345678", consent_text=CONSENT, source="sms")
    argv = ["subscribers", "delete", str(person.id), "--actor", "ana", "--config", str(config)]
    assert await _in_thread(argv) == 0
    assert f"#{person.id}" in capsys.readouterr().out
    assert await store.get_by_id(person.id) is None
    deleted = await records(engine, "subscriber.deleted")
    assert [(r.actor, r.data["subscriber"]) for r in deleted] == [("ana", person.id)]
    assert await _in_thread(argv) == 1


async def test_purge_erases_subscribers_gone_longer_than_the_retention(
    config: Path, store: SubscriberStore, engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    old = await store.subscribe("sms-mx", "55 1111 1111", consent_text=CONSENT, source="sms")
    recent = await store.subscribe("sms-mx", "55 2222 2222", consent_text=CONSENT, source="sms")
    active = await store.subscribe("sms-mx", "55 3333 3333", consent_text=CONSENT, source="sms")
    await store.deactivate("sms-mx", "55 1111 1111", reason="blocked")
    await store.deactivate("sms-mx", "55 2222 2222", reason="blocked")
    long_ago = datetime.now(UTC) - timedelta(days=400)
    async with engine.begin() as conn:
        await conn.execute(
            update(subscribers)
            .where(subscribers.c.id.in_([old.id, active.id]))
            .values(updated_at=long_ago, last_seen_at=long_ago)
        )

    argv = ["subscribers", "purge", "--inactive-days", "365", "--config", str(config)]
    assert await _in_thread(argv) == 0
    assert "1 subscriber(s) erased" in capsys.readouterr().out
    assert await store.get_by_id(old.id) is None
    assert await store.get_by_id(recent.id) is not None
    assert await store.get_by_id(active.id) is not None
    assert len(await records(engine, "subscriber.purged")) == 1

    bad = ["subscribers", "purge", "--inactive-days", "0", "--config", str(config)]
    assert await _in_thread(bad) == 2


async def test_count_shows_active_subscribers_per_channel(
    config: Path, store: SubscriberStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _in_thread(["subscribers", "count", "--config", str(config)]) == 0
    assert "no active subscribers" in capsys.readouterr().out
    for number in ("55 1111 1111", "55 2222 2222"):
        await store.subscribe("sms-mx", number, consent_text=CONSENT, source="sms")
    await store.subscribe("telegram", "42", consent_text=CONSENT, source="telegram-bot")
    await store.deactivate("telegram", "42", reason="blocked")

    assert await _in_thread(["subscribers", "count", "--json", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out) == {"sms-mx": 2}
    assert await _in_thread(["subscribers", "count", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "sms-mx" in out and "total: 2" in out


async def test_without_the_key_the_command_names_the_variable(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alertcast.errors import ConfigError

    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigError, match=KEY_ENV):
        await _in_thread(["subscribers", "count", "--config", str(config)])


async def _in_thread(argv: list[str]) -> int:
    """Run the command as the shell would: it starts its own event loop."""
    import asyncio

    return await asyncio.to_thread(run, argv)
