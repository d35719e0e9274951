"""The fake Mastodon and the Mastodon channel against Mastodon's OpenAPI description.

Held to ``spec/mastodon_openapi_schema.json`` of the public corpus: the
Status the fake returns has every property the spec requires, with the
spec's types (and its Account the same); the parameters the channel sends
to ``POST /api/v1/statuses`` and ``PUT /api/v1/statuses/{id}`` are ones the
spec defines for them, with values of its types; the rate-limit headers and
the error bodies have the spec's shapes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from alertcast.channels.mastodon import MastodonChannel
from alertcast.errors import Permanent, RateLimited
from alertcast.ports import OutboundMessage
from tests.fakes.mastodon_api import FakeMastodon

pytestmark = pytest.mark.corpus

JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}

THREAD = OutboundMessage(
    parts=("Parte 1: evacúe la costa.", "Parte 2: suba a zonas altas."),
    language="es-MX",
    severity="Extreme",
    extra={"alert_id": 1},
)


@pytest.fixture
def spec(corpus_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (corpus_dir / "spec" / "mastodon_openapi_schema.json").read_text(encoding="utf-8")
    )
    return data


@pytest.fixture
async def fake() -> AsyncIterator[FakeMastodon]:
    async with FakeMastodon() as server:
        yield server


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = {
            **spec["components"]["schemas"][name],
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
    return schema


def properties(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Every property of a schema, through ``$ref`` and ``allOf``."""
    schema = resolve(spec, schema)
    found: dict[str, Any] = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        found.update(properties(spec, part))
    return found


def type_ok(value: Any, declared: str | list[str]) -> bool:
    names = declared if isinstance(declared, list) else [declared]
    if isinstance(value, bool) and "boolean" not in names:
        return False
    return any(isinstance(value, JSON_TYPES[name]) for name in names)


def assert_matches(spec: dict[str, Any], name: str, value: dict[str, Any]) -> None:
    schema = spec["components"]["schemas"][name]
    missing = [key for key in schema["required"] if key not in value]
    assert not missing, f"{name} lacks required {missing}"
    for key, prop in schema["properties"].items():
        if key not in value:
            continue
        prop = resolve(spec, prop) if "$ref" in prop and "type" not in prop else prop
        if "type" in prop:
            assert type_ok(value[key], prop["type"]), f"{name}.{key}: {value[key]!r}"


async def test_status_has_the_spec_required_properties(
    spec: dict[str, Any], fake: FakeMastodon
) -> None:
    channel = MastodonChannel("m", fake.url, access_token=fake.token, content_warning=("Extreme",))
    try:
        await channel.send(THREAD, "post")
    finally:
        await channel.aclose()
    for status_id in fake.posted:
        status = fake.status_json(status_id)
        assert_matches(spec, "Status", status)
        assert_matches(spec, "Account", status["account"])
        visibilities = resolve(spec, {"$ref": "#/components/schemas/StatusVisibilityEnum"})
        assert status["visibility"] in visibilities["enum"]
        datetime.fromisoformat(status["created_at"].replace("Z", "+00:00"))


async def test_sent_parameters_are_the_specs(spec: dict[str, Any], fake: FakeMastodon) -> None:
    channel = MastodonChannel("m", fake.url, access_token=fake.token, content_warning=("Extreme",))
    update = OutboundMessage(parts=("ACTUALIZACIÓN",), language="es", severity="Extreme")
    try:
        first = await channel.send(THREAD, "post")
        await channel.edit(str(first.provider_message_id), update, "post")
    finally:
        await channel.aclose()
    post = spec["paths"]["/api/v1/statuses"]["post"]
    post_schemas = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    text_status = next(s for s in post_schemas if s["$ref"].endswith("/TextStatus"))
    post_params = properties(spec, text_status)
    put = spec["paths"]["/api/v1/statuses/{id}"]["put"]
    put_params = put["requestBody"]["content"]["application/json"]["schema"]["properties"]
    bodies = [(post_params, channel.status_body(part, THREAD)) for part in THREAD.parts]
    bodies.append((post_params, {**bodies[0][1], "in_reply_to_id": "1"}))
    bodies.append((put_params, fake.edits[0][1]))
    for params, body in bodies:
        for key, value in body.items():
            assert key in params, f"{key} is not a parameter of the spec"
            declared = resolve(spec, params[key]) if "$ref" in params[key] else params[key]
            assert type_ok(value, declared["type"]), f"{key}: {value!r}"
    assert "status" in resolve(spec, text_status)["allOf"][1]["required"]
    header_names = {p["name"] for p in post.get("parameters", []) if p["in"] == "header"}
    assert "Idempotency-Key" in header_names
    assert all("Idempotency-Key" in headers for m, _p, headers in fake.requests if m == "POST")


async def test_rate_limit_headers_and_errors_have_the_spec_shapes(
    spec: dict[str, Any], fake: FakeMastodon
) -> None:
    post = spec["paths"]["/api/v1/statuses"]["post"]
    documented = set(post["responses"]["200"]["headers"])
    assert documented == {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
    assert spec["components"]["headers"]["X-RateLimit-Reset"]["schema"]["format"] == "date-time"
    for code in ("401", "422", "429"):
        assert code in post["responses"]
    channel = MastodonChannel("m", fake.url, access_token=fake.token)
    fake.faults = ["unprocessable", "rate_limited"]
    try:
        with pytest.raises(Permanent):
            await channel.send(THREAD, "post")
        with pytest.raises(RateLimited):
            await channel.send(THREAD, "post")
    finally:
        await channel.aclose()
    status, headers, body = await unauthenticated_post(fake)
    assert status == 401
    error_schema = spec["components"]["schemas"]["Error"]
    assert set(error_schema["required"]) <= set(body)
    assert isinstance(body["error"], str)
    int(headers["X-RateLimit-Limit"])
    int(headers["X-RateLimit-Remaining"])
    datetime.fromisoformat(headers["X-RateLimit-Reset"].replace("Z", "+00:00"))


async def unauthenticated_post(fake: FakeMastodon) -> tuple[int, dict[str, str], dict[str, Any]]:
    """One request without a token, to read the fake's error answer raw."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.url}/api/v1/statuses", json={"status": "x"}) as response,
    ):
        return response.status, dict(response.headers), await response.json()
