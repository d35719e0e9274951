"""One documented tree of errors.

Errors classify *behaviour*, not vendors: callers decide what to do from the
class alone. Every message is written for a duty officer or an operator, not
for a developer reading a traceback.
"""

from __future__ import annotations


class AlertcastError(Exception):
    """Base of every error alertcast raises on purpose."""


class CapError(AlertcastError):
    """A CAP document could not be read or does not follow the rules.

    ``path`` is the element path inside the document (``/alert/info[2]/area[1]/polygon``)
    so that the person fixing the feed knows where to look.
    """

    def __init__(self, reason: str, path: str = "/") -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path else reason)


class ConfigError(AlertcastError):
    """The configuration is wrong. Carries every problem found, each with file and key."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class ConfigProblem:
    """One configuration problem: which file, which key, what is wrong."""

    __slots__ = ("file", "key", "message")

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file = file
        self.key = key
        self.message = message

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"ConfigProblem({self.file!r}, {self.key!r}, {self.message!r})"


class StoreError(AlertcastError):
    """The database could not do what was asked (unreachable, migrations missing...)."""


class AuditError(AlertcastError):
    """The audit trail is broken: a record was edited, removed, inserted or reordered."""

    def __init__(self, sequence: int, reason: str) -> None:
        self.sequence = sequence
        self.reason = reason
        super().__init__(f"audit record {sequence}: {reason}")


class FeedError(AlertcastError):
    """A feed could not be fetched or its document could not be read at all.

    ``feed`` names the feed (or the file) so the operator knows which source
    to look at; the reason is written for a person.
    """

    def __init__(self, feed: str, reason: str) -> None:
        self.feed = feed
        self.reason = reason
        super().__init__(f"{feed}: {reason}")


class ChannelError(AlertcastError):
    """A channel could not hand a message to its provider.

    Adapters map their provider's failures once (``raise Transient(...) from e``)
    into one of the subclasses below; the dispatcher decides what to do from
    the class alone, so retry policy lives in one place and never in an adapter.
    """


class Transient(ChannelError):
    """A failure that may go away by itself (a 5xx, a reset connection): retry later."""


class RateLimited(ChannelError):
    """The provider asked us to slow down; ``retry_after`` is how long, in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        self.retry_after = max(0.0, float(retry_after))
        super().__init__(message)


class Permanent(ChannelError):
    """The provider refused this message for good (malformed, forbidden): never retried."""


class RecipientGone(ChannelError):
    """The recipient can no longer be reached (blocked the bot, unsubscribed number).

    The delivery fails and the subscription behind it should be deactivated.
    """


class SentButUnknown(ChannelError):
    """The request left but no answer came back (a timeout after sending).

    The provider may or may not have delivered it; retrying may send it twice.
    """
