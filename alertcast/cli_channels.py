"""``alertcast channels``: see the configured channels, check them, send a test message.

* ``channels list`` shows each channel's name, kind, whether it is enabled,
  the rate limits it will be held to (:func:`alertcast.ratelimit.limits_for`)
  and which secrets are present in the environment, by role and variable
  name: never a value.
* ``channels check NAME`` builds the channel exactly as the service would
  and, when its adapter offers ``async check() -> str`` (credentials and
  reachability, such as Telegram's getMe or an SMTP login), runs it.
* ``channels send-test NAME --to TARGET`` sends one message marked
  "PRUEBA / TEST — alertcast" through the adapter directly, outside the
  ledger, so an operator can prove a channel end to end before an alert
  needs it. Every attempt is audited (``channel.test_sent``) with its actor
  and outcome. The ``cap`` kind is refused: its messages are public
  publications, never tests.

Exit codes: 0 when all went well, 1 when the check or the send failed, 2 for
a wrong command line or configuration (an unknown channel name included).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from alertcast.cli_options import with_config
from alertcast.config import ChannelConfig, Config, load_config
from alertcast.errors import AlertcastError, ChannelError, ConfigError
from alertcast.i18n import t

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from alertcast.ports import Channel
    from alertcast.ratelimit import RateLimits

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

TEST_MARK = "PRUEBA / TEST — alertcast"
"""The first line of every test message, in both languages, so no reader takes it for real."""

TEST_SENT_ACTION = "channel.test_sent"
_NOT_TESTABLE = frozenset({"cap"})
"""Kinds whose messages are publications: a test would be published to the world."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``channels list``, ``channels check`` and ``channels send-test``."""

    parser = sub.add_parser("channels", help="the configured channels: list, check, send a test")
    actions = parser.add_subparsers(dest="channels_command", required=True, metavar="ACTION")

    p = with_config(actions.add_parser("list", help="channels, rate limits and secrets present"))
    p.add_argument("--json", action="store_true", help="one JSON object per channel")
    p.set_defaults(func=cmd_list)

    p = with_config(actions.add_parser("check", help="build a channel and check its credentials"))
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_check)

    p = with_config(
        actions.add_parser("send-test", help="send one marked test message, outside the ledger")
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--to", required=True, metavar="TARGET", help="chat id, number, address...")
    p.add_argument("--text", default="", help="extra text after the test mark")
    p.add_argument("--actor", help="who is testing (default: $USER)")
    p.set_defaults(func=cmd_send_test)


def _err(text: object) -> None:
    sys.stderr.write(f"{text}\n")


def _load(path: Path | None) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        _err(t("check.problems", count=len(exc.problems)))
        for problem in exc.problems:
            _err(f"  {problem}")
        return None


def _find(config: Config, name: str) -> ChannelConfig | None:
    found = next((c for c in config.channels if c.name == name), None)
    if found is None:
        known = ", ".join(c.name for c in config.channels) or "-"
        _err(t("channels.unknown", name=name, known=known))
    return found


# --------------------------------------------------------------------------- list


def _per_s(value: float) -> str:
    return f"{value:g}"


def limits_text(limits: RateLimits) -> str:
    """``30/s, 1/s per recipient, 20/min per group, burst 1``; ``unlimited`` for local kinds."""
    parts = []
    if limits.global_per_s is not None:
        parts.append(f"{_per_s(limits.global_per_s)}/s")
    if limits.per_recipient_per_s is not None:
        parts.append(t("channels.per_recipient", rate=_per_s(limits.per_recipient_per_s)))
    if limits.per_group_per_minute is not None:
        parts.append(t("channels.per_group", rate=_per_s(limits.per_group_per_minute)))
    if not parts:
        return t("channels.unlimited")
    if limits.burst > 1:
        parts.append(t("channels.burst", burst=limits.burst))
    return ", ".join(parts)


def channel_summary(channel: ChannelConfig) -> dict[str, Any]:
    """What ``channels list`` shows of one channel (secrets by role: present or missing)."""
    from alertcast.ratelimit import limits_for

    limits, problems = limits_for(channel)
    return {
        "name": channel.name,
        "kind": channel.kind,
        "enabled": channel.enabled,
        "rate_limits": {
            "global_per_s": limits.global_per_s,
            "per_recipient_per_s": limits.per_recipient_per_s,
            "per_group_per_minute": limits.per_group_per_minute,
            "burst": limits.burst,
        },
        "rate_text": limits_text(limits),
        "rate_problems": [str(p) for p in problems],
        "secrets": {
            role: {"env": env, "present": bool(os.environ.get(env))}
            for role, env in sorted(channel.secrets.items())
        },
    }


def cmd_list(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_USAGE
    return list_channels(config.channels, as_json=args.json, out=sys.stdout)


def list_channels(channels: Sequence[ChannelConfig], *, as_json: bool, out: TextIO) -> int:
    summaries = [channel_summary(c) for c in channels]
    if as_json:
        for summary in summaries:
            out.write(json.dumps(summary, ensure_ascii=False) + "\n")
        return EXIT_OK
    if not summaries:
        _err(t("channels.none"))
        return EXIT_OK
    rows = [
        (
            t("channels.col.name"),
            t("channels.col.kind"),
            t("channels.col.enabled"),
            t("channels.col.rate"),
            t("channels.col.secrets"),
        )
    ]
    for s in summaries:
        secrets = ", ".join(
            f"{role} ({item['env']}): "
            + t("channels.present" if item["present"] else "channels.missing")
            for role, item in s["secrets"].items()
        )
        rows.append(
            (
                s["name"],
                s["kind"],
                t("channels.yes" if s["enabled"] else "channels.no"),
                s["rate_text"],
                secrets or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        out.write("  ".join(cells).rstrip() + "\n")
    for s in summaries:
        for problem in s["rate_problems"]:
            _err(f"warning: {problem}")
    return EXIT_OK


# --------------------------------------------------------------------------- building


async def _build(config: Config, channel: ChannelConfig) -> tuple[Channel, AsyncEngine | None]:
    """The adapter as the service builds it; a database engine only for kinds that need one."""
    from alertcast.channels.registry import ChannelContext, build_channel

    engine = None
    if channel.kind in _NOT_TESTABLE:
        from alertcast.store.engine import make_engine

        engine = make_engine(config.database_url)
    context = ChannelContext(data_dir=config.service.data_dir, engine=engine)
    try:
        return build_channel(channel, context), engine
    except BaseException:
        if engine is not None:
            await engine.dispose()
        raise


# --------------------------------------------------------------------------- check


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_USAGE
    channel = _find(config, args.name)
    if channel is None:
        return EXIT_USAGE
    return asyncio.run(check_channel(config, channel, out=sys.stdout))


async def check_channel(config: Config, channel: ChannelConfig, *, out: TextIO) -> int:
    try:
        adapter, engine = await _build(config, channel)
    except ConfigError as exc:
        _err(t("channels.build_failed", name=channel.name))
        for problem in exc.problems:
            _err(f"  {problem}")
        return EXIT_FAILED
    try:
        check = getattr(adapter, "check", None)
        if check is None or not callable(check):
            out.write(t("channels.no_check", name=channel.name) + "\n")
            return EXIT_OK
        try:
            answer = await check()
        except ChannelError as exc:
            _err(t("channels.check_failed", name=channel.name, error_class=type(exc).__name__))
            _err(f"  {exc}")
            return EXIT_FAILED
        out.write(t("channels.check_ok", name=channel.name, answer=answer) + "\n")
        return EXIT_OK
    finally:
        await adapter.aclose()
        if engine is not None:
            await engine.dispose()


# --------------------------------------------------------------------------- send-test


def _actor(given: str | None) -> str:
    if given:
        return given
    from_env = os.environ.get("USER")
    if from_env:
        return from_env
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def test_message(text: str, language: str | None = None) -> Any:
    """The test message: the mark on its own first line, then the operator's text."""
    from alertcast.ports import OutboundMessage

    body = TEST_MARK + (f"\n\n{text.strip()}" if text.strip() else "")
    return OutboundMessage(
        parts=(body,),
        subject=TEST_MARK,
        language=language,
        severity=None,
        extra={"status": "Test", "msg_type": "Alert", "test_id": uuid.uuid4().hex},
    )


def cmd_send_test(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_USAGE
    channel = _find(config, args.name)
    if channel is None:
        return EXIT_USAGE
    if channel.kind in _NOT_TESTABLE:
        _err(t("channels.not_testable", name=channel.name, kind=channel.kind))
        return EXIT_USAGE
    return asyncio.run(
        send_test(config, channel, args.to, args.text, actor=_actor(args.actor), out=sys.stdout)
    )


async def send_test(
    config: Config, channel: ChannelConfig, target: str, text: str, *, actor: str, out: TextIO
) -> int:
    from alertcast import audit
    from alertcast.store.engine import make_engine
    from alertcast.store.migrate import upgrade

    language = channel.options.get("language")
    message = test_message(text, language if isinstance(language, str) else None)
    try:
        adapter, extra_engine = await _build(config, channel)
    except ConfigError as exc:
        _err(t("channels.build_failed", name=channel.name))
        for problem in exc.problems:
            _err(f"  {problem}")
        return EXIT_FAILED
    outcome: dict[str, Any] = {}
    try:
        receipt = await adapter.send(message, target)
        outcome = {"outcome": "sent", "provider_message_id": receipt.provider_message_id}
    except ChannelError as exc:
        outcome = {"outcome": type(exc).__name__, "error": str(exc)[:500]}
    finally:
        await adapter.aclose()
        if extra_engine is not None:
            await extra_engine.dispose()
    await upgrade(config.database_url)
    engine = make_engine(config.database_url)
    try:
        async with engine.begin() as conn:
            await audit.append(
                conn,
                actor=f"cli:{actor}",
                action=TEST_SENT_ACTION,
                subject=f"{channel.name}:{target}",
                data={
                    "channel": channel.name,
                    "kind": channel.kind,
                    "target": target,
                    "test_id": message.extra["test_id"],
                    **outcome,
                },
            )
    except AlertcastError as exc:
        _err(f"error: {exc}")
        return EXIT_FAILED
    finally:
        await engine.dispose()
    if outcome["outcome"] != "sent":
        _err(t("channels.send_failed", name=channel.name, error_class=outcome["outcome"]))
        _err(f"  {outcome['error']}")
        return EXIT_FAILED
    out.write(
        t(
            "channels.sent",
            name=channel.name,
            target=target,
            id=outcome["provider_message_id"] or "-",
        )
        + "\n"
    )
    return EXIT_OK
