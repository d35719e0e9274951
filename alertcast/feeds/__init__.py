"""Feed adapters: they turn the outside world's bytes into alerts (through ``ingest``)."""
