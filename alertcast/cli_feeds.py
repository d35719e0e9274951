"""``alertcast feeds``: see how each feed is doing, try one, poll one.

* ``feeds list`` shows every configured feed with its health (``--json`` for
  scripts): when it last worked, how many polls failed in a row and why, and
  whether it has gone stale.
* ``feeds check NAME`` fetches the feed once, with its linked documents, and
  prints what would be ingested, one JSON object per alert, without storing
  anything (no database is opened): the way to try a catalogue entry, even a
  disabled one, before enabling it.
* ``feeds poll NAME --once`` runs one real poll, stored and audited like the
  service's own, and prints its outcome; without ``--once`` it keeps polling
  that feed until Ctrl+C. It respects the lease of a running instance unless
  ``--force`` is given.

Exit codes follow ``alertcast``'s: 0 when all went well, 1 when the feed or
some entry failed (what could be done was done), 2 for a wrong command line,
an unknown feed or a bad configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from alertcast.config import Config, FeedConfig, load_config

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from alertcast.feeds.base import FeedItem

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2

_COLUMNS = ("NAME", "KIND", "ENABLED", "STATUS", "LAST SUCCESS", "FAILURES", "STALE", "LAST ERROR")
_ERROR_WIDTH = 60


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``feeds list``, ``feeds check`` and ``feeds poll`` to the ``alertcast`` command."""
    parser = sub.add_parser("feeds", help="the watched feeds: health, a trial fetch, one poll")
    actions = parser.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", type=Path, help="alertcast.toml (default: ./alertcast.toml)")
        return p

    p = with_config(actions.add_parser("list", help="every feed with its health"))
    p.add_argument("--json", action="store_true", help="one JSON object per feed")
    p.set_defaults(func=cmd_list)

    p = with_config(
        actions.add_parser("check", help="fetch a feed once and print what would be ingested")
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--no-links", action="store_true", help="do not fetch the CAP documents an index links to"
    )
    p.set_defaults(func=cmd_check)

    p = with_config(actions.add_parser("poll", help="poll a feed now and store what it holds"))
    p.add_argument("name", metavar="NAME")
    p.add_argument("--once", action="store_true", help="one poll, then exit")
    p.add_argument(
        "--force", action="store_true", help="poll even when another instance holds the feed"
    )
    p.set_defaults(func=cmd_poll)


# --------------------------------------------------------------------------- helpers


class _UnknownFeed(Exception):
    pass


def _err(text: object) -> None:
    """A line for people on stderr (stdout carries only the command's output)."""
    sys.stderr.write(f"{text}\n")


def _feed(config: Config, name: str) -> FeedConfig:
    for feed in config.feeds:
        if feed.name == name:
            return feed
    known = ", ".join(sorted(f.name for f in config.feeds)) or "none are configured"
    raise _UnknownFeed(f"error: no feed named {name!r} (the feeds are: {known})")


def _when(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


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


async def _engine(url: str) -> AsyncEngine:
    from alertcast.store.engine import make_engine
    from alertcast.store.migrate import upgrade

    await upgrade(url)
    return make_engine(url)


# --------------------------------------------------------------------------- feeds list


def cmd_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    return asyncio.run(_list(config, as_json=args.json, out=sys.stdout))


async def _list(config: Config, *, as_json: bool, out: TextIO) -> int:
    from alertcast.feed_health import health_of
    from alertcast.store.feed_state import FeedStateRepository

    engine = await _engine(config.database_url)
    try:
        states = await FeedStateRepository(engine).all()
    finally:
        await engine.dispose()
    now = datetime.now(UTC)
    healths = [health_of(feed, states.get(feed.name), now) for feed in config.feeds]
    if as_json:
        for health in healths:
            out.write(json.dumps(health.to_json(), ensure_ascii=False) + "\n")
        return EXIT_OK
    if not healths:
        _err(f"no feeds are configured (in {config.feeds_dir})")
        return EXIT_OK
    rows: list[Sequence[str]] = [_COLUMNS]
    for health in healths:
        rows.append(
            (
                health.name,
                health.kind,
                "yes" if health.enabled else "no",
                health.status,
                _when(health.last_success_at),
                str(health.consecutive_failures),
                "yes" if health.stale else "no",
                _short(health.last_error),
            )
        )
    _table(rows, out)
    return EXIT_OK


# --------------------------------------------------------------------------- feeds check


def cmd_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        feed = _feed(config, args.name)
    except _UnknownFeed as exc:
        _err(exc)
        return EXIT_USAGE
    if feed.kind == "push":
        _err(
            f"error: {feed.name} is a push feed: documents are sent to alertcast, there is"
            " nothing to fetch"
        )
        return EXIT_USAGE
    if feed.kind == "cap-dir":
        return asyncio.run(_check_folder(feed, sys.stdout))
    return asyncio.run(_check(feed, links=not args.no_links, out=sys.stdout))


def _print_item(item: FeedItem, source: str, out: TextIO) -> None:
    from alertcast.alert_json import alert_to_json

    record = alert_to_json(item.alert, source_file=source, warnings=item.warnings)
    if item.thread is not None:
        record["thread"] = item.thread
    out.write(json.dumps(record, ensure_ascii=False) + "\n")


async def _check(feed: FeedConfig, *, links: bool, out: TextIO) -> int:
    from alertcast.errors import FeedError
    from alertcast.feeds.http import HttpFetcher, allowed_host_check, make_session
    from alertcast.feeds.linked import LinkedFetcher
    from alertcast.feeds.registry import parser_for

    assert feed.url is not None
    failed = False
    async with make_session() as session:
        fetcher = HttpFetcher(session)
        try:
            result = await fetcher.fetch(
                feed.url,
                feed=feed.name,
                timeout_s=feed.timeout_s,
                max_bytes=feed.max_bytes,
                headers=feed.headers,
                host_ok=allowed_host_check(feed.url, feed.allowed_hosts),
            )
            batch = await asyncio.to_thread(parser_for(feed.kind).parse, result.body, feed)
        except FeedError as exc:
            _err(f"error: {feed.name}: {exc.reason}")
            return EXIT_BAD_INPUT
        for item in batch.items:
            _print_item(item, feed.url, out)
        for warning in batch.warnings:
            _err(f"warning: {feed.name}: {warning}")
        for error in batch.errors:
            _err(f"error: {feed.name}: {error}")
            failed = True
        linked_alerts = 0
        if batch.links and links:
            linked = LinkedFetcher(fetcher, parser_for("cap"))
            for link_result in await linked.fetch_all(
                feed, batch.links, {}, now=datetime.now(UTC), conditional=False
            ):
                if link_result.error:
                    _err(f"error: {feed.name}: {link_result.error}")
                    failed = True
                for item in link_result.items:
                    _print_item(item, link_result.link.url, out)
                    linked_alerts += 1
        elif batch.links:
            for link in batch.links:
                out.write(json.dumps({"source_file": feed.url, "linked": link.url}) + "\n")
    summary = (
        f"{feed.name}: {len(batch.items) + linked_alerts} alert(s) would be ingested"
        f" ({len(batch.items)} in the document, {linked_alerts} linked"
        + (f", {len(batch.links)} links not fetched" if batch.links and not links else "")
        + f"), {len(batch.errors)} entry error(s)"
        + (", complete list of active alerts" if batch.complete else "")
    )
    _err(summary)
    return EXIT_BAD_INPUT if failed else EXIT_OK


async def _check_folder(feed: FeedConfig, out: TextIO) -> int:
    """What a drop folder holds now, read but neither stored nor moved."""
    from alertcast.errors import FeedError
    from alertcast.feeds.registry import parser_for

    assert feed.path is not None
    failed = False
    files = (
        sorted(p for p in feed.path.iterdir() if p.suffix.lower() in (".xml", ".cap"))
        if feed.path.is_dir()
        else []
    )
    for file in files:
        try:
            data = await asyncio.to_thread(file.read_bytes)
            batch = parser_for("cap").parse(data, feed)
        except (OSError, FeedError) as exc:
            _err(f"error: {file}: {exc}")
            failed = True
            continue
        for item in batch.items:
            _print_item(item, str(file), out)
    _err(f"{feed.name}: {len(files)} file(s) in {feed.path}")
    return EXIT_BAD_INPUT if failed else EXIT_OK


# --------------------------------------------------------------------------- feeds poll


def cmd_poll(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        feed = _feed(config, args.name)
    except _UnknownFeed as exc:
        _err(exc)
        return EXIT_USAGE
    if feed.kind == "push":
        _err(f"error: {feed.name} is a push feed: there is nothing to poll")
        return EXIT_USAGE
    try:
        return asyncio.run(_poll(config, feed, once=args.once, force=args.force, out=sys.stdout))
    except KeyboardInterrupt:
        return EXIT_OK


async def _poll(config: Config, feed: FeedConfig, *, once: bool, force: bool, out: TextIO) -> int:
    from alertcast.app import build_ingestor
    from alertcast.feeds.drop_folder import DropFolderFeed
    from alertcast.feeds.http import HttpFetcher, make_session
    from alertcast.feeds.lease import instance_id
    from alertcast.feeds.poller import FeedPoller
    from alertcast.store.alerts import AlertRepository
    from alertcast.store.feed_state import FeedStateRepository

    engine = await _engine(config.database_url)
    try:
        ingestor = build_ingestor(config, AlertRepository(engine))
        if feed.kind == "cap-dir":
            folder = DropFolderFeed(feed, ingestor)
            if not once:
                await folder.run()
            taken = await folder.poll_once(settle=False)
            out.write(json.dumps({"feed": feed.name, "status": "changed", "files": taken}) + "\n")
            return EXIT_OK
        async with make_session() as session:
            poller = FeedPoller(
                feed,
                fetcher=HttpFetcher(session),
                ingestor=ingestor,
                repository=FeedStateRepository(engine),
                owner=f"cli:{instance_id()}",
            )
            if not once:
                await poller.run()
                return EXIT_OK
            try:
                outcome = await poller.poll_once(use_lease=not force, on_schedule=False)
            finally:
                await poller.lease.release()
    finally:
        await engine.dispose()
    record: dict[str, Any] = outcome.to_json()
    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    if outcome.status == "skipped":
        until = _when(poller.lease.holder_until)
        _err(
            f"error: {feed.name} is being polled by {outcome.holder} (lease until {until});"
            " use --force to poll it anyway"
        )
        return EXIT_BAD_INPUT
    if outcome.status == "failed":
        _err(f"error: {feed.name}: {outcome.error}")
        return EXIT_BAD_INPUT
    for error in outcome.errors:
        _err(f"error: {feed.name}: {error}")
    return EXIT_BAD_INPUT if outcome.errors else EXIT_OK
