"""``alertcast worker``: sends the ledger's rows, and on SIGTERM stops cleanly and resumes later."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from alertcast import audit
from alertcast.cap_writer import to_cap_xml
from alertcast.dispatch import ledger
from alertcast.ingest import Ingestor
from alertcast.ports import OutboundMessage
from alertcast.store.alerts import AlertRepository
from alertcast.store.engine import make_engine
from alertcast.store.migrate import upgrade
from alertcast.store.tables import deliveries
from tests.dispatch.conftest import make_alert

ROWS = 200


def _config(root: Path, database_url: str) -> Path:
    (root / "channels").mkdir()
    (root / "feeds").mkdir()
    # 50 per second: the fan-out lasts about four seconds, long enough to be interrupted
    (root / "channels" / "slow.toml").write_text(
        'name = "slow"\nkind = "console"\n[options]\nrate_per_s = 50\nburst = 1\n',
        encoding="utf-8",
    )
    config = root / "alertcast.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n'
        '[service]\ndata_dir = "data"\nlog_format = "json"\nlog_level = "info"\n',
        encoding="utf-8",
    )
    return config


def _start(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "ALERTCAST_DATABASE_URL"}
    return subprocess.Popen(
        [sys.executable, "-m", "alertcast", "worker", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


async def _until(done: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Wait (checking every 50 ms) until ``done()`` or the timeout; the caller asserts."""
    for _ in range(int(timeout_s / 0.05)):
        if done():
            return
        await asyncio.sleep(0.05)


def _sent_lines(outbox: Path) -> list[dict[str, object]]:
    if not outbox.is_file():
        return []
    return [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]


async def test_sigterm_stops_claiming_releases_leases_and_a_restart_finishes(
    database_url: str, tmp_path: Path
) -> None:
    config = _config(tmp_path, database_url)
    await upgrade(database_url)
    engine = make_engine(database_url)
    try:
        stored = await Ingestor(AlertRepository(engine)).ingest_bytes(
            to_cap_xml(make_alert("W-1")), source="t", actor="t"
        )
        alert_id = stored.items[0].alert_id
        assert alert_id is not None
        await ledger.plan(
            engine,
            alert_id=alert_id,
            channel="slow",
            targets=(f"chat-{n}" for n in range(ROWS)),
            message=OutboundMessage(parts=("Sismo",)),
            priority=0,
            deadline=None,
        )
        outbox = tmp_path / "data" / "outbox" / "slow.jsonl"

        worker = _start(config)
        await _until(lambda: len(_sent_lines(outbox)) >= 20)
        if len(_sent_lines(outbox)) < 20:
            worker.kill()
            _, stderr = worker.communicate()
            raise AssertionError(f"the worker never started sending: {stderr.decode()[-2000:]}")
        worker.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(worker.communicate, timeout=30)
        assert worker.returncode == 0, stderr.decode()[-2000:]
        assert b"worker.draining" in stderr or b"worker.stopped" in stderr

        async with engine.connect() as conn:
            claimed = await conn.scalar(select(func.count()).where(deliveries.c.state == "claimed"))
        assert claimed == 0  # every lease released: nothing waits for a lease to expire
        interrupted = len(_sent_lines(outbox))
        assert interrupted < ROWS  # it really stopped in the middle

        worker = _start(config)
        await _until(lambda: len(_sent_lines(outbox)) >= ROWS)
        worker.send_signal(signal.SIGTERM)
        await asyncio.to_thread(worker.communicate, timeout=30)

        targets = Counter(str(line["target"]) for line in _sent_lines(outbox))
        assert set(targets) == {f"chat-{n}" for n in range(ROWS)}
        assert max(targets.values()) == 1  # a clean stop sends nothing twice
        counts = await ledger.progress(engine, alert_id)
        assert counts == {"slow": {"delivered": ROWS}}
        assert await audit.verify_chain(engine) == await audit.count(engine)
    finally:
        await engine.dispose()
