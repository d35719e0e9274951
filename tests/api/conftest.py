"""Fixtures of the API tests: a configured service with people of every role, over real HTTP.

The application is built as ``serve`` builds it (the auth middleware, then
the API routes) on a migrated database, with two console channels routed by
a one-approval rule, so an approved alert really gets delivery rows.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.config import Config, load_config
from alertcast.dispatch.planner import Planner
from alertcast.dispatch.progress import channel_rate_limits
from alertcast.officers.roles import Role
from alertcast.officers.services import OfficeServices, office_services
from alertcast.subscribers.crypto import KEY_ENV, SubscriberKeys
from alertcast.subscribers.store import SubscriberStore
from alertcast.web.api.routes import add_api_routes
from alertcast.web.auth import CSRF_HEADER, SESSION_COOKIE, auth_middleware
from tests.databases import migrated_engine
from tests.officers.service_files import write_config_files

SENDER = "alertas@proteccion.example.mx"
SECRET = bytes(range(32))
PEOPLE: Mapping[str, Role] = {
    "vera": Role.VIEWER,
    "oscar": Role.OFFICER,
    "ana": Role.APPROVER,
    "beto": Role.APPROVER,
    "ada": Role.ADMIN,
}
"""Who exists in every test: one of each role, and a second approver."""

ROLE_USER: Mapping[Role, str] = {
    Role.VIEWER: "vera",
    Role.OFFICER: "oscar",
    Role.APPROVER: "ana",
    Role.ADMIN: "ada",
}

RULES = """
[route]

[[route.routes]]
name = "geo"
category = "Geo"
channels = ["sala", "avisos"]
approval = "one"
"""


def write_config(root: Path) -> Config:
    """A service with a CAP feed, two console channels and one route needing one approval."""
    channels = {
        name: f'name = "{name}"\nkind = "console"\n[options]\nlanguage = "es"\ntarget = "@{name}"\n'
        for name in ("sala", "avisos")
    }
    feeds = {"smn": 'name = "smn"\nkind = "cap"\nurl = "https://smn.example/cap.xml"\n'}
    return load_config(
        write_config_files(
            root,
            channels=channels,
            feeds=feeds,
            rules=RULES,
            service=f'[service]\nsender = "{SENDER}"\n',
        )
    )


def compose_body(
    *, status: str = "Actual", headline: str = "Sismo fuerte en la costa"
) -> dict[str, Any]:
    """A compose body in the ``alertcast parse`` shape, without identifier, sent or sender."""
    return {
        "status": status,
        "msg_type": "Alert",
        "scope": "Public",
        "infos": [
            {
                "language": "es-MX",
                "category": ["Geo"],
                "event": "Sismo",
                "urgency": "Immediate",
                "severity": "Severe",
                "certainty": "Observed",
                "headline": headline,
                "description": "Se registró un sismo de magnitud 7.1.",
                "instruction": "Aléjese de ventanas y siga las indicaciones de protección civil.",
                "areas": [
                    {
                        "area_desc": "Costa de Guerrero",
                        "geocodes": [{"name": "INEGI", "value": "12"}],
                    }
                ],
            }
        ],
    }


@dataclass
class Api:
    """The running API, its services, and a token for each person."""

    client: TestClient[Any, Any]
    services: OfficeServices
    engine: AsyncEngine
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, user: str) -> dict[str, str]:
        """Headers that authenticate as ``user`` with their token."""
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def as_role(self, role: Role) -> dict[str, str]:
        return self.auth(ROLE_USER[role])

    async def session(self, user: str) -> tuple[str, str]:
        """A console session of ``user``: (cookie value, CSRF token)."""
        person = await self.services.users.get(user)
        assert person is not None
        cookie, session = await self.services.sessions.create(person)
        return cookie, session.csrf_token

    @staticmethod
    def cookie(value: str, csrf: str | None = None) -> dict[str, str]:
        headers = {"Cookie": f"{SESSION_COOKIE}={value}"}
        if csrf is not None:
            headers[CSRF_HEADER] = csrf
        return headers


async def build_services(
    engine: AsyncEngine, config: Config, *, subscribers: SubscriberStore | None
) -> OfficeServices:
    planner = Planner(engine, config)
    return office_services(config, engine, planner=planner, subscribers=subscribers, catalogue=None)


def build_app(services: OfficeServices, **options: float) -> web.Application:
    """The application as the service mounts the API."""
    app = web.Application(middlewares=[auth_middleware(services)])
    add_api_routes(app, services, **options)
    return app


async def add_people(services: OfficeServices) -> dict[str, str]:
    """Everyone in :data:`PEOPLE`, each with a token; returns the tokens by name."""
    tokens: dict[str, str] = {}
    for name, role in PEOPLE.items():
        await services.users.add(name, role, actor="test")  # sessions are made directly
        tokens[name], _ = await services.tokens.create(name, label="tests", actor="test")
    return tokens


@pytest.fixture(autouse=True)
def subscriber_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, base64.b64encode(SECRET).decode("ascii"))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'alertcast.db'}"


async def _api(url: str, config: Config, **options: float) -> AsyncIterator[Api]:
    async with migrated_engine(url) as engine:
        subscribers = SubscriberStore(
            engine, SubscriberKeys(SECRET), kinds={"sala": "console", "avisos": "console"}
        )
        services = await build_services(engine, config, subscribers=subscribers)
        tokens = await add_people(services)
        async with TestClient(TestServer(build_app(services, **options))) as client:
            yield Api(client, services, engine, tokens)


@pytest.fixture
async def api(sqlite_url: str, config: Config) -> AsyncIterator[Api]:
    """The API on SQLite (fast: for boundaries and input checks)."""
    async for value in _api(sqlite_url, config, events_interval_s=0.05):
        yield value


@pytest.fixture
async def api_any_db(database_url: str, config: Config) -> AsyncIterator[Api]:
    """The API on each database (SQLite and PostgreSQL)."""
    async for value in _api(database_url, config, events_interval_s=0.05):
        yield value


def limits_of(config: Config) -> dict[str, float]:
    return channel_rate_limits(config.channels)
