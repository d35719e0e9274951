"""Routing rules: which channels and people an alert reaches, decided before anything goes out.

A duty officer must be able to say, for any alert, exactly where it will go
and why; ``alertcast rules test ALERT_FILE`` prints that answer from the same
code the service runs. The model is Prometheus Alertmanager's routing tree,
with the additions an alerting authority needs: thresholds on CAP's urgency,
severity and certainty, places (geocodes and named areas), approval policies,
and a hard wall between exercises and the real thing.

The rules file
==============

``rules.toml`` beside ``alertcast.toml`` (another path with ``paths.rules``)::

    [areas.cdmx]                      # named places, for `area` matchers and audiences
    polygon = [[19.59, -99.36], [19.59, -98.94], [19.05, -98.94], [19.05, -99.36]]
    [areas.acapulco]
    circle = { lat = 16.85, lon = -99.88, radius_km = 25 }

    [route]                           # the root: matches every alert, no matchers
    channels = ["console"]            # inherited by children that do not set their own

    [[route.routes]]
    name = "drills"
    exercise = true                   # Exercise and Test alerts (add System/Draft in status)
    test_audience = { topics = ["simulacros"] }

    [[route.routes]]
    name = "earthquakes"
    category = "Geo"
    event = ["Sismo*", "re:earthquake|terremoto"]
    severity_at_least = "Severe"
    area = "cdmx"                     # with geocode too, either one places the alert
    geocode = { scheme = "INEGI_CVEGEO", prefix = ["09"] }
    audience = { topics = ["sismos"], areas = ["alert"] }
    template = "earthquake"
    approval = "auto"
    continue = true                   # keep trying the next siblings as well

    [[route.routes]]
    name = "roads"
    feeds = ["capufe-*"]
    group_by = ["feed", "thread"]     # reports on the same segment become one message
    group_window_s = 3600

    [[inhibit]]                       # a Severe alert hides Minor ones of the same kind there
    source = { severity_at_least = "Severe" }
    target = { category = "Transport" }
    equal = ["event", "area"]

Matchers (all optional; every one given must hold): ``feeds``, ``sender``
(globs), ``status``, ``msg_type``, ``category`` (CAP words), ``event`` (glob,
or a regular expression after ``re:``; case-insensitive), ``urgency_at_least``,
``severity_at_least``, ``certainty_at_least`` (CAP words: ``Severe`` accepts
Severe and Extreme; Unknown passes no threshold but Unknown), ``geocode``
(``{scheme, prefix}`` or a list of them), ``area`` (named areas: the alert
matches when one of its polygons or circles intersects one; an alert with
geocodes only never does, unless the route's ``geocode`` matches), and
``language`` (``es`` accepts es-MX and es-419). Info-level matchers must all
hold for the same ``<info>``.

Outputs (inherited down the tree): ``channels``, ``audience``
(``"channel-post"``, or ``{topics, areas}`` with areas ``alert``, ``anywhere``
or named areas; default ``channel-post``), ``template`` (default: chosen by
the renderer from the alert), ``approval`` (``auto``, ``one``, ``two``),
``priority`` (integer, higher first), ``group_by`` / ``group_window_s``.

Evaluation
==========

Children are tried in order; the first that matches takes the alert unless it
says ``continue = true``. A route whose children all miss handles the alert
itself. Then, in order: one delivery per channel and audience (routes with
``continue`` naming the same pair are merged, keeping the stricter approval
and higher priority); inhibition (an active, strictly more severe alert
matching an inhibit rule's ``source``, sharing the ``equal`` labels and
overlapping in area, suppresses a new alert matching its ``target``);
silences (time-boxed mutes by matcher, from the database); grouping (a second
alert of the same route and ``group_by`` values within the window updates the
first message); quiet hours (``options.quiet_hours`` of a channel defers
deliveries to the end of the window, except for real Extreme-severity or
Immediate-urgency alerts, which override it; drills always wait).

Exercises
=========

The 2018 Hawaii false missile alert is the lesson: a drill must be
impossible to mistake for the real thing, and the real thing must never be
lost among drills. So an alert whose status is not Actual only follows
routes marked ``exercise = true``, to their ``test_audience``; an Actual alert
never enters such a route. The loader refuses any file that blurs the line
(see :func:`alertcast.rules_load.parse_rules`), and routing checks every
delivery against the rule once more before returning it.

Defaults, and why
=================

* ``approval``: ``two`` on any route that reaches the public and does not say
  otherwise. An extra person costs a minute; a false public alert costs the
  public's trust in the next true one. Routes that relay an issuer's own
  official feed (a national tsunami centre, a road operator's closures) opt
  into ``auto`` by writing it, where ``rules test`` shows it. Exercise routes
  default to ``auto``: they reach only test audiences.
* ``priority``: ``100 - 20·severity.rank - 4·urgency.rank`` of the gravest
  matching info, so Extreme/Immediate is 100 and Unknown/Unknown 4; exercises
  get that minus 100, so a drill never overtakes a real alert.
* ``group_window_s``: 3600 when ``group_by`` is set without a window.
* Silences never mute a real Extreme and Immediate alert unless they say
  ``include_extreme = true`` (see :class:`~alertcast.rules_model.Silence`).
"""

from __future__ import annotations

from alertcast.rules_eval import derived_priority, replay_groups, route
from alertcast.rules_load import DEFAULT_GROUP_WINDOW_S, load_rules, parse_rules
from alertcast.rules_match import AlertFacts, MatchResult, alert_labels, evaluate, info_labels
from alertcast.rules_model import (
    ActiveAlert,
    Approval,
    Audience,
    Delivery,
    GroupState,
    InhibitRule,
    LabelMatcher,
    Matcher,
    NamedArea,
    QuietHours,
    Route,
    RouteTrace,
    RouteTree,
    RoutingContext,
    RoutingDecision,
    Silence,
    Suppressed,
)
from alertcast.rules_text import Reason

__all__ = [
    "DEFAULT_GROUP_WINDOW_S",
    "ActiveAlert",
    "AlertFacts",
    "Approval",
    "Audience",
    "Delivery",
    "GroupState",
    "InhibitRule",
    "LabelMatcher",
    "MatchResult",
    "Matcher",
    "NamedArea",
    "QuietHours",
    "Reason",
    "Route",
    "RouteTrace",
    "RouteTree",
    "RoutingContext",
    "RoutingDecision",
    "Silence",
    "Suppressed",
    "alert_labels",
    "derived_priority",
    "evaluate",
    "info_labels",
    "load_rules",
    "parse_rules",
    "replay_groups",
    "route",
]
