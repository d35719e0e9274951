"""Property tests of the running API against its own OpenAPI document: never a 5xx.

A real server listens on a free port (in a thread with its own event loop,
since schemathesis calls it synchronously), with an admin's token so every
operation gets past authentication and into its handler; schemathesis then
generates requests from ``/api/v1/openapi.json`` and checks each answer
against the document: no server error, documented status codes and content
types, and bodies that match the documented schemas.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from alertcast.officers.roles import Principal, Role
from alertcast.store.engine import make_engine
from alertcast.store.migrate import upgrade
from alertcast.subscribers.crypto import SubscriberKeys
from alertcast.subscribers.store import SubscriberStore
from alertcast.web.api.openapi import OPENAPI_PATH, document
from tests.api.conftest import (
    SECRET,
    add_people,
    build_app,
    build_services,
    compose_body,
    write_config,
)


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    headers: dict[str, str]


async def _seed(services: Any) -> None:
    """A draft, a submitted and an active alert, so generated ids sometimes hit something."""
    officer = Principal("oscar", Role.OFFICER, "cli")
    approver = Principal("ana", Role.APPROVER, "cli")
    await services.desk.create_draft(officer, compose_body(headline="Borrador"))
    waiting = await services.desk.create_draft(officer, compose_body(headline="En espera"))
    await services.desk.submit(officer, waiting.id)
    active = await services.desk.create_draft(officer, compose_body(headline="Activa"))
    await services.desk.submit(officer, active.id)
    await services.desk.approve(approver, active.id)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root: Path = tmp_path_factory.mktemp("live")
    config = write_config(root)
    url = f"sqlite:///{root / 'alertcast.db'}"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="live-api", daemon=True)
    thread.start()

    async def start() -> tuple[web.AppRunner, Any, dict[str, str], int]:
        await upgrade(url)
        engine = make_engine(url)
        subscribers = SubscriberStore(engine, SubscriberKeys(SECRET))
        services = await build_services(engine, config, subscribers=subscribers)
        tokens = await add_people(services)
        await _seed(services)
        app = build_app(services, events_interval_s=0.1, events_lifetime_s=1.0)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)  # the system picks a free port
        await site.start()
        port = int(runner.addresses[0][1])
        return runner, engine, tokens, port

    runner, engine, tokens, port = asyncio.run_coroutine_threadsafe(start(), loop).result(120)
    try:
        yield LiveServer(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {tokens['ada']}"},
        )
    finally:

        async def stop() -> None:
            await runner.cleanup()
            await engine.dispose()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


schema = schemathesis.openapi.from_dict(document())
"""The document the application serves (``test_the_served_document_is_the_tested_one``)."""


def test_the_served_document_is_the_tested_one(live: LiveServer) -> None:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{live.base_url}{OPENAPI_PATH}", timeout=30) as response:
        assert json.loads(response.read()) == document()


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_never_answers_with_a_server_error(case: Any, live: LiveServer) -> None:
    case.call_and_validate(
        base_url=live.base_url,
        headers=live.headers,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
        timeout=30,
    )
