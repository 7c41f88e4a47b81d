"""Sessions: every login starts one, and ending it cuts its tokens off at the next request.

A session is a row of `user_sessions` (tenants.models.UserSession). Its id
rides in every token of the login as the `sid` claim; the request's opening
round trip reads the row with the tenant and user rows
(tenants.http.middleware), so an ended session's access token is refused
(401) from the next request at no extra round trip.

Refresh tokens rotate: each refresh answers a new refresh token and the
session remembers the id (`jti`) of the only one that may still be used. A
refresh token used a second time (it was copied: stolen, or replayed) ends
the whole session, so the thief's and the owner's tokens both stop; the
owner logs in again. Two tabs refreshing with one token at once end their
session the same way: the price of detecting reuse (docs/design.md).

Ending a session writes `session.ended` in the tenant's audit log, in the
same transaction. Every function runs inside the caller's tenant context
(the tenant of `user`) on connection `using`.
"""

from __future__ import annotations

import uuid

from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet
from django.utils import timezone

from tenants.models import User, UserSession
from tenants.tenant_audit import record_event


class EndReason:
    LOGOUT = "logout"
    LOGOUT_ALL = "logout_all"
    PASSWORD_CHANGED = "password_changed"
    DEACTIVATED = "deactivated"
    REFRESH_REUSED = "refresh_reused"


def start_session(
    user: User, refresh_jti: str, *, session_id: uuid.UUID | None = None, using: str = DEFAULT_DB_ALIAS
) -> UserSession:
    session = UserSession(
        id=session_id or uuid.uuid4(), tenant_id=user.tenant_id, user_id=user.pk, refresh_jti=refresh_jti
    )
    session.save(using=using, force_insert=True)
    return session


def _open(using: str) -> QuerySet[UserSession]:
    return UserSession.objects.using(using).filter(ended_at__isnull=True)


def _end(sessions: QuerySet[UserSession], reason: str, *, actor: str, using: str) -> int:
    """End the open sessions of `sessions`, one audit event each; how many ended."""
    ended = list(sessions.select_for_update().values_list("pk", "user_id"))
    if not ended:
        return 0
    UserSession.objects.using(using).filter(pk__in=[pk for pk, _ in ended]).update(
        ended_at=timezone.now(), end_reason=reason
    )
    for pk, user_id in ended:
        record_event(
            "session.ended",
            actor=actor,
            target_type="session",
            target_id=str(pk),
            details={"user": str(user_id), "reason": reason},
            using=using,
        )
    return len(ended)


def end_session(session_id: uuid.UUID, user: User, reason: str, *, actor: str, using: str = DEFAULT_DB_ALIAS) -> int:
    """End one session of `user` (0 when it is not theirs or has ended already)."""
    return _end(_open(using).filter(pk=session_id, user_id=user.pk), reason, actor=actor, using=using)


def end_sessions_of(
    user: User, reason: str, *, actor: str, keep: uuid.UUID | None = None, using: str = DEFAULT_DB_ALIAS
) -> int:
    """End every open session of `user`, except `keep` (the session that asked, on a password change)."""
    sessions = _open(using).filter(user_id=user.pk)
    if keep is not None:
        sessions = sessions.exclude(pk=keep)
    return _end(sessions, reason, actor=actor, using=using)


def rotate_refresh(
    session_id: uuid.UUID, user_id: uuid.UUID, presented_jti: str, new_jti: str, *, using: str = DEFAULT_DB_ALIAS
) -> str | None:
    """Let a refresh through and remember its successor's jti (None), or say why not.

    A jti that is not the session's current one is a reused refresh token: the
    session ends, and the refusal is returned rather than raised, so that the
    caller's transaction commits the ending (then the API answers 401).
    """
    session = UserSession.objects.using(using).select_for_update().filter(pk=session_id, user_id=user_id).first()
    if session is None or session.ended_at is not None:
        return "The token's session has ended: log in again."
    if session.refresh_jti != presented_jti:
        session.ended_at, session.end_reason = timezone.now(), EndReason.REFRESH_REUSED
        session.save(using=using, update_fields=["ended_at", "end_reason"])
        record_event(
            "session.ended",
            actor=str(user_id),
            target_type="session",
            target_id=str(session.pk),
            details={"user": str(user_id), "reason": EndReason.REFRESH_REUSED},
            using=using,
        )
        return "This refresh token was used already: its session has ended, log in again."
    session.refresh_jti, session.refreshed_at = new_jti, timezone.now()
    session.save(using=using, update_fields=["refresh_jti", "refreshed_at"])
    return None
