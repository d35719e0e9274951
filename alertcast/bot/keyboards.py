"""The bot's inline keyboards and the callback data their buttons carry.

Callback data is at most 64 bytes (a Bot API limit); every button says what
it does in a short ``verb:argument`` form that :mod:`alertcast.bot.handlers`
reads back, so a press needs no server-side memory except an area search's
text (kept per chat while the person pages through the results).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import time

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from alertcast.areas import Area
from alertcast.bot.texts import LANGUAGE_NAMES, text, topic_name
from alertcast.subscribers.model import LANGUAGES, TOPICS

AREA_PAGE = 8
"""Areas shown per page of search results."""

QUIET_CHOICES: tuple[tuple[time, time], ...] = (
    (time(22, 0), time(6, 0)),
    (time(23, 0), time(7, 0)),
    (time(0, 0), time(6, 0)),
    (time(21, 0), time(7, 0)),
)
"""The quiet-hours ranges offered (local time)."""

MAX_CALLBACK_BYTES = 64


def _button(label: str, data: str) -> InlineKeyboardButton:
    if len(data.encode("utf-8")) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data longer than {MAX_CALLBACK_BYTES} bytes: {data!r}")
    return InlineKeyboardButton(label, callback_data=data)


def languages() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[_button(LANGUAGE_NAMES[code], f"lang:{code}") for code in LANGUAGES]]
    )


def topics(chosen: Iterable[str], language: str) -> InlineKeyboardMarkup:
    """One toggle per topic (✅ when chosen), then "Listo / Done"."""
    marked = set(chosen)
    rows = [
        [_button(f"{'✅' if t in marked else '▫️'} {topic_name(t, language)}", f"topic:{t}")]
        for t in TOPICS
    ]
    rows.append([_button(text(language, "done"), "topics:done")])
    return InlineKeyboardMarkup(rows)


def areas(found: Sequence[Area], offset: int, total: int) -> InlineKeyboardMarkup:
    """Up to a page of areas, one a row, then « » to page when there are more."""
    rows = [[_button(area.name, f"area:{area.code}")] for area in found]
    paging: list[InlineKeyboardButton] = []
    if offset > 0:
        paging.append(_button("«", f"areas:{max(0, offset - AREA_PAGE)}"))
    if offset + len(found) < total:
        paging.append(_button("»", f"areas:{offset + AREA_PAGE}"))
    if paging:
        rows.append(paging)
    return InlineKeyboardMarkup(rows)


def confirm(language: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                _button(text(language, "confirm"), "confirm:yes"),
                _button(text(language, "restart"), "confirm:restart"),
            ]
        ]
    )


def quiet_hours(language: str) -> InlineKeyboardMarkup:
    rows = [
        [_button(f"{start:%H:%M}–{end:%H:%M}", f"quiet:{start:%H%M}-{end:%H%M}")]
        for start, end in QUIET_CHOICES
    ]
    rows.append([_button(text(language, "quiet_off"), "quiet:off")])
    return InlineKeyboardMarkup(rows)


def leave(language: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                _button(text(language, "leave_yes"), "leave:yes"),
                _button(text(language, "leave_no"), "leave:no"),
            ]
        ]
    )


def acknowledged(alert_id: int, kind: str, language: str) -> InlineKeyboardMarkup:
    """The alert's two buttons with the person's answer ticked (they may still change it)."""
    labels = {"safe": text(language, "ack_safe"), "need_help": text(language, "ack_need_help")}
    return InlineKeyboardMarkup(
        [
            [
                _button(f"{'✅ ' if k == kind else ''}{label}", f"ack:{alert_id}:{k}")
                for k, label in labels.items()
            ]
        ]
    )
