"""``alertcast deliveries list|retry`` and ``alertcast status`` on both databases."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alertcast import audit, lifecycle
from alertcast.cli import main
from alertcast.dispatch import ledger
from alertcast.dispatch.ledger import DeliveryState, Outcome
from alertcast.ports import OutboundMessage
from alertcast.store.engine import make_engine
from alertcast.store.migrate import upgrade
from tests.dispatch.conftest import make_alert


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "en")
    monkeypatch.delenv("ALERTCAST_CONFIG", raising=False)


@pytest.fixture
async def ledger_with_dead_rows(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, int]:
    """A config file path and an alert with rows: a, b dead; c sent; d pending."""
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        stored = await lifecycle.ingest_alert(
            engine, make_alert("CLI-1"), raw=None, source="t", actor="t", now=datetime.now(UTC)
        )
        alert_id = stored.result.alert_id
        await ledger.plan(
            engine,
            alert_id=alert_id,
            channel="telegram",
            targets=["a", "b", "c", "d"],
            message=OutboundMessage(parts=("Aviso",)),
            priority=20,
            deadline=None,
        )
        claimed = await ledger.claim(engine, worker="w", channels=["telegram"], limit=3, lease_s=60)
        by_target = {d.target: d for d in claimed}
        outcomes = [
            Outcome(
                by_target[t].id, alert_id, DeliveryState.DEAD, error_class="Transient", error="502"
            )
            for t in ("a", "b")
        ] + [Outcome(by_target["c"].id, alert_id, DeliveryState.SENT, provider_message_id="m-1")]
        await ledger.record_outcomes(engine, outcomes, worker="w")
    finally:
        await engine.dispose()
    cfg = tmp_path / "alertcast.toml"
    cfg.write_text('[service]\nlog_format = "json"\nlog_level = "warning"\n', encoding="utf-8")
    monkeypatch.setenv("ALERTCAST_DATABASE_URL", database_url)
    return str(cfg), alert_id


async def _run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_list_shows_the_dead_rows_with_their_error(
    ledger_with_dead_rows: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, alert_id = ledger_with_dead_rows
    assert await _run("deliveries", "list", "--state", "dead", "--config", cfg) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["ID", "ALERT", "CHANNEL", "TARGET", "STATE"]
    assert len(lines) == 3
    assert all("dead" in line and "Transient: 502" in line for line in lines[1:])

    assert (
        await _run("deliveries", "list", "--alert", str(alert_id), "--json", "--config", cfg) == 0
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted((r["target"], r["state"]) for r in records) == [
        ("a", "dead"),
        ("b", "dead"),
        ("c", "sent"),
        ("d", "pending"),
    ]


async def test_retry_requeues_dead_rows_by_state_or_by_id(
    ledger_with_dead_rows: tuple[str, int], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, alert_id = ledger_with_dead_rows
    assert await _run("deliveries", "retry", "--config", cfg) == 2
    assert "name the deliveries" in capsys.readouterr().err

    assert await _run("deliveries", "list", "--state", "sent", "--json", "--config", cfg) == 0
    sent_id = json.loads(capsys.readouterr().out)["id"]
    assert await _run("deliveries", "retry", str(sent_id), "--config", cfg) == 1
    assert "0 deliveries queued again" in capsys.readouterr().out

    args = ("deliveries", "retry", "--state", "dead", "--alert", str(alert_id), "--config", cfg)
    assert await _run(*args) == 0
    assert "2 deliveries queued again" in capsys.readouterr().out

    engine = make_engine(database_url)
    try:
        assert await ledger.progress(engine, alert_id) == {"telegram": {"pending": 3, "sent": 1}}
        record = (await audit.tail(engine, 1))[0]
        assert record.action == "delivery.retried" and record.actor.startswith("cli:")
        await audit.verify_chain(engine)
    finally:
        await engine.dispose()


async def test_status_prints_counts_per_channel_and_state(
    ledger_with_dead_rows: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, alert_id = ledger_with_dead_rows
    assert await _run("status", str(alert_id), "--once", "--config", cfg) == 0
    summary, row = capsys.readouterr().out.splitlines()
    assert summary.startswith(f"alert {alert_id} · ") and "3/4 done (75%)" in summary
    assert row.split()[:4] == ["telegram", "[" + "#" * 22 + "-" * 8 + "]", "3/4", "75%"]
    assert row.endswith("pending 1 · sent 1 · dead 2")

    assert await _run("status", "999999", "--once", "--config", cfg) == 1
    assert "alert 999999 does not exist" in capsys.readouterr().err
