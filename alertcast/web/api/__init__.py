"""The officers' HTTP API under ``/api/v1``: alerts, approvals, previews, deliveries,
feeds, channels, subscribers and the audit trail, described by an OpenAPI 3.1
document at ``/api/v1/openapi.json``.

One module per group of resources; :func:`alertcast.web.api.routes.add_api_routes`
mounts them all. Authentication is :mod:`alertcast.web.auth`'s middleware, and
every error is an ``application/problem+json`` body (:mod:`.problems`).
"""
