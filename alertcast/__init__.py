"""alertcast: an emergency and public-service alert broadcaster.

The package is a pure core (domain, CAP codec, audit) surrounded by adapters
(feeds in, channels out, stores). Only ``app`` and ``cli`` wire them together.
"""

__version__ = "0.1.0"
