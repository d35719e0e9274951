"""The officers' console: server-rendered pages in Spanish and English (see ``routes``)."""

from alertcast.web.console.routes import CSRF_EXEMPT, STATIC_DIR, add_console_routes

__all__ = ["CSRF_EXEMPT", "STATIC_DIR", "add_console_routes"]
