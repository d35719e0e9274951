"""The shape of a preview: per route and channel, the renderings, audience, ETA and cost.

Kept apart from :mod:`alertcast.preview` so the HTTP API and the console can
read the shape (``to_json``) without the machinery that fills it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from alertcast.render import Rendering

__all__ = ["Cost", "Preview", "RenderingPreview", "RoutePreview", "rendering_preview"]

SMS_ENCODINGS: Final = {"gsm7": "GSM-7", "ucs2": "UCS-2"}
"""How a preview names the SMS encodings, by the names :mod:`alertcast.sms` gives them."""


@dataclass(frozen=True, slots=True)
class RenderingPreview:
    """One language's text on one channel, measured."""

    language: str
    text: str
    length: int
    parts: int
    sms_segments: int | None = None
    sms_encoding: str | None = None
    problems: tuple[str, ...] = ()
    tokens: int = 1
    """Rate-limit tokens one send takes (the planner's ``cost``): messages, or SMS segments."""

    def to_json(self) -> dict[str, Any]:
        sms = None
        if self.sms_segments is not None and self.sms_encoding is not None:
            sms = {"segments": self.sms_segments, "encoding": self.sms_encoding}
        return {
            "language": self.language,
            "text": self.text,
            "length": self.length,
            "parts": self.parts,
            "sms": sms,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, slots=True)
class Cost:
    """Estimated price of a delivery: the most segments any language takes, for everyone."""

    segments: int
    per_segment: float
    currency: str
    total: float

    def to_json(self) -> dict[str, Any]:
        return {
            "segments": self.segments,
            "per_segment": self.per_segment,
            "currency": self.currency,
            "total": self.total,
        }


@dataclass(frozen=True, slots=True)
class RoutePreview:
    """One (route, channel): what it shows, whom it reaches, in how long, at what cost."""

    route: str
    channel: str
    kind: str
    approval: str
    held: str | None
    audience: int | None
    eta_s: float | None
    cost: Cost | None
    renderings: tuple[RenderingPreview, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "channel": self.channel,
            "kind": self.kind,
            "approval": self.approval,
            "held": self.held,
            "audience": self.audience,
            "eta_s": self.eta_s,
            "cost": self.cost.to_json() if self.cost is not None else None,
            "renderings": [r.to_json() for r in self.renderings],
        }


@dataclass(frozen=True, slots=True)
class Preview:
    """Everything a preview found, in routing order."""

    routes: tuple[RoutePreview, ...]
    approvals_required: int
    exercise: bool
    warnings: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "routes": [r.to_json() for r in self.routes],
            "approvals_required": self.approvals_required,
            "exercise": self.exercise,
            "warnings": list(self.warnings),
        }


def rendering_preview(rendering: Rendering) -> RenderingPreview:
    """A rendering as the preview shows it: text, length in the channel's unit, SMS figures."""
    segments = [p.segments for p in rendering.parts if p.segments is not None]
    encodings = {p.encoding for p in rendering.parts if p.encoding is not None}
    encoding = None
    if segments and encodings:
        encoding = "UCS-2" if "ucs2" in encodings else SMS_ENCODINGS.get(encodings.pop())
    return RenderingPreview(
        language=rendering.language,
        text=rendering.text,
        length=sum(p.length for p in rendering.parts),
        parts=len(rendering.parts),
        sms_segments=sum(segments) if segments else None,
        sms_encoding=encoding,
        problems=tuple(rendering.warnings),
        tokens=sum(p.segments or 1 for p in rendering.parts) or 1,
    )
