"""Every public corpus alert renders on every channel kind, in Spanish and English, in limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertcast.cap import parse_cap_all
from alertcast.channel_profiles import CHANNEL_KINDS
from alertcast.domain import Status
from alertcast.errors import CapError
from alertcast.render import render
from tests.conftest import corpus_files
from tests.render.telegram_checker import telegram_errors

pytestmark = pytest.mark.corpus

CAP_FILES = corpus_files("cap")
UNREADABLE = {"invalid_xmlns.cap", "xee.cap"}
"""Negative samples the reader refuses on purpose (wrong namespace, entity declarations)."""


@pytest.mark.parametrize("path", CAP_FILES, ids=[p.name for p in CAP_FILES])
def test_corpus_alert_renders_within_limits_everywhere(corpus_dir: Path, path: Path) -> None:
    if path.name in UNREADABLE:
        with pytest.raises(CapError):
            parse_cap_all(path.read_bytes())
        return  # nothing to render: the refusal itself is what this sample must show
    alerts = [parsed.alert for parsed in parse_cap_all(path.read_bytes())]
    for alert in alerts:
        for kind in CHANNEL_KINDS:
            for language in ("es", "en"):
                rendering = render(alert, kind, language=language)
                where = f"{path.name} {kind} {language}"
                assert rendering.parts, where
                for part in rendering.parts:
                    if kind == "sms":
                        assert part.segments is not None and part.segments <= 3, where
                    elif rendering.limit is not None:
                        assert part.length <= rendering.limit, where
                    if kind == "telegram":
                        assert telegram_errors(part.text) == [], where
                    if kind == "bluesky":
                        assert len(part.text.encode("utf-8")) <= 3000, where
                if alert.status is not Status.ACTUAL and kind != "cap":
                    assert rendering.prefix is not None, where
                    first = rendering.parts[0].text
                    if rendering.whatsapp_template is not None:
                        first = rendering.whatsapp_template.variables[0]
                    if rendering.payload is not None:
                        first = rendering.payload["text"]
                    assert first.startswith(rendering.prefix), where


def test_the_corpus_has_alerts_to_render(corpus_dir: Path) -> None:
    readable = 0
    for path in CAP_FILES:
        try:
            readable += len(parse_cap_all(path.read_bytes()))
        except CapError:
            continue
    assert readable >= 50
