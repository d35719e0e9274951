"""The HTTP side: health probes and the status page (aiohttp)."""
