"""``alertcast rules test`` and ``alertcast silences`` as an operator meets them."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from alertcast.cap import to_cap_xml
from alertcast.cli import main
from alertcast.domain import Alert, Category, Polygon, Severity
from alertcast.store.alerts import AlertRepository
from alertcast.store.engine import make_engine
from alertcast.store.migrate import upgrade
from tests.rules.support import alert, area, info

SAMPLES = Path(str(resources.files("alertcast.demo") / "samples"))
DRILL = SAMPLES / "01-sismo-simulacro.xml"

RULES = """
[route]
channels = ["console"]

[[route.routes]]
name = "drills"
exercise = true
test_audience = { topics = ["simulacros"] }

[[route.routes]]
name = "roads"
category = "Transport"
group_by = ["feed", "thread"]
approval = "auto"

[[inhibit]]
name = "closure-hides-minor"
source = { category = "Transport", severity_at_least = "Severe" }
target = { category = "Transport" }
"""

SEGMENT = Polygon(((19.10, -99.20), (19.10, -99.10), (19.00, -99.10), (19.00, -99.20)))


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "en")
    monkeypatch.delenv("ALERTCAST_DATABASE_URL", raising=False)
    monkeypatch.delenv("ALERTCAST_CONFIG", raising=False)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "console.toml").write_text('kind = "console"\n', encoding="utf-8")
    (tmp_path / "alertcast.toml").write_text("", encoding="utf-8")
    (tmp_path / "rules.toml").write_text(RULES, encoding="utf-8")
    return tmp_path


def road(identifier: str, severity: Severity) -> Alert:
    details = info(
        categories=(Category.TRANSPORT,),
        event="Cierre de carretera",
        severity=severity,
        areas=(area("México-Cuernavaca km 45", polygons=(SEGMENT,)),),
    )
    return alert(details, identifier=identifier, sender="capufe@example.mx")


def write(folder: Path, subject: Alert, name: str) -> Path:
    path = folder / name
    path.write_bytes(to_cap_xml(subject))
    return path


def test_rules_test_shows_every_route_and_why(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["rules", "test", str(DRILL), "--config", str(folder / "alertcast.toml")])
    out = capsys.readouterr().out
    assert code == 0
    assert "alert DEMO-SISMO-0001 from demo@alertcast.invalid" in out
    assert "Exercise Alert" in out
    assert "drills [handles it]" in out
    assert "status Exercise is one of Exercise, Test" in out
    assert "roads [not tried]" in out
    assert "→ console: TEST AUDIENCE: subscribers of simulacros in alert" in out
    assert "approval auto" in out
    assert "state: no database yet" in out
    assert not (folder / "data").exists()  # looking never creates a database


def test_rules_test_speaks_spanish(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "es")
    assert main(["rules", "test", str(DRILL), "--config", str(folder / "alertcast.toml")]) == 0
    out = capsys.readouterr().out
    assert "drills [la atiende]" in out
    assert "PÚBLICO DE PRUEBA" in out
    assert "el estado Exercise es uno de Exercise, Test" in out


def test_rules_test_json(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["rules", "test", str(DRILL), "--config", str(folder / "alertcast.toml"), "--json"]
    assert main(args) == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    decision = record["decision"]
    assert decision["handled_by"] == ["drills"]
    assert decision["deliveries"][0]["audience"]["test"] is True
    assert [t["outcome"] for t in decision["trace"]] == ["matched", "handled", "not-tried"]
    assert record["state"]["missing"] == "no database yet"


def test_a_bad_alert_file_exits_1_and_a_bad_rules_file_exits_2(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(folder / "alertcast.toml")
    assert main(["rules", "test", str(folder / "missing.xml"), "--config", config]) == 1
    assert "missing.xml" in capsys.readouterr().err
    (folder / "rules.toml").write_text('[route]\nchannels = ["telegram"]\n', encoding="utf-8")
    assert main(["rules", "test", str(DRILL), "--config", config]) == 2
    err = capsys.readouterr().err
    assert "rules.toml: route.channels: unknown channel 'telegram'" in err
    assert main(["check", "--config", config]) == 1


async def test_silences_and_active_alerts_from_the_database(
    folder: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The whole loop on both databases: set a silence, see it applied, end it, see it gone."""
    import asyncio

    monkeypatch.setenv("ALERTCAST_DATABASE_URL", database_url)
    config = str(folder / "alertcast.toml")
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        closure = road("CLOSE-1", Severity.SEVERE)
        await AlertRepository(engine).ingest(
            closure, raw=None, source="feed:capufe", actor="poller", feed="capufe", thread="km45"
        )
    finally:
        await engine.dispose()
    minor = write(folder, road("MINOR-1", Severity.MINOR), "minor.xml")

    def run(*args: str) -> tuple[int, str]:
        code = main(list(args))
        return code, capsys.readouterr().out

    # The CLI runs its own event loop: call it from a worker thread.
    code, out = await asyncio.to_thread(
        run, "rules", "test", str(minor), "--config", config, "--feed", "capufe", "--thread", "km45"
    )
    assert code == 0
    assert "[inhibited]" in out and "closure-hides-minor" in out
    assert "state: 0 active silence(s), 1 active alert(s) considered" in out

    code, out = await asyncio.to_thread(
        run,
        "silences", "add", "--config", config,
        "--matcher", "event=Cierre*", "--matcher", "channel=console",
        "--hours", "2", "--author", "ana.lopez", "--reason", "Reportes duplicados",
    )  # fmt: skip
    assert code == 0 and "silence #1 set by ana.lopez: event=Cierre*, channel=console" in out

    severe = write(folder, road("SEVERE-2", Severity.EXTREME), "severe.xml")
    code, out = await asyncio.to_thread(
        run,
        "rules",
        "test",
        str(severe),
        "--config",
        config,
        "--json",
        "--feed",
        "capufe",
        "--thread",
        "km45",
    )
    decision = json.loads(out)["decision"]
    assert [s["cause"] for s in decision["suppressed"]] == ["silenced"]
    assert decision["suppressed"][0]["silence_id"] == 1
    assert decision["suppressed"][0]["delivery"]["group_update_of"] is None

    code, out = await asyncio.to_thread(run, "silences", "list", "--config", config)
    assert code == 0 and out.startswith("#1 active ") and "ana.lopez: Reportes duplicados" in out

    code, out = await asyncio.to_thread(
        run, "silences", "expire", "1", "--config", config, "--author", "jefe"
    )
    assert (code, out.strip()) == (0, "silence #1 ended")
    code, out = await asyncio.to_thread(run, "silences", "list", "--config", config)
    assert out.strip() == "no silences"
    code, out = await asyncio.to_thread(
        run, "silences", "list", "--config", config, "--all", "--json"
    )
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["expired_at"] is not None and record["active"] is False

    # With the silence over, the Extreme report goes out as an update of the closure's message.
    code, out = await asyncio.to_thread(
        run,
        "rules",
        "test",
        str(severe),
        "--config",
        config,
        "--json",
        "--feed",
        "capufe",
        "--thread",
        "km45",
    )
    decision = json.loads(out)["decision"]
    assert decision["suppressed"] == []
    assert decision["deliveries"][0]["group_update_of"] == str(road("CLOSE-1", Severity.SEVERE).key)

    code, _ = await asyncio.to_thread(run, "silences", "expire", "99", "--config", config)
    assert code == 1


def test_silences_add_refuses_bad_matchers(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(folder / "alertcast.toml")
    args = ["silences", "add", "--config", config, "--hours", "1", "--author", "a", "--reason", "r"]
    assert main([*args, "--matcher", "colour=red"]) == 2
    assert "unknown label 'colour'" in capsys.readouterr().err
    assert main([*args, "--matcher", "event=*", "--hours", "0"]) == 2
    assert not (folder / "data").exists()
