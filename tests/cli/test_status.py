"""``alertcast status ALERT_ID``: per channel a bar, counts, rate and ETA, live or once.

The command reads the real clock, so the rows here were moved a day ago:
nothing is in the rate window, and every figure shown is exact.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import lifecycle
from alertcast.cli import main
from alertcast.cli_deliveries import _status, format_progress
from alertcast.dispatch.ledger import DeliveryState
from alertcast.dispatch.progress import AlertProgress, ChannelProgress
from alertcast.store.engine import make_engine
from alertcast.store.migrate import upgrade
from tests.dispatch.conftest import make_alert
from tests.dispatch.test_progress import finish, plan_rows

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Fan:
    url: str
    config: str
    alert_id: int
    empty_alert_id: int
    engine: AsyncEngine


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "en")
    monkeypatch.delenv("ALERTCAST_CONFIG", raising=False)


@pytest.fixture
async def fan(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Fan]:
    """An alert with telegram: 2 dead, 1 sent, 1 pending; console: 8 pending (limit 4/s)."""
    await upgrade(database_url)
    engine = make_engine(database_url)
    day_ago = datetime.now(UTC) - timedelta(days=1)
    ids = []
    for name in ("STATUS-1", "STATUS-EMPTY"):
        stored = await lifecycle.ingest_alert(
            engine, make_alert(name), raw=None, source="t", actor="t", now=day_ago
        )
        ids.append(stored.result.alert_id)
    alert_id = ids[0]
    await plan_rows(engine, alert_id, "telegram", 4, when=day_ago)
    await plan_rows(engine, alert_id, "console", 8, when=day_ago)
    await finish(engine, alert_id, "telegram", 2, DeliveryState.DEAD, when=day_ago)
    await finish(engine, alert_id, "telegram", 1, DeliveryState.SENT, when=day_ago)
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "console.toml").write_text(
        'kind = "console"\n[options]\nrate_per_s = 4\n', encoding="utf-8"
    )
    cfg = tmp_path / "alertcast.toml"
    cfg.write_text('[service]\nlog_format = "json"\nlog_level = "warning"\n', encoding="utf-8")
    monkeypatch.setenv("ALERTCAST_DATABASE_URL", database_url)
    try:
        yield Fan(database_url, str(cfg), alert_id, ids[1], engine)
    finally:
        await engine.dispose()


async def _run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


def _channel_line(out: str, channel: str) -> str:
    return next(line for line in out.splitlines() if line.strip().startswith(channel))


async def test_once_shows_a_bar_counts_rate_and_eta_per_channel(
    fan: Fan, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run("status", str(fan.alert_id), "--once", "--config", fan.config) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"alert {fan.alert_id} · ")
    assert "3/12 done (25%) · 0.0/s · ETA —" in lines[0]
    assert "oldest waiting 24h00m" in lines[0]
    console = _channel_line(out, "console")
    assert "[" + "-" * 30 + "]" in console
    # Nothing sent yet on console: its configured 4/s gives the ETA.
    assert console.split()[2:6] == ["0/8", "0%", "0.0/s", "ETA"]
    assert "ETA 2s" in console and "pending 8" in console
    telegram = _channel_line(out, "telegram")
    assert "[" + "#" * 22 + "-" * 8 + "]" in telegram
    assert telegram.split()[2:4] == ["3/4", "75%"]
    # It sent, then nothing for a day: no rate, no made-up ETA.
    assert "ETA —" in telegram
    assert telegram.endswith("pending 1 · sent 1 · dead 2")
    assert "\r" not in out and "\x1b" not in out


async def test_json_prints_the_api_figures_once(
    fan: Fan, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run("status", str(fan.alert_id), "--json", "--config", fan.config) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["alert_id"] == fan.alert_id
    assert body["finished"] is False
    assert [c["channel"] for c in body["channels"]] == ["console", "telegram"]
    console, telegram = body["channels"]
    assert console["rate_limit_per_s"] == 4.0 and console["eta_s"] == 2.0
    assert telegram["counts"]["dead"] == 2 and telegram["remaining"] == 1
    assert body["totals"]["total"] == 12 and body["totals"]["done"] == 3


async def test_spanish_for_people(
    fan: Fan, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "es")
    assert await _run("status", str(fan.alert_id), "--once", "--config", fan.config) == 0
    out = capsys.readouterr().out
    assert f"alerta {fan.alert_id} · " in out
    assert "3/12 terminados (25 %)" in out and "quedan —" in out
    assert _channel_line(out, "telegram").endswith("pendientes 1 · enviados 1 · abandonados 2")
    assert "quedan 2s" in _channel_line(out, "console")

    assert await _run("status", "999999", "--once", "--config", fan.config) == 1
    assert "la alerta 999999 no existe" in capsys.readouterr().err


async def test_a_missing_alert_or_one_without_deliveries_exits_1(
    fan: Fan, capsys: pytest.CaptureFixture[str]
) -> None:
    for flag in ("--once", "--json"):
        assert await _run("status", "999999", flag, "--config", fan.config) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        assert "alert 999999 does not exist" in captured.err
    empty = str(fan.empty_alert_id)
    assert await _run("status", empty, "--once", "--config", fan.config) == 1
    assert f"alert {empty} has no deliveries" in capsys.readouterr().err
    # As JSON an alert without deliveries is an answer: nothing to do.
    assert await _run("status", empty, "--json", "--config", fan.config) == 0
    assert json.loads(capsys.readouterr().out)["channels"] == []


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _sleeper(*steps: Callable[[], object]) -> Callable[[float], Awaitable[None]]:
    """A ``sleep`` that runs the next step (moving rows) instead of waiting."""
    pending = list(steps)

    async def sleep(_seconds: float) -> None:
        if pending:
            result = pending.pop(0)()
            if asyncio.iscoroutine(result):
                await result

    return sleep


def _finish_everything(fan: Fan) -> Callable[[], object]:
    async def step() -> None:
        now = datetime.now(UTC)
        await finish(fan.engine, fan.alert_id, "telegram", 1, DeliveryState.SENT, when=now)
        await finish(fan.engine, fan.alert_id, "console", 8, DeliveryState.DELIVERED, when=now)

    return step


async def test_follows_the_fan_out_until_finished_in_plain_lines_off_a_terminal(
    fan: Fan,
) -> None:
    out = io.StringIO()
    code = await _status(
        fan.url,
        fan.alert_id,
        once=False,
        interval=1.0,
        out=out,
        sleep=_sleeper(lambda: None, _finish_everything(fan)),
    )
    assert code == 0
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    heads = [line for line in text.splitlines() if line.startswith("alert ")]
    # The first refresh changed nothing, so it printed nothing.
    assert len(heads) == 2
    assert "3/12 done" in heads[0] and "finished" not in heads[0]
    assert "12/12 done (100%)" in heads[1] and heads[1].endswith("finished")
    assert _channel_line(text.split(heads[1])[1], "console").endswith("delivered 8")


async def test_redraws_in_place_at_a_terminal(fan: Fan) -> None:
    out = Terminal()
    code = await _status(
        fan.url,
        fan.alert_id,
        once=False,
        interval=1.0,
        out=out,
        sleep=_sleeper(_finish_everything(fan)),
    )
    assert code == 0
    text = out.getvalue()
    assert text.count("\x1b[3F") == 1, "the 3 lines drawn are redrawn once, in place"
    first, second = text.split("\x1b[3F")
    assert "3/12 done" in first
    assert "12/12 done" in second and "finished" in second
    assert all(line.startswith("\x1b[2K") for line in second.splitlines())


async def test_once_does_not_wait(fan: Fan) -> None:
    async def never(_seconds: float) -> None:
        raise AssertionError("--once must not refresh")

    out = io.StringIO()
    assert await _status(fan.url, fan.alert_id, once=True, interval=1, out=out, sleep=never) == 0
    assert out.getvalue().count("alert ") == 1


def test_format_shows_rate_and_eta_from_the_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "en")
    sms = ChannelProgress(
        "sms", {"pending": 750, "sent": 250}, 1000, 250, 12.5, 60.0, 95.0, rate_limit_per_s=20
    )
    telegram = ChannelProgress("telegram", {"delivered": 30}, 30, 30, 250.0, 0.0, None)
    lines = format_progress(AlertProgress(7, T0, 60.0, (sms, telegram)))
    assert lines == [
        "alert 7 · 2026-03-01 12:00:00Z · 280/1030 done (27%) · 262/s · ETA 1m00s"
        " · oldest waiting 1m35s",
        "  sms       [#######-----------------------]  250/1000   25%    12.5/s"
        "  ETA 1m00s       pending 750 · sent 250",
        "  telegram  [##############################]     30/30  100%     250/s"
        "  ETA 0s          delivered 30",
    ]
