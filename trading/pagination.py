from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class NewestFirstCursorPagination(CursorPagination):
    """Newest first on created_at, served by idx_<table>_tenant_created; no COUNT(*).

    `page_size` is capped at 500 (a larger value gets 500). A cursor that does
    not decode is the client's mistake: 400, not DRF's default 404.
    """

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    invalid_cursor = "Invalid cursor: use the 'next' or 'previous' link as given."

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound as exc:
            raise ValidationError({"cursor": [self.invalid_cursor]}) from exc
        # A cursor that decodes but holds no timestamp would fail later, in the
        # created_at filter, as a bare list: refuse it here in the same shape.
        if cursor is not None and cursor.position is not None:
            try:
                valid = parse_datetime(cursor.position) is not None
            except (TypeError, ValueError):
                valid = False
            if not valid:
                raise ValidationError({"cursor": [self.invalid_cursor]})
        return cursor
