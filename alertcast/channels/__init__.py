"""Channel adapters: they turn messages into provider calls."""
