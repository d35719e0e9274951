"""``alertcast render`` as an operator meets it: output, JSON keys, exit codes, no tracebacks."""

from __future__ import annotations

import argparse
import json
import re
from importlib import resources
from pathlib import Path

import pytest

from alertcast import cli_render

SAMPLES = Path(str(resources.files("alertcast.demo") / "samples"))
QUAKE = SAMPLES / "01-sismo-simulacro.xml"
ROAD = SAMPLES / "02-carretera-simulacro.xml"
BROKEN = SAMPLES / "04-documento-danado.xml"


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ALERTCAST_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="alertcast")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_render.register(sub)
    args = parser.parse_args(["render", *argv])
    return int(args.func(args))


def test_json_output_has_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(ROAD), "--channel", "sms", "--lang", "es", "--json") == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert {"channel", "language", "parts", "truncated", "warnings"} <= set(record)
    assert record["channel"] == "sms"
    assert record["language"] == "es-MX"
    (part,) = record["parts"]
    assert {"text", "length", "encoding", "segments"} <= set(part)
    assert part["text"].startswith("SIMULACRO: CIERRE DE CIRCULACION")
    assert part["encoding"] == "gsm7" and 1 <= part["segments"] <= 3


def test_json_for_a_channel_without_segments(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(QUAKE), "--channel", "telegram", "--lang", "en", "--json") == 0
    record = json.loads(capsys.readouterr().out)
    assert record["language"] == "en-US"
    assert record["parts"][0]["encoding"] is None and record["parts"][0]["segments"] is None
    assert record["parts"][0]["text"].startswith("EXERCISE: ")


def test_plain_output_shows_text_and_length(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(QUAKE), "--channel", "x", "--template", "manual") == 0
    out = capsys.readouterr().out
    assert out.startswith("SIMULACRO: ")
    assert re.search(r"--- x: \d+/280, language es-MX", out)


def test_a_bad_file_exits_1_with_path_and_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run(str(BROKEN), "--channel", "sms") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {BROKEN}: ")
    assert "Traceback" not in err
    missing = tmp_path / "nope.xml"
    assert run(str(missing), "--channel", "sms") == 1
    assert capsys.readouterr().err.startswith(f"error: {missing}: ")


def test_an_unknown_template_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(QUAKE), "--channel", "sms", "--template", "nope") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {QUAKE}: ") and "'nope'" in err


def test_an_unknown_channel_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(str(QUAKE), "--channel", "pager") == 2
    assert "unknown channel 'pager'" in capsys.readouterr().err


def test_a_configured_channel_brings_its_options_and_templates(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "alertcast.toml").write_text("")
    channels = tmp_path / "channels"
    (channels / "templates" / "avisos").mkdir(parents=True)
    (channels / "avisos.toml").write_text('kind = "console"\n[options]\nlanguage = "en"\n')
    (channels / "templates" / "avisos" / "earthquake.en.j2").write_text("QUAKE {{ headline }}")
    assert run(str(QUAKE), "--channel", "avisos", "--json") == 0
    record = json.loads(capsys.readouterr().out)
    assert record["channel"] == "avisos" and record["kind"] == "console"
    assert record["parts"][0]["text"] == "EXERCISE: QUAKE Earthquake alert for Mexico City"
