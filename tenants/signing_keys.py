"""The keys that sign and verify the API's tokens: a key ring, rotated without logging anyone out.

`JWT_SIGNING_KEYS` = `kid:key,kid:key,...` (settings): the FIRST key signs
every new token, EVERY listed key verifies, and each token names its key in
its header (`kid`). A token whose `kid` is missing or not in the list is
refused (401), as is one that another key's signature does not match. So a
rotation is two restarts: put the new key first (old tokens still verify),
and once the longest token lifetime has passed, drop the old key
(docs/runbook.md, "Rotate the token signing key").

`JWT_ALGORITHM` says what a key is:
- `HS256` (the default): each key is a shared secret, written in the list
  itself. `JWT_SIGNING_KEY=<secret>` alone is the ring `default:<secret>`;
  where both are set, `JWT_SIGNING_KEYS` wins.
- `EdDSA` or `RS256`: each key is the path of a PEM file. The first must
  hold a private key; a retired key may be a public one. A private key file
  that its group or others may read is refused at start: the key would not
  be the server's alone. The public keys are served as a JWK set at
  `GET /.well-known/jwks.json`, so other services verify AlphaPulse's tokens
  without any secret.

PyJWT does the cryptography (its algorithms' prepare_key and to_jwk); this
module only chooses the key. tenants.http.tokens makes simplejwt's token
classes use `token_backend()`.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from jwt.exceptions import ExpiredSignatureError, InvalidTokenError
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken, TokenError

SYMMETRIC = frozenset({"HS256"})
ASYMMETRIC = frozenset({"EdDSA", "RS256"})
DEFAULT_KID = "default"  # the kid of a lone JWT_SIGNING_KEY
KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    signing: Any  # what PyJWT signs with (the secret, or the private key); None for a public key only
    verifying: Any  # what PyJWT verifies with (the secret, or the public key)


@dataclass(frozen=True)
class KeyRing:
    algorithm: str
    keys: tuple[SigningKey, ...]

    @property
    def current(self) -> SigningKey:
        return self.keys[0]

    def by_kid(self, kid: object) -> SigningKey | None:
        return next((key for key in self.keys if key.kid == kid), None)

    def kids(self) -> list[str]:
        return [key.kid for key in self.keys]

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public keys as a JWK set (empty for shared secrets: those are never published)."""
        if self.algorithm not in ASYMMETRIC:
            return {"keys": []}
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        return {
            "keys": [
                {**algorithm.to_jwk(key.verifying, as_dict=True), "kid": key.kid, "alg": self.algorithm, "use": "sig"}
                for key in self.keys
            ]
        }


def _entries(raw: str) -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        kid, sep, value = item.partition(":")
        kid, value = kid.strip(), value.strip()
        if not sep or not value:
            raise ImproperlyConfigured(f"JWT_SIGNING_KEYS: '{kid}' has no key: write kid:key,kid:key.")
        if not KID.match(kid):
            raise ImproperlyConfigured(f"JWT_SIGNING_KEYS: kid '{kid}' must be 1-64 of A-Z a-z 0-9 . _ -.")
        if kid in (seen for seen, _ in entries):
            raise ImproperlyConfigured(f"JWT_SIGNING_KEYS: kid '{kid}' is listed twice.")
        entries.append((kid, value))
    if not entries:
        raise ImproperlyConfigured("Set JWT_SIGNING_KEYS (kid:key,...) or JWT_SIGNING_KEY: tokens need a key.")
    return entries


def _key_file(kid: str, path: str, *, algorithm: str, must_be_private: bool) -> SigningKey:
    file = Path(path)
    try:
        mode = file.stat().st_mode
        pem = file.read_bytes()
    except OSError as exc:
        raise ImproperlyConfigured(f"JWT_SIGNING_KEYS: key '{kid}': cannot read {path} ({exc.strerror}).") from exc
    prepared = jwt.get_algorithm_by_name(algorithm).prepare_key(pem)  # type: ignore[attr-defined]
    private = hasattr(prepared, "public_key")
    if must_be_private and not private:
        raise ImproperlyConfigured(f"JWT_SIGNING_KEYS: the first key '{kid}' signs: {path} must hold a private key.")
    if private and stat.S_IMODE(mode) & 0o077:
        raise ImproperlyConfigured(
            f"JWT_SIGNING_KEYS: private key file {path} is readable by others (mode {stat.S_IMODE(mode):o}): "
            f"chmod 600 {path}."
        )
    return SigningKey(kid, prepared if private else None, prepared.public_key() if private else prepared)


@functools.lru_cache(maxsize=8)
def _ring(algorithm: str, raw: str) -> KeyRing:
    if algorithm not in SYMMETRIC | ASYMMETRIC:
        raise ImproperlyConfigured(f"JWT_ALGORITHM '{algorithm}': choose HS256, EdDSA or RS256.")
    entries = _entries(raw)
    if algorithm in SYMMETRIC:
        for kid, secret in entries:
            if len(secret) < 32:
                raise ImproperlyConfigured(f"JWT_SIGNING_KEYS: key '{kid}' is shorter than 32 characters.")
        return KeyRing(algorithm, tuple(SigningKey(kid, secret, secret) for kid, secret in entries))
    keys = tuple(
        _key_file(kid, os.path.expanduser(path), algorithm=algorithm, must_be_private=index == 0)
        for index, (kid, path) in enumerate(entries)
    )
    return KeyRing(algorithm, keys)


def _configured() -> tuple[str, str]:
    raw = settings.JWT_SIGNING_KEYS or (f"{DEFAULT_KID}:{settings.JWT_SIGNING_KEY}" if settings.JWT_SIGNING_KEY else "")
    return settings.JWT_ALGORITHM, raw


def configured_ring() -> KeyRing:
    """The ring of the current settings (read once per setting value)."""
    return _ring(*_configured())


class KeyRingBackend(TokenBackend):
    """simplejwt's backend, signing with the ring's first key and verifying with the key its `kid` names."""

    def __init__(self, ring: KeyRing) -> None:
        super().__init__(ring.algorithm, leeway=settings.SIMPLE_JWT.get("LEEWAY"))
        self.ring = ring

    def encode(self, payload: dict[str, Any]) -> str:
        key = self.ring.current
        return jwt.encode(payload, key.signing, algorithm=self.ring.algorithm, headers={"kid": key.kid})

    def decode(self, token: Any, verify: bool = True) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except InvalidTokenError as exc:
            raise TokenBackendError("Token is invalid") from exc
        key = self.ring.by_kid(kid)
        if key is None:
            # TokenError (not TokenBackendError) so that the 401 says why.
            raise TokenError("Token's signing key (kid) is not one this server knows.")
        try:
            return jwt.decode(
                token,
                key.verifying,
                algorithms=[self.ring.algorithm],
                leeway=self.get_leeway(),
                options={"verify_signature": verify},
            )
        except ExpiredSignatureError as exc:
            raise TokenBackendExpiredToken("Token is expired") from exc
        except InvalidTokenError as exc:
            raise TokenBackendError("Token is invalid") from exc


@functools.lru_cache(maxsize=8)
def _backend(algorithm: str, raw: str) -> KeyRingBackend:
    return KeyRingBackend(_ring(algorithm, raw))


def token_backend() -> KeyRingBackend:
    """The backend of the current settings: tests that change the keys get a new one."""
    return _backend(*_configured())
