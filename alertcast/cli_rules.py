"""``alertcast rules test`` and ``alertcast silences``: routing, seen and steered by people.

``rules test`` answers the duty officer's question before anything goes out:
which routes an alert matches and why, which it skips and why, and what would
be grouped, inhibited, silenced or held for quiet hours, using the same code
the service runs, the configured rules and, when the database is there, the
active silences and alerts. ``silences`` adds, lists and ends mutes; each
change is audited.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from alertcast.config import Config, load_config
from alertcast.i18n import language
from alertcast.rules_eval import replay_groups
from alertcast.rules_model import (
    ActiveAlert,
    Audience,
    LabelMatcher,
    RoutingContext,
    RoutingDecision,
    Silence,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from alertcast.domain import Alert

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2

MAX_ACTIVE_ALERTS = 5000
"""How many active alerts ``rules test`` reads for inhibition and grouping, newest first."""

MESSAGES: dict[str, dict[str, str]] = {
    "alert": {
        "en": "{file}: alert {identifier} from {sender}, sent {sent}: {status} {msg_type}",
        "es": "{file}: alerta {identifier} de {sender}, enviada {sent}: {status} {msg_type}",
    },
    "routes": {"en": "routes:", "es": "rutas:"},
    "deliveries": {"en": "deliveries:", "es": "entregas:"},
    "none": {"en": "  (none)", "es": "  (ninguna)"},
    "held": {"en": "held back:", "es": "retenidas:"},
    "notes": {"en": "notes:", "es": "notas:"},
    "delivery": {
        "en": "approval {approval}, priority {priority}, template {template}",
        "es": "aprobación {approval}, prioridad {priority}, plantilla {template}",
    },
    "template.auto": {"en": "chosen from the alert", "es": "elegida según la alerta"},
    "deferred": {"en": "deferred until {until}", "es": "aplazada hasta {until}"},
    "update_of": {"en": "updates the message of {first}", "es": "actualiza el mensaje de {first}"},
    "held.cause.inhibited": {"en": "inhibited", "es": "inhibida"},
    "held.cause.silenced": {"en": "silenced", "es": "silenciada"},
    "held.cause.exercise-boundary": {"en": "blocked", "es": "bloqueada"},
    "outcome.handled": {"en": "handles it", "es": "la atiende"},
    "outcome.matched": {"en": "matched", "es": "coincide"},
    "outcome.no-match": {"en": "no match", "es": "no coincide"},
    "outcome.skipped": {"en": "skipped", "es": "omitida"},
    "outcome.not-tried": {"en": "not tried", "es": "no evaluada"},
    "audience.channel-post": {"en": "channel post", "es": "publicación en el canal"},
    "audience.subscribers": {
        "en": "subscribers of {topics} in {areas}",
        "es": "suscriptores de {topics} en {areas}",
    },
    "audience.test": {"en": "TEST AUDIENCE: {audience}", "es": "PÚBLICO DE PRUEBA: {audience}"},
    "state.used": {
        "en": "state: {silences} active silence(s), {alerts} active alert(s) considered",
        "es": "estado: {silences} silencio(s) activo(s), {alerts} alerta(s) activa(s) consideradas",
    },
    "state.none": {
        "en": "state: {reason}; silences, inhibition and grouping by earlier alerts not considered",
        "es": "estado: {reason}; no se consideran silencios, inhibiciones ni agrupación "
        "con alertas anteriores",
    },
    "state.ignored": {"en": "ignored (--no-state)", "es": "ignorado (--no-state)"},
    "state.no_database": {"en": "no database yet", "es": "aún no hay base de datos"},
    "state.not_migrated": {
        "en": "the database is not migrated (run 'alertcast db upgrade')",
        "es": "la base de datos no está migrada (ejecute 'alertcast db upgrade')",
    },
    "error": {"en": "error: {reason}", "es": "error: {reason}"},
    "warning": {"en": "warning: {reason}", "es": "aviso: {reason}"},
    "silence.added": {
        "en": "silence #{id} set by {author}: {matchers}, from {starts} until {ends}",
        "es": "silencio #{id} puesto por {author}: {matchers}, desde {starts} hasta {ends}",
    },
    "silence.extreme": {
        "en": "it also mutes real Extreme and Immediate alerts (--include-extreme)",
        "es": "también silencia alertas reales Extreme e Immediate (--include-extreme)",
    },
    "silence.expired": {"en": "silence #{id} ended", "es": "silencio #{id} terminado"},
    "silence.already": {
        "en": "silence #{id} had already ended at {at}",
        "es": "el silencio #{id} ya había terminado el {at}",
    },
    "silence.line": {
        "en": "#{id} {state} {matchers} | {starts} → {ends} | {author}: {reason}{extreme}",
        "es": "#{id} {state} {matchers} | {starts} → {ends} | {author}: {reason}{extreme}",
    },
    "silence.state.active": {"en": "active ", "es": "activo "},
    "silence.state.pending": {"en": "pending", "es": "próximo"},
    "silence.state.ended": {"en": "ended  ", "es": "terminó"},
    "silence.none": {"en": "no silences", "es": "no hay silencios"},
    "silence.unknown_value": {
        "en": "matcher {matcher}: no configured {label} is called '{value}'",
        "es": "condición {matcher}: ningún {label} configurado se llama '{value}'",
    },
}


def _t(key: str, **values: object) -> str:
    entry = MESSAGES[key]
    return entry.get(language(), entry["en"]).format(**values)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rules`` and ``silences`` to the ``alertcast`` command."""

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, help="alertcast.toml (default: ./alertcast.toml)")

    p = sub.add_parser("rules", help="routing rules")
    rules = p.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    q = rules.add_parser("test", help="show where the alerts in a CAP file would go, and why")
    q.add_argument("alert_file", type=Path, metavar="ALERT_FILE")
    with_config(q)
    q.add_argument("--feed", help="route the alerts as if they came from this feed")
    q.add_argument("--thread", help="the road segment or event they are about, as a feed says")
    q.add_argument("--at", help="route at this ISO 8601 time (default: now)")
    q.add_argument("--json", action="store_true", help="one JSON object per alert")
    q.add_argument(
        "--no-state", action="store_true", help="ignore the database (silences, active alerts)"
    )
    q.set_defaults(func=cmd_rules_test)

    p = sub.add_parser("silences", help="time-boxed mutes, with author and reason")
    silences = p.add_subparsers(dest="silences_command", required=True, metavar="ACTION")
    q = silences.add_parser("add", help="mute alerts that match, for a while")
    with_config(q)
    q.add_argument(
        "--matcher",
        action="append",
        required=True,
        metavar="LABEL=VALUE",
        help="label=glob, label!=glob, label=~regex or label!~regex (repeat: all must hold)",
    )
    q.add_argument("--hours", type=float, required=True, help="how long it lasts")
    q.add_argument("--author", required=True, help="who sets it")
    q.add_argument("--reason", required=True, help="why")
    q.add_argument("--starts", help="when it starts, ISO 8601 (default: now)")
    q.add_argument(
        "--include-extreme",
        action="store_true",
        help="also mute real Extreme and Immediate alerts (never by default)",
    )
    q.set_defaults(func=cmd_silences_add)
    q = silences.add_parser("list", help="show current and upcoming silences")
    with_config(q)
    q.add_argument("--all", action="store_true", help="include ended silences")
    q.add_argument("--json", action="store_true", help="one JSON object per silence")
    q.set_defaults(func=cmd_silences_list)
    q = silences.add_parser("expire", help="end a silence now")
    with_config(q)
    q.add_argument("silence_id", type=int, metavar="ID")
    q.add_argument("--author", help="who ends it (default: your login name)")
    q.set_defaults(func=cmd_silences_expire)


def _say(text: str, out: TextIO | None = None) -> None:
    (out or sys.stdout).write(text + "\n")


def _complain(key: str, **values: object) -> None:
    sys.stderr.write(_t(key, **values) + "\n")


def _parse_time(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return value


# rules test -------------------------------------------------------------------


@dataclass(slots=True)
class _State:
    silences: list[Silence] = field(default_factory=list)
    active: list[tuple[ActiveAlert, datetime]] = field(default_factory=list)
    missing: str | None = None


def cmd_rules_test(args: argparse.Namespace) -> int:
    from alertcast.cap import parse_cap_all
    from alertcast.errors import CapError

    config = load_config(args.config)
    try:
        at = _parse_time(args.at)
    except ValueError as exc:
        _complain("error", reason=f"--at: {exc}")
        return EXIT_USAGE
    path: Path = args.alert_file
    try:
        data = _read_limited(path, config.cap.max_bytes)
        parsed = parse_cap_all(data, strict=config.cap.strict, max_bytes=config.cap.max_bytes)
    except (OSError, CapError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _complain("error", reason=f"{path}: {reason}")
        return EXIT_BAD_INPUT
    if args.no_state:
        state = _State(missing=_t("state.ignored"))
    else:
        state = asyncio.run(_load_state(config, at))
    for item in parsed:
        decision = _decide(config, item.alert, state, at, args.feed, args.thread)
        if args.json:
            record = {
                "file": str(path),
                "decision": decision.to_json(),
                "state": {
                    "silences": len(state.silences),
                    "active_alerts": len(state.active),
                    "missing": state.missing,
                },
            }
            _say(json.dumps(record, ensure_ascii=False))
        else:
            _print_decision(str(path), item.alert, decision, state)
    return EXIT_OK


def _decide(
    config: Config,
    alert: Alert,
    state: _State,
    at: datetime,
    feed: str | None,
    thread: str | None,
) -> RoutingDecision:
    others = [(a, t) for a, t in state.active if a.alert.key != alert.key]
    groups = replay_groups(config.routes, others, exclude=alert.key)
    context = RoutingContext(
        now=at,
        feed=feed,
        thread=thread,
        active_alerts=tuple(a for a, _ in others),
        groups=groups,
        silences=tuple(state.silences),
    )
    return config.routes.route(alert, context=context)


def _read_limited(path: Path, max_bytes: int) -> bytes:
    from alertcast.errors import CapError

    if path.is_dir():
        raise OSError(21, "is a directory")
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise CapError(f"document is larger than the limit of {max_bytes} bytes", "/")
    return data


def _database_exists(url: str) -> bool:
    """False for a SQLite file that is not there yet: reading must not create it."""
    from sqlalchemy.engine import make_url

    from alertcast.store.engine import normalize_url

    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite":
        return True
    database = parsed.database or ""
    return database.startswith("file:") or (database != "" and Path(database).is_file())


async def _load_state(config: Config, at: datetime) -> _State:
    from alertcast.errors import StoreError
    from alertcast.store.engine import make_engine
    from alertcast.store.migrate import is_current
    from alertcast.store.silences import SilenceRepository

    try:
        if not _database_exists(config.database_url):
            return _State(missing=_t("state.no_database"))
        engine = make_engine(config.database_url)
        try:
            if not await is_current(engine):
                return _State(missing=_t("state.not_migrated"))
            silences = await SilenceRepository(engine).active(at)
            active = await _active_alerts(engine, at)
            return _State(silences=silences, active=active)
        finally:
            await engine.dispose()
    except StoreError as exc:
        return _State(missing=str(exc))


async def _active_alerts(engine: AsyncEngine, at: datetime) -> list[tuple[ActiveAlert, datetime]]:
    """Alerts in force at ``at`` (that had arrived by then) with their feed and thread."""
    from alertcast.lifecycle import active_alerts

    stored = await active_alerts(engine, now=at, limit=MAX_ACTIVE_ALERTS)
    return [
        (ActiveAlert(item.alert, item.feed, item.thread), item.received_at)
        for item in stored
        if item.received_at <= at
    ]


def _describe_audience(audience: Audience) -> str:
    if audience.kind == "channel-post":
        text = _t("audience.channel-post")
    else:
        text = _t(
            "audience.subscribers",
            topics=", ".join(audience.topics),
            areas=", ".join(audience.areas),
        )
    return _t("audience.test", audience=text) if audience.test else text


def _print_decision(file: str, alert: Alert, decision: RoutingDecision, state: _State) -> None:
    lang = language()
    _say(
        _t(
            "alert",
            file=file,
            identifier=alert.identifier,
            sender=alert.sender,
            sent=alert.sent.isoformat(),
            status=alert.status.value,
            msg_type=alert.msg_type.value,
        )
    )
    _say(_t("routes"))
    for step in decision.trace:
        indent = "  " * (step.depth + 1)
        _say(f"{indent}{step.name} [{_t('outcome.' + step.outcome)}]")
        for reason in step.reasons:
            _say(f"{indent}  · {reason.text(lang)}")
    _say(_t("deliveries"))
    if not decision.deliveries:
        _say(_t("none"))
    for delivery in decision.deliveries:
        _say(f"  → {delivery.channel}: {_describe_audience(delivery.audience)}")
        details = _t(
            "delivery",
            approval=delivery.approval.value,
            priority=delivery.priority,
            template=delivery.template or _t("template.auto"),
        )
        if delivery.deferred_until is not None:
            details += "; " + _t("deferred", until=delivery.deferred_until.isoformat())
        if delivery.group_update_of is not None:
            details += "; " + _t("update_of", first=delivery.group_update_of)
        _say(f"      {details}")
        for note in delivery.notes:
            _say(f"      · {note.text(lang)}")
    if decision.suppressed:
        _say(_t("held"))
        for held in decision.suppressed:
            audience = _describe_audience(held.delivery.audience)
            cause = _t("held.cause." + held.cause)
            _say(f"  ✗ {held.delivery.channel}: {audience} [{cause}]")
            _say(f"      · {held.reason.text(lang)}")
    if decision.notes:
        _say(_t("notes"))
        for note in decision.notes:
            _say(f"  · {note.text(lang)}")
    if state.missing is not None:
        _say(_t("state.none", reason=state.missing))
    else:
        _say(_t("state.used", silences=len(state.silences), alerts=len(state.active)))
    _say("")


# silences ---------------------------------------------------------------------


async def _migrated_engine(url: str) -> AsyncEngine:
    from alertcast.store.engine import make_engine
    from alertcast.store.migrate import upgrade

    await upgrade(url)
    return make_engine(url)


def _unknown_value_warnings(config: Config, matchers: Sequence[LabelMatcher]) -> None:
    """Warn when a plain ``channel=``, ``route=`` or ``feed=`` names nothing configured."""
    known = {
        "channel": {c.name for c in config.channels},
        "route": {r.name for r in config.routes.routes},
        "feed": {f.name for f in config.feeds},
    }
    for matcher in matchers:
        names = known.get(matcher.label)
        if names is None or matcher.op != "=" or any(ch in matcher.value for ch in "*?["):
            continue
        if matcher.value not in names:
            _complain(
                "warning",
                reason=_t(
                    "silence.unknown_value",
                    matcher=matcher,
                    label=matcher.label,
                    value=matcher.value,
                ),
            )


def cmd_silences_add(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        matchers = [LabelMatcher.parse(text) for text in args.matcher]
        if args.hours <= 0:
            raise ValueError("--hours must be greater than 0")
        starts = _parse_time(args.starts)
    except ValueError as exc:
        _complain("error", reason=str(exc))
        return EXIT_USAGE
    _unknown_value_warnings(config, matchers)
    ends = starts + timedelta(hours=args.hours)

    async def add() -> Silence:
        from alertcast.store.silences import SilenceRepository

        engine = await _migrated_engine(config.database_url)
        try:
            return await SilenceRepository(engine).add(
                matchers=matchers,
                starts_at=starts,
                ends_at=ends,
                author=args.author,
                reason=args.reason,
                include_extreme=args.include_extreme,
            )
        finally:
            await engine.dispose()

    try:
        silence = asyncio.run(add())
    except ValueError as exc:
        _complain("error", reason=str(exc))
        return EXIT_USAGE
    _say(
        _t(
            "silence.added",
            id=silence.id,
            author=silence.author,
            matchers=silence.describe_matchers(),
            starts=silence.starts_at.isoformat(),
            ends=silence.ends_at.isoformat(),
        )
    )
    if silence.include_extreme:
        _say(_t("silence.extreme"))
    return EXIT_OK


def cmd_silences_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    now = datetime.now(UTC)

    async def listing() -> list[Silence]:
        from alertcast.store.silences import SilenceRepository

        engine = await _migrated_engine(config.database_url)
        try:
            return await SilenceRepository(engine).recent(now, include_ended=args.all)
        finally:
            await engine.dispose()

    found = asyncio.run(listing())
    if args.json:
        for silence in found:
            record: dict[str, Any] = silence.to_json()
            record["active"] = silence.is_active(now)
            _say(json.dumps(record, ensure_ascii=False))
        return EXIT_OK
    if not found:
        _say(_t("silence.none"))
    for silence in found:
        if silence.is_active(now):
            state = _t("silence.state.active")
        elif silence.starts_at > now and silence.effective_end > now:
            state = _t("silence.state.pending")
        else:
            state = _t("silence.state.ended")
        _say(
            _t(
                "silence.line",
                id=silence.id,
                state=state,
                matchers=silence.describe_matchers(),
                starts=silence.starts_at.isoformat(timespec="minutes"),
                ends=silence.effective_end.isoformat(timespec="minutes"),
                author=silence.author,
                reason=silence.reason,
                extreme=" [include_extreme]" if silence.include_extreme else "",
            )
        )
    return EXIT_OK


def cmd_silences_expire(args: argparse.Namespace) -> int:
    from alertcast.store.silences import ExpireResult, SilenceNotFoundError, SilenceRepository

    config = load_config(args.config)
    actor = args.author or getpass.getuser()

    async def expire() -> ExpireResult:
        engine = await _migrated_engine(config.database_url)
        try:
            return await SilenceRepository(engine).expire(args.silence_id, actor=actor)
        finally:
            await engine.dispose()

    try:
        result = asyncio.run(expire())
    except SilenceNotFoundError as exc:
        _complain("error", reason=str(exc))
        return EXIT_BAD_INPUT
    if result.expired_now:
        _say(_t("silence.expired", id=result.silence.id))
    else:
        _say(
            _t(
                "silence.already",
                id=result.silence.id,
                at=result.silence.effective_end.isoformat(timespec="seconds"),
            )
        )
    return EXIT_OK
