"""`enroll_staff_otp <username> [--replace] [--no-qr]`: a second factor for a platform staff user.

Prints, once, what the staff member needs: the otpauth:// provisioning URI, the
same as a QR code drawn in the terminal (the `qrcode` package), and ten
single-use recovery codes. Only the encrypted seed and the codes' digests are
stored (platform_ops.otp_secrets); nobody can print them again. `--replace` is
the lost-device procedure (docs/admin.md): a new seed and new codes, the old
ones refused from the next login. Recorded in the audit trail
(`staff_otp.enrolled`). Runs as the owner.
Exit 0 enrolled; 2 refused (no such user in the platform tenant, not staff,
already enrolled without --replace), nothing changed.
"""

from __future__ import annotations

import io
import sys

import qrcode
from django.core.management.base import CommandError

from platform_ops import staff_otp
from tenants.management.base import EXIT_REFUSED, OperatorCommand
from tenants.platform_audit import Actor


class Command(OperatorCommand):
    help = (
        "Enroll a platform staff user's second factor for /admin/: print the authenticator app's "
        "provisioning URI, its QR code and ten recovery codes, once. --replace issues new ones for a lost "
        "device. Exit status: 0 enrolled, 2 refused (unknown user, not staff, already enrolled without --replace)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="a staff user of the platform tenant")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="issue a new seed and new recovery codes; the old ones stop working (a lost or changed phone)",
        )
        parser.add_argument("--no-qr", action="store_true", help="print the URI and the codes, no QR code")

    def handle(self, *args, username: str, replace: bool, no_qr: bool, **options):
        try:
            user = staff_otp.staff_user(username)
            enrollment = staff_otp.enroll(user, replace=replace, by=Actor.operator())
        except staff_otp.StaffOTPRefused as exc:
            raise CommandError(str(exc), returncode=EXIT_REFUSED) from exc
        if not sys.stdout.isatty():
            self.stderr.write("Secrets follow on stdout: keep them out of logs and shared terminals.")
        done = "Replaced" if enrollment.replaced else "Enrolled"
        self.stdout.write(f"{done} the second factor of '{user.username}' ({user.tenant.slug}).")
        self.stdout.write("Add it to an authenticator app (scan the QR code, or paste the URI):")
        self.stdout.write(enrollment.provisioning_uri)
        if not no_qr:
            code = qrcode.QRCode(border=1)
            code.add_data(enrollment.provisioning_uri)
            drawing = io.StringIO()
            code.print_ascii(out=drawing, invert=True)
            self.stdout.write(drawing.getvalue(), ending="")
        self.stdout.write("Recovery codes (each works once, instead of the app's code; store them offline):")
        for recovery_code in enrollment.recovery_codes:
            self.stdout.write(f"  {recovery_code}")
        self.stdout.write("They are not shown again: `enroll_staff_otp --replace` issues new ones.")
