"""Subscribers' addresses at rest: encrypted, and found again without being decrypted.

A stolen database file or backup must not be a list of phone numbers. Each
address is stored encrypted with AES-256-GCM under a fresh random nonce, so
equal addresses never give equal bytes. To find a subscriber by the address
they write from, the store keeps a keyed hash of it (HMAC-SHA256): without the
key the hashes cannot be reversed by trying every phone number, which a plain
hash of a ten-digit number could.

Both keys are derived with HKDF from one secret, ``ALERTCAST_SUBSCRIBER_KEY``
(32 random bytes, base64), so an office has one secret to keep and rotate
backups with. Lose it and the stored addresses are unreadable: keep a copy
where the office keeps its other secrets. The secret is never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from alertcast.errors import ConfigError, ConfigProblem, StoreError

KEY_ENV = "ALERTCAST_SUBSCRIBER_KEY"
"""The environment variable holding the secret (base64 of 32 random bytes)."""

KEY_BYTES = 32
_NONCE_BYTES = 12
_FORMAT_V1 = b"\x01"
"""First byte of every stored ciphertext: lets a later format be told apart."""
_AAD = b"alertcast subscriber address v1"
_ENCRYPTION_INFO = b"alertcast subscriber address encryption v1"
_LOOKUP_INFO = b"alertcast subscriber address lookup v1"
_HOW_TO_CREATE = (
    "create one with: python -c "
    f'"import base64, os; print(base64.b64encode(os.urandom({KEY_BYTES})).decode())"'
)


class SubscriberKeyError(StoreError):
    """A stored address cannot be decrypted: another key, or the bytes were altered."""


def generate_secret() -> str:
    """A fresh secret for ``ALERTCAST_SUBSCRIBER_KEY``, base64 text."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(secret)


def _problem(message: str) -> ConfigError:
    return ConfigError([ConfigProblem("environment", KEY_ENV, message)])


class SubscriberKeys:
    """Encrypts, decrypts and keys look-ups of addresses; holds no state besides the keys."""

    __slots__ = ("_aead", "_lookup_key")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEY_BYTES:
            raise ValueError(f"the subscriber key must be {KEY_BYTES} bytes, not {len(secret)}")
        self._aead = AESGCM(_derive(secret, _ENCRYPTION_INFO))
        self._lookup_key = _derive(secret, _LOOKUP_INFO)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SubscriberKeys:
        """The keys from ``ALERTCAST_SUBSCRIBER_KEY``; ConfigError naming it when unusable.

        The message never repeats the value, not even part of it.
        """
        env = os.environ if environ is None else environ
        text = env.get(KEY_ENV, "").strip()
        how = _HOW_TO_CREATE
        if not text:
            raise _problem(f"is not set; it must hold {KEY_BYTES} random bytes in base64 ({how})")
        try:
            padded = text + "=" * (-len(text) % 4)
            secret = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise _problem(
                f"is not base64; it must hold {KEY_BYTES} random bytes ({how})"
            ) from None
        if len(secret) != KEY_BYTES:
            raise _problem(
                f"holds {len(secret)} bytes; it must hold exactly {KEY_BYTES} random bytes ({how})"
            )
        return cls(secret)

    def __repr__(self) -> str:
        return "SubscriberKeys(<hidden>)"

    def encrypt(self, address: str) -> bytes:
        """``address`` encrypted (format byte, random nonce, ciphertext and tag)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, address.encode("utf-8"), _AAD)
        return _FORMAT_V1 + nonce + sealed

    def decrypt(self, blob: bytes) -> str:
        """The address ``blob`` holds; SubscriberKeyError when this key cannot open it."""
        data = bytes(blob)
        if len(data) < 1 + _NONCE_BYTES + 16 or data[:1] != _FORMAT_V1:
            raise SubscriberKeyError("a stored address is not in a format this version reads")
        nonce = data[1 : 1 + _NONCE_BYTES]
        try:
            plain = self._aead.decrypt(nonce, data[1 + _NONCE_BYTES :], _AAD)
        except InvalidTag:
            raise SubscriberKeyError(
                f"a stored address cannot be decrypted: is {KEY_ENV} the key it was stored with?"
            ) from None
        return plain.decode("utf-8")

    def lookup_hash(self, channel: str, address: str) -> str:
        """The keyed hash (hex) the store finds ``address`` on ``channel`` by.

        The channel is part of the input, so one number has unrelated hashes on
        SMS and on WhatsApp. Pass the normalised address.
        """
        message = channel.encode("utf-8") + b"\x00" + address.encode("utf-8")
        return hmac.new(self._lookup_key, message, hashlib.sha256).hexdigest()
