"""Lengths as the providers count them: X weights, Mastodon URLs, Bluesky graphemes, UTF-16."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertcast.channel_profiles import (
    ChannelProfile,
    find_urls,
    grapheme_clusters,
    grapheme_length,
    mastodon_length,
    profile_for,
    profile_problems,
    utf16_length,
    x_weighted_length,
)
from alertcast.config import ChannelConfig


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("hola", 4),
        ("Evacúe ñandú", 12),  # Latin-1 and Latin Extended weigh 1
        ("Ωμέγα", 5),  # Greek is below U+10FF
        ("中文", 4),  # CJK weighs 2
        ("日本語のテキスト", 16),
        ("\U0001f6a8", 2),  # an emoji weighs 2
        ("\u2014\u2019", 2),  # — ’ are in the weight-1 punctuation range U+2010–U+201F
        ("\u2026", 2),  # … (U+2026) is just past it
        ("\u2032", 1),
        ("\u2030", 2),  # ‰ is between the ranges
        ("https://www.example.com/a/very/long/path/that/goes/on/and/on", 23),
        ("ver https://t.co/x", 4 + 23),
        ("http://a.mx", 23),  # a short URL still counts 23
        ("sitio capufe.gob.mx hoy", 6 + 23 + 4),  # a bare domain: at least 23
        ("ver https://x.mx/a).", 4 + 23 + 2),  # trailing punctuation is not in the URL
    ],
)
def test_x_weighted_length(text: str, weight: int) -> None:
    assert x_weighted_length(text) == weight


def test_x_counts_a_long_bare_domain_at_its_own_weight() -> None:
    # X may or may not link a bare domain; counting the larger of the two is never low.
    domain = "a" * 40 + ".com"
    assert x_weighted_length(domain) == 44


def test_words_with_dots_that_are_not_domains_are_not_urls() -> None:
    assert find_urls("km 45.5 y Sr.Pérez, archivo.xyzzy") == []


def test_mastodon_counts_urls_with_a_scheme_as_23() -> None:
    assert mastodon_length("ver https://www.example.com/" + "x" * 100) == 4 + 23
    assert mastodon_length("ver example.com") == 15
    assert mastodon_length("🚨 ok") == 4  # code points, never fewer than Mastodon's graphemes


@pytest.mark.parametrize(
    ("text", "clusters"),
    [
        ("abc", ["a", "b", "c"]),
        ("e\u0301", ["e\u0301"]),  # combining acute
        ("\r\n", ["\r\n"]),
        (
            "\U0001f468\u200d\U0001f469\u200d\U0001f467",
            ["\U0001f468\u200d\U0001f469\u200d\U0001f467"],
        ),
        ("\U0001f44d\U0001f3fd!", ["\U0001f44d\U0001f3fd", "!"]),  # skin tone modifier
        (
            "\U0001f1f2\U0001f1fd\U0001f1fa\U0001f1f8",
            ["\U0001f1f2\U0001f1fd", "\U0001f1fa\U0001f1f8"],
        ),
        ("0\ufe0f\u20e37\ufe0f\u20e3", ["0\ufe0f\u20e3", "7\ufe0f\u20e3"]),  # keycaps, as CAPUFE
        ("\u2611\ufe0f", ["\u2611\ufe0f"]),
        ("\u1100\u1161\u11a8", ["\u1100\u1161\u11a8"]),  # Hangul jamo make one syllable
        ("한국", ["한", "국"]),
        (
            "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
            ["\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"],
        ),
        ("a\u200db", ["a\u200d", "b"]),  # a joiner only joins pictographs
    ],
)
def test_grapheme_clusters(text: str, clusters: list[str]) -> None:
    assert grapheme_clusters(text) == clusters
    assert grapheme_length(text) == len(clusters)


def test_utf16_counts_surrogate_pairs_as_two() -> None:
    assert utf16_length("a\U0001f6a8é") == 4


def test_profiles_have_the_providers_limits_and_take_overrides() -> None:
    assert profile_for("sms").max_length == 3
    assert profile_for("telegram").max_length == 4096
    assert profile_for("x").max_length == 280
    assert profile_for("mastodon").max_length == 500
    assert profile_for("bluesky").max_length == 300
    assert profile_for("mastodon", {"max_chars": 11000}).max_length == 11000
    assert profile_for("sms", {"max_segments": 6, "transliterate": False}).max_length == 6
    assert profile_for("sms", {"transliterate": False}).transliterate is False
    # A provider's hard limit cannot be raised by an option.
    assert profile_for("telegram", {"max_chars": 10000}).max_length == 4096
    with pytest.raises(ValueError, match="not a channel kind"):
        profile_for("pager")


def test_profile_from_a_configured_channel() -> None:
    channel = ChannelConfig(
        name="sms-capufe",
        kind="sms",
        file=Path("channels/sms-capufe.toml"),
        options={"max_segments": 2, "language": "es-MX", "alert_url": "https://a.mx/{identifier}"},
    )
    profile = profile_for(channel)
    assert isinstance(profile, ChannelProfile)
    assert (profile.name, profile.kind, profile.max_length) == ("sms-capufe", "sms", 2)
    assert profile.alert_url == "https://a.mx/{identifier}"


def test_option_problems_name_file_and_key() -> None:
    channel = ChannelConfig(
        name="tg",
        kind="telegram",
        file=Path("channels/tg.toml"),
        options={"max_chars": 9000, "split": "sometimes", "alert_url": "ftp://x", "chat_id": 5},
    )
    problems = {p.key: p for p in profile_problems(channel)}
    assert set(problems) == {"options.max_chars", "options.split", "options.alert_url"}
    assert "4096" in problems["options.max_chars"].message
    assert str(problems["options.split"]).startswith("channels/tg.toml: options.split: ")
