"""Routing one alert: the tree walk, then inhibition, silences, grouping and quiet hours.

Pure: the caller passes the time, the active alerts, the group state and the
silences in a :class:`~alertcast.rules_model.RoutingContext`, and gets back a
:class:`~alertcast.rules_model.RoutingDecision` that says what to send, what
was held back and why. Nothing is read or written here, so the same decision
can be shown by ``alertcast rules test`` before anything goes out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from alertcast.domain import Alert, AlertKey, Info, MsgType, Severity, Status, Urgency
from alertcast.rules_match import (
    AlertFacts,
    MatchResult,
    alert_labels,
    areas_overlap,
    evaluate,
    gravest_severity,
    info_labels,
)
from alertcast.rules_model import (
    ActiveAlert,
    Approval,
    Delivery,
    GroupState,
    InhibitRule,
    QuietHours,
    Route,
    RouteTrace,
    RouteTree,
    RoutingContext,
    RoutingDecision,
    Silence,
    Suppressed,
)
from alertcast.rules_text import Reason

_NOT_INHIBITING = frozenset({MsgType.CANCEL, MsgType.ACK, MsgType.ERROR})
"""Message types that withdraw or acknowledge rather than warn: they inhibit nothing."""


@dataclass(slots=True)
class _Candidate:
    """A delivery being worked out, with the route and infos it came from."""

    route: Route
    infos: tuple[Info, ...]
    delivery: Delivery
    merged_from: list[str] = field(default_factory=list)

    def note(self, reason: Reason) -> None:
        self.delivery = replace(self.delivery, notes=(*self.delivery.notes, reason))


def route(tree: RouteTree, alert: Alert, *, context: RoutingContext) -> RoutingDecision:
    """Decide where ``alert`` goes under ``tree`` at ``context.now``.

    The steps, in order: walk the tree (first match, ``continue``, the
    exercise boundary); one delivery per channel and audience; inhibition by
    active alerts; silences; grouping; quiet hours.
    """
    facts = AlertFacts(alert, context.feed, context.thread)
    trace: list[RouteTrace] = []
    handlers: list[tuple[Route, MatchResult]] = []
    _walk(tree.root, facts, 0, trace, handlers)

    notes: list[Reason] = []
    candidates: list[_Candidate] = []
    for handler, result in handlers:
        if not handler.channels:
            notes.append(Reason.of("route.no_channels"))
        candidates.extend(_candidates(handler, result, facts))
    candidates = _merge(candidates)

    suppressed: list[Suppressed] = []
    candidates = _enforce_exercise_boundary(candidates, facts, suppressed)
    inhibition = _inhibition(tree.inhibit, facts, context)
    if inhibition is not None and candidates:
        reason, source = inhibition
        suppressed.extend(
            Suppressed(c.delivery, "inhibited", reason, inhibited_by=source) for c in candidates
        )
        candidates = []
    candidates = _apply_silences(candidates, facts, context, suppressed)
    groups = _apply_grouping(candidates, facts, context)
    quiet = context.quiet_hours if context.quiet_hours is not None else tree.quiet_hours
    _apply_quiet_hours(candidates, facts, context.now, quiet)

    if not candidates and not suppressed and not notes:
        notes.append(Reason.of("route.none"))
    return RoutingDecision(
        alert=alert.key,
        status=alert.status,
        trace=tuple(trace),
        deliveries=tuple(c.delivery for c in candidates),
        suppressed=tuple(suppressed),
        groups=tuple(groups),
        notes=tuple(notes),
    )


# The tree walk ---------------------------------------------------------------


def _walk(
    node: Route,
    facts: AlertFacts,
    depth: int,
    trace: list[RouteTrace],
    handlers: list[tuple[Route, MatchResult]],
) -> bool:
    """Evaluate ``node`` and its children like Alertmanager; True when the node matched.

    Children are tried in order; the first that matches takes the alert unless
    it says ``continue``, in which case the next ones are tried too. A node
    whose children all miss handles the alert itself. The exercise boundary is
    part of matching: an Actual alert never enters an exercise route, and a
    non-Actual alert is never *handled* by a route that is not an exercise
    route (it may pass through one on its way to an exercise child), so
    first-match moves on to the siblings instead of stopping at a route that
    could not deliver it.
    """
    if node.exercise and facts.actual:
        trace.append(
            RouteTrace(node.path, node.name, depth, "skipped", (Reason.of("exercise.actual"),))
        )
        return False
    result = evaluate(node.matcher, facts)
    if not result.matched:
        trace.append(RouteTrace(node.path, node.name, depth, "no-match", result.reasons))
        return False
    reasons = result.reasons or (Reason.of("root" if depth == 0 else "route.any"),)
    position = len(trace)
    trace.append(RouteTrace(node.path, node.name, depth, "matched", reasons))
    child_matched = False
    stopped = False
    for child in node.routes:
        if stopped:
            _not_tried(child, depth + 1, trace)
            continue
        if _walk(child, facts, depth + 1, trace, handlers):
            child_matched = True
            stopped = not child.continue_
    if child_matched:
        trace[position] = replace(trace[position], reasons=(*reasons, Reason.of("route.child")))
        return True
    if not facts.actual and not node.exercise:
        skipped = Reason.of("exercise.not_exercise", status=facts.alert.status.value)
        trace[position] = replace(trace[position], outcome="skipped", reasons=(*reasons, skipped))
        return False
    trace[position] = replace(trace[position], outcome="handled")
    handlers.append((node, result))
    return True


def _not_tried(node: Route, depth: int, trace: list[RouteTrace]) -> None:
    trace.append(
        RouteTrace(node.path, node.name, depth, "not-tried", (Reason.of("route.not_tried"),))
    )


# Deliveries ------------------------------------------------------------------


def derived_priority(infos: tuple[Info, ...], *, actual: bool) -> tuple[int, Severity, Urgency]:
    """Priority from the gravest info: 100 for Extreme/Immediate, down to 4 for Unknown/Unknown.

    ``100 - 20·severity.rank - 4·urgency.rank``, so severity dominates and
    urgency orders within a severity. Exercises get the same number minus 100
    (so 0 to -96): a drill never overtakes a real alert in the queue.
    """
    best = (Severity.UNKNOWN, Urgency.UNKNOWN)
    best_value = -1
    for info in infos:
        value = 100 - 20 * info.severity.rank - 4 * info.urgency.rank
        if value > best_value:
            best, best_value = (info.severity, info.urgency), value
    if best_value < 0:
        best_value = 100 - 20 * Severity.UNKNOWN.rank - 4 * Urgency.UNKNOWN.rank
    return (best_value if actual else best_value - 100), best[0], best[1]


def _candidates(node: Route, result: MatchResult, facts: AlertFacts) -> list[_Candidate]:
    notes: list[Reason] = []
    if node.approval is not None:
        approval = node.approval
        notes.append(
            Reason.of("approval.route", value=approval.value, route=node.approval_from or node.name)
        )
    elif node.exercise:
        approval = Approval.AUTO
        notes.append(Reason.of("approval.default_exercise"))
    else:
        approval = Approval.TWO
        notes.append(Reason.of("approval.default_public"))
    if node.priority is not None:
        priority = node.priority
        notes.append(
            Reason.of("priority.route", value=priority, route=node.priority_from or node.name)
        )
    else:
        priority, severity, urgency = derived_priority(result.infos, actual=facts.actual)
        code = "priority.derived" if facts.actual else "priority.exercise"
        notes.append(
            Reason.of(code, value=priority, severity=severity.value, urgency=urgency.value)
        )
    languages = tuple(dict.fromkeys(info.language for info in result.infos))
    return [
        _Candidate(
            route=node,
            infos=result.infos,
            delivery=Delivery(
                route=node.name,
                channel=channel,
                audience=node.audience,
                template=node.template,
                approval=approval,
                priority=priority,
                exercise=node.exercise,
                languages=languages,
                notes=tuple(notes),
            ),
        )
        for channel in node.channels
    ]


def _merge(candidates: list[_Candidate]) -> list[_Candidate]:
    """One delivery per (channel, audience): routes with ``continue`` may name the same pair.

    The first route's delivery is kept, with the stricter approval and the
    higher priority of the two, and a note naming the other route.
    """
    kept: dict[tuple[str, object], _Candidate] = {}
    for candidate in candidates:
        key = (candidate.delivery.channel, candidate.delivery.audience)
        first = kept.get(key)
        if first is None:
            kept[key] = candidate
            continue
        other = candidate.delivery
        first.delivery = replace(
            first.delivery,
            approval=first.delivery.approval.stricter(other.approval),
            priority=max(first.delivery.priority, other.priority),
        )
        first.infos = tuple(dict.fromkeys((*first.infos, *candidate.infos)))
        first.note(Reason.of("route.merged", route=other.route))
    return list(kept.values())


def _enforce_exercise_boundary(
    candidates: list[_Candidate], facts: AlertFacts, suppressed: list[Suppressed]
) -> list[_Candidate]:
    """The last line of defence: a drill reaches only test audiences, a real alert never does.

    The rules loader already refuses any configuration that could break this
    and the tree walk cannot produce such a delivery; this check makes the
    guarantee hold even if both had a bug.
    """
    kept: list[_Candidate] = []
    for candidate in candidates:
        delivery = candidate.delivery
        if facts.actual and (delivery.exercise or delivery.audience.test):
            reason = Reason.of("exercise.blocked_actual")
        elif not facts.actual and not (delivery.exercise and delivery.audience.test):
            reason = Reason.of("exercise.blocked", status=facts.alert.status.value)
        else:
            kept.append(candidate)
            continue
        suppressed.append(Suppressed(delivery, "exercise-boundary", reason))
    return kept


# Inhibition ------------------------------------------------------------------


def _same_labels(
    names: tuple[str, ...],
    first: AlertFacts,
    first_infos: tuple[Info, ...],
    second: AlertFacts,
    second_infos: tuple[Info, ...],
) -> bool:
    """Whether two alerts agree on every label in ``names`` (a shared value suffices).

    ``area`` is compared by overlap, which inhibition checks anyway.
    """
    mine = {**alert_labels(first), **info_labels(first_infos)}
    theirs = {**alert_labels(second), **info_labels(second_infos)}
    for name in names:
        if name == "area":
            continue
        a = {v.casefold() for v in mine.get(name, ())}
        b = {v.casefold() for v in theirs.get(name, ())}
        if (a or b) and not (a & b):
            return False
    return True


def _inhibition(
    rules: tuple[InhibitRule, ...], facts: AlertFacts, context: RoutingContext
) -> tuple[Reason, str] | None:
    """The first active alert that inhibits this one under some rule, with the reason.

    A source inhibits only when it is in force, real exactly when the target
    is real (a drill never hides a real alert, nor the reverse), not the
    alert itself nor one the alert replaces (its ``references``), and strictly
    more severe: inhibition hides lesser news, never equal or graver news.
    A Cancel is never inhibited: hiding the end of a danger leaves people
    believing it goes on.
    """
    alert = facts.alert
    if alert.msg_type == MsgType.CANCEL:
        return None
    for rule in rules:
        target = evaluate(rule.target, facts)
        if not target.matched:
            continue
        target_severity = gravest_severity(target.infos)
        for active in context.active_alerts:
            source_alert = active.alert
            if (
                source_alert.key == alert.key
                or source_alert.key in alert.references
                or source_alert.msg_type in _NOT_INHIBITING
                or source_alert.is_expired(context.now)
                or (source_alert.status == Status.ACTUAL) != facts.actual
            ):
                continue
            source_facts = AlertFacts(source_alert, active.feed, active.thread)
            source = evaluate(rule.source, source_facts)
            if not source.matched:
                continue
            source_severity = gravest_severity(source.infos)
            if source_severity.rank >= target_severity.rank:
                continue
            if not _same_labels(rule.equal, source_facts, source.infos, facts, target.infos):
                continue
            if not areas_overlap(source.infos, target.infos):
                continue
            reason = Reason.of(
                "inhibit.by",
                rule=rule.name,
                source=str(source_alert.key),
                severity=source_severity.value,
                labels=rule.equal,
            )
            return reason, str(source_alert.key)
    return None


# Silences --------------------------------------------------------------------


def _silence_matches(silence: Silence, candidate: _Candidate, facts: AlertFacts) -> bool:
    if not silence.matchers:
        return False  # a silence without matchers would mute everything: never
    base = {
        **alert_labels(facts),
        "channel": (candidate.delivery.channel,),
        "route": (candidate.route.name,),
    }
    infos = facts.alert.infos
    if not infos:
        return all(m.matches(base.get(m.label, ())) for m in silence.matchers)
    for info in infos:
        labels = {**base, **info_labels([info])}
        if not all(m.matches(labels.get(m.label, ())) for m in silence.matchers):
            return False
    return True


def _is_extreme_and_immediate(facts: AlertFacts) -> bool:
    return facts.actual and any(
        info.severity == Severity.EXTREME and info.urgency == Urgency.IMMEDIATE
        for info in facts.alert.infos
    )


def _apply_silences(
    candidates: list[_Candidate],
    facts: AlertFacts,
    context: RoutingContext,
    suppressed: list[Suppressed],
) -> list[_Candidate]:
    active = [s for s in context.silences if s.is_active(context.now)]
    if not active:
        return candidates
    protected = _is_extreme_and_immediate(facts)
    kept: list[_Candidate] = []
    for candidate in candidates:
        muted_by: Silence | None = None
        for silence in active:
            if not _silence_matches(silence, candidate, facts):
                continue
            if protected and not silence.include_extreme:
                candidate.note(Reason.of("silence.extreme", id=silence.id))
                continue
            muted_by = silence
            break
        if muted_by is None:
            kept.append(candidate)
            continue
        reason = Reason.of(
            "silence.muted",
            id=muted_by.id,
            matchers=muted_by.describe_matchers(),
            author=muted_by.author,
            ends=muted_by.effective_end.isoformat(),
            reason=muted_by.reason,
        )
        suppressed.append(Suppressed(candidate.delivery, "silenced", reason, muted_by.id))
    return kept


# Grouping --------------------------------------------------------------------


def _group_values(label: str, facts: AlertFacts, infos: tuple[Info, ...]) -> tuple[str, ...]:
    if label == "area":
        labels = info_labels(infos)
        values = labels["geocode"] or labels["area"]
    elif label in ("feed", "thread", "sender", "identifier", "status", "msg_type", "scope"):
        values = alert_labels(facts)[label]
    elif label == "incident":
        values = facts.alert.incidents
    else:
        values = info_labels(infos)[label]
    return tuple(sorted({v.strip().casefold() for v in values if v.strip()}))


def _apply_grouping(
    candidates: list[_Candidate], facts: AlertFacts, context: RoutingContext
) -> list[GroupState]:
    """Mark deliveries that update an earlier message of the same group.

    The group key is the route, real-or-exercise, and the ``group_by`` labels'
    values; an alert missing one of those labels is not grouped (grouping
    unrelated reports because both lack a road segment would hide one). A
    group stays open while alerts keep coming within ``group_window_s`` of
    the last one.
    """
    this_key = str(facts.alert.key)
    decided: dict[str, tuple[GroupState, Reason, str | None]] = {}
    for candidate in candidates:
        node = candidate.route
        if not node.group_by:
            continue
        parts: list[str] = []
        missing: str | None = None
        for label in node.group_by:
            values = _group_values(label, facts, candidate.infos)
            if not values:
                missing = label
                break
            parts.append(f"{label}={','.join(values)}")
        if missing is not None:
            candidate.note(Reason.of("group.missing", label=missing))
            continue
        kind = "actual" if facts.actual else "exercise"
        key = "|".join((node.path, kind, *parts))
        if key not in decided:
            decided[key] = _group_decision(key, node, this_key, context)
        _, reason, update_of = decided[key]
        candidate.delivery = replace(candidate.delivery, group_key=key, group_update_of=update_of)
        candidate.note(reason)
    return [state for state, _, _ in decided.values()]


def _group_decision(
    key: str, node: Route, this_key: str, context: RoutingContext
) -> tuple[GroupState, Reason, str | None]:
    previous = context.groups.get(key)
    window = node.group_window_s
    if previous is not None and previous.first != this_key:
        age = (context.now - previous.last_at).total_seconds()
        if 0 <= age <= window:
            reason = Reason.of(
                "group.update",
                first=previous.first,
                labels=node.group_by,
                age=round(age),
                window=round(window),
            )
            return GroupState(key, previous.first, context.now), reason, previous.first
        reason = Reason.of("group.expired", key=key, age=round(age), window=round(window))
        return GroupState(key, this_key, context.now), reason, None
    return GroupState(key, this_key, context.now), Reason.of("group.new", key=key), None


# Quiet hours -----------------------------------------------------------------


def _override(facts: AlertFacts, infos: tuple[Info, ...]) -> str | None:
    """Why a real alert goes out in quiet hours anyway; exercises always wait."""
    if not facts.actual:
        return None
    if any(info.severity == Severity.EXTREME for info in infos):
        return "Extreme severity"
    if any(info.urgency == Urgency.IMMEDIATE for info in infos):
        return "Immediate urgency"
    return None


def _apply_quiet_hours(
    candidates: list[_Candidate],
    facts: AlertFacts,
    now: datetime,
    quiet: Mapping[str, QuietHours],
) -> None:
    for candidate in candidates:
        hours = quiet.get(candidate.delivery.channel)
        if hours is None:
            continue
        until = hours.window_end(now)
        if until is None:
            continue
        start, end, timezone = hours.describe()
        channel = candidate.delivery.channel
        why = _override(facts, candidate.infos)
        if why is not None:
            candidate.note(
                Reason.of(
                    "quiet.override",
                    start=start,
                    end=end,
                    timezone=timezone,
                    channel=channel,
                    why=why,
                )
            )
            continue
        candidate.delivery = replace(candidate.delivery, deferred_until=until)
        candidate.note(
            Reason.of(
                "quiet.deferred",
                until=until.isoformat(),
                start=start,
                end=end,
                timezone=timezone,
                channel=channel,
            )
        )


# Replaying history ---------------------------------------------------------------


def replay_groups(
    tree: RouteTree,
    history: Sequence[tuple[ActiveAlert, datetime]],
    *,
    exclude: AlertKey | None = None,
) -> dict[str, GroupState]:
    """The group state earlier alerts leave behind, routed in the order they arrived.

    For showing a decision (``alertcast rules test``) where no group state is
    kept: each ``(alert, received_at)`` is routed as it would have been then,
    without silences or inhibition, which is close enough to say whether a new
    alert would update an earlier message.
    """
    state: dict[str, GroupState] = {}
    for active, received_at in sorted(history, key=lambda item: item[1]):
        if exclude is not None and active.alert.key == exclude:
            continue
        context = RoutingContext(
            now=received_at, feed=active.feed, thread=active.thread, groups=dict(state)
        )
        for group in route(tree, active.alert, context=context).groups:
            state[group.key] = group
    return state
