"""The retry policy, in one place: what each class of channel error does to a delivery.

Channels never loop or sleep; they raise an error class and the policy
decides from the class alone:

* ``Transient`` → retried after a delay from tenacity's ``wait_exponential_jitter``
  (jitter keeps a thousand failed sends from coming back at the same instant),
  at most ``max_attempts`` attempts, and never after the alert's deadline:
  then the row is ``dead``.
* ``RateLimited(retry_after)`` → rescheduled after ``retry_after`` whatever the
  attempt count (the provider only asked us to wait; only the deadline ends
  it) and the channel's rate budget is paused for as long.
* ``Permanent`` → ``failed``.
* ``RecipientGone`` → ``failed``, and the subscription behind the target is
  deactivated (the caller's hook; audited with the outcome).
* ``SentButUnknown`` → ``unknown``: the provider may have delivered it and a
  retry may deliver it twice. For the severities in ``retry_unknown_for``
  (Severe and Extreme by default) one more attempt is made: a duplicate
  warning costs less than a missing one. The row counts its ambiguous
  attempts, so a second one stays ``unknown`` even with other failures between.

Retries are rescheduled ledger rows (``next_attempt_at``), so they survive a
restart. Any other exception is treated as Transient: a bug in an adapter must
not lose a warning, and ``max_attempts`` bounds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tenacity import RetryCallState, wait_exponential_jitter

from alertcast.dispatch.ledger import Delivery, DeliveryState, Outcome
from alertcast.errors import (
    ConfigProblem,
    Permanent,
    RateLimited,
    RecipientGone,
    SentButUnknown,
    Transient,
)
from alertcast.ports import Receipt


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one channel retries; the defaults suit a messaging API."""

    max_attempts: int = 5
    initial_s: float = 1.0
    max_delay_s: float = 300.0
    jitter_s: float = 1.0
    retry_unknown_for: frozenset[str] = field(
        default_factory=lambda: frozenset({"Severe", "Extreme"})
    )

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 for the first)."""
        wait = wait_exponential_jitter(
            multiplier=self.initial_s, max=self.max_delay_s, jitter=self.jitter_s
        )
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = max(1, attempt)
        return float(wait(state))


_SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")

RETRY_OPTIONS = (
    "max_attempts",
    "retry_initial_s",
    "retry_max_delay_s",
    "retry_jitter_s",
    "retry_unknown_for",
)
"""The ``[options]`` of a ``channels/*.toml`` that shape its retries."""


def policy_from_options(
    options: Mapping[str, Any], file: str
) -> tuple[RetryPolicy, list[ConfigProblem]]:
    """A channel's retry policy from its options; each wrong value reported, its default kept.

    ``retry_unknown_for`` lists the severities whose ambiguous sends (timed out
    after the request left) are tried once more; ``[]`` never re-sends one.
    """
    default = RetryPolicy()
    problems: list[ConfigProblem] = []

    def number(key: str, fallback: float, *, whole: bool = False) -> float:
        if key not in options:
            return fallback
        value = options[key]
        ok = isinstance(value, int) if whole else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or value <= 0:
            kind = "a whole number" if whole else "a number"
            problems.append(ConfigProblem(file, f"options.{key}", f"must be {kind} > 0"))
            return fallback
        return float(value)

    unknown_for = default.retry_unknown_for
    if "retry_unknown_for" in options:
        value = options["retry_unknown_for"]
        if isinstance(value, list) and all(v in _SEVERITIES for v in value):
            unknown_for = frozenset(str(v) for v in value)
        else:
            problems.append(
                ConfigProblem(
                    file,
                    "options.retry_unknown_for",
                    f"must be a list of CAP severities ({', '.join(_SEVERITIES)})",
                )
            )
    policy = RetryPolicy(
        max_attempts=int(number("max_attempts", default.max_attempts, whole=True)),
        initial_s=number("retry_initial_s", default.initial_s),
        max_delay_s=number("retry_max_delay_s", default.max_delay_s),
        jitter_s=number("retry_jitter_s", default.jitter_s),
        retry_unknown_for=unknown_for,
    )
    return policy, problems


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome to record, and how long the channel's budget should pause (0: no pause)."""

    outcome: Outcome
    pause_s: float = 0.0


def _error_class(error: BaseException) -> str:
    for cls in (RateLimited, RecipientGone, SentButUnknown, Permanent, Transient):
        if isinstance(error, cls):
            return cls.__name__
    return type(error).__name__


def succeeded(delivery: Delivery, receipt: Receipt) -> Outcome:
    """The outcome of a send the provider accepted."""
    return Outcome(
        delivery_id=delivery.id,
        alert_id=delivery.alert_id,
        state=DeliveryState.DELIVERED if receipt.delivered else DeliveryState.SENT,
        provider_message_id=receipt.provider_message_id,
        channel=delivery.channel,
        target=delivery.target,
    )


def decide(
    delivery: Delivery,
    error: BaseException,
    *,
    attempts: int,
    now: datetime,
    policy: RetryPolicy,
) -> Decision:
    """What to do after ``error`` on attempt number ``attempts`` of ``delivery``."""
    error_class = _error_class(error)
    text = str(error) or error_class

    def outcome(state: DeliveryState, *, at: datetime | None = None, gone: bool = False) -> Outcome:
        return Outcome(
            delivery_id=delivery.id,
            alert_id=delivery.alert_id,
            state=state,
            next_attempt_at=at,
            error_class=error_class,
            error=text,
            recipient_gone=gone,
            channel=delivery.channel,
            target=delivery.target,
        )

    def later(delay_s: float) -> Outcome:
        at = now + timedelta(seconds=delay_s)
        if delivery.deadline_at is not None and at >= delivery.deadline_at:
            return outcome(DeliveryState.DEAD)
        return outcome(DeliveryState.PENDING, at=at)

    if isinstance(error, RateLimited):
        return Decision(later(error.retry_after), pause_s=error.retry_after)
    if isinstance(error, RecipientGone):
        return Decision(outcome(DeliveryState.FAILED, gone=True))
    if isinstance(error, Permanent):
        return Decision(outcome(DeliveryState.FAILED))
    if isinstance(error, SentButUnknown):
        retry = (
            delivery.message.severity in policy.retry_unknown_for
            and delivery.unknown_attempts == 0
            and attempts < policy.max_attempts
        )
        if retry:
            return Decision(later(policy.delay_after(1)))
        return Decision(outcome(DeliveryState.UNKNOWN))
    if not isinstance(error, Exception):
        raise error  # cancellation and interpreter exits are not delivery outcomes
    if attempts >= policy.max_attempts:
        return Decision(outcome(DeliveryState.DEAD))
    return Decision(later(policy.delay_after(attempts)))
