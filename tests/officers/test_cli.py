"""The officers' commands through ``alertcast``: users, tokens, send, approve, reject, cancel."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast import audit
from alertcast.cli import main
from alertcast.officers.roles import Role
from alertcast.officers.tokens import TokenStore
from alertcast.officers.users import UserStore
from alertcast.store.tables import deliveries
from tests.officers.desk_setup import desk_config


@pytest.fixture
def config_file(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ALERTCAST_LANG", "en")
    monkeypatch.setenv("ALERTCAST_DATABASE_URL", database_url)
    monkeypatch.delenv("ALERTCAST_SUBSCRIBER_KEY", raising=False)
    monkeypatch.delenv("ALERTCAST_USER", raising=False)
    desk_config(tmp_path)
    return str(tmp_path / "alertcast.toml")


async def cli(*argv: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch) -> int:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return await asyncio.to_thread(main, list(argv))


async def test_users_and_tokens(
    config_file: str,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = ("--config", config_file)
    code = await cli(
        "users", "add", "ana", "--role", "officer", "--password-stdin", *cfg,
        stdin="a long passphrase\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0
    assert "user ana added (officer, with a console password)" in capsys.readouterr().out
    assert await UserStore(engine).check_password("ana", "a long passphrase") is not None
    assert await cli("users", "add", "ana", "--role", "admin", *cfg, monkeypatch=monkeypatch) == 1
    assert "already exists" in capsys.readouterr().err
    code = await cli(
        "users", "add", "bob", "--role", "approver", "--password-stdin", *cfg,
        stdin="", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 2 and await UserStore(engine).get("bob") is None
    capsys.readouterr()

    assert await cli("users", "list", "--json", *cfg, monkeypatch=monkeypatch) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(u["name"], u["role"], u["has_password"]) for u in listed] == [("ana", "officer", True)]

    code = await cli(
        "tokens", "create", "--user", "ana", "--label", "scripts", *cfg, monkeypatch=monkeypatch
    )
    assert code == 0
    captured = capsys.readouterr()
    token = captured.out.strip()
    assert token.startswith("act_") and "shown only this once" in captured.err
    principal = await TokenStore(engine).authenticate(token)
    assert principal is not None and principal.name == "ana"
    assert await cli("tokens", "list", *cfg, monkeypatch=monkeypatch) == 0
    listing = capsys.readouterr().out
    assert "scripts" in listing and token not in listing and token[:8] in listing
    token_id = (await TokenStore(engine).list())[0].id
    assert await cli("tokens", "revoke", str(token_id), *cfg, monkeypatch=monkeypatch) == 0
    assert await TokenStore(engine).authenticate(token) is None
    assert await cli("tokens", "revoke", "999", *cfg, monkeypatch=monkeypatch) == 1

    assert (
        await cli("users", "disable", "ana", *cfg, "--actor", "root", monkeypatch=monkeypatch) == 0
    )
    user = await UserStore(engine).get("ana")
    assert user is not None and user.disabled
    record = (await audit.tail(engine, 1))[0]
    assert (record.actor, record.action) == ("root", "user.disabled")
    trail = json.dumps([r.to_json() for r in await audit.tail(engine, 20)])
    assert token not in trail and "a long passphrase" not in trail


async def test_send_approve_cancel_reject(
    config_file: str,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = ("--config", config_file)
    users = UserStore(engine)
    await users.add("ana", Role.APPROVER, actor="test")
    await users.add("beto", Role.APPROVER, actor="test")

    code = await cli(
        "send", "--text", "Sismo fuerte: aléjese de ventanas", "--area", "Ciudad de México",
        "--geocode", "INEGI_CVEGEO:09", "--severity", "Severe", "--event", "Sismo",
        "--category", "Geo", "--user", "ana", *cfg, monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    alert_id = int(captured.out.strip())
    assert "waiting for 1 approval(s)" in captured.err and "ana cannot approve" in captured.err

    assert await cli("approve", str(alert_id), "--user", "ana", *cfg, monkeypatch=monkeypatch) == 1
    assert "needs another person" in capsys.readouterr().err

    monkeypatch.setenv("ALERTCAST_USER", "beto")
    assert await cli("approve", str(alert_id), *cfg, monkeypatch=monkeypatch) == 0
    assert f"alert {alert_id} approved by beto and released: now active" in capsys.readouterr().out
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(deliveries.c.channel, deliveries.c.state).where(
                    deliveries.c.alert_id == alert_id
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [("feed-post", "pending")]

    code = await cli(
        "cancel", str(alert_id), "--user", "ana", "--note", "Falsa alarma", *cfg,
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0
    cancel_id = int(capsys.readouterr().out.strip())
    assert cancel_id != alert_id
    code = await cli(
        "reject", str(cancel_id), "--reason", "Sí hubo sismo", *cfg, monkeypatch=monkeypatch
    )
    assert code == 0
    assert f"alert {cancel_id} rejected by beto" in capsys.readouterr().out
    actions = [(r.actor, r.action) for r in await audit.tail(engine, 40)]
    assert ("user:ana", "alert.approval_refused") in actions
    assert ("user:beto", "alert.released") in actions
    assert ("user:beto", "alert.rejected") in actions
    assert await cli("approve", "424242", *cfg, monkeypatch=monkeypatch) == 1
    assert (
        await cli("approve", str(alert_id), "--user", "nobody", *cfg, monkeypatch=monkeypatch) == 1
    )
    assert "no user 'nobody'" in capsys.readouterr().err


async def test_an_exercise_from_a_template_may_be_approved_by_its_author(
    config_file: str,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = ("--config", config_file)
    await UserStore(engine).add("dani", Role.APPROVER, actor="test")
    code = await cli(
        "send", "--template", "earthquake", "--exercise", "--area", "Toluca",
        "--polygon", "19.2,-99.7 19.4,-99.7 19.4,-99.5", "--severity", "Extreme",
        "--user", "dani", *cfg, monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    alert_id = int(captured.out.strip())
    assert "an exercise: dani may approve it" in captured.err
    assert await cli("approve", str(alert_id), "--user", "dani", *cfg, monkeypatch=monkeypatch) == 0
    assert "released: now active" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--text", "x", "--severity", "Severe"], "--area"),
        (["--text", "x", "--area", "A", "--severity", "Severe", "--polygon", "1,2 3"], "--polygon"),
        (["--text", "x", "--area", "A", "--severity", "Severe", "--geocode", "09"], "--geocode"),
        (["--text", "x", "--area", "A", "--severity", "Severe", "--expires-hours", "0"], "expires"),
    ],
)
async def test_send_refuses_a_bad_command_line(
    config_file: str,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    await UserStore(engine).add("ana", Role.OFFICER, actor="test")
    code = await cli(
        "send", *argv, "--user", "ana", "--config", config_file, monkeypatch=monkeypatch
    )
    assert code == 2
    assert message in capsys.readouterr().err
