"""``alertcast demo`` as a newcomer runs it: it starts, shows alerts arriving, stops cleanly.

The drills arrive twice: in the console channel's outbox and, through the real
python-telegram-bot client, at the demo's fake Telegram Bot API.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def test_demo_runs_end_to_end_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "ALERTCAST_LANG": "en"}
    env.pop("ALERTCAST_DATABASE_URL", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alertcast",
            "demo",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "d"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = None
        telegram_url = None
        assert proc.stderr is not None
        for _ in range(200):  # bounded: the banner comes within the first lines
            line = proc.stderr.readline()
            if not line:
                break
            found = re.search(r"Telegram \(fake\): .*(http://127\.0\.0\.1:\d+)/", line)
            if found:
                telegram_url = found.group(1)
            found = re.search(r"open (http://127\.0\.0\.1:\d+)/", line)
            if found:
                url = found.group(1)
                break
        assert url, "the demo never said where it listens"
        assert telegram_url, "the demo never said where its fake Telegram is"
        outbox = tmp_path / "d" / "data" / "outbox" / "console.jsonl"
        rejected = tmp_path / "d" / "data" / "inbox" / "rejected"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines = outbox.read_text(encoding="utf-8").splitlines() if outbox.exists() else []
            posted = _telegram_messages(telegram_url)
            if (
                len(lines) >= 3
                and len(posted) >= 3
                and rejected.is_dir()
                and any(rejected.iterdir())
            ):
                break
            time.sleep(0.2)
        announced = [
            json.loads(line)["text"] for line in outbox.read_text(encoding="utf-8").splitlines()
        ]
        assert len(announced) == 3
        assert all(text.startswith("SIMULACRO:") for text in announced)
        assert [p.name for p in rejected.iterdir()] == ["04-documento-danado.xml"]
        with urllib.request.urlopen(url + "/readyz", timeout=10) as response:
            assert response.status == 200
        with urllib.request.urlopen(url + "/", timeout=10) as response:
            page = response.read().decode("utf-8")
        assert "SIMULACRO: circulación reabierta en un carril, km 45" in page
        # Two drills posted to the channel, the third (an Update) edits the second in place.
        posted = _telegram_messages(telegram_url)
        assert sorted(m["action"] for m in posted) == ["edited", "sent", "sent"]
        assert all(m["text"].startswith("SIMULACRO") for m in posted)
        with urllib.request.urlopen(telegram_url + "/", timeout=10) as response:
            telegram_page = response.read().decode("utf-8")
        assert "Simulacros (demo) (@simulacros_demo)" in telegram_page
        assert "Circulación reabierta en un carril, km 45" in telegram_page
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "Traceback" not in err
    assert "service.stopped" in err


def _telegram_messages(base_url: str) -> list[dict[str, Any]]:
    """What the bot did in the demo's drill channel, as the fake's JSON view lists it."""
    with urllib.request.urlopen(base_url + "/messages.json", timeout=10) as response:
        view = json.loads(response.read().decode("utf-8"))
    return [
        message
        for chat in view["chats"]
        if chat["chat"].get("username") == "simulacros_demo"
        for message in chat["messages"]
    ]
