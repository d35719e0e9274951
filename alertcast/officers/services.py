"""Everything the officers' front ends need, built once from the configuration.

The HTTP API, the console and the CLI all work through the same stores and
the same desk, so the rules (roles, the two-person rule, the audit) are the
same whichever way a person comes in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from alertcast.config import Config
from alertcast.officers._common import Clock, utc_now
from alertcast.officers.sessions import SessionStore
from alertcast.officers.tokens import TokenStore
from alertcast.officers.users import UserStore
from alertcast.officers.workflow import AlertDesk

if TYPE_CHECKING:
    from alertcast.areas import AreaCatalogue
    from alertcast.dispatch.planner import AudienceSource, Planner
    from alertcast.preview import Previewer
    from alertcast.subscribers.store import SubscriberStore

__all__ = ["OfficeServices", "office_services"]


@dataclass
class OfficeServices:
    """The officers' stores and desk on one engine and configuration."""

    engine: AsyncEngine
    config: Config
    users: UserStore
    tokens: TokenStore
    sessions: SessionStore
    desk: AlertDesk
    previewer: Previewer
    subscribers: SubscriberStore | None
    channel_limits: Mapping[str, float] = field(default_factory=dict)
    """Each enabled channel's sustained rate (messages per second), for ETAs."""
    catalogue: AreaCatalogue | None = None


def office_services(
    config: Config,
    engine: AsyncEngine,
    *,
    planner: Planner | None,
    subscribers: SubscriberStore | None,
    catalogue: AreaCatalogue | None,
    clock: Clock = utc_now,
) -> OfficeServices:
    """Build the officers' services; ``planner`` routes what the desk releases.

    Without a planner (an instance that only serves the API) released alerts
    are routed by the planner's catch-up in whichever instance runs dispatch.
    Pending deliveries of an alert a Cancel or Update ends are stopped at once.
    """
    from alertcast.dispatch.cancellation import cancel_on_lifecycle
    from alertcast.dispatch.progress import channel_rate_limits
    from alertcast.preview import Previewer

    limits = channel_rate_limits(config.channels)
    desk = AlertDesk(
        engine,
        config,
        planner=planner,
        effect_listeners=(cancel_on_lifecycle(engine),),
        clock=clock,
    )
    previewer = Previewer(
        engine,
        config,
        audience=_audience(config, planner, subscribers, catalogue),
        templates=planner.templates if planner is not None else None,
        limits=limits,
        clock=clock,
    )
    return OfficeServices(
        engine=engine,
        config=config,
        users=UserStore(engine, clock=clock),
        tokens=TokenStore(engine, clock=clock),
        sessions=SessionStore(engine, clock=clock),
        desk=desk,
        previewer=previewer,
        subscribers=subscribers,
        channel_limits=limits,
        catalogue=catalogue,
    )


def _audience(
    config: Config,
    planner: Planner | None,
    subscribers: SubscriberStore | None,
    catalogue: AreaCatalogue | None,
) -> AudienceSource | None:
    """Who routes reach: the planner's own audience, else one built from the subscribers."""
    if planner is not None:
        return planner.audience
    if subscribers is None or catalogue is None:
        return None
    from alertcast.subscribers.audience import SubscriberAudience

    return SubscriberAudience(subscribers, catalogue, named_areas=config.routes.areas)
