"""The admin's read-only page: rows shown, none added, changed or deleted there.

Staff see these tables (trading rows, API keys, second-factor devices, the platform
audit trail) but change them only through what audits itself: the API, a
management command or an admin action that goes through a service.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest


class ReadOnlyModelAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
