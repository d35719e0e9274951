"""Addresses people give, in the one spelling the store keys them by.

The same person must be found whether they typed ``55 1234 5678``,
``+52 55 1234 5678`` or ``5512345678``; otherwise an opt-out would miss the
opt-in and someone would go on receiving alerts after saying stop. Phone
numbers become E.164 (``+525512345678``) through libphonenumber's rules;
Telegram chat ids become the plain integer text the Bot API gives.
"""

from __future__ import annotations

import re

import phonenumbers

from alertcast.errors import AlertcastError

PHONE_KINDS = frozenset({"sms", "whatsapp"})
"""Channel kinds whose addresses are phone numbers."""

_WHATSAPP_PREFIX = "whatsapp:"
_CHAT_ID = re.compile(r"^-?[0-9]{1,20}$")
_CHANNEL_USERNAME = re.compile(r"^@[A-Za-z][A-Za-z0-9_]{3,31}$")
_MAX_ADDRESS = 320
"""No address we send to is longer (an e-mail address is at most 320 characters)."""


class InvalidAddress(AlertcastError, ValueError):
    """The text is not an address the channel can send to; the message says why."""


def normalize_phone(text: str, default_region: str = "MX") -> str:
    """``text`` as an E.164 number (``+525512345678``); InvalidAddress when it is not one.

    A number without a country code is read as a number of ``default_region``
    (ISO 3166 code), the way people write their own number. A number that
    parses but cannot exist (wrong length, unassigned prefix) is refused too:
    storing it would only turn into failed sends later.
    """
    raw = text.strip()
    if raw.lower().startswith(_WHATSAPP_PREFIX):
        raw = raw[len(_WHATSAPP_PREFIX) :].strip()
    if not raw:
        raise InvalidAddress("no phone number was given")
    if len(raw) > 40:
        raise InvalidAddress("that is too long to be a phone number")
    try:
        number = phonenumbers.parse(raw, default_region.upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidAddress(f"{raw!r} is not a phone number ({exc._msg})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidAddress(
            f"{raw!r} is not a valid phone number"
            f" (numbers without a country code are read as {default_region.upper()} numbers)"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_chat_id(text: str) -> str:
    """A Telegram chat id as the Bot API spells it (``123456789``, ``-1001234567890``).

    Public channel usernames (``@avisos_cdmx``) are kept as they are.
    """
    raw = text.strip()
    if _CHAT_ID.match(raw):
        return str(int(raw))
    if _CHANNEL_USERNAME.match(raw):
        return raw
    raise InvalidAddress(f"{raw[:40]!r} is not a Telegram chat id")


def normalize_address(kind: str, text: str, *, default_region: str = "MX") -> str:
    """``text`` normalised for a channel of ``kind`` (``sms``, ``whatsapp``, ``telegram``...).

    Kinds without rules of their own keep the text, stripped of surrounding
    blanks; an empty or overlong address is refused whatever the kind.
    """
    if kind in PHONE_KINDS:
        return normalize_phone(text, default_region)
    if kind == "telegram":
        return normalize_chat_id(text)
    raw = text.strip()
    if not raw:
        raise InvalidAddress("no address was given")
    if len(raw) > _MAX_ADDRESS or "\x00" in raw:
        raise InvalidAddress("that is not an address")
    return raw
