"""How fast the audit trail appends under concurrent writers, and how fast it verifies.

    python bench/audit.py sqlite:///tmp/bench.db --writers 4 --records 2000
    python bench/audit.py postgresql://postgres@127.0.0.1:5432/bench --writers 8

Appends are serialized by design (one chain, one lock), so the interesting
numbers are appends per second as writers are added (it should hold steady,
not collapse) and verified records per second (the cost of ``audit verify``).
The database should be a throwaway one: records are added, never removed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from alertcast import audit
from alertcast.log import configure_logging
from alertcast.store.engine import make_engine, redact_url
from alertcast.store.migrate import upgrade


async def main(url: str, writers: int, records: int, batch: int) -> None:
    await upgrade(url)
    engines = [make_engine(url) for _ in range(writers)]
    per_writer = records // writers

    async def writer(number: int) -> None:
        for i in range(per_writer):
            await audit.record(
                engines[number],
                actor=f"bench-{number}",
                action="bench.append",
                subject=f"{number}/{i}",
                data={"i": i, "payload": "x" * 200},
            )

    try:
        started = time.perf_counter()
        await asyncio.gather(*(writer(n) for n in range(writers)))
        appended = time.perf_counter() - started

        started = time.perf_counter()
        checked = await audit.verify_chain(engines[0], batch=batch)
        verified = time.perf_counter() - started
    finally:
        for engine in engines:
            await engine.dispose()

    total = per_writer * writers
    figures = {
        "database": redact_url(url).split(":", 1)[0],
        "records": total,
        "writers": writers,
        "appends_per_s": round(total / appended, 1),
        "verified": checked,
        "verified_per_s": round(checked / verified, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=5000)
    options = parser.parse_args()
    configure_logging("warning", "json")  # logs to stderr; stdout carries the JSON figures
    asyncio.run(main(options.url, options.writers, options.records, options.batch))
