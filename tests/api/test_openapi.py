"""The OpenAPI document and the router describe the same API."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from alertcast.officers.services import OfficeServices
from alertcast.web.api.openapi import OPENAPI_PATH, document
from alertcast.web.ingest_api import PUSH_PATH
from tests.api.conftest import Api, build_app

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def routed(app: web.Application) -> set[tuple[str, str]]:
    """Every (path, method) the application routes under /api/v1."""
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path") or ""
        if path.startswith("/api/v1/") and route.method != "*":
            found.add((path, route.method.lower()))
    return found


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


async def test_the_router_and_the_served_document_match(api: Api) -> None:
    response = await api.client.get(OPENAPI_PATH)
    doc = await response.json()
    app = api.client.server.app
    assert app is not None
    assert routed(app) == documented(doc)
    assert PUSH_PATH not in doc["paths"]


def test_with_the_push_route_the_document_has_it_too(api: Api) -> None:
    services: OfficeServices = api.services
    app = build_app(services)

    async def push(_request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_post(PUSH_PATH, push)  # as add_push_route does
    assert routed(app) == documented(document(with_push=True))


def _walk_refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        refs = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return refs + [ref for item in value.values() for ref in _walk_refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _walk_refs(item)]
    return []


def test_every_operation_is_fully_described() -> None:
    doc = document(with_push=True)
    operation_ids = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            operation_ids.append(op["operationId"])
            assert op["summary"], (path, method)
            assert op["responses"], (path, method)
            assert any(code.startswith("2") for code in op["responses"]), (path, method)
            security = op.get("security", doc["security"])
            if path == OPENAPI_PATH:
                assert security == []
                continue
            assert security, (path, method)
            if path != PUSH_PATH:
                assert security == [{"bearerAuth": []}, {"cookieAuth": []}]
                for code in ("401", "403"):
                    assert code in op["responses"], (path, method, code)
            if "{alert_id}" in path:
                names = [p["name"] for p in op["parameters"] if p["in"] == "path"]
                assert names == ["alert_id"], (path, method)
                assert "404" in op["responses"], (path, method)
            if method in {"post", "put"} and path != PUSH_PATH:
                assert "requestBody" in op, (path, method)
                assert "422" in op["responses"], (path, method)
    assert len(operation_ids) == len(set(operation_ids))
    components = doc["components"]
    for ref in _walk_refs(doc):
        _, _, kind, name = ref.split("/")
        assert name in components[kind], ref


def test_error_responses_are_problems() -> None:
    doc = document()
    for code, response in doc["components"]["responses"].items():
        assert code.isdigit() and int(code) >= 400
        assert list(response["content"]) == ["application/problem+json"]
