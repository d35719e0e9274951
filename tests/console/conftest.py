"""The console on a real SQLite database: users, sessions, the desk and a small configuration.

The configuration has one public channel (``console``, approval by one
person) and one drill channel (``drills``, ``test_only``), so an Actual alert
needs one approver who is not its author and an Exercise goes only to drills.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from lxml import html
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.areas import AreaCatalogue
from alertcast.config import Config, load_config
from alertcast.officers.roles import Role
from alertcast.officers.services import OfficeServices, office_services
from alertcast.subscribers.crypto import SubscriberKeys
from alertcast.subscribers.store import SubscriberStore
from alertcast.web.auth import auth_middleware
from alertcast.web.console import CSRF_EXEMPT, add_console_routes
from alertcast.web.ingest_api import FailureThrottle
from tests.databases import migrated_engine
from tests.officers.service_files import DRILLS_ROUTE, write_config_files

PASSWORD = "correct horse battery staple"
TILE_URL = "https://tiles.example.org/{z}/{x}/{y}.png"

RULES = f"""
[route]
channels = ["console"]
approval = "one"
{DRILLS_ROUTE}"""


def write_config(root: Path, database_url: str) -> Path:
    return write_config_files(
        root,
        channels={
            "console": 'name = "console"\nkind = "console"\n',
            "drills": 'name = "drills"\nkind = "console"\n[options]\ntest_only = true\n',
        },
        rules=RULES,
        service=f'[database]\nurl = "{database_url}"\n',
    )


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(f"sqlite:///{tmp_path / 'console.db'}") as engine:
        yield engine


@pytest.fixture
def config(tmp_path: Path) -> Config:
    root = tmp_path / "config"
    root.mkdir()
    return load_config(write_config(root, f"sqlite:///{tmp_path / 'console.db'}"))


@pytest.fixture
async def services(engine: AsyncEngine, config: Config) -> OfficeServices:
    subscribers = SubscriberStore(engine, SubscriberKeys(bytes(range(32))))
    built = office_services(
        config, engine, planner=None, subscribers=subscribers, catalogue=AreaCatalogue(engine)
    )
    for name, role in (
        ("olga", Role.OFFICER),
        ("ana", Role.APPROVER),
        ("beto", Role.APPROVER),
        ("vera", Role.VIEWER),
    ):
        await built.users.add(name, role, password=PASSWORD, actor="cli:test")
    return built


@dataclass
class Console:
    """A test client with the console mounted, and what the tests need to reach into."""

    client: TestClient[Any, Any]
    services: OfficeServices
    throttles: tuple[FailureThrottle, FailureThrottle]


def make_app(
    services: OfficeServices,
    *,
    tile_url: str | None = TILE_URL,
    throttles: tuple[FailureThrottle, FailureThrottle] | None = None,
) -> web.Application:
    app = web.Application(middlewares=[auth_middleware(services, csrf_exempt=CSRF_EXEMPT)])
    add_console_routes(
        app,
        services,
        tile_url=tile_url,
        catalogue=AreaCatalogue(services.engine),
        login_throttles=throttles,
    )
    return app


@pytest.fixture
async def console(services: OfficeServices) -> AsyncIterator[Console]:
    throttles = (FailureThrottle(burst=3, per_minute=1), FailureThrottle(burst=3, per_minute=1))
    async with TestClient(TestServer(make_app(services, throttles=throttles))) as client:
        yield Console(client, services, throttles)


# --------------------------------------------------------------------------- helpers


def page(text: str) -> Any:
    """The HTML document, for XPath queries."""
    return html.fromstring(text)


def by_id(text: str, element_id: str) -> Any:
    """The element with ``element_id``; fails the test when it is missing."""
    found = page(text).xpath(f'//*[@id="{element_id}"]')
    assert found, f"no #{element_id} in the page"
    return found[0]


def has_id(text: str, element_id: str) -> bool:
    return bool(page(text).xpath(f'//*[@id="{element_id}"]'))


def csrf_of(text: str) -> str:
    """The session's CSRF token, as the layout publishes it for scripts."""
    token = page(text).xpath('//meta[@name="csrf-token"]/@content')
    assert token and token[0], "no CSRF token in the page"
    return str(token[0])


def form_token(text: str) -> str:
    values = page(text).xpath('//form[@id="login-form"]//input[@name="csrf_token"]/@value')
    assert values, "the login form has no token"
    return str(values[0])


async def login(client: TestClient[Any, Any], name: str, password: str = PASSWORD) -> str:
    """Sign in as ``name``; return the session's CSRF token."""
    form = await client.get("/console/login")
    response = await client.post(
        "/console/login",
        data={"username": name, "password": password, "csrf_token": form_token(await form.text())},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    dashboard = await client.get("/console/")
    assert dashboard.status == 200
    return csrf_of(await dashboard.text())


async def logout(client: TestClient[Any, Any], csrf: str) -> None:
    response = await client.post(
        "/console/logout", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert response.status == 303


def compose_data(csrf: str, **overrides: str) -> dict[str, str]:
    data = {
        "csrf_token": csrf,
        "status": "Actual",
        "template": "earthquake",
        "category": "Geo",
        "event": "Sismo",
        "urgency": "Immediate",
        "severity": "Severe",
        "certainty": "Observed",
        "headline": "Sismo fuerte en la Ciudad de México",
        "description": "Se registró un sismo de magnitud 7.1.",
        "instruction": "Aléjese de ventanas y siga las indicaciones de protección civil.",
        "area_desc": "Ciudad de México",
        "area_geocode": "INEGI_CVEGEO:09",
        "area_polygon": "19.59,-99.36 19.59,-98.94 19.05,-98.94 19.05,-99.36",
        "language": "es",
        "expires_hours": "6",
        "action": "submit",
    }
    data.update(overrides)
    return data


async def submitted_for_review(client: TestClient[Any, Any], reviewer: str) -> tuple[int, str]:
    """olga composes and submits an alert and signs out, then ``reviewer`` signs in.

    Returns the alert's id and the reviewer's CSRF token.
    """
    csrf = await login(client, "olga")
    alert_id = await compose(client, csrf)
    await logout(client, csrf)
    return alert_id, await login(client, reviewer)


ALERT_LOCATION = re.compile(r"^/console/alerts/(\d+)\?done=(\S+)$")


async def compose(client: TestClient[Any, Any], csrf: str, **overrides: str) -> int:
    """Compose and submit an alert through the form; return its id."""
    response = await client.post(
        "/console/compose", data=compose_data(csrf, **overrides), allow_redirects=False
    )
    assert response.status == 303, await response.text()
    match = ALERT_LOCATION.match(response.headers["Location"])
    assert match is not None and match.group(2) == "submitted", response.headers["Location"]
    return int(match.group(1))
