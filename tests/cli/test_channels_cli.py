"""``alertcast channels``: list, check and send-test against console and webhook channels."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from alertcast import audit
from alertcast.cli_channels import TEST_MARK, TEST_SENT_ACTION, register
from alertcast.store.engine import make_engine
from tests.fakes.http_provider import FakeProvider

SECRET = "s3cret-for-cli-tests"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="alertcast")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def write_config(root: Path, webhook_url: str) -> Path:
    (root / "channels").mkdir()
    (root / "channels" / "console.toml").write_text(
        'name = "console"\nkind = "console"\n[options]\nlanguage = "es"\n', encoding="utf-8"
    )
    (root / "channels" / "webhook.toml").write_text(
        f'name = "partner"\nkind = "webhook"\n[options]\nurl = "{webhook_url}"\n'
        'timeout_s = 2\nrate_per_s = 5\n[secrets]\nsigning_secret = "CLI_TEST_WEBHOOK_SECRET"\n',
        encoding="utf-8",
    )
    (root / "channels" / "cap.toml").write_text(
        'name = "feed"\nkind = "cap"\nenabled = false\n', encoding="utf-8"
    )
    config = root / "alertcast.toml"
    config.write_text(
        f'[service]\ndata_dir = "data"\n[database]\nurl = "sqlite:///{root / "a.db"}"\n',
        encoding="utf-8",
    )
    return config


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTCAST_LANG", "en")
    monkeypatch.setenv("CLI_TEST_WEBHOOK_SECRET", SECRET)
    monkeypatch.delenv("ALERTCAST_DATABASE_URL", raising=False)


async def audit_records(root: Path) -> list[audit.AuditRecord]:
    engine = make_engine(f"sqlite:///{root / 'a.db'}")
    try:
        return [r async for r in audit.iter_records(engine) if r.action == TEST_SENT_ACTION]
    finally:
        await engine.dispose()


async def test_list_shows_limits_and_secret_presence_never_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/hook")
    assert await asyncio.to_thread(run, ["channels", "list", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "unlimited" in lines["console"]
    assert "5/s" in lines["partner"]
    assert "signing_secret (CLI_TEST_WEBHOOK_SECRET): present" in lines["partner"]
    assert SECRET not in out
    assert " no " in lines["feed"]

    assert (
        await asyncio.to_thread(run, ["channels", "list", "--json", "--config", str(config)]) == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    partner = next(r for r in rows if r["name"] == "partner")
    assert partner["rate_limits"]["global_per_s"] == 5
    assert partner["secrets"] == {
        "signing_secret": {"env": "CLI_TEST_WEBHOOK_SECRET", "present": True}
    }


async def test_check_without_a_check_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/hook")
    code = await asyncio.to_thread(run, ["channels", "check", "console", "--config", str(config)])
    assert code == 0
    assert "no check available" in capsys.readouterr().out
    code = await asyncio.to_thread(run, ["channels", "check", "nope", "--config", str(config)])
    assert code == 2
    assert "no channel named 'nope'" in capsys.readouterr().err


async def test_send_test_through_the_webhook_is_marked_and_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeProvider(secret=SECRET.encode()) as fake:
        config = write_config(tmp_path, fake.url)
        code = await asyncio.to_thread(
            run,
            [
                "channels", "send-test", "partner", "--to", "radio-1",
                "--text", "hola", "--actor", "ana", "--config", str(config),
            ],
        )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert [r.target for r in fake.received] == ["radio-1"]
    assert fake.rejected == 0
    assert "test message sent on partner to radio-1" in capsys.readouterr().out
    records = await audit_records(tmp_path)
    assert len(records) == 1
    assert records[0].actor == "cli:ana"
    assert records[0].data["outcome"] == "sent"
    assert records[0].data["target"] == "radio-1"


async def test_send_test_failure_exits_1_and_is_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "luis")
    async with FakeProvider(errors=1.0, kinds=("error_500",)) as fake:
        config = write_config(tmp_path, fake.url)
        code = await asyncio.to_thread(
            run, ["channels", "send-test", "partner", "--to", "radio-1", "--config", str(config)]
        )
    assert code == 1
    assert "Transient" in capsys.readouterr().err
    records = await audit_records(tmp_path)
    assert [(r.actor, r.data["outcome"]) for r in records] == [("cli:luis", "Transient")]


async def test_send_test_on_console_carries_the_mark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/hook")
    code = await asyncio.to_thread(
        run, ["channels", "send-test", "console", "--to", "yo", "--config", str(config)]
    )
    assert code == 0
    outbox = tmp_path / "data" / "outbox" / "console.jsonl"
    record = json.loads(outbox.read_text(encoding="utf-8").splitlines()[0])
    assert record["text"].startswith(TEST_MARK)
    assert record["target"] == "yo"


async def test_send_test_refuses_the_public_feed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/hook")
    code = await asyncio.to_thread(
        run, ["channels", "send-test", "feed", "--to", "post", "--config", str(config)]
    )
    assert code == 2
    assert "public" in capsys.readouterr().err
