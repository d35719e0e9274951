"""The ``cap-dir`` feed: a drop folder for CAP files.

Many agencies' systems can write a file but not serve a feed. A file dropped
in the folder is ingested, then moved to ``done/`` (or ``rejected/`` when it
could not be read), so that a restart never reads it twice and an operator
sees at a glance what was refused. Files still being written are left for the
next pass: only files whose size has not changed since the previous look are
taken.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from alertcast.config import FeedConfig
from alertcast.ingest import Ingestor

log = structlog.get_logger(__name__)

_SUFFIXES = frozenset({".xml", ".cap"})


class DropFolderFeed:
    """Watches one folder; ``run`` loops until cancelled, ``poll_once`` does a single pass."""

    def __init__(self, feed: FeedConfig, ingestor: Ingestor) -> None:
        if feed.path is None:
            raise ValueError(f"feed {feed.name} has no path")
        self.feed = feed
        self.folder = feed.path
        self._ingestor = ingestor
        self._sizes: dict[Path, int] = {}

    async def run(self) -> None:
        log.info("feed.watching", feed=self.feed.name, folder=str(self.folder))
        while True:
            await self.poll_once()
            await asyncio.sleep(self.feed.interval_s)

    async def poll_once(self, *, settle: bool = True) -> int:
        """Ingest the files that are complete; return how many were taken."""
        self.folder.mkdir(parents=True, exist_ok=True)
        taken = 0
        for file in sorted(p for p in self.folder.iterdir() if p.is_file()):
            if file.suffix.lower() not in _SUFFIXES:
                continue
            size = file.stat().st_size
            if settle and self._sizes.get(file) != size:
                self._sizes[file] = size  # seen for the first time or still growing
                continue
            self._sizes.pop(file, None)
            data = await asyncio.to_thread(file.read_bytes)
            outcome = await self._ingestor.ingest_bytes(
                data,
                source=f"{self.feed.name}:{file.name}",
                actor=f"feed:{self.feed.name}",
                feed=self.feed.name,
            )
            target = self.folder / ("rejected" if outcome.error else "done")
            target.mkdir(exist_ok=True)
            file.replace(target / file.name)
            taken += 1
        return taken
