"""``alertcast subscribers``: a person's data on request, and retention.

* ``subscribers export ID`` prints everything held about one subscriber as
  JSON, the address decrypted: the answer to a person's access request.
* ``subscribers delete ID`` erases a subscriber and their answers to alerts:
  the answer to an erasure request.
* ``subscribers purge --inactive-days N`` erases subscribers a provider
  declared gone (bot blocked, number unsubscribed) more than N days ago and
  not heard from since: the retention period. Active subscribers are never
  purged, however long they stay silent.
* ``subscribers count`` shows the active subscribers per channel.

Every one of these is audited with the operator's name (``--actor``, the
login name by default). They need ``ALERTCAST_SUBSCRIBER_KEY``, the key the
addresses were stored with. Exit codes: 0 when all went well, 1 when there is
no such subscriber, 2 for a wrong command line or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, TextIO

from alertcast.cli_options import actor_of, with_actor, with_config
from alertcast.config import Config, load_config

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from alertcast.subscribers.store import SubscriberStore

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``subscribers export|delete|purge|count`` to the ``alertcast`` command."""

    parser = sub.add_parser(
        "subscribers", help="citizens' subscriptions: export, delete, purge, count"
    )
    actions = parser.add_subparsers(dest="subscribers_command", required=True, metavar="ACTION")

    p = with_actor(with_config(actions.add_parser("export", help="all data held about one")))
    p.add_argument("subscriber_id", type=int, metavar="ID")
    p.set_defaults(func=cmd_export)

    p = with_actor(with_config(actions.add_parser("delete", help="erase one subscriber")))
    p.add_argument("subscriber_id", type=int, metavar="ID")
    p.set_defaults(func=cmd_delete)

    p = with_actor(
        with_config(actions.add_parser("purge", help="erase subscribers gone for N days"))
    )
    p.add_argument(
        "--inactive-days",
        type=int,
        required=True,
        metavar="N",
        help="erase subscribers deactivated and silent for more than N days",
    )
    p.set_defaults(func=cmd_purge)

    p = with_config(actions.add_parser("count", help="active subscribers per channel"))
    p.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    p.set_defaults(func=cmd_count)


async def _open(config: Config) -> tuple[AsyncEngine, SubscriberStore]:
    from alertcast.store.engine import make_engine
    from alertcast.store.migrate import upgrade
    from alertcast.subscribers.crypto import SubscriberKeys
    from alertcast.subscribers.store import SubscriberStore

    keys = SubscriberKeys.from_env()
    await upgrade(config.database_url)
    engine = make_engine(config.database_url)
    kinds = {channel.name: channel.kind for channel in config.channels}
    return engine, SubscriberStore(engine, keys, kinds=kinds)


def cmd_export(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    return asyncio.run(_export(config, args.subscriber_id, actor_of(args), sys.stdout))


async def _export(config: Config, subscriber_id: int, actor: str, out: TextIO) -> int:
    from alertcast.i18n import t
    from alertcast.subscribers.store import SubscriberNotFound

    engine, store = await _open(config)
    try:
        data = await store.export(subscriber_id, actor=actor)
    except SubscriberNotFound:
        sys.stderr.write(t("subscribers.not_found", id=subscriber_id) + "\n")
        return EXIT_NOT_FOUND
    finally:
        await engine.dispose()
    out.write(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    return asyncio.run(_delete(config, args.subscriber_id, actor_of(args), sys.stdout))


async def _delete(config: Config, subscriber_id: int, actor: str, out: TextIO) -> int:
    from alertcast.i18n import t

    engine, store = await _open(config)
    try:
        deleted = await store.delete(subscriber_id, actor=actor)
    finally:
        await engine.dispose()
    if not deleted:
        sys.stderr.write(t("subscribers.not_found", id=subscriber_id) + "\n")
        return EXIT_NOT_FOUND
    out.write(t("subscribers.deleted", id=subscriber_id) + "\n")
    return EXIT_OK


def cmd_purge(args: argparse.Namespace) -> int:
    if args.inactive_days < 1:
        sys.stderr.write("error: --inactive-days must be at least 1\n")
        return EXIT_USAGE
    config = load_config(args.config)
    return asyncio.run(_purge(config, args.inactive_days, actor_of(args), sys.stdout))


async def _purge(config: Config, days: int, actor: str, out: TextIO) -> int:
    from alertcast.i18n import t

    engine, store = await _open(config)
    try:
        purged = await store.purge_inactive(timedelta(days=days), actor=actor)
    finally:
        await engine.dispose()
    out.write(t("subscribers.purged", count=purged, days=days) + "\n")
    return EXIT_OK


def cmd_count(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    return asyncio.run(_count(config, as_json=args.json, out=sys.stdout))


async def _count(config: Config, *, as_json: bool, out: TextIO) -> int:
    from alertcast.i18n import t

    engine, store = await _open(config)
    try:
        counts = await store.counts()
    finally:
        await engine.dispose()
    if as_json:
        out.write(json.dumps(counts, sort_keys=True) + "\n")
        return EXIT_OK
    if not counts:
        out.write(t("subscribers.none") + "\n")
        return EXIT_OK
    width = max(len(name) for name in counts)
    for name, count in counts.items():
        out.write(f"{name.ljust(width)}  {count}\n")
    out.write(t("subscribers.total", count=sum(counts.values())) + "\n")
    return EXIT_OK
