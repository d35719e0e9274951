"""Addresses are normalised so one person is one key, whatever they typed."""

from __future__ import annotations

import pytest

from alertcast.subscribers.phones import (
    InvalidAddress,
    normalize_address,
    normalize_chat_id,
    normalize_phone,
)


@pytest.mark.parametrize(
    "text",
    ["55 1234 5678", "5512345678", "+52 55 1234 5678", "(55) 1234-5678", " +525512345678 "],
)
def test_mexican_numbers_become_e164(text: str) -> None:
    assert normalize_phone(text) == "+525512345678"


def test_the_default_region_reads_numbers_without_a_country_code() -> None:
    assert normalize_phone("(202) 555-0143", default_region="US") == "+12025550143"
    assert normalize_phone("+1 202 555 0143") == "+12025550143"


def test_a_whatsapp_prefix_is_dropped() -> None:
    assert normalize_phone("whatsapp:+525512345678") == "+525512345678"


@pytest.mark.parametrize("text", ["", "   ", "hola", "12", "55 1234", "+52 00 0000 0000", "9" * 50])
def test_what_is_no_phone_number_is_refused(text: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        normalize_phone(text)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value)


def test_telegram_chat_ids_are_plain_integers() -> None:
    assert normalize_chat_id(" 123456789 ") == "123456789"
    assert normalize_chat_id("-1001234567890") == "-1001234567890"
    assert normalize_chat_id("@avisos_cdmx") == "@avisos_cdmx"
    for bad in ("", "12a", "+5512345678", "@x"):
        with pytest.raises(InvalidAddress):
            normalize_chat_id(bad)


def test_the_kind_chooses_the_rules() -> None:
    assert normalize_address("sms", "55 1234 5678") == "+525512345678"
    assert normalize_address("whatsapp", "55 1234 5678") == "+525512345678"
    assert normalize_address("telegram", "0042") == "42"
    assert normalize_address("email", "  ana@example.mx ") == "ana@example.mx"
    with pytest.raises(InvalidAddress):
        normalize_address("email", "   ")
