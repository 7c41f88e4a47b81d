"""The admin app with the staff's two-factor admin site as `admin.site`.

Django's documented way to replace the default site (AdminConfig.default_site):
every `admin.register` / `admin.site` in the project gets StaffAdminSite, which
refuses a password without its code (platform_ops.admin_site). Its own module:
apps.py may hold one AppConfig only, and this one is loaded before the models.
"""

from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    default_site = "platform_ops.admin_site.StaffAdminSite"
