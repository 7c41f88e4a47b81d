"""Signing keys that rotate (CONTRACT section 9): JWT_SIGNING_KEYS = kid:key,... The first
signs, every listed key verifies, tokens name their key (`kid`); an unknown kid is 401.
EdDSA keys come from files (refused when others may read them) and their public halves are
served at /.well-known/jwks.json. The drill restarts a live server with new key lists."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from tenants.http.auth import tokens_for
from tenants.signing_keys import configured_ring
from tests.support.scratch import DEMO_PASSWORD, FAST_HASHER, demo_database, gunicorn

S1, S2 = "one-" + "a" * 40, "two-" + "b" * 40


def get_me(access: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get("/api/users/me/")


@pytest.mark.django_db
@pytest.mark.citus
def test_the_first_key_signs_and_every_listed_key_verifies(user_a, settings):
    settings.JWT_SIGNING_KEYS = f"k1:{S1}"
    old = tokens_for(user_a)["access"]
    assert jwt.get_unverified_header(old)["kid"] == "k1"
    settings.JWT_SIGNING_KEYS = f"k2:{S2},k1:{S1}"
    new = tokens_for(user_a)["access"]
    assert jwt.get_unverified_header(new)["kid"] == "k2"
    assert get_me(old).status_code == 200 and get_me(new).status_code == 200
    settings.JWT_SIGNING_KEYS = f"k2:{S2}"
    response = get_me(old)
    assert response.status_code == 401
    assert "kid" in response.json()["detail"]
    assert get_me(new).status_code == 200


@pytest.mark.django_db
def test_keys_wins_over_key_and_a_lone_key_still_works(user_a, settings):
    settings.JWT_SIGNING_KEYS = ""
    settings.JWT_SIGNING_KEY = S1
    lone = tokens_for(user_a)["access"]
    assert jwt.get_unverified_header(lone)["kid"] == "default"
    assert get_me(lone).status_code == 200
    settings.JWT_SIGNING_KEYS = f"k2:{S2}"
    assert jwt.get_unverified_header(tokens_for(user_a)["access"])["kid"] == "k2"
    assert get_me(lone).status_code == 401


@pytest.mark.django_db
def test_a_token_signed_with_a_kid_it_does_not_hold_is_401(user_a, settings):
    settings.JWT_SIGNING_KEYS = f"k1:{S1},k2:{S2}"
    claims = jwt.decode(tokens_for(user_a)["access"], S1, algorithms=["HS256"])
    forged = jwt.encode(claims, S1, algorithm="HS256", headers={"kid": "k2"})  # k2 does not verify S1
    assert get_me(forged).status_code == 401
    no_kid = jwt.encode(claims, S1, algorithm="HS256")
    assert get_me(no_kid).status_code == 401


@pytest.mark.parametrize(
    "keys",
    ["", "k1", "k1:", "bad kid:" + S1, f"k1:{S1},k1:{S2}", "k1:short"],
    ids=["empty", "no-key", "empty-key", "bad-kid", "twice", "short"],
)
def test_a_bad_key_list_stops_start_up_with_a_clear_error(keys, settings):
    settings.JWT_SIGNING_KEYS = keys
    settings.JWT_SIGNING_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="JWT_SIGNING_KEY"):
        configured_ring()


def write_key(path: Path, mode: int = 0o600) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(path, mode)
    return key


@pytest.mark.django_db
def test_eddsa_keys_from_files_and_the_jwks_that_verifies_them(user_a, settings, tmp_path, client):
    new, old = tmp_path / "new.pem", tmp_path / "old.pem"
    write_key(new)
    write_key(old)
    settings.JWT_ALGORITHM = "EdDSA"
    settings.JWT_SIGNING_KEYS = f"k-old:{old}"
    old_token = tokens_for(user_a)["access"]
    settings.JWT_SIGNING_KEYS = f"k-new:{new},k-old:{old}"
    token = tokens_for(user_a)["access"]
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": "k-new", "typ": "JWT"}
    assert get_me(token).status_code == 200 and get_me(old_token).status_code == 200
    jwks = client.get("/.well-known/jwks.json").json()
    assert [k["kid"] for k in jwks["keys"]] == ["k-new", "k-old"]
    assert all("d" not in k for k in jwks["keys"])  # public halves only
    # Another service verifies offline, with PyJWT and the published set alone.
    published = jwt.PyJWKSet.from_dict(jwks)["k-new"]
    assert jwt.decode(token, published.key, algorithms=["EdDSA"])["user_id"] == str(user_a.pk)


def test_an_hs256_ring_publishes_no_key(client, settings):
    settings.JWT_SIGNING_KEYS = f"k1:{S1}"
    assert client.get("/.well-known/jwks.json").json() == {"keys": []}


def test_a_private_key_file_others_may_read_is_refused(settings, tmp_path):
    path = tmp_path / "open.pem"
    write_key(path, mode=0o644)
    settings.JWT_ALGORITHM = "EdDSA"
    settings.JWT_SIGNING_KEYS = f"k1:{path}"
    with pytest.raises(ImproperlyConfigured, match="readable by others"):
        configured_ring()


# -- the drill: a live server restarted with new key lists --------------------------------


@pytest.fixture(scope="module")
def demo_db():
    with demo_database("alphapulse_keys", trades=5) as name:
        yield name


def status(base: str, access: str) -> int:
    return httpx.get(f"{base}/api/users/me/", headers={"Authorization": f"Bearer {access}"}, timeout=10).status_code


@pytest.mark.slow
@pytest.mark.citus
def test_key_rotation_drill_logs_nobody_out_then_retires_the_old_key(demo_db):
    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    login = {"tenant": "acme", "username": "alice", "password": DEMO_PASSWORD}
    with gunicorn(demo_db, JWT_SIGNING_KEYS=f"old:{old}", **FAST_HASHER) as base:
        tokens = httpx.post(f"{base}/api/auth/token/", json=login, timeout=10).json()
        assert status(base, tokens["access"]) == 200
    # Step 1: the new key first, the old one still listed. Nobody is logged out.
    with gunicorn(demo_db, JWT_SIGNING_KEYS=f"new:{new},old:{old}", **FAST_HASHER) as base:
        assert status(base, tokens["access"]) == 200
        refreshed = httpx.post(f"{base}/api/auth/token/refresh/", json={"refresh": tokens["refresh"]}, timeout=10)
        assert refreshed.status_code == 200, refreshed.text
        rotated = refreshed.json()
        assert jwt.get_unverified_header(rotated["access"])["kid"] == "new"
    # Step 2, a token lifetime later: the old key retired. Its tokens are refused, the new ones work.
    with gunicorn(demo_db, JWT_SIGNING_KEYS=f"new:{new}", **FAST_HASHER) as base:
        assert status(base, tokens["access"]) == 401
        assert status(base, rotated["access"]) == 200


@pytest.mark.django_db(databases=["default", "owner"])
def test_a_changed_ring_is_recorded_once_in_the_platform_trail(settings):
    from io import StringIO

    from django.core.management import call_command
    from django.db import connections

    def recorded() -> list:
        with connections["owner"].cursor() as cursor:
            cursor.execute("SELECT detail FROM platform_audit WHERE action = 'jwt.signing_keys' ORDER BY id")
            return [row[0] for row in cursor.fetchall()]

    settings.JWT_SIGNING_KEYS = f"k1:{S1}"
    before = len(recorded())
    call_command("signing_keys", "--record", stdout=StringIO())
    call_command("signing_keys", "--record", stdout=StringIO())
    settings.JWT_SIGNING_KEYS = f"k2:{S2},k1:{S1}"
    out = StringIO()
    call_command("signing_keys", "--record", stdout=out)
    assert "signs: k2" in out.getvalue()
    entries = recorded()[before:]
    assert len(entries) == 2
    last = entries[-1] if isinstance(entries[-1], dict) else __import__("json").loads(entries[-1])
    assert last["kids"] == ["k2", "k1"] and last["before"]["kids"] == ["k1"]
    assert S1 not in str(entries) and S2 not in str(entries)  # kids only, never a key
