"""JSON errors everywhere, and no 500 for bad input.

DRF's handler covers its own exceptions; this adds the ones a hostile client
can still provoke below it (a value the column cannot hold, a constraint the
serializer did not foresee) and turns them into 400. Nothing is written: the
middleware rolls back the request's transaction on any 4xx or 5xx.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import JsonResponse
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler


def json_exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = exception_handler(exc, context)
    if response is not None:
        return response
    if isinstance(exc, (DataError, IntegrityError)):
        # The request's transaction is now aborted; TenantContextMiddleware
        # rolls it back because this response is a 4xx.
        return Response(
            {"detail": f"The database refused the request's data: {exc.__class__.__name__}."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    return None


def json_404(request, exception=None):
    return JsonResponse({"detail": "Not found."}, status=404)


def json_500(request):
    return JsonResponse({"detail": "Internal server error."}, status=500)


def json_400(request, exception=None):
    return JsonResponse({"detail": "Bad request."}, status=400)
