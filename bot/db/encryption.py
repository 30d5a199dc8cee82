"""Encryption at rest: a key ring and the column types that use it.

Reply text, voice notes, names, prompts as sent and raw inbox updates are stored encrypted with
Fernet (AES-128-CBC with an HMAC-SHA256 tag, from the `cryptography` package). Each stored value
names the key that sealed it (`<key id>:<token>`), so a key ring can hold the current key first
and older keys after it: everything still opens, new writes use the current key, and
`interlude keys rotate` moves old rows onto it in small batches while the bot runs.

The ring is process-wide (SQLAlchemy column types have no other way to reach it) and is put in
place once, by `use_key_ring`, before the first query; see `key_ring_for` in bot/db/engine.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import LargeBinary, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

KEY_ID_LENGTH = 8


class EncryptionKeyError(Exception):
    """The keys are missing, malformed, or do not open a stored value. Shown to the admin."""


def key_id(key: str) -> str:
    """A short, stable name for a key that says nothing about the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()[:KEY_ID_LENGTH]


class KeyRing:
    """The current key first, then older keys that can still open what they sealed."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise EncryptionKeyError("no encryption key given")
        self._fernets: dict[str, Fernet] = {}
        for key in keys:
            try:
                self._fernets[key_id(key)] = Fernet(key.encode())
            except ValueError:
                raise EncryptionKeyError("an encryption key is not a valid key; make one with "
                                "`interlude keys generate`") from None
        self.primary_id = key_id(keys[0])
        self._primary = self._fernets[self.primary_id]
        self._prefix = f"{self.primary_id}:".encode()

    @classmethod
    def from_setting(cls, value: str) -> KeyRing:
        """INTERLUDE_ENCRYPTION_KEYS: comma-separated, the current key first."""
        return cls([part.strip() for part in value.split(",") if part.strip()])

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    @property
    def key_ids(self) -> list[str]:
        return list(self._fernets)

    def seal(self, plain: bytes) -> bytes:
        return self._prefix + self._primary.encrypt(plain)

    def open(self, sealed: bytes) -> bytes:
        kid, _, token = sealed.partition(b":")
        name = kid.decode("ascii", "replace")
        fernet = self._fernets.get(name)
        if fernet is None:
            raise EncryptionKeyError(f"a stored value was sealed with key {name!r}, which is not "
                                     "in INTERLUDE_ENCRYPTION_KEYS")
        try:
            return fernet.decrypt(token)
        except InvalidToken:
            raise EncryptionKeyError("a stored value does not open with its key: it was altered") from None

    def is_current(self, sealed: bytes) -> bool:
        return sealed.startswith(self._prefix)

    def reseal(self, sealed: bytes) -> bytes:
        return sealed if self.is_current(sealed) else self.seal(self.open(sealed))


_active: KeyRing | None = None


def use_key_ring(ring: KeyRing) -> None:
    global _active
    _active = ring


def active_key_ring() -> KeyRing:
    if _active is None:
        raise EncryptionKeyError("encryption keys are not loaded")
    return _active


@dataclass(frozen=True)
class SealedOnce:
    """A value sealed once to be written into many rows (one library prompt planned for
    thousands of clients). Equal rows then hold equal tokens, which tells no more than the plain
    prompt key beside them; each row is still sealed with the current key."""

    token: bytes


class Sealed(TypeDecorator[Any]):
    """A value stored sealed; subclasses say how a Python value becomes bytes and back."""

    cache_ok = True

    def to_bytes(self, value: Any) -> bytes:
        raise NotImplementedError

    def from_bytes(self, data: bytes) -> Any:
        raise NotImplementedError

    def seal_once(self, value: Any) -> SealedOnce:
        """`value` sealed now, for a bulk insert to write as it is into every row."""
        return SealedOnce(active_key_ring().seal(self.to_bytes(value)))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, SealedOnce):
            sealed = value.token
        else:
            sealed = active_key_ring().seal(self.to_bytes(value))
        return sealed if isinstance(self.impl, LargeBinary) else sealed.decode("ascii")

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return self.from_bytes(active_key_ring().open(stored_bytes(value)))


def stored_bytes(value: str | bytes | memoryview) -> bytes:
    """A sealed value as the database hands it back (text or binary column), as bytes."""
    return value.encode("ascii") if isinstance(value, str) else bytes(value)


class EncryptedText(Sealed):
    cache_ok = True
    impl = Text

    def to_bytes(self, value: str) -> bytes:
        return value.encode("utf-8")

    def from_bytes(self, data: bytes) -> str:
        return data.decode("utf-8")


class EncryptedJSON(Sealed):
    cache_ok = True
    impl = Text

    def to_bytes(self, value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def from_bytes(self, data: bytes) -> Any:
        return json.loads(data)


class EncryptedBytes(Sealed):
    cache_ok = True
    impl = LargeBinary

    def to_bytes(self, value: bytes) -> bytes:
        return value

    def from_bytes(self, data: bytes) -> bytes:
        return data
