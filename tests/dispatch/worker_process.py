"""A worker process for the kill -9 tests: run a Worker until killed, or until no work is left.

::

    python -m tests.dispatch.worker_process --database-url URL --url WEBHOOK_URL \\
        --worker-id w1 [--lease-s 2] [--idle-exit-s 2] [--secret-env NAME] ...

sends through the real webhook channel (to the fake provider of
``tests.fakes.http_provider``) and exits once the ledger has held no pending
or claimed row of the channel for ``--idle-exit-s`` seconds, or on SIGTERM.
Leases are short, so rows held by a killed process come back quickly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.channels.webhook import WebhookChannel
from alertcast.dispatch.ledger import DeliveryState
from alertcast.dispatch.retry import RetryPolicy
from alertcast.dispatch.worker import Worker
from alertcast.log import configure_logging
from alertcast.store.engine import make_engine
from alertcast.store.tables import deliveries
from alertcast.testing import UnlimitedLimiter


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.dispatch.worker_process")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--url", required=True, help="the webhook URL (the fake provider)")
    parser.add_argument("--worker-id", default=f"proc-{os.getpid()}")
    parser.add_argument("--channel", default="hook")
    parser.add_argument("--secret-env", help="environment variable holding the signing secret")
    parser.add_argument("--lease-s", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout-s", type=float, default=1.0)
    parser.add_argument("--poll-s", type=float, default=0.05)
    parser.add_argument("--idle-exit-s", type=float, default=2.0)
    parser.add_argument("--max-attempts", type=int, default=8)
    parser.add_argument("--initial-s", type=float, default=0.01)
    parser.add_argument("--jitter-s", type=float, default=0.01)
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


async def open_work(engine: AsyncEngine, channel: str) -> int:
    """Rows of ``channel`` a worker may still have to send (pending or claimed)."""
    query = select(func.count()).where(
        deliveries.c.channel == channel,
        deliveries.c.state.in_([DeliveryState.PENDING.value, DeliveryState.CLAIMED.value]),
    )
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def _stop_when_idle(
    engine: AsyncEngine, channel: str, idle_s: float, stop: asyncio.Event
) -> None:
    loop = asyncio.get_running_loop()
    idle_since: float | None = None
    while not stop.is_set():
        if await open_work(engine, channel) == 0:
            idle_since = idle_since if idle_since is not None else loop.time()
            if loop.time() - idle_since >= idle_s:
                stop.set()
                return
        else:
            idle_since = None
        await asyncio.sleep(0.1)


async def run_webhook(args: argparse.Namespace) -> None:
    configure_logging(args.log_level, "json")
    engine = make_engine(args.database_url)
    secret = os.environ[args.secret_env].encode() if args.secret_env else None
    channel = WebhookChannel(args.channel, args.url, secret=secret, timeout_s=args.timeout_s)
    worker = Worker(
        engine,
        {args.channel: channel},
        UnlimitedLimiter(),
        args.worker_id,
        batch=args.batch,
        concurrency=args.concurrency,
        lease_s=args.lease_s,
        poll_s=args.poll_s,
        drain_s=args.timeout_s,
        default_policy=RetryPolicy(
            max_attempts=args.max_attempts, initial_s=args.initial_s, jitter_s=args.jitter_s
        ),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    idle = asyncio.create_task(_stop_when_idle(engine, args.channel, args.idle_exit_s, stop))
    try:
        await worker.run(stop)
    finally:
        idle.cancel()
        await asyncio.gather(idle, return_exceptions=True)
        await channel.aclose()
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(run_webhook(parse_args(sys.argv[1:])))
