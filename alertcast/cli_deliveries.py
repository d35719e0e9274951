"""``alertcast deliveries`` and ``alertcast status``: the ledger, seen and steered by operators.

* ``deliveries list`` shows rows, by state and alert (``--json`` for scripts):
  the way to find what died and why.
* ``deliveries retry ID...`` or ``deliveries retry --state dead [--alert ID]``
  puts dead, failed or unknown rows back to pending, due now (audited); a
  sent row is never re-sent by this.
* ``status ALERT_ID`` shows, per channel, a progress bar with the counts by
  state, the current rate and the ETA (see :mod:`alertcast.dispatch.progress`),
  refreshed every ``--interval`` seconds until nothing is pending or claimed.
  At a terminal the bars are redrawn in place; elsewhere each change is
  printed as plain lines. ``--once`` prints one snapshot, ``--json`` the same
  figures as the API's JSON.

Exit codes follow ``alertcast``'s: 0 when all went well, 1 when nothing matched
(no such deliveries), 2 for a wrong command line or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from alertcast.config import load_config

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from alertcast.dispatch.progress import AlertProgress

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2

_LIST_COLUMNS = ("ID", "ALERT", "CHANNEL", "TARGET", "STATE", "PRIO", "TRIES", "NEXT", "ERROR")
_STATE_ORDER = (
    "pending",
    "claimed",
    "sent",
    "delivered",
    "failed",
    "dead",
    "cancelled",
    "unknown",
)
_ERROR_WIDTH = 50


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``deliveries list``, ``deliveries retry`` and ``status`` to the ``alertcast`` command."""
    from alertcast.dispatch.ledger import DeliveryState

    states = [s.value for s in DeliveryState]

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", type=Path, help="alertcast.toml (default: ./alertcast.toml)")
        return p

    parser = sub.add_parser("deliveries", help="the delivery ledger: list rows, retry dead ones")
    actions = parser.add_subparsers(dest="deliveries_command", required=True, metavar="ACTION")

    p = with_config(actions.add_parser("list", help="delivery rows, by state and alert"))
    p.add_argument("--state", choices=states)
    p.add_argument("--alert", type=int, metavar="ID", help="only this alert's rows")
    p.add_argument("--limit", type=int, default=1000, help="at most this many rows (1000)")
    p.add_argument("--json", action="store_true", help="one JSON object per row")
    p.set_defaults(func=cmd_list)

    p = with_config(
        actions.add_parser("retry", help="send dead, failed or unknown deliveries again")
    )
    p.add_argument("ids", nargs="*", type=int, metavar="ID")
    p.add_argument("--state", choices=("dead", "failed", "unknown"))
    p.add_argument("--alert", type=int, metavar="ID", help="only this alert's rows")
    p.set_defaults(func=cmd_retry)

    p = with_config(
        sub.add_parser(
            "status", help="an alert's delivery progress per channel: counts, rate and ETA"
        )
    )
    p.add_argument("alert_id", type=int, metavar="ALERT_ID")
    p.add_argument("--once", action="store_true", help="print the figures once and exit")
    p.add_argument("--json", action="store_true", help="print the figures once as JSON")
    p.add_argument(
        "--interval", type=float, default=1.0, help="seconds between refreshes (default 1)"
    )
    p.add_argument(
        "--window",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="the current rate counts rows finished in the last SECONDS (default 60)",
    )
    p.set_defaults(func=cmd_status)


def _err(text: object) -> None:
    sys.stderr.write(f"{text}\n")


async def _engine(url: str) -> AsyncEngine:
    from alertcast.store.engine import make_engine
    from alertcast.store.migrate import upgrade

    await upgrade(url)
    return make_engine(url)


def _short(text: str | None, width: int = _ERROR_WIDTH) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        out.write("  ".join(cells).rstrip() + "\n")


# --------------------------------------------------------------------------- deliveries list


def cmd_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    return asyncio.run(
        _list(
            config.database_url,
            state=args.state,
            alert_id=args.alert,
            limit=args.limit,
            as_json=args.json,
            out=sys.stdout,
        )
    )


async def _list(
    url: str, *, state: str | None, alert_id: int | None, limit: int, as_json: bool, out: TextIO
) -> int:
    from alertcast.dispatch.ledger import list_deliveries

    engine = await _engine(url)
    try:
        rows = await list_deliveries(engine, state=state, alert_id=alert_id, limit=limit)
    finally:
        await engine.dispose()
    if as_json:
        for row in rows:
            out.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
        return EXIT_OK
    if not rows:
        _err("no deliveries match")
        return EXIT_OK
    table: list[Sequence[str]] = [_LIST_COLUMNS]
    for row in rows:
        error = f"{row.last_error_class}: {row.last_error}" if row.last_error_class else ""
        table.append(
            (
                str(row.id),
                str(row.alert_id),
                row.channel,
                row.target,
                row.state,
                str(row.priority),
                str(row.attempts),
                row.next_attempt_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
                _short(error),
            )
        )
    _table(table, out)
    return EXIT_OK


# --------------------------------------------------------------------------- deliveries retry


def cmd_retry(args: argparse.Namespace) -> int:
    if not args.ids and args.state is None:
        _err("error: name the deliveries to retry (IDs), or --state dead|failed|unknown")
        return EXIT_USAGE
    if args.ids and (args.state is not None or args.alert is not None):
        _err("error: give either IDs or --state/--alert, not both")
        return EXIT_USAGE
    config = load_config(args.config)
    return asyncio.run(_retry(config.database_url, args.ids, args.state, args.alert))


async def _retry(url: str, ids: Sequence[int], state: str | None, alert_id: int | None) -> int:
    from alertcast.dispatch.ledger import redrive

    engine = await _engine(url)
    try:
        count = await redrive(
            engine, actor=f"cli:{_user()}", ids=ids, state=state, alert_id=alert_id
        )
    finally:
        await engine.dispose()
    sys.stdout.write(f"{count} deliveries queued again\n")
    return EXIT_OK if count else EXIT_BAD_INPUT


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


# --------------------------------------------------------------------------- status

_BAR_WIDTH = 30
_CURSOR_UP = "\x1b[{n}F"  # cursor to the start of the line n lines up
_CLEAR_LINE = "\x1b[2K"


def cmd_status(args: argparse.Namespace) -> int:
    from alertcast.dispatch.progress import channel_rate_limits

    config = load_config(args.config)
    return asyncio.run(
        _status(
            config.database_url,
            args.alert_id,
            once=args.once,
            as_json=args.json,
            interval=max(args.interval, 0.1),
            window_s=max(args.window, 1.0),
            limits=channel_rate_limits(config.channels),
            out=sys.stdout,
        )
    )


def _duration(seconds: float | None) -> str:
    """``45s``, ``4m05s``, ``2h07m``; ``—`` when unknown."""
    if seconds is None:
        return "—"
    whole = int(seconds + 0.5)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _rate(per_s: float) -> str:
    return f"{per_s:.0f}" if per_s >= 100 else f"{per_s:.1f}"


def _percent(fraction: float) -> str:
    # Never shows 100 before the last row is done.
    return str(int(fraction * 100)) if fraction < 1 else "100"


def _bar(fraction: float, width: int = _BAR_WIDTH) -> str:
    filled = int(width * min(max(fraction, 0.0), 1.0))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def _states_text(counts: Mapping[str, int]) -> str:
    from alertcast.i18n import t

    return " · ".join(
        f"{t(f'status.state.{state}')} {counts[state]}"
        for state in _STATE_ORDER
        if counts.get(state)
    )


def format_progress(progress: AlertProgress) -> list[str]:
    """The lines ``alertcast status`` shows: a summary, then one bar per channel.

    Plain text with no control characters, so the same lines serve a terminal
    (redrawn in place), a log file and a test.
    """
    from alertcast.i18n import t

    at = progress.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    summary = t(
        "status.summary",
        done=progress.done,
        total=progress.total,
        percent=_percent(progress.fraction),
        rate=_rate(progress.rate_per_s),
        eta=_duration(progress.eta_s),
    )
    head = [t("status.alert", alert_id=progress.alert_id), at, summary]
    if progress.finished:
        head.append(t("status.finished"))
    elif progress.oldest_pending_age_s is not None:
        head.append(t("status.waiting", age=_duration(progress.oldest_pending_age_s)))
    lines = [" · ".join(head)]
    if not progress.channels:
        return lines
    name_width = max(len(c.channel) for c in progress.channels)
    count_width = max(len(f"{c.done}/{c.total}") for c in progress.channels)
    for channel in progress.channels:
        cells = [
            channel.channel.ljust(name_width),
            _bar(channel.fraction),
            f"{channel.done}/{channel.total}".rjust(count_width),
            f"{_percent(channel.fraction)}%".rjust(4),
            f"{_rate(channel.rate_per_s)}/s".rjust(8),
            t("status.eta", eta=_duration(channel.eta_s)).ljust(14),
            _states_text(channel.counts),
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


class _Screen:
    """Where the figures go: redrawn in place at a terminal, appended elsewhere.

    Off a terminal (a pipe, a log file, CI) each snapshot is printed as plain
    lines and only when the counts changed, so a long fan-out does not fill a
    log with identical blocks and nothing relies on carriage returns.
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._drawn = 0
        self._last_counts: dict[str, dict[str, int]] | None = None

    def show(self, progress: AlertProgress, *, force: bool = False) -> None:
        counts = {c.channel: dict(c.counts) for c in progress.channels}
        if not self._tty and not force and counts == self._last_counts:
            return
        self._last_counts = counts
        lines = format_progress(progress)
        if self._tty and self._drawn:
            self._out.write(_CURSOR_UP.format(n=self._drawn))
        for line in lines:
            self._out.write((_CLEAR_LINE if self._tty else "") + line + "\n")
        if self._tty:
            self._drawn = len(lines)
        self._out.flush()


async def _status(
    url: str,
    alert_id: int,
    *,
    once: bool,
    interval: float,
    out: TextIO,
    as_json: bool = False,
    window_s: float = 60.0,
    limits: Mapping[str, float] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> int:
    from alertcast.dispatch.progress import AlertNotFound, alert_progress
    from alertcast.i18n import t

    engine = await _engine(url)
    try:

        async def snapshot() -> AlertProgress:
            return await alert_progress(engine, alert_id, window_s=window_s, limits=limits)

        try:
            progress = await snapshot()
        except AlertNotFound:
            _err(t("status.no_alert", alert_id=alert_id))
            return EXIT_BAD_INPUT
        if as_json:
            out.write(json.dumps(progress.to_json(), ensure_ascii=False) + "\n")
            return EXIT_OK
        if not progress.channels:
            _err(t("status.no_deliveries", alert_id=alert_id))
            return EXIT_BAD_INPUT
        screen = _Screen(out)
        screen.show(progress, force=True)
        while not once and not progress.finished:
            await sleep(interval)
            progress = await snapshot()
            screen.show(progress, force=progress.finished)
    finally:
        await engine.dispose()
    return EXIT_OK
