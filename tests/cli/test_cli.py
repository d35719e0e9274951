"""The ``alertcast`` command as a user meets it: output, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import text

from alertcast.cli import main
from alertcast.store.engine import make_engine

SAMPLES = Path(str(resources.files("alertcast.demo") / "samples"))
GOOD = SAMPLES / "01-sismo-simulacro.xml"
UPDATE = SAMPLES / "03-carretera-actualizacion.xml"
BROKEN = SAMPLES / "04-documento-danado.xml"


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "en")
    monkeypatch.delenv("ALERTCAST_DATABASE_URL", raising=False)
    monkeypatch.delenv("ALERTCAST_CONFIG", raising=False)


def test_parse_prints_one_json_object_per_alert(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", str(GOOD), str(UPDATE)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["source_file"] == str(GOOD)
    assert first["identifier"] == "DEMO-SISMO-0001"
    assert first["sent"] == "2026-01-19T11:00:00-06:00"
    assert (first["status"], first["msg_type"], first["scope"]) == ("Exercise", "Alert", "Public")
    assert [i["language"] for i in first["infos"]] == ["es-MX", "en-US"]
    area = first["infos"][0]["areas"][0]
    assert area["circles"] == [{"lat": 19.4326, "lon": -99.1332, "radius_km": 30.0}]
    assert area["geocodes"] == [{"name": "INEGI_CVEGEO", "value": "09"}]
    assert first["infos"][0]["category"] == ["Geo"]
    assert second["references"] == [
        "demo@alertcast.invalid,DEMO-CARRETERA-0001,2026-01-19T11:05:00-06:00"
    ]
    assert second["infos"][0]["areas"][0]["polygons"][0][0] == [19.1, -99.2]


def test_parse_goes_on_after_a_bad_file_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.xml"
    assert main(["parse", str(BROKEN), str(missing), str(tmp_path), str(GOOD)]) == 1
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1  # the good file still printed
    errors = captured.err.splitlines()
    assert errors[0].startswith(f"error: {BROKEN}: ")
    assert errors[1].startswith(f"error: {missing}: ")
    assert errors[2].startswith(f"error: {tmp_path}: ")
    assert "Traceback" not in captured.err


def test_parse_strict_turns_warnings_into_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lax = tmp_path / "lax.xml"
    lax.write_bytes(GOOD.read_bytes().replace(b"<scope>Public</scope>", b"<scope>public</scope>"))
    assert main(["parse", str(lax)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["warnings"], "a lenient parse reports what it repaired"
    assert main(["parse", "--strict", str(lax)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {lax}: ")


def test_parse_refuses_a_file_over_the_size_limit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes(b" " * 2048 + GOOD.read_bytes())
    assert main(["parse", "--max-bytes", "1024", str(big)]) == 1
    assert "larger than the limit" in capsys.readouterr().err


def test_hostile_input_gives_no_traceback(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        "<alert>&lol2;</alert>",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "alertcast", "parse", str(bomb)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ALERTCAST_LANG": "en"},
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {bomb}: ")
    assert "Traceback" not in result.stderr


def test_check_reports_problems_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "alertcast.toml"
    cfg.write_text("[service]\nport = 70000\n", encoding="utf-8")
    assert main(["check", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "1 configuration problem(s):" in err
    assert f"{cfg}: service.port: must be between 0 and 65535" in err


def test_check_accepts_the_shipped_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[2]
    assert main(["check", "--config", str(root / "alertcast.toml")]) == 0
    assert capsys.readouterr().out.startswith("configuration OK:")


def _config_for(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    cfg = tmp_path / "alertcast.toml"
    cfg.write_text('[service]\nlog_format = "json"\nlog_level = "warning"\n', encoding="utf-8")
    monkeypatch.setenv("ALERTCAST_DATABASE_URL", database_url)
    return str(cfg)


async def _ingest_samples(database_url: str) -> None:
    from alertcast.cap import parse_cap
    from alertcast.store.alerts import AlertRepository
    from alertcast.store.migrate import upgrade

    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        repository = AlertRepository(engine)
        for path in (GOOD, UPDATE):
            parsed = parse_cap(path.read_bytes())
            await repository.ingest(
                parsed.alert, raw=path.read_bytes(), source="test", actor="cli-test"
            )
    finally:
        await engine.dispose()


async def _tamper(database_url: str, sql: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def test_audit_commands_verify_export_and_tail(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = _config_for(database_url, tmp_path, monkeypatch)
    await _ingest_samples(database_url)
    # The CLI runs its own event loop; run it in a thread so it does not nest in ours.
    import asyncio

    assert await asyncio.to_thread(main, ["audit", "verify", "--config", cfg]) == 0
    assert capsys.readouterr().out.strip() == "audit trail intact: 2 records checked"

    out_file = tmp_path / "audit.csv"
    assert (
        await asyncio.to_thread(
            main, ["audit", "export", "--config", cfg, "--format", "csv", "--output", str(out_file)]
        )
        == 0
    )
    rows = out_file.read_text(encoding="utf-8").strip().splitlines()
    assert len(rows) == 3  # header and two records
    assert "alert.ingested" in rows[1]

    assert await asyncio.to_thread(main, ["audit", "export", "--config", cfg]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["seq"] for r in exported] == [1, 2]

    assert await asyncio.to_thread(main, ["audit", "tail", "--config", cfg, "-n", "1"]) == 0
    (last,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert last["seq"] == 2

    await _tamper(database_url, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    assert await asyncio.to_thread(main, ["audit", "verify", "--config", cfg]) == 1
    assert "audit trail BROKEN at record 2" in capsys.readouterr().err


async def test_db_upgrade_reports_the_revision(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    from alertcast.store.migrate import head_revision

    cfg = _config_for(database_url, tmp_path, monkeypatch)
    assert await asyncio.to_thread(main, ["db", "upgrade", "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert f"database at revision {head_revision()}" in out
