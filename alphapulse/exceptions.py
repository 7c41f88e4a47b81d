"""JSON errors everywhere, and no 500 for bad input.

DRF's handler covers its own exceptions; this adds the ones a hostile client
can still provoke below it (a value the column cannot hold, a constraint the
serializer did not foresee) and turns them into 400. Nothing is written: the
middleware rolls back the request's transaction on any 4xx or 5xx.
"""

import logging

import psycopg.errors
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from django.http import JsonResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from tenants.services import TenantConflict

logger = logging.getLogger(__name__)

RedisError = (RedisConnectionError, RedisTimeoutError)

# Seconds a client should wait before retrying when the database is away.
DATABASE_RETRY_AFTER = 2


def database_failure(exc: Exception) -> tuple[int, str] | None:
    """(status, detail) for a database that is away or a query cut off by a timeout.

    Not the client's fault and usually over in seconds: 503 with Retry-After,
    never a 500 or a hung worker. Django wraps psycopg's errors; the cause
    tells a statement_timeout or lock_timeout from a lost connection.
    """
    if isinstance(exc, RedisError):
        # The rate limits count in Redis: without it no request can be counted.
        logger.warning("Redis failure answered with 503: %s", exc)
        return 503, "The rate-limit store is unavailable. Retry shortly."
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return None
    cause = exc.__cause__
    if isinstance(cause, psycopg.errors.QueryCanceled):
        detail = "The database query took too long and was cancelled (statement_timeout). Retry, or narrow the request."
    elif isinstance(cause, psycopg.errors.LockNotAvailable):
        detail = "The database is busy with a conflicting change (lock_timeout). Retry shortly."
    else:
        detail = "The database is unavailable. Retry shortly."
    logger.warning("database failure answered with 503: %s", exc)
    return 503, detail


def database_failure_response(exc: Exception) -> JsonResponse | None:
    failure = database_failure(exc)
    if failure is None:
        return None
    status_code, detail = failure
    response = JsonResponse({"detail": detail}, status=status_code)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response


READ_ONLY_DETAIL = (
    "This request may not write: your role may not change anything through this route, "
    "and the database refused the write (read-only transaction)."
)


def read_only_refusal(exc: Exception) -> bool:
    """A write refused by a READ ONLY transaction (SQLSTATE 25006), as Django wraps it."""
    return isinstance(exc, DatabaseError) and isinstance(exc.__cause__, psycopg.errors.ReadOnlySqlTransaction)


def json_exception_handler(exc, context):
    if isinstance(exc, TenantConflict):
        # A rule of the tenant's state (its last admin, its seats): the request is fine, the moment is not.
        return Response({"detail": str(exc), "code": exc.code}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = exception_handler(exc, context)
    if response is not None:
        return response
    if read_only_refusal(exc):
        # The second guard held (tenants.http.middleware): a write the API
        # check let through met the request's READ ONLY transaction.
        logger.warning("write refused by the read-only transaction (reason read_only_transaction): %s", exc)
        return Response({"detail": READ_ONLY_DETAIL}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, (DataError, IntegrityError)):
        # The request's transaction is now aborted; TenantContextMiddleware
        # rolls it back because this response is a 4xx.
        return Response(
            {"detail": f"The database refused the request's data: {exc.__class__.__name__}."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    failure = database_failure(exc)
    if failure is not None:
        return Response({"detail": failure[1]}, status=failure[0], headers={"Retry-After": str(DATABASE_RETRY_AFTER)})
    return None


def json_404(request, exception=None):
    return JsonResponse({"detail": "Not found."}, status=404)


def json_500(request):
    return JsonResponse({"detail": "Internal server error."}, status=500)


def json_400(request, exception=None):
    return JsonResponse({"detail": "Bad request."}, status=400)
