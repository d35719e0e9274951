"""What the bot is given besides the store and the catalogue: the recent alerts of a person.

The bot never touches SQL: it talks to
:class:`alertcast.subscribers.store.SubscriberStore` and
:class:`alertcast.areas.AreaCatalogue`, through their public methods only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from alertcast.subscribers.model import Subscriber

RecentAlerts = Callable[[Subscriber], "list[str] | Awaitable[list[str]]"]
"""Short lines about the recent alerts that reached a subscriber (``/misalertas``)."""
