"""A fake webhook receiver that records what it accepts and misbehaves on purpose.

It stands for a provider in reliability tests: every accepted message is
recorded (target, idempotency key, delivery and alert ids) and duplicates are
counted by idempotency key. A seeded fraction of requests is answered with a
fault instead, one of :data:`FAULT_KINDS`:

``error_500``
    a 500 (nothing recorded): the sender should retry.
``rate_limited``
    a 429 with ``Retry-After`` (nothing recorded).
``timeout_before``
    the handler sleeps *before* reading the body, so the sender times out;
    nothing recorded (a late answer, if the sender still waits, is a 503).
``timeout_after``
    the body is read and **recorded**, then the handler sleeps past the
    sender's timeout: the ambiguous case, accepted but never confirmed.
``reset``
    the connection is aborted (``transport.abort()``), nothing recorded.

Whether a request gets a fault, and which, depends only on the seed, its
idempotency key and how many times that key was seen, not on the order
requests arrive in, so a concurrent run injects the same faults every time.

In-process: ``async with FakeProvider(errors=0.2, seed=1) as fake: ...
fake.url``. As a process (so it outlives a worker that is killed)::

    python -m tests.fakes.http_provider --port 0 --errors 0.2 --record accepted.jsonl

prints one JSON line ``{"url": ...}`` on stdout once listening, appends one
JSON line per accepted message to ``--record`` (flushed at once) and stops on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from alertcast.channels.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)

FAULT_KINDS = ("error_500", "rate_limited", "timeout_before", "timeout_after", "reset")
AMBIGUOUS_FAULTS = frozenset({"timeout_before", "timeout_after", "reset"})
"""Faults after which the sender cannot know whether the message arrived."""


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted message."""

    target: str
    idempotency_key: str
    delivery_id: Any
    alert_id: Any


@dataclass
class FakeProvider:
    """An aiohttp server on ``host:port`` (0: any free port) that records accepted messages.

    ``errors`` is the fraction of requests answered with a fault drawn from
    ``kinds``; ``latency_s`` is the (min, max) time each answer takes;
    ``hang_s`` how long a ``timeout_*`` fault holds the request (longer than
    the sender's timeout); ``retry_after`` the ``Retry-After`` value of a
    429. With ``secret`` set, requests whose signature does not verify get a
    401 and are counted in ``rejected``.
    """

    errors: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    latency_s: tuple[float, float] = (0.0, 0.0)
    hang_s: float = 1.0
    retry_after: str = "0.05"
    secret: bytes | None = None
    record: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    """Accepted messages per idempotency key."""
    answers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    """Per idempotency key, what each request got: ``ok`` or a fault kind, in order."""
    faults: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    requests: int = 0
    _runner: web.AppRunner | None = None
    _url: str | None = None
    _closing: asyncio.Event | None = None
    _record_file: IO[str] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        if not 0.0 <= self.errors <= 1.0:
            raise ValueError("errors is a fraction between 0 and 1")

    # ------------------------------------------------------------------ reading

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the fake provider is not started")
        return self._url

    @property
    def duplicates(self) -> int:
        """Accepted messages beyond the first of each idempotency key."""
        return sum(n - 1 for n in self.counts.values())

    def by_target(self) -> Counter[str]:
        """Accepted messages per target."""
        return Counter(item.target for item in self.received)

    # ------------------------------------------------------------------ running

    async def start(self) -> None:
        self._closing = asyncio.Event()
        if self.record is not None:
            self._record_file = self.record.open("a", encoding="utf-8", buffering=1)
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        port = self._runner.addresses[0][1]
        self._url = f"http://{self.host}:{port}/hook"

    async def stop(self) -> None:
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._record_file is not None:
            self._record_file.close()
            self._record_file = None

    async def __aenter__(self) -> FakeProvider:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ serving

    def _draw(self, key: str, seen: int) -> tuple[str | None, float]:
        """The fault (or None) and latency for the ``seen``-th request of ``key``."""
        rng = random.Random(f"{self.seed}:{key}:{seen}")
        fault = rng.choice(self.kinds) if self.kinds and rng.random() < self.errors else None
        low, high = self.latency_s
        return fault, rng.uniform(low, high) if high > 0 else 0.0

    async def _hang(self) -> None:
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=self.hang_s)

    def _accept(self, key: str, body: bytes) -> web.Response:
        data = json.loads(body)
        delivery = data["delivery"]
        item = Received(
            target=str(delivery["target"]),
            idempotency_key=key,
            delivery_id=delivery.get("delivery_id"),
            alert_id=delivery.get("alert_id"),
        )
        self.received.append(item)
        self.counts[key] += 1
        if self._record_file is not None:
            self._record_file.write(json.dumps(asdict(item)) + "\n")
        return web.json_response({"id": f"fake-{len(self.received)}"})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        seen = len(self.answers[key])
        fault, latency = self._draw(key, seen)
        self.answers[key].append(fault or "ok")
        if fault is not None:
            self.faults[fault] += 1
        if latency > 0:
            await asyncio.sleep(latency)
        if fault == "timeout_before":
            await self._hang()
            return web.Response(status=503, text="timed out before reading")
        body = await request.read()
        if self.secret is not None and not verify_signature(
            self.secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            body,
            request.headers.get(SIGNATURE_HEADER),
            now=time.time(),
        ):
            self.rejected += 1
            self.answers[key][-1] = "rejected"
            return web.Response(status=401, text="bad signature")
        if fault == "error_500":
            return web.Response(status=500, text="injected failure")
        if fault == "rate_limited":
            return web.Response(
                status=429, text="slow down", headers={"Retry-After": self.retry_after}
            )
        if fault == "reset":
            transport = request.transport
            if transport is not None:
                transport.abort()
            return web.Response(status=500, text="reset")
        response = self._accept(key, body)
        if fault == "timeout_after":
            await self._hang()
        return response


# --------------------------------------------------------------------------- process


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--errors", type=float, default=0.0, help="fraction of faulty answers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--kinds", default=",".join(FAULT_KINDS), help="comma-separated fault kinds"
    )
    parser.add_argument("--latency-ms", default="0,0", help="min,max latency in milliseconds")
    parser.add_argument("--hang-s", type=float, default=1.0)
    parser.add_argument("--retry-after", default="0.05")
    parser.add_argument("--secret-env", help="environment variable holding the signing secret")
    parser.add_argument("--record", type=Path, help="append accepted messages here (JSON lines)")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    low, _, high = args.latency_ms.partition(",")
    secret = os.environ[args.secret_env].encode() if args.secret_env else None
    fake = FakeProvider(
        errors=args.errors,
        seed=args.seed,
        kinds=tuple(kind for kind in args.kinds.split(",") if kind),
        latency_s=(float(low) / 1000, float(high or low) / 1000),
        hang_s=args.hang_s,
        retry_after=args.retry_after,
        secret=secret,
        record=args.record,
        host=args.host,
        port=args.port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with fake:
        sys.stdout.write(json.dumps({"url": fake.url}) + "\n")
        sys.stdout.flush()
        await stop.wait()
    summary = {
        "requests": fake.requests,
        "accepted": len(fake.received),
        "duplicates": fake.duplicates,
        "faults": dict(fake.faults),
        "rejected": fake.rejected,
    }
    sys.stderr.write(json.dumps(summary) + "\n")


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
