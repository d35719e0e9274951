"""Properties over any text a feed may send: never over a limit, Telegram HTML always valid."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertcast.channel_profiles import grapheme_length, x_weighted_length
from alertcast.domain import Area, MsgType, Status
from alertcast.render import render, split_telegram_html
from alertcast.sms import count_sms
from alertcast.text_safety import escape_html, html_to_text
from tests.render.alerts import make_alert, make_info
from tests.render.telegram_checker import telegram_errors

TRICKY = [
    *"<>&\"'*_~`@#[]{}|\\€^/:.;-\n\t ",
    "@everyone",
    "&amp;",
    "<b>",
    "</i>",
    "https://example.com/a?b=1&c=2",
    "capufe.gob.mx",
    "\u202e",
    "\u200b",
    "\u200d",
    "\x00",
    "\x1b",
    "\u0301",
    "á",
    "é",
    "ñ",
    "🚨",
    "👨\u200d👩\u200d👧",
    "🇲🇽",
    "0\ufe0f\u20e3",
    "中文",
    "한",
    "تحذير",
]
feed_text = st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=12)), max_size=80).map(
    "".join
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _alert(headline: str, description: str, instruction: str, area: str, status: Status):
    info = make_info(
        headline=headline,
        description=description,
        instruction=instruction,
        areas=(Area(area_desc=area),),
    )
    return make_alert(info, status=status)


statuses = st.sampled_from([Status.ACTUAL, Status.EXERCISE, Status.TEST])


@SETTINGS
@given(feed_text, feed_text, feed_text, feed_text, statuses, st.integers(1, 4))
def test_sms_never_exceeds_its_segments(
    headline: str, description: str, instruction: str, area: str, status: Status, most: int
) -> None:
    alert = _alert(headline, description * 3, instruction, area, status)
    for transliterate in (True, False):
        options = {"max_segments": most, "transliterate": transliterate}
        part = render(alert, "sms", options=options).parts[0]
        assert count_sms(part.text).segments == part.segments
        assert part.segments is not None and part.segments <= most
        if status is Status.EXERCISE:
            assert part.text.startswith("SIMULACRO")


@SETTINGS
@given(feed_text, feed_text, feed_text, feed_text, statuses)
def test_x_mastodon_and_bluesky_never_exceed_their_limits(
    headline: str, description: str, instruction: str, area: str, status: Status
) -> None:
    alert = _alert(headline * 4, description * 4, instruction * 4, area, status)
    x_part = render(alert, "x").parts[0]
    assert x_weighted_length(x_part.text) <= 280
    mastodon = render(alert, "mastodon", options={"max_chars": 150}).parts[0]
    assert mastodon.length <= 150
    bluesky = render(alert, "bluesky").parts[0]
    assert grapheme_length(bluesky.text) <= 300
    assert len(bluesky.text.encode("utf-8")) <= 3000
    for facet in bluesky.facets:
        assert 0 <= facet.byte_start < facet.byte_end <= len(bluesky.text.encode("utf-8"))
    if status is Status.EXERCISE:
        assert all(p.text.startswith("SIMULACRO") for p in (x_part, mastodon, bluesky))


@SETTINGS
@given(
    feed_text,
    feed_text,
    feed_text,
    feed_text,
    statuses,
    st.sampled_from(["split", "truncate"]),
    st.integers(120, 4096),
)
def test_telegram_html_is_always_valid_and_within_the_limit(
    headline: str,
    description: str,
    instruction: str,
    area: str,
    status: Status,
    policy: str,
    limit: int,
) -> None:
    alert = _alert(headline, description * 5, instruction, area, status)
    rendering = render(alert, "telegram", options={"max_chars": limit, "split": policy})
    assert 1 <= len(rendering.parts) <= (4 if policy == "split" else 1)
    for part in rendering.parts:
        assert part.length <= limit
        assert telegram_errors(part.text) == [], part.text
        if status is Status.EXERCISE:
            assert part.text.startswith("SIMULACRO: ")


@SETTINGS
@given(feed_text, feed_text, statuses, st.sampled_from([MsgType.UPDATE, MsgType.CANCEL]))
def test_whatsapp_variables_are_single_lines_within_their_limit(
    headline: str, instruction: str, status: Status, msg_type: MsgType
) -> None:
    info = make_info(headline=headline * 10, instruction=instruction * 10)
    alert = make_alert(info, status=status, msg_type=msg_type)
    template = render(alert, "whatsapp").whatsapp_template
    assert template is not None
    for variable in template.variables:
        assert variable and len(variable) <= 200
        assert "\n" not in variable and "\t" not in variable and "    " not in variable
    if status is Status.EXERCISE:
        assert template.variables[0].startswith("SIMULACRO")


@st.composite
def telegram_html(draw: st.DrawFn) -> str:
    """HTML as templates make it: escaped text, some of it inside allowed tags."""
    pieces = []
    for text in draw(st.lists(feed_text, min_size=1, max_size=8)):
        escaped = escape_html(text)
        tag = draw(st.sampled_from([None, "b", "i", "code", "a"]))
        if tag == "a":
            pieces.append(f'<a href="https://x.mx/?q=1&amp;r=2">{escaped}</a>')
        elif tag:
            pieces.append(f"<{tag}>{escaped}</{tag}>")
        else:
            pieces.append(escaped)
    return "".join(pieces)


@SETTINGS
@given(telegram_html(), st.integers(70, 400), st.sampled_from(["", "SIMULACRO: "]))
def test_splitting_keeps_every_part_valid_and_loses_nothing(
    html: str, limit: int, prefix: str
) -> None:
    parts = split_telegram_html(html, limit, prefix)
    for part in parts:
        assert len(part.encode("utf-16-le")) // 2 <= limit
        assert telegram_errors(part) == [], part
        assert part.startswith(prefix)
    joined = "".join(html_to_text(part)[len(prefix) :] for part in parts)
    assert re.sub(r"\s+", "", joined) == re.sub(r"\s+", "", html_to_text(html))
