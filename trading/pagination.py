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

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            raise ValidationError({"cursor": ["Invalid cursor: use the 'next' or 'previous' link as given."]}) from exc
