"""The staff's second factor: /admin/ refuses a right password without its code, takes an
authenticator code once and a recovery code once, and the seed and the codes are not stored
in plain. Admin requests run on the owner connection, so the rows are made there
(tests/support/staff.py); the app role is checked to see none of them. Runs on Citus too
(make test-citus)."""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connections, transaction
from psycopg import sql

from platform_ops import otp_secrets, staff_otp
from platform_ops.models import AuditEntry, StaffRecoveryCodes, StaffTOTPDevice
from tests.support.staff import (
    STAFF_PASSWORD,
    TEST_ACTOR,
    admin_login,
    code_at,
    current_code,
    owner_tenant,
    owner_user,
    seed_of,
)

# On Citus too: the device tables stay on the coordinator and point at the distributed `users`
# without a foreign key (Citus refuses one), which only the cluster can prove.
pytestmark = [pytest.mark.django_db(databases=["default", "owner"]), pytest.mark.citus]

OWNER = "owner"


@pytest.fixture
def platform():
    return owner_tenant(settings.PLATFORM_TENANT_SLUG, name="AlphaPulse platform")


@pytest.fixture
def staff(platform):
    return owner_user(platform, "staff", is_staff=True)


@pytest.fixture
def enrollment(staff):
    return staff_otp.enroll(staff, by=TEST_ACTOR)


@pytest.fixture
def seed(enrollment):
    return seed_of(enrollment.provisioning_uri)


def login(client, code: str, password: str = STAFF_PASSWORD):
    return admin_login(client, "staff", password, code=code)


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.using(OWNER).filter(action=action).order_by("id"))


def device(staff) -> StaffTOTPDevice:
    return StaffTOTPDevice.objects.using(OWNER).get(user=staff)


# -- the login ----------------------------------------------------------------


def test_a_right_password_without_its_code_is_refused(client, seed):
    response = login(client, code="")
    assert response.status_code == 200
    assert b"Please enter your OTP token" in response.content
    assert client.get("/admin/").status_code == 302  # not logged in
    (entry,) = entries("admin.otp_failed")
    assert (entry.result, entry.reason, entry.detail) == ("refused", "token_required", {"user": "staff"})


def test_a_wrong_code_is_refused_and_counted(client, staff, seed):
    right = current_code(seed)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    response = login(client, code=wrong)
    assert response.status_code == 200 and b"Invalid token" in response.content
    assert client.get("/admin/").status_code == 302
    # The failure's throttle count committed, though the login was refused.
    assert device(staff).throttling_failure_count == 1
    assert [e.reason for e in entries("admin.otp_failed")] == ["invalid_token"]


def test_a_valid_code_logs_in_and_the_entry_names_the_factor(client, seed):
    response = login(client, code=current_code(seed))
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    (entry,) = entries("admin.login")
    assert entry.detail == {"second_factor": staff_otp.TOTP_NAME}
    assert entries("admin.otp_failed") == []


def test_a_code_is_accepted_once(client, seed):
    code = current_code(seed)
    assert login(client, code=code).status_code == 302
    client.cookies.clear()  # a new browser (logout() would write on the app role's connection)
    replayed = login(client, code=code)
    assert replayed.status_code == 200 and b"Invalid token" in replayed.content


def test_the_previous_and_next_steps_are_accepted_but_not_older_ones(client, seed, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # the old code's failure must not hold the next try back
    now = int(time.time()) // 30
    assert login(client, code=code_at(seed, now - 3)).status_code == 200
    assert login(client, code=code_at(seed, now + 1)).status_code == 302  # one step of clock drift


def test_failures_throttle_even_the_right_code(client, staff, seed, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 3600  # a second try waits an hour: no timing in the test
    assert login(client, code="000000" if current_code(seed) != "000000" else "111111").status_code == 200
    response = login(client, code=current_code(seed))
    assert response.status_code == 200 and b"Verification temporarily disabled" in response.content
    assert [e.reason for e in entries("admin.otp_failed")] == ["invalid_token", "throttled"]


def test_a_session_whose_device_was_replaced_is_not_admitted(client, staff, seed):
    assert login(client, code=current_code(seed)).status_code == 302
    assert client.get("/admin/").status_code == 200
    staff_otp.enroll(staff, replace=True, by=TEST_ACTOR)  # the lost-device procedure
    assert client.get("/admin/").status_code == 302  # the session's device is gone: log in again


def test_staff_without_a_device_are_told_to_enroll(client, staff):
    response = login(client, code="123456")
    assert response.status_code == 200
    assert b"enroll_staff_otp" in response.content
    assert [e.reason for e in entries("admin.otp_failed")] == ["not_enrolled"]


def test_a_recovery_code_works_once(client, enrollment, settings):
    settings.OTP_STATIC_THROTTLE_FACTOR = 0  # the refused replay must not hold the next code back
    code = enrollment.recovery_codes[3]
    response = login(client, code=code.upper().replace("-", " "))  # typed loosely
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
    (used,) = entries("staff_otp.recovery_code_used")
    assert used.detail == {"user": "staff", "recovery_codes_left": 9}
    assert entries("admin.login")[-1].detail == {"second_factor": staff_otp.RECOVERY_NAME}
    client.cookies.clear()
    again = login(client, code=code)
    assert again.status_code == 200 and b"Invalid token" in again.content
    # The other codes still work.
    assert login(client, code=enrollment.recovery_codes[4]).status_code == 302


def test_a_wrong_password_with_a_right_code_is_refused_as_before(client, seed):
    # Failed logins are written durably (committed apart from the test's transaction): count the new ones.
    before = AuditEntry.objects.using(OWNER).order_by("-id").values_list("id", flat=True).first() or 0
    response = login(client, code=current_code(seed), password="wrong-password")
    assert response.status_code == 200
    assert b"Please enter the correct username and password" in response.content
    new = AuditEntry.objects.using(OWNER).filter(id__gt=before, action__startswith="admin.")
    assert [e.action for e in new] == ["admin.login_failed"]  # the code was never looked at


# -- at rest --------------------------------------------------------------------


def test_the_seed_and_the_recovery_codes_are_not_stored_in_plain(staff, enrollment, seed):
    with connections[OWNER].cursor() as cursor:
        cursor.execute("SELECT row_to_json(d)::text FROM staff_otp_devices d WHERE user_id = %s", [staff.pk])
        (device_row,) = cursor.fetchone()
        cursor.execute("SELECT row_to_json(r)::text FROM staff_recovery_codes r WHERE user_id = %s", [staff.pk])
        (codes_row,) = cursor.fetchone()
    secret = enrollment.provisioning_uri.split("secret=")[1].split("&")[0]
    for shape in (secret, secret.lower(), seed.hex(), seed.hex().upper()):
        assert shape not in device_row
    for code in enrollment.recovery_codes:
        assert code not in codes_row and otp_secrets.normalize_code(code) not in codes_row


def test_another_key_cannot_read_the_seed_and_a_listed_old_key_still_can(staff, seed, settings):
    settings.OTP_ENCRYPTION_KEY = "a-new-key"
    with pytest.raises(otp_secrets.SeedUnreadable):
        _ = device(staff).bin_key
    settings.OTP_ENCRYPTION_KEY = f"a-new-key,{settings.SECRET_KEY}"  # rotated in, the old one kept to decrypt
    assert device(staff).bin_key == seed


def test_a_seed_no_key_decrypts_refuses_the_login_without_an_error(client, staff, seed, settings):
    settings.OTP_ENCRYPTION_KEY = "a-key-the-seed-was-not-encrypted-with"
    response = login(client, code=current_code(seed))
    assert response.status_code == 200 and b"Invalid token" in response.content


@pytest.mark.parametrize("table", ["staff_otp_devices", "staff_recovery_codes"])
def test_the_app_role_cannot_read_the_devices(table, enrollment):
    with pytest.raises(DatabaseError) as caught:
        with transaction.atomic(using="default"), connections["default"].cursor() as cursor:
            cursor.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)).as_string(None))
    assert type(caught.value.__cause__).__name__ == "InsufficientPrivilege"


# -- enrollment -------------------------------------------------------------------


def enroll(*args: str) -> str:
    out = StringIO()
    call_command("enroll_staff_otp", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_command_prints_the_uri_a_qr_code_and_ten_recovery_codes_once(client, staff):
    out = enroll("staff")
    lines = out.splitlines()
    (uri,) = [line for line in lines if line.startswith("otpauth://totp/")]
    assert "AlphaPulse%3Astaff%40platform" in uri and "issuer=AlphaPulse" in uri
    assert sum("█" in line for line in lines) > 20  # the QR code, drawn in the terminal
    codes = [line.strip() for line in lines if line.startswith("  ")]
    assert len(codes) == 10 and len(set(codes)) == 10
    (entry,) = entries("staff_otp.enrolled")
    assert entry.detail == {"user": "staff", "replaced": False, "recovery_codes": 10}
    assert uri not in str(entry.detail) and codes[0] not in str(entry.detail)
    # What it printed is what the login takes.
    assert login(client, code=current_code(seed_of(uri))).status_code == 302
    client.cookies.clear()
    assert login(client, code=codes[0]).status_code == 302


def test_replace_is_the_lost_device_procedure(client, staff, enrollment, seed, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = settings.OTP_STATIC_THROTTLE_FACTOR = 0  # refusals below, then a login
    with pytest.raises(CommandError, match="already has a second factor: pass --replace") as caught:
        enroll("staff")
    assert caught.value.returncode == 2
    out = enroll("staff", "--replace", "--no-qr")
    assert "Replaced the second factor of 'staff'" in out and "█" not in out
    new_uri = next(line for line in out.splitlines() if line.startswith("otpauth://"))
    assert login(client, code=current_code(seed)).status_code == 200  # the lost phone
    assert login(client, code=enrollment.recovery_codes[0]).status_code == 200  # the old paper
    assert login(client, code=current_code(seed_of(new_uri))).status_code == 302
    assert [e.detail["replaced"] for e in entries("staff_otp.enrolled")] == [False, True]


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("nobody", "The platform tenant 'platform' has no user 'nobody'."),
        ("plain", "'plain' is not staff: only staff log in to /admin/"),
        ("alice", "The platform tenant 'platform' has no user 'alice'."),  # staff-flagged, of another tenant
    ],
)
def test_the_command_refuses_anyone_but_platform_staff(platform, username, message):
    owner_user(platform, "plain")
    from tenants.models import User

    acme = owner_tenant("acme")
    alice = owner_user(acme, "alice")
    User.all_tenants.using(OWNER).filter(pk=alice.pk).update(is_staff=True)
    with pytest.raises(CommandError, match=message) as caught:
        enroll(username)
    assert caught.value.returncode == 2
    assert StaffTOTPDevice.objects.using(OWNER).count() == 0
    assert StaffRecoveryCodes.objects.using(OWNER).count() == 0
    assert entries("staff_otp.enrolled") == []


def test_the_command_refuses_in_one_line_with_exit_2():
    from tests.tenants.test_command_errors import assert_one_line_refusal, manage_without_terminal

    result = manage_without_terminal("enroll_staff_otp", "nobody-here")
    assert_one_line_refusal(result, "has no user 'nobody-here'")
    assert "otpauth://" not in result.stdout


# -- in the admin -------------------------------------------------------------------


def test_superusers_see_who_is_enrolled_and_nothing_secret(client, platform, enrollment):
    root = owner_user(platform, "root", is_staff=True, is_superuser=True)
    assert admin_login(client, root.username).status_code == 302
    page = client.get("/admin/platform_ops/stafftotpdevice/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "staff" in text and "authenticator app" in text
    device_row = StaffTOTPDevice.objects.using(OWNER).get(user=enrollment.user)
    assert device_row.encrypted_seed not in text and "secret=" not in text
    assert client.get(f"/admin/platform_ops/stafftotpdevice/{device_row.pk}/delete/").status_code == 403


def test_plain_staff_do_not_see_the_devices(client, enrollment, seed):
    assert login(client, code=current_code(seed)).status_code == 302
    assert client.get("/admin/platform_ops/stafftotpdevice/").status_code == 403
