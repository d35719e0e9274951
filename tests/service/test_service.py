"""The running service: a dropped CAP file goes all the way through, probes tell the truth."""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from alertcast import audit
from alertcast.app import Runtime, serve
from alertcast.config import load_config
from alertcast.store.alerts import AlertRepository
from alertcast.store.engine import make_engine
from alertcast.web.app import make_web_app

SAMPLES = Path(str(resources.files("alertcast.demo") / "samples"))


def _write_config(root: Path) -> Path:
    (root / "feeds").mkdir()
    (root / "channels").mkdir()
    (root / "feeds" / "inbox.toml").write_text(
        'kind = "cap-dir"\npath = "data/inbox"\ninterval_s = 0.05\n', encoding="utf-8"
    )
    (root / "channels" / "console.toml").write_text(
        'kind = "console"\n[options]\ntest_only = true\n', encoding="utf-8"
    )
    (root / "rules.toml").write_text(
        '[route]\n[[route.routes]]\nname = "drills"\nchannels = ["console"]\n'
        'exercise = true\ntest_audience = "channel-post"\napproval = "auto"\n',
        encoding="utf-8",
    )
    cfg = root / "alertcast.toml"
    cfg.write_text('[service]\nlog_format = "json"\nlog_level = "warning"\n', encoding="utf-8")
    return cfg


async def _until(predicate, what: str, attempts: int = 400) -> None:  # type: ignore[no-untyped-def]
    for _ in range(attempts):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


async def test_a_dropped_alert_is_stored_audited_announced_and_shown(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTCAST_DATABASE_URL", database_url)
    config = load_config(_write_config(tmp_path))
    inbox = config.service.data_dir / "inbox"
    stop = asyncio.Event()
    seen: dict[str, object] = {}

    async def scenario(runtime: Runtime) -> None:
        try:
            inbox.mkdir(parents=True, exist_ok=True)
            for name in ("01-sismo-simulacro.xml", "04-documento-danado.xml"):
                (inbox / name).write_bytes((SAMPLES / name).read_bytes())
            # the same alert twice (a feed re-serving it) must be stored once
            (inbox / "again.xml").write_bytes((SAMPLES / "01-sismo-simulacro.xml").read_bytes())

            async def drained() -> bool:
                return not any(p.suffix == ".xml" for p in inbox.iterdir())

            await _until(drained, "the inbox to be processed")
            outbox = config.service.data_dir / "outbox" / "console.jsonl"

            async def sent() -> bool:
                return outbox.is_file() and outbox.read_text(encoding="utf-8").count("\n") >= 1

            await _until(sent, "the drill to be sent on the console channel")
            async with aiohttp.ClientSession() as http:
                for path in ("/healthz", "/readyz", "/"):
                    async with http.get(runtime.site_url + path) as response:
                        seen[path] = (response.status, await response.text())
            seen["count"] = await runtime.repository.count()
            seen["audit"] = [r.action for r in await audit.tail(runtime.engine, 50)]
            seen["verified"] = await audit.verify_chain(runtime.engine)
            seen["records"] = await audit.count(runtime.engine)
        finally:
            stop.set()

    await asyncio.wait_for(serve(config, port=0, stop=stop, on_ready=scenario), timeout=60)

    assert seen["count"] == 1
    actions = seen["audit"]
    assert isinstance(actions, list)
    # stored, refused, routed, planned, claimed and sent: each step left its record
    for action in ("alert.ingested", "cap.rejected", "dispatch.routed", "delivery.planned"):
        assert actions.count(action) == 1, action
    assert any(a.startswith("delivery.") and a != "delivery.planned" for a in actions)
    assert seen["verified"] == seen["records"]
    assert (inbox / "done" / "01-sismo-simulacro.xml").is_file()
    assert (inbox / "done" / "again.xml").is_file()
    assert (inbox / "rejected" / "04-documento-danado.xml").is_file()

    status, body = seen["/healthz"]  # type: ignore[misc]
    assert status == 200 and json.loads(body)["status"] == "alive"
    status, body = seen["/readyz"]  # type: ignore[misc]
    assert status == 200 and json.loads(body)["checks"] == {
        "database": "ok",
        "migrations": "current",
        "roles": {"roles": ["web", "worker", "poller", "bot"], "leases": {}},
    }
    status, body = seen["/"]  # type: ignore[misc]
    assert status == 200
    assert "SIMULACRO: alerta sísmica en la Ciudad de México" in body
    assert "EXERCISE — no es real / not real" in body

    outbox = config.service.data_dir / "outbox" / "console.jsonl"
    (announced,) = [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]
    assert announced["text"].startswith("SIMULACRO: 🚨 Alerta sísmica en la Ciudad de México")
    assert announced["target"] == "post"


async def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    engine = make_engine("postgresql://nobody@127.0.0.1:9/nowhere")
    app = make_web_app(engine, AlertRepository(engine))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["status"] == "not ready"
        assert body["checks"]["database"].startswith("unreachable")
        alive = await client.get("/healthz")
        assert alive.status == 200
    await engine.dispose()


async def test_readyz_is_503_before_migrations(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    app = make_web_app(engine, AlertRepository(engine))
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/readyz")
        assert response.status == 503
        assert (await response.json())["checks"]["migrations"] == "behind"
    await engine.dispose()
