"""Addresses at rest: encrypted with a random nonce, looked up by a keyed hash."""

from __future__ import annotations

import base64

import pytest

from alertcast.errors import ConfigError
from alertcast.subscribers.crypto import (
    KEY_ENV,
    SubscriberKeyError,
    SubscriberKeys,
    generate_secret,
)
from tests.subscribers.conftest import TEST_KEY, TEST_SECRET

NUMBER = "+525512345678"


def test_from_env_reads_the_fixed_test_key(subscriber_key: str) -> None:
    keys = SubscriberKeys.from_env()
    assert SubscriberKeys(TEST_SECRET).decrypt(keys.encrypt(NUMBER)) == NUMBER


def test_a_round_trip_gives_the_address_back_and_never_the_same_bytes(
    keys: SubscriberKeys,
) -> None:
    first, second = keys.encrypt(NUMBER), keys.encrypt(NUMBER)
    assert first != second
    assert NUMBER.encode() not in first and b"5512345678" not in first
    assert keys.decrypt(first) == keys.decrypt(second) == NUMBER
    assert keys.decrypt(keys.encrypt("ñandú 🙂")) == "ñandú 🙂"


def test_another_key_or_altered_bytes_cannot_decrypt(keys: SubscriberKeys) -> None:
    blob = keys.encrypt(NUMBER)
    other = SubscriberKeys(bytes(32))
    with pytest.raises(SubscriberKeyError, match=KEY_ENV):
        other.decrypt(blob)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(SubscriberKeyError):
        keys.decrypt(tampered)
    with pytest.raises(SubscriberKeyError):
        keys.decrypt(b"\x02" + blob[1:])


def test_lookup_hashes_are_keyed_and_per_channel(keys: SubscriberKeys) -> None:
    digest = keys.lookup_hash("sms", NUMBER)
    assert digest == keys.lookup_hash("sms", NUMBER)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest != keys.lookup_hash("whatsapp", NUMBER)
    assert digest != SubscriberKeys(bytes(32)).lookup_hash("sms", NUMBER)
    import hashlib

    assert digest != hashlib.sha256(NUMBER.encode()).hexdigest()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "is not set"),
        ("", "is not set"),
        ("not base64 at all!", "is not base64"),
        (base64.b64encode(b"short").decode(), "holds 5 bytes"),
    ],
)
def test_a_missing_or_short_key_is_a_clear_config_error(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: str
) -> None:
    if value is None:
        monkeypatch.delenv(KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV, value)
    with pytest.raises(ConfigError) as caught:
        SubscriberKeys.from_env()
    message = str(caught.value)
    assert KEY_ENV in message and expected in message
    if value:
        assert value not in message


def test_url_safe_base64_and_generated_secrets_are_accepted() -> None:
    urlsafe = base64.urlsafe_b64encode(TEST_SECRET).decode().rstrip("=")
    keys = SubscriberKeys.from_env({KEY_ENV: urlsafe})
    assert keys.lookup_hash("sms", NUMBER) == SubscriberKeys(TEST_SECRET).lookup_hash("sms", NUMBER)
    fresh = generate_secret()
    assert len(base64.b64decode(fresh)) == 32
    SubscriberKeys.from_env({KEY_ENV: fresh})


def test_the_key_never_shows_in_repr() -> None:
    keys = SubscriberKeys.from_env({KEY_ENV: TEST_KEY})
    assert TEST_KEY not in repr(keys) and "hidden" in repr(keys)
