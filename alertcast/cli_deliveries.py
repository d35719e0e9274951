"""``alertcast deliveries`` and ``alertcast status``: the ledger, seen and steered by operators.

* ``deliveries list`` shows rows, by state and alert (``--json`` for scripts):
  the way to find what died and why.
* ``deliveries retry ID...`` or ``deliveries retry --state dead [--alert ID]``
  puts dead, failed or unknown rows back to pending, due now (audited); a
  sent row is never re-sent by this.
* ``status ALERT_ID`` prints, per channel, how many rows are in each state;
  at a terminal it first follows the fan-out with a progress bar until
  nothing is pending or claimed. ``--once`` prints the figures once.

Exit codes follow ``alertcast``'s: 0 when all went well, 1 when nothing matched
(no such deliveries), 2 for a wrong command line or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from alertcast.config import load_config

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

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

    p = with_config(sub.add_parser("status", help="an alert's deliveries per channel and state"))
    p.add_argument("alert_id", type=int, metavar="ALERT_ID")
    p.add_argument("--once", action="store_true", help="print the figures once and exit")
    p.add_argument(
        "--interval", type=float, default=1.0, help="seconds between refreshes (default 1)"
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


def cmd_status(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    return asyncio.run(
        _status(
            config.database_url,
            args.alert_id,
            once=args.once,
            interval=max(args.interval, 0.1),
            out=sys.stdout,
        )
    )


def _counts_table(counts: Mapping[str, Mapping[str, int]], out: TextIO) -> None:
    seen = {state for per_state in counts.values() for state in per_state}
    states = [s for s in _STATE_ORDER if s in seen]
    rows: list[Sequence[str]] = [("CHANNEL", *(s.upper() for s in states), "TOTAL")]
    for channel, per_state in counts.items():
        rows.append(
            (
                channel,
                *(str(per_state.get(s, 0)) for s in states),
                str(sum(per_state.values())),
            )
        )
    _table(rows, out)


def _done(counts: Mapping[str, Mapping[str, int]]) -> int:
    return sum(
        n
        for per_state in counts.values()
        for state, n in per_state.items()
        if state not in ("pending", "claimed")
    )


async def _status(url: str, alert_id: int, *, once: bool, interval: float, out: TextIO) -> int:
    from alertcast.dispatch.ledger import is_finished, progress
    from alertcast.progress import Progress

    engine = await _engine(url)
    try:
        counts = await progress(engine, alert_id)
        if not counts:
            _err(f"alert {alert_id} has no deliveries")
            return EXIT_BAD_INPUT
        if not once and not is_finished(counts):
            total = sum(sum(per_state.values()) for per_state in counts.values())
            with Progress(total, f"alert {alert_id}") as bar:
                while not is_finished(counts):
                    bar.advance(_done(counts) - bar.done)
                    await asyncio.sleep(interval)
                    counts = await progress(engine, alert_id)
                bar.advance(_done(counts) - bar.done)
    finally:
        await engine.dispose()
    _counts_table(counts, out)
    return EXIT_OK
