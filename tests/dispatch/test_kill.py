"""Kill -9 of worker processes mid-fan-out, then a restart: nothing lost, duplicates accounted for.

A killed worker leaves rows claimed under a lease; once the lease runs out
another worker takes them. A row whose send had started when the worker died
may have reached the provider: the reclaiming worker sends it again and the
audit trail lists it under ``reclaimed_after_send_started``. So every
duplicate must be one of those, and every target must have been sent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from alertcast import audit, lifecycle
from alertcast.dispatch import ledger
from alertcast.dispatch.worker import Worker
from alertcast.ports import OutboundMessage
from alertcast.store.engine import make_engine
from alertcast.store.migrate import upgrade
from alertcast.testing import RecordingChannel, UnlimitedLimiter
from tests.dispatch.conftest import make_alert
from tests.dispatch.worker_process import LEASE_S

FAN_OUT = 3000
KILLS = 3
REPO = Path(__file__).resolve().parents[2]


def _lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


async def _wait_for_lines(path: Path, count: int, process: asyncio.subprocess.Process) -> None:
    for _ in range(6000):
        if len(_lines(path)) >= count:
            return
        if process.returncode is not None:
            raise AssertionError(f"the worker process exited with {process.returncode}")
        await asyncio.sleep(0.01)
    raise AssertionError(f"the worker process never sent {count} messages")


async def test_killed_workers_lose_nothing_and_every_duplicate_is_accounted_for(
    database_url: str, tmp_path: Path
) -> None:
    await upgrade(database_url)
    engine = make_engine(database_url)
    outfile = tmp_path / "sent.txt"
    try:
        stored = await lifecycle.ingest_alert(
            engine, make_alert("KILL-1"), raw=None, source="t", actor="t", now=datetime.now(UTC)
        )
        alert_id = stored.result.alert_id
        await ledger.plan(
            engine,
            alert_id=alert_id,
            channel="fake",
            targets=(f"chat-{i}" for i in range(FAN_OUT)),
            message=OutboundMessage(parts=("Aviso",)),
            priority=20,
            deadline=None,
        )
        for kill in range(1, KILLS + 1):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.dispatch.worker_process",
                database_url,
                str(outfile),
                f"proc-{kill}",
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                await _wait_for_lines(outfile, kill * FAN_OUT // (KILLS + 1), process)
            finally:
                process.send_signal(signal.SIGKILL)
                await process.wait()

        channel = RecordingChannel()
        survivor = Worker(
            engine, {"fake": channel}, UnlimitedLimiter(), "survivor", lease_s=LEASE_S, poll_s=0.05
        )
        stop = asyncio.Event()

        async def watch() -> None:
            for _ in range(12_000):
                if ledger.is_finished(await ledger.progress(engine, alert_id)):
                    break
                await asyncio.sleep(0.01)
            stop.set()

        await asyncio.gather(survivor.run(stop), watch())

        sends = Counter(_lines(outfile) + channel.targets)
        assert set(sends) == {f"chat-{i}" for i in range(FAN_OUT)}  # nothing lost
        assert await ledger.progress(engine, alert_id) == {"fake": {"sent": FAN_OUT}}
        duplicates = sum(n - 1 for n in sends.values())
        possibly_twice: set[int] = set()
        async for record in audit.iter_records(engine):
            if record.action == "delivery.claimed":
                possibly_twice.update(record.data["reclaimed_after_send_started"])
        assert duplicates <= len(possibly_twice)
        await audit.verify_chain(engine)
    finally:
        await engine.dispose()
