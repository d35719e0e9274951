"""A worker process for the kill -9 test: sends to a file, one line per send, until killed.

Run as ``python -m tests.dispatch.worker_process DATABASE_URL OUTFILE WORKER_ID``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from alertcast.dispatch.worker import Worker
from alertcast.ports import OutboundMessage, Receipt
from alertcast.store.engine import make_engine
from alertcast.testing import UnlimitedLimiter

LEASE_S = 1.0


class FileChannel:
    """Appends each target to a file as it is sent; the line reaches the kernel at once."""

    name = "fake"
    kind = "fake"

    def __init__(self, path: Path) -> None:
        self._out = path.open("a", encoding="utf-8", buffering=1)

    async def send(self, message: OutboundMessage, target: str) -> Receipt:
        await asyncio.sleep(0.001)
        self._out.write(target + "\n")
        return Receipt(provider_message_id=target)

    async def aclose(self) -> None:
        self._out.close()


async def main(url: str, outfile: str, worker_id: str) -> None:
    engine = make_engine(url)
    channel = FileChannel(Path(outfile))
    worker = Worker(
        engine,
        {"fake": channel},
        UnlimitedLimiter(),
        worker_id,
        batch=50,
        concurrency=10,
        lease_s=LEASE_S,
        poll_s=0.05,
    )
    try:
        await worker.run(asyncio.Event())
    finally:
        await channel.aclose()
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
