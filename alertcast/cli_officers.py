"""``alertcast users``, ``tokens``, ``send``, ``approve``, ``reject`` and ``cancel``.

The same desk as the console and the API (:mod:`alertcast.officers.workflow`):
the same roles, the same two-person rule, the same audit. ``send``,
``approve``, ``reject`` and ``cancel`` act as the user named by ``--user``
(default ``$ALERTCAST_USER``) with that user's role; the local operator is
trusted like any client of the database, and the audit records the person
(``user:NAME``). ``users`` and ``tokens`` are the administrator's tools, audited
with ``--actor`` (default ``cli:LOGIN``).

Exit codes: 0 when done, 1 when refused (no such alert or user, wrong role,
the two-person rule, wrong state, bad alert), 2 for a wrong command line or
configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from alertcast.cli_options import actor_of, with_actor, with_config
from alertcast.config import Config, load_config
from alertcast.errors import ConfigError
from alertcast.i18n import language

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from alertcast.officers.roles import Principal
    from alertcast.officers.views import AlertView
    from alertcast.officers.workflow import AlertDesk

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2

USER_ENV = "ALERTCAST_USER"
ROLES = ("viewer", "officer", "approver", "admin")
MAX_EXPIRES_HOURS = 24 * 14

MESSAGES: dict[str, dict[str, str]] = {
    "user.added": {
        "en": "user {name} added ({role}{password})",
        "es": "usuario {name} creado ({role}{password})",
    },
    "user.with_password": {"en": ", with a console password", "es": ", con contraseña de consola"},
    "user.disabled": {
        "en": "user {name} disabled: its tokens are revoked and its sessions ended",
        "es": "usuario {name} deshabilitado: sus tokens quedan revocados y sus sesiones cerradas",
    },
    "user.password_set": {
        "en": "password of {name} set; their console sessions ended",
        "es": "contraseña de {name} establecida; sus sesiones de consola se cerraron",
    },
    "users.none": {"en": "no users yet", "es": "aún no hay usuarios"},
    "password.empty": {
        "en": "error: no password on standard input",
        "es": "error: no hay contraseña en la entrada estándar",
    },
    "token.created": {
        "en": "token {id} for {user} ({role}); it is shown only this once:",
        "es": "token {id} de {user} ({role}); solo se muestra esta vez:",
    },
    "token.revoked": {"en": "token {id} revoked", "es": "token {id} revocado"},
    "tokens.none": {"en": "no tokens", "es": "no hay tokens"},
    "user.missing": {
        "en": "error: say who acts: --user NAME or ${env}",
        "es": "error: indique quién actúa: --user NOMBRE o ${env}",
    },
    "user.unknown": {
        "en": "error: there is no user {name!r}",
        "es": "error: no existe el usuario {name!r}",
    },
    "user.is_disabled": {
        "en": "error: user {name} is disabled",
        "es": "error: el usuario {name} está deshabilitado",
    },
    "send.needs": {
        "en": "error: give {what} (or --file ALERT.json)",
        "es": "error: indique {what} (o --file ALERTA.json)",
    },
    "send.bad": {"en": "error: {what}", "es": "error: {what}"},
    "alert.submitted": {
        "en": "alert {id} submitted ({status}): waiting for {count} approval(s); {who}",
        "es": "alerta {id} enviada a aprobación ({status}): faltan {count} aprobación(es); {who}",
    },
    "alert.self_no": {
        "en": "{name} cannot approve it (two-person rule)",
        "es": "{name} no puede aprobarla (regla de dos personas)",
    },
    "alert.self_ok": {
        "en": "an exercise: {name} may approve it",
        "es": "es un simulacro: {name} puede aprobarla",
    },
    "alert.released": {
        "en": "alert {id} approved by {name} and released: now {state}",
        "es": "alerta {id} aprobada por {name} y emitida: ahora {state}",
    },
    "alert.waiting": {
        "en": "alert {id} approved by {name}: {have} of {need} approvals",
        "es": "alerta {id} aprobada por {name}: {have} de {need} aprobaciones",
    },
    "alert.scheduled": {
        "en": "alert {id} approved by {name}: released at {when}",
        "es": "alerta {id} aprobada por {name}: se emitirá el {when}",
    },
    "alert.routes": {
        "en": "alert {id}: routes released by {name}: {routes}",
        "es": "alerta {id}: rutas liberadas por {name}: {routes}",
    },
    "alert.rejected": {
        "en": "alert {id} rejected by {name}: {reason}",
        "es": "alerta {id} rechazada por {name}: {reason}",
    },
    "alert.discarded": {
        "en": "alert {id} discarded: nothing of it goes out",
        "es": "alerta {id} descartada: no se envía nada de ella",
    },
    "alert.cancel": {
        "en": "Cancel {new} of alert {id} submitted: waiting for {count} approval(s)",
        "es": "cancelación {new} de la alerta {id} enviada a aprobación: faltan {count}",
    },
    "planner.unavailable": {
        "en": "warning: cannot route here ({reason}); the running service will route it",
        "es": "aviso: no se puede enrutar aquí ({reason}); el servicio en marcha lo hará",
    },
}


def _t(key: str, **values: object) -> str:
    entry = MESSAGES[key]
    return entry.get(language(), entry["en"]).format(**values)


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def _out(text: object) -> None:
    sys.stdout.write(f"{text}\n")


# --------------------------------------------------------------------------- parsers


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``users``, ``tokens``, ``send``, ``approve``, ``reject`` and ``cancel``."""

    def acting(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return with_config(with_actor(p))

    def with_user(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--user", help=f"the officer acting (default: ${USER_ENV})")
        return with_config(p)

    parser = sub.add_parser("users", help="people who use the console, the API and the CLI")
    actions = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    p = acting(actions.add_parser("add", help="add a user"))
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--display-name", help="the name shown in the console")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read a console password from standard input (never from the command line)",
    )
    p.set_defaults(func=cmd_users_add)
    p = with_config(actions.add_parser("list", help="list users"))
    p.add_argument("--json", action="store_true", help="one JSON object per user")
    p.set_defaults(func=cmd_users_list)
    p = acting(actions.add_parser("disable", help="lock a user out everywhere"))
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_users_disable)
    p = acting(actions.add_parser("password", help="set a console password from stdin"))
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_users_password)

    parser = sub.add_parser("tokens", help="API tokens: create (shown once), revoke, list")
    actions = parser.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    p = acting(actions.add_parser("create", help="create a token and print it once"))
    p.add_argument("--user", required=True, help="whose token")
    p.add_argument("--role", choices=ROLES, help="a lower role than the user's (default: theirs)")
    p.add_argument("--label", default="", help="what the token is for")
    p.set_defaults(func=cmd_tokens_create)
    p = acting(actions.add_parser("revoke", help="revoke a token for good"))
    p.add_argument("token_id", type=int, metavar="ID")
    p.set_defaults(func=cmd_tokens_revoke)
    p = with_config(actions.add_parser("list", help="list tokens (never the tokens themselves)"))
    p.add_argument("--user", help="only this user's")
    p.add_argument("--json", action="store_true", help="one JSON object per token")
    p.set_defaults(func=cmd_tokens_list)

    p = with_user(sub.add_parser("send", help="compose an alert and submit it for approval"))
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--template", help="a ready-made text: earthquake, weather, health, road, default"
    )
    source.add_argument("--text", help="the message, in your own words")
    source.add_argument(
        "--file", type=Path, help="an alert in the JSON shape 'alertcast parse' prints"
    )
    p.add_argument("--area", help="the area, in words (required without --file)")
    p.add_argument("--geocode", action="append", default=[], metavar="SCHEME:VALUE")
    p.add_argument("--polygon", help='"lat,lon lat,lon ..." (closed for you)')
    p.add_argument("--severity", choices=("Extreme", "Severe", "Moderate", "Minor", "Unknown"))
    p.add_argument(
        "--urgency",
        default="Immediate",
        choices=("Immediate", "Expected", "Future", "Past", "Unknown"),
    )
    p.add_argument(
        "--certainty",
        default="Likely",
        choices=("Observed", "Likely", "Possible", "Unlikely", "Unknown"),
    )
    p.add_argument("--event", help="the CAP event (default: the template's)")
    p.add_argument("--category", help="the CAP category (default: the template's, else Safety)")
    p.add_argument("--language", default="es", help="language of the text (default es)")
    p.add_argument("--exercise", action="store_true", help="a drill: status Exercise")
    p.add_argument("--expires-hours", type=float, default=6.0, metavar="N")
    p.set_defaults(func=cmd_send)

    p = with_user(sub.add_parser("approve", help="approve an alert (two-person rule applies)"))
    p.add_argument("alert_id", type=int, metavar="ID")
    p.set_defaults(func=cmd_approve)

    p = with_user(sub.add_parser("reject", help="reject an alert waiting for approval"))
    p.add_argument("alert_id", type=int, metavar="ID")
    p.add_argument("--reason", required=True, help="why, for the author and the audit")
    p.set_defaults(func=cmd_reject)

    p = with_user(
        sub.add_parser("cancel", help="cancel an alert: a Cancel for approval, or discard a draft")
    )
    p.add_argument("alert_id", type=int, metavar="ID")
    p.add_argument("--note", help="why it is cancelled (sent with the Cancel)")
    p.set_defaults(func=cmd_cancel)


# --------------------------------------------------------------------------- plumbing


async def _engine(config: Config) -> AsyncEngine:
    from alertcast.store.engine import make_engine
    from alertcast.store.migrate import upgrade

    await upgrade(config.database_url)
    return make_engine(config.database_url)


def _run(args: argparse.Namespace, work: Callable[[Config, AsyncEngine], Awaitable[int]]) -> int:
    """Load the configuration, open the database, run ``work``; refusals print and exit 1."""
    from alertcast.officers.errors import OfficerError

    config = load_config(args.config)

    async def main() -> int:
        engine = await _engine(config)
        try:
            return await work(config, engine)
        except OfficerError as exc:
            _err(f"error: {exc.localized(language())}")
            return EXIT_REFUSED
        finally:
            await engine.dispose()

    return asyncio.run(main())


class _Listed(Protocol):
    def to_json(self) -> dict[str, Any]: ...


def _printed_plainly(items: Sequence[_Listed], *, as_json: bool, none: str) -> bool:
    """Print a listing that needs no table: JSON lines, or the ``none`` message when empty.

    True when that was all there was to print; False leaves the table to the caller.
    """
    if as_json:
        for item in items:
            _out(json.dumps(item.to_json(), ensure_ascii=False))
        return True
    if not items:
        _out(_t(none))
        return True
    return False


def _read_password(stream: TextIO) -> str | None:
    text = stream.read()
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    return text or None


# --------------------------------------------------------------------------- users


def cmd_users_add(args: argparse.Namespace) -> int:
    password: str | None = None
    if args.password_stdin:
        password = _read_password(sys.stdin)
        if password is None:
            _err(_t("password.empty"))
            return EXIT_USAGE

    async def work(config: Config, engine: AsyncEngine) -> int:
        from alertcast.officers.roles import Role
        from alertcast.officers.users import UserStore

        user = await UserStore(engine).add(
            args.name,
            Role(args.role),
            password=password,
            display_name=args.display_name,
            actor=actor_of(args),
        )
        with_password = _t("user.with_password") if user.has_password else ""
        _out(_t("user.added", name=user.name, role=user.role.value, password=with_password))
        return EXIT_OK

    return _run(args, work)


def cmd_users_list(args: argparse.Namespace) -> int:
    async def work(config: Config, engine: AsyncEngine) -> int:
        from alertcast.officers.users import UserStore

        users = await UserStore(engine).list()
        if _printed_plainly(users, as_json=args.json, none="users.none"):
            return EXIT_OK
        width = max(len(u.name) for u in users)
        for user in users:
            flags = " disabled" if user.disabled else ""
            last = user.last_login_at.isoformat(timespec="minutes") if user.last_login_at else "-"
            role = user.role.value
            _out(f"{user.name.ljust(width)}  {role:<8}  {last}{flags}  {user.display_name}")
        return EXIT_OK

    return _run(args, work)


def cmd_users_disable(args: argparse.Namespace) -> int:
    async def work(config: Config, engine: AsyncEngine) -> int:
        from alertcast.officers.users import UserStore

        user = await UserStore(engine).disable(args.name, actor=actor_of(args))
        _out(_t("user.disabled", name=user.name))
        return EXIT_OK

    return _run(args, work)


def cmd_users_password(args: argparse.Namespace) -> int:
    password = _read_password(sys.stdin)
    if password is None:
        _err(_t("password.empty"))
        return EXIT_USAGE

    async def work(config: Config, engine: AsyncEngine) -> int:
        from alertcast.officers.users import UserStore

        await UserStore(engine).set_password(args.name, password, actor=actor_of(args))
        _out(_t("user.password_set", name=args.name))
        return EXIT_OK

    return _run(args, work)


# --------------------------------------------------------------------------- tokens


def cmd_tokens_create(args: argparse.Namespace) -> int:
    async def work(config: Config, engine: AsyncEngine) -> int:
        from alertcast.officers.roles import Role
        from alertcast.officers.tokens import TokenStore

        role = Role(args.role) if args.role else None
        token, info = await TokenStore(engine).create(
            args.user, role=role, label=args.label, actor=actor_of(args)
        )
        _err(_t("token.created", id=info.id, user=info.user, role=info.role.value))
        _out(token)
        return EXIT_OK

    return _run(args, work)


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    async def work(config: Config, engine: AsyncEngine) -> int:
        from alertcast.officers.tokens import TokenStore

        info = await TokenStore(engine).revoke(args.token_id, actor=actor_of(args))
        _out(_t("token.revoked", id=info.id))
        return EXIT_OK

    return _run(args, work)


def cmd_tokens_list(args: argparse.Namespace) -> int:
    async def work(config: Config, engine: AsyncEngine) -> int:
        from alertcast.officers.tokens import TokenStore

        tokens = await TokenStore(engine).list(args.user)
        if _printed_plainly(tokens, as_json=args.json, none="tokens.none"):
            return EXIT_OK
        for info in tokens:
            used = info.last_used_at.isoformat(timespec="minutes") if info.last_used_at else "-"
            revoked = " revoked" if info.revoked_at else ""
            _out(
                f"{info.id:>5}  {info.prefix}…  {info.user}  {info.role.value:<8}  {used}"
                f"{revoked}  {info.label}"
            )
        return EXIT_OK

    return _run(args, work)


# --------------------------------------------------------------------------- the desk


async def _principal(engine: AsyncEngine, args: argparse.Namespace) -> Principal | None:
    from alertcast.officers.roles import Principal
    from alertcast.officers.users import UserStore

    name = (args.user or os.environ.get(USER_ENV, "")).strip()
    if not name:
        _err(_t("user.missing", env=USER_ENV))
        return None
    user = await UserStore(engine).get(name)
    if user is None:
        _err(_t("user.unknown", name=name))
        return None
    if user.disabled:
        _err(_t("user.is_disabled", name=name))
        return None
    return Principal(user.name, user.role, "cli")


def _desk_run(
    args: argparse.Namespace,
    work: Callable[[AlertDesk, Principal, AsyncEngine], Awaitable[int]],
) -> int:
    """Run ``work`` with the desk, routing releases here as the service would."""

    async def run(config: Config, engine: AsyncEngine) -> int:
        from alertcast.dispatch.cancellation import cancel_on_lifecycle
        from alertcast.officers.workflow import AlertDesk

        who = await _principal(engine, args)
        if who is None:
            return EXIT_REFUSED
        dispatch = _dispatch(config, engine)
        try:
            desk = AlertDesk(
                engine,
                config,
                planner=dispatch.planner if dispatch is not None else None,
                effect_listeners=(cancel_on_lifecycle(engine),),
            )
            return await work(desk, who, engine)
        finally:
            if dispatch is not None:
                await dispatch.aclose()

    return _run(args, run)


def _dispatch(config: Config, engine: AsyncEngine) -> Any:
    """The service's own planner (same audiences and groups); None when it cannot be built."""
    from alertcast.app import dispatch_for

    try:
        dispatch, _, _ = dispatch_for(config, engine)
    except ConfigError as exc:
        _err(_t("planner.unavailable", reason=exc))
        return None
    return dispatch


def _approval_summary(view: AlertView, who: Principal) -> str:
    from alertcast.domain import Status

    self_text = (
        _t("alert.self_no", name=who.name)
        if view.alert.status is Status.ACTUAL
        else _t("alert.self_ok", name=who.name)
    )
    missing = (view.approvals_required or 1) - len(view.approved_by)
    return _t(
        "alert.submitted",
        id=view.id,
        status=view.alert.status.value,
        count=missing,
        who=self_text,
    )


def cmd_send(args: argparse.Namespace) -> int:
    try:
        body = _send_body(args)
    except ValueError as exc:
        _err(_t("send.bad", what=exc))
        return EXIT_USAGE

    async def work(desk: AlertDesk, who: Principal, engine: AsyncEngine) -> int:
        draft = await desk.create_draft(who, body)
        view = await desk.submit(who, draft.id)
        _out(view.id)
        _err(_approval_summary(view, who))
        return EXIT_OK

    return _desk_run(args, work)


def _send_body(args: argparse.Namespace) -> dict[str, Any]:
    """The alert JSON from the command line; ValueError saying what is missing or wrong."""
    from datetime import UTC, datetime

    from alertcast.officers.presets import preset

    if not 0 < args.expires_hours <= MAX_EXPIRES_HOURS:
        raise ValueError(f"--expires-hours must be more than 0 and at most {MAX_EXPIRES_HOURS}")
    if args.file is not None:
        try:
            data = json.loads(Path(args.file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{args.file}: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{args.file}: expected one JSON object")
        if args.exercise:
            data["status"] = "Exercise"
        return data
    missing = [
        flag for flag, value in (("--area", args.area), ("--severity", args.severity)) if not value
    ]
    if missing:
        raise ValueError(_t("send.needs", what=", ".join(missing)).removeprefix("error: "))
    lang = args.language
    chosen = preset(args.template) if args.template else None
    headline = chosen.text("headline", lang) if chosen else _headline(args.text)
    area: dict[str, Any] = {"area_desc": args.area}
    geocodes = []
    for code in args.geocode:
        scheme, sep, value = code.partition(":")
        if not sep or not scheme or not value:
            raise ValueError(f"--geocode {code!r}: expected SCHEME:VALUE")
        geocodes.append({"name": scheme, "value": value})
    if geocodes:
        area["geocodes"] = geocodes
    if args.polygon:
        area["polygons"] = [_polygon(args.polygon)]
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=args.expires_hours)
    info: dict[str, Any] = {
        "language": lang,
        "category": [args.category or (chosen.category.value if chosen else "Safety")],
        "event": args.event or (chosen.text("event", lang) if chosen else headline),
        "urgency": args.urgency,
        "severity": args.severity,
        "certainty": args.certainty,
        "headline": headline,
        "description": args.text if args.text else None,
        "instruction": chosen.text("instruction", lang) if chosen else None,
        "expires": expires.isoformat(),
        "areas": [area],
    }
    return {"status": "Exercise" if args.exercise else "Actual", "infos": [info]}


def _headline(text: str) -> str:
    flat = " ".join(text.split())
    if not flat:
        raise ValueError("--text is empty")
    return flat if len(flat) <= 140 else flat[:139].rstrip() + "…"


def _polygon(text: str) -> list[list[float]]:
    points: list[list[float]] = []
    for pair in text.split():
        lat, sep, lon = pair.partition(",")
        try:
            point = [float(lat), float(lon)]
        except ValueError:
            raise ValueError(f"--polygon: {pair!r} is not lat,lon") from None
        if not sep or not (-90 <= point[0] <= 90 and -180 <= point[1] <= 180):
            raise ValueError(f"--polygon: {pair!r} is not lat,lon")
        points.append(point)
    if len(points) < 3:
        raise ValueError("--polygon: at least three points")
    if points[0] != points[-1]:
        points.append(points[0])
    return points


def cmd_approve(args: argparse.Namespace) -> int:
    async def work(desk: AlertDesk, who: Principal, engine: AsyncEngine) -> int:
        before = await desk.get(args.alert_id)
        view = await desk.approve(who, args.alert_id)
        if before.state == "active":
            released = [
                f"{r['route']}/{r['channel']}"
                for r in view.routes or ()
                if r["state"] in ("planning", "planned", "deferred")
            ]
            _out(_t("alert.routes", id=view.id, name=who.name, routes=", ".join(released) or "-"))
        elif view.state == "scheduled" and view.scheduled_for is not None:
            _out(
                _t(
                    "alert.scheduled",
                    id=view.id,
                    name=who.name,
                    when=view.scheduled_for.isoformat(),
                )
            )
        elif view.state == "submitted":
            _out(
                _t(
                    "alert.waiting",
                    id=view.id,
                    name=who.name,
                    have=len(view.approved_by),
                    need=view.approvals_required or 1,
                )
            )
        else:
            _out(_t("alert.released", id=view.id, name=who.name, state=view.state))
        return EXIT_OK

    return _desk_run(args, work)


def cmd_reject(args: argparse.Namespace) -> int:
    async def work(desk: AlertDesk, who: Principal, engine: AsyncEngine) -> int:
        view = await desk.reject(who, args.alert_id, args.reason)
        _out(_t("alert.rejected", id=view.id, name=who.name, reason=args.reason.strip()))
        return EXIT_OK

    return _desk_run(args, work)


def cmd_cancel(args: argparse.Namespace) -> int:
    async def work(desk: AlertDesk, who: Principal, engine: AsyncEngine) -> int:
        view = await desk.cancel(who, args.alert_id, note=args.note)
        if view.id == args.alert_id:
            _out(_t("alert.discarded", id=view.id))
            return EXIT_OK
        _out(view.id)
        _err(
            _t(
                "alert.cancel",
                new=view.id,
                id=args.alert_id,
                count=view.approvals_required or 1,
            )
        )
        return EXIT_OK

    return _desk_run(args, work)
