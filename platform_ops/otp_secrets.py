"""The staff second factor's secrets at rest: TOTP seeds encrypted, recovery codes hashed.

A database dump, a backup or a replica must not hand anyone a staff member's
second factor, so:

- a TOTP seed is stored as a Fernet token (AES-128-CBC + HMAC-SHA256, from
  `cryptography`), under a key derived with HKDF-SHA256 from
  `OTP_ENCRYPTION_KEY`, or from `SECRET_KEY` when that is empty. Several keys
  may be listed (comma-separated): the first encrypts, every one decrypts, so
  a key is rotated in without locking anyone out (SECRET_KEY_FALLBACKS count
  too when SECRET_KEY is the source);
- a recovery code is stored only as HMAC-SHA256 under another HKDF-derived key
  (a code is 50 random bits: a keyed hash is enough, and a stolen table of
  digests cannot be tested offline without the server's key). Checked with
  hmac.compare_digest against every stored digest.

Fails closed: a seed no configured key can decrypt raises SeedUnreadable, and
the login refuses the code (docs/admin.md, "Lost device").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

SEED_BYTES = 20  # 160 bits, RFC 4226's recommended length for an HMAC-SHA1 seed
RECOVERY_CODE_COUNT = 10
# 10 base32 characters (50 bits), shown as two groups of five: `k7qaz-m2xpd`.
RECOVERY_CODE_CHARS = 10
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"

_SEED_INFO = b"alphapulse staff otp seed v1"
_RECOVERY_INFO = b"alphapulse staff recovery code v1"


class SeedUnreadable(Exception):
    """No configured key decrypts this seed (the key changed without its predecessor kept)."""


def _key_material() -> list[str]:
    configured = [key.strip() for key in getattr(settings, "OTP_ENCRYPTION_KEY", "").split(",") if key.strip()]
    if configured:
        return configured
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def _derive(material: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material.encode())


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(base64.urlsafe_b64encode(_derive(m, _SEED_INFO))) for m in _key_material()])


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def encrypt_seed(seed: bytes) -> str:
    return _fernet().encrypt(seed).decode("ascii")


def decrypt_seed(token: str) -> bytes:
    try:
        return _fernet().decrypt(token.encode("ascii"))
    except InvalidToken as exc:
        raise SeedUnreadable("the TOTP seed cannot be decrypted with the configured OTP_ENCRYPTION_KEY") from exc


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_BASE32) for _ in range(RECOVERY_CODE_CHARS))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalize_code(code: str) -> str:
    """What the person typed, as stored: no blanks or dashes, lower case."""
    return "".join(code.split()).replace("-", "").lower()


def recovery_digest(code: str, material: str | None = None) -> str:
    key = _derive(material or _key_material()[0], _RECOVERY_INFO)
    return hmac.new(key, normalize_code(code).encode(), hashlib.sha256).hexdigest()


def matching_digest(code: str, stored: Iterable[str]) -> str | None:
    """The stored digest this code hashes to under any configured key, else None (constant-time compares)."""
    candidates = [recovery_digest(code, material) for material in _key_material()]
    found = None
    for digest in stored:
        for candidate in candidates:
            if hmac.compare_digest(digest, candidate):
                found = digest
    return found
