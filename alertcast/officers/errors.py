"""What can go wrong when officers act, as classes a front end maps to one answer each.

The HTTP API maps them to status codes (NotFound 404, Forbidden and
TwoPersonRule 403, Conflict 409, Invalid 422); the console shows the message
in the officer's language; the CLI prints it. Every message is written for a
duty officer, in English, with a Spanish version in :attr:`OfficerError.message_es`.
"""

from __future__ import annotations

from alertcast.errors import AlertcastError

__all__ = ["Conflict", "Forbidden", "Invalid", "NotFound", "OfficerError", "TwoPersonRule"]


class OfficerError(AlertcastError):
    """Base of the errors of the officers' desk; ``message_es`` is the Spanish text."""

    status = 400
    """The HTTP status a front end answers with."""
    title = "Bad request"

    def __init__(self, message: str, *, es: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.message_es = es or message

    def localized(self, language: str) -> str:
        """The message in ``language`` (``es`` or anything else for English)."""
        return self.message_es if language.lower().startswith("es") else self.message


class NotFound(OfficerError):
    """No such alert, user or token."""

    status = 404
    title = "Not found"


class Forbidden(OfficerError):
    """The person's role is too low for this action."""

    status = 403
    title = "Forbidden"


class TwoPersonRule(Forbidden):
    """The two-person rule refuses this approval (own Actual alert, or a second vote)."""

    title = "Two-person rule"


class Conflict(OfficerError):
    """The alert (or user, or token) is in the wrong state for this action."""

    status = 409
    title = "Conflict"


class Invalid(OfficerError):
    """The input is wrong; the message starts with the offending key."""

    status = 422
    title = "Invalid input"
