"""The fake webhook provider the reliability tests rely on: each fault does what it says.

If the fake misbehaved in a way other than intended (recording a message it
then reset, say), the reliability tests would check the ledger against a
wrong record; so its faults are pinned here, through the real channel.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from alertcast.channels.webhook import WebhookChannel, idempotency_key
from alertcast.errors import Permanent, RateLimited, SentButUnknown, Transient
from alertcast.ports import OutboundMessage
from tests.fakes.http_provider import FakeProvider

REPO = Path(__file__).resolve().parents[2]
SECRET = b"fake-provider-secret"
MESSAGE = OutboundMessage(parts=("Aviso",), severity="Minor", extra={"alert_id": 1})


@pytest.mark.parametrize(
    ("kind", "error", "recorded"),
    [
        ("error_500", Transient, 0),
        ("rate_limited", RateLimited, 0),
        ("timeout_before", SentButUnknown, 0),
        ("timeout_after", SentButUnknown, 1),
        ("reset", SentButUnknown, 0),
    ],
)
async def test_each_fault_is_classified_and_recorded_as_intended(
    kind: str, error: type[Exception], recorded: int
) -> None:
    async with FakeProvider(errors=1.0, kinds=(kind,), hang_s=0.5, secret=SECRET) as fake:
        channel = WebhookChannel("hook", fake.url, secret=SECRET, timeout_s=0.2)
        try:
            with pytest.raises(error) as raised:
                await channel.send(MESSAGE, "t-1")
        finally:
            await channel.aclose()
    assert type(raised.value) is error
    assert len(fake.received) == recorded
    assert fake.answers[idempotency_key(MESSAGE, "t-1")] == [kind]
    assert fake.faults == {kind: 1}
    if isinstance(raised.value, RateLimited):
        assert raised.value.retry_after == 0.05


async def test_accepted_messages_and_duplicates_are_counted() -> None:
    async with FakeProvider(secret=SECRET) as fake:
        channel = WebhookChannel("hook", fake.url, secret=SECRET)
        try:
            first = await channel.send(MESSAGE, "a")
            await channel.send(MESSAGE, "a")
            await channel.send(MESSAGE, "b")
        finally:
            await channel.aclose()
    assert first.provider_message_id == "fake-1"
    assert fake.by_target() == {"a": 2, "b": 1}
    assert fake.duplicates == 1
    assert [r.alert_id for r in fake.received] == [1, 1, 1]


async def test_a_bad_signature_is_refused() -> None:
    async with FakeProvider(secret=SECRET) as fake:
        channel = WebhookChannel("hook", fake.url, secret=b"wrong", timeout_s=1)
        try:
            with pytest.raises(Permanent, match="401"):
                await channel.send(MESSAGE, "a")
        finally:
            await channel.aclose()
    assert fake.rejected == 1
    assert fake.received == []


def test_faults_depend_on_the_seed_and_key_not_on_arrival_order() -> None:
    keys = [f"key-{i}" for i in range(200)]
    drawn = [FakeProvider(errors=0.5, seed=3)._draw(k, 0) for k in keys]
    again = FakeProvider(errors=0.5, seed=3)
    assert [again._draw(k, 0) for k in reversed(keys)] == list(reversed(drawn))
    assert 60 < sum(1 for fault, _ in drawn if fault is not None) < 140
    assert [FakeProvider(errors=0.5, seed=4)._draw(k, 0) for k in keys] != drawn


async def test_it_runs_as_a_process_that_records_to_a_file(tmp_path: Path) -> None:
    record = tmp_path / "accepted.jsonl"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.http_provider",
        "--port",
        "0",
        "--record",
        str(record),
        "--secret-env",
        "FAKE_PROVIDER_SECRET",
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "FAKE_PROVIDER_SECRET": SECRET.decode()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        url = json.loads(line)["url"]
        channel = WebhookChannel("hook", url, secret=SECRET)
        try:
            await channel.send(MESSAGE, "a")
            await channel.send(MESSAGE, "a")
        finally:
            await channel.aclose()
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    lines = [json.loads(x) for x in record.read_text(encoding="utf-8").splitlines()]
    assert [x["target"] for x in lines] == ["a", "a"]
    assert lines[0]["idempotency_key"] == idempotency_key(MESSAGE, "a")
    summary = json.loads(stderr.decode().strip().splitlines()[-1])
    assert summary["accepted"] == 2
    assert summary["duplicates"] == 1
