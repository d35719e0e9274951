"""Rate-limit benchmark: a fan-out to a fake Telegram Bot API that enforces its limits.

    .venv/bin/python bench/ratelimit.py [--quick]

Prints one JSON object::

    {"alertcast": {"rate_fraction", "share_429", "lost", ...},
     "ptb_aioratelimiter": {"rate_fraction", "share_429", "lost", ...}}

``rate_fraction``
    messages delivered per second, from the first delivery to the last, as a
    fraction of the 30 per second the server allows.
``share_429``
    HTTP 429 answers as a fraction of all sendMessage requests.
``lost``
    messages never delivered (given up after retries, or failed otherwise).

The fake server (aiohttp on 127.0.0.1, port 0, in its own process so the
client's event loop does not slow it) answers ``POST /bot<token>/sendMessage``
and ``getMe`` with the Bot API's shapes (``{"ok": true, "result": Message}``)
and enforces what the Bot FAQ documents: about 30 messages per second
overall (a token bucket of 30 per second holding 30, for the "short bursts"
Telegram tolerates) and one message per second per chat (a bucket of one,
with 50 ms of grace for network jitter). Over a limit it answers HTTP 429
``{"ok": false, "error_code": 429, "description": "Too Many Requests: retry
after N", "parameters": {"retry_after": N}}``, N being the whole seconds
until the limit frees, at least 1.

The workload is 20,000 messages to 10,000 private chats (``--quick``: 900
to 450), each chat's two messages (an alert and its update) queued back to
back: the worst case for the per-chat limit.

The two clients run at the same time, each against its own server process
(same code, own budget), so ``--quick`` finishes within a minute:

``alertcast``
    :class:`alertcast.ratelimit.RateLimiter` with the Telegram defaults in
    front of plain aiohttp posts from 100 concurrent senders; a 429 pauses
    the channel for ``retry_after`` and the message is sent again (up to 5
    attempts).
``ptb_aioratelimiter``
    python-telegram-bot's ``ExtBot`` pointed at the fake server with
    ``base_url``, its ``AIORateLimiter`` (default limits, ``max_retries=4``,
    so 5 attempts as well) and an HTTPX pool of 100 connections, 100
    concurrent senders.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import structlog  # noqa: E402
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web  # noqa: E402

from alertcast.ratelimit import PROVIDER_DEFAULTS, RateLimiter  # noqa: E402

TOKEN = "123456:bench"
OVERALL_PER_S = 30.0
OVERALL_CAPACITY = 30.0
PER_CHAT_PER_S = 1.0
PER_CHAT_GRACE = 0.05
SENDERS = 100
ATTEMPTS = 5


@dataclass
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    stamp: float

    def wait(self, now: float, grace: float = 0.0) -> float:
        """0 and a token taken when allowed; otherwise seconds until it would be."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0 - grace:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - grace - self.tokens) / self.rate


@dataclass
class _ServerState:
    overall: _Bucket
    chats: dict[int, _Bucket] = field(default_factory=dict)
    requests: int = 0
    too_many: int = 0
    delivered: set[str] = field(default_factory=set)
    duplicates: int = 0
    first_ok: float | None = None
    last_ok: float | None = None
    next_message_id: int = 1


def _too_many(retry_after: float) -> web.Response:
    seconds = max(1, math.ceil(retry_after))
    body = {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {seconds}",
        "parameters": {"retry_after": seconds},
    }
    return web.json_response(body, status=429)


async def _fields(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        data = await request.json()
        return dict(data) if isinstance(data, dict) else {}
    return dict(await request.post())


def _make_app() -> web.Application:
    state = _ServerState(
        overall=_Bucket(OVERALL_PER_S, OVERALL_CAPACITY, OVERALL_CAPACITY, time.monotonic())
    )

    async def get_me(request: web.Request) -> web.Response:
        user = {"id": 123456, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
        return web.json_response({"ok": True, "result": user})

    async def send_message(request: web.Request) -> web.Response:
        data = await _fields(request)
        now = time.monotonic()
        state.requests += 1
        chat_id = int(data["chat_id"])
        text = str(data["text"])
        chat = state.chats.get(chat_id)
        if chat is None:
            chat = state.chats[chat_id] = _Bucket(PER_CHAT_PER_S, 1.0, 1.0, now)
        # Check both before taking either, so a refused request costs nothing.
        chat_wait = chat.wait(now, PER_CHAT_GRACE)
        if chat_wait > 0:
            state.too_many += 1
            return _too_many(chat_wait)
        overall_wait = state.overall.wait(now)
        if overall_wait > 0:
            chat.tokens += 1.0  # give the chat's token back
            state.too_many += 1
            return _too_many(overall_wait)
        if text in state.delivered:
            state.duplicates += 1
        state.delivered.add(text)
        state.first_ok = state.first_ok if state.first_ok is not None else now
        state.last_ok = now
        message = {
            "message_id": state.next_message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"},
            "from": {"id": 123456, "is_bot": True, "first_name": "Bench"},
            "text": text,
        }
        state.next_message_id += 1
        return web.json_response({"ok": True, "result": message})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": state.requests,
                "too_many": state.too_many,
                "delivered": len(state.delivered),
                "duplicates": state.duplicates,
                "first_ok": state.first_ok,
                "last_ok": state.last_ok,
            }
        )

    app = web.Application()
    app.router.add_post(f"/bot{TOKEN}/sendMessage", send_message)
    app.router.add_post(f"/bot{TOKEN}/getMe", get_me)
    app.router.add_get("/stats", stats)
    return app


def _serve(ports: Any) -> None:
    async def main() -> None:
        runner = web.AppRunner(_make_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


def start_server() -> tuple[multiprocessing.Process, int]:
    ports: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    process.start()
    return process, int(ports.get(timeout=30))


def workload(messages: int, chats: int) -> list[tuple[int, str]]:
    """(chat id, text) pairs; each chat's messages back to back."""
    per_chat = messages // chats
    return [(1000 + c, f"m{c}-{k}") for c in range(chats) for k in range(per_chat)]


async def run_alertcast(port: int, work: list[tuple[int, str]]) -> dict[str, int]:
    limiter = RateLimiter({"telegram": PROVIDER_DEFAULTS["telegram"].limits})
    url = f"http://127.0.0.1:{port}/bot{TOKEN}/sendMessage"
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    lost = 0
    connector = TCPConnector(limit=SENDERS)
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=30)) as session:

        async def send(chat_id: int, text: str) -> bool:
            for _ in range(ATTEMPTS):
                await limiter.acquire("telegram", recipient=str(chat_id))
                try:
                    async with session.post(url, json={"chat_id": chat_id, "text": text}) as resp:
                        body = await resp.json()
                except (OSError, TimeoutError, ValueError):
                    continue
                if body.get("ok"):
                    return True
                retry_after = (body.get("parameters") or {}).get("retry_after")
                if resp.status == 429 and retry_after is not None:
                    limiter.pause("telegram", float(retry_after))
            return False

        async def sender() -> None:
            nonlocal lost
            while not queue.empty():
                chat_id, text = queue.get_nowait()
                if not await send(chat_id, text):
                    lost += 1

        await asyncio.gather(*(sender() for _ in range(SENDERS)))
    return {"lost": lost}


async def run_ptb(port: int, work: list[tuple[int, str]]) -> dict[str, int]:
    from telegram.error import TelegramError
    from telegram.ext import AIORateLimiter, ExtBot
    from telegram.request import HTTPXRequest

    bot: ExtBot[int] = ExtBot(
        TOKEN,
        base_url=f"http://127.0.0.1:{port}/bot",
        request=HTTPXRequest(connection_pool_size=SENDERS, read_timeout=30, pool_timeout=60),
        rate_limiter=AIORateLimiter(max_retries=ATTEMPTS - 1),
    )
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    lost = 0
    async with bot:

        async def sender() -> None:
            nonlocal lost
            while not queue.empty():
                chat_id, text = queue.get_nowait()
                try:
                    await bot.send_message(chat_id=chat_id, text=text)
                except TelegramError:
                    lost += 1

        await asyncio.gather(*(sender() for _ in range(SENDERS)))
    return {"lost": lost}


async def stats_of(port: int) -> dict[str, Any]:
    async with ClientSession() as session, session.get(f"http://127.0.0.1:{port}/stats") as resp:
        data: dict[str, Any] = await resp.json()
        return data


def summarise(stats: dict[str, Any], lost: int, messages: int) -> dict[str, Any]:
    delivered = int(stats["delivered"])
    span = (stats["last_ok"] or 0.0) - (stats["first_ok"] or 0.0)
    rate = (delivered - 1) / span if delivered > 1 and span > 0 else 0.0
    requests = int(stats["requests"])
    return {
        "rate_fraction": round(rate / OVERALL_PER_S, 4),
        "share_429": round(stats["too_many"] / requests, 5) if requests else 0.0,
        "lost": max(lost, messages - delivered),
        "messages": messages,
        "requests": requests,
        "responses_429": stats["too_many"],
        "duplicates": stats["duplicates"],
        "seconds": round(span, 2),
    }


async def bench(messages: int, chats: int) -> dict[str, Any]:
    work = workload(messages, chats)
    servers = [start_server() for _ in range(2)]
    try:
        (_, port_a), (_, port_b) = servers
        try:
            import telegram  # noqa: F401

            ptb: Any = run_ptb(port_b, work)
        except ImportError:
            ptb = None
        results = await asyncio.gather(run_alertcast(port_a, work), *([ptb] if ptb else []))
        report: dict[str, Any] = {
            "alertcast": summarise(await stats_of(port_a), results[0]["lost"], len(work))
        }
        if ptb is not None:
            report["ptb_aioratelimiter"] = summarise(
                await stats_of(port_b), results[1]["lost"], len(work)
            )
        else:
            report["ptb_aioratelimiter"] = {
                "rate_fraction": None,
                "share_429": None,
                "lost": None,
                "error": 'not installed: pip install "python-telegram-bot[rate-limiter]"',
            }
        return report
    finally:
        for process, _ in servers:
            process.terminate()
            process.join(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="900 messages to 450 chats")
    args = parser.parse_args()
    # stdout carries the one JSON object; log events (pauses) go to stderr.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    messages, chats = (900, 450) if args.quick else (20_000, 10_000)
    print(json.dumps(asyncio.run(bench(messages, chats))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
