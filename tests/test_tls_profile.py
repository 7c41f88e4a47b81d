"""A TLS deployment's settings (issue 20 item 10): over HTTPS the staff
session and CSRF cookies are Secure and HSTS is sent, and `check --deploy`
shows no warning for that profile. Run as `manage.py` processes, because the
settings are read from the environment at start-up."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.support.scratch import manage

pytestmark = pytest.mark.django_db

TLS = {
    "HTTPS": "true",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    "DEBUG": "false",
    # A deployment's key (make setup writes 86 characters; .env files of older clones held 43).
    "SECRET_KEY": "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
}

PROBE = """
from django.test import Client
client = Client(HTTP_X_FORWARDED_PROTO="https", SERVER_NAME="localhost")
response = client.get("/admin/login/")
print(response.status_code, response.headers.get("Strict-Transport-Security"))
print(client.cookies["csrftoken"]["secure"])
plain = Client(SERVER_NAME="localhost").get("/admin/login/")
print(plain.status_code, plain.headers.get("Location"))
from django.conf import settings
print(settings.SESSION_COOKIE_SECURE)
"""


def test_check_deploy_is_clean_for_the_tls_profile():
    result = manage(
        connection.settings_dict["NAME"], "check", "--deploy", "--fail-level", "WARNING", check=False, **TLS
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNINGS" not in result.stdout + result.stderr


def test_over_https_cookies_are_secure_and_hsts_is_sent():
    out = manage(connection.settings_dict["NAME"], "shell", "--no-imports", "-c", PROBE, **TLS).stdout.split("\n")
    assert out[0] == "200 max-age=31536000; includeSubDomains; preload"
    assert out[1] == "True"
    assert out[2] == "301 https://localhost/admin/login/"
    assert out[3] == "True"
