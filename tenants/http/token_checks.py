"""Tokens whose claims have the types the code after them assumes, or TokenError.

simplejwt verifies the signature and then trusts the claims' types: a validly
signed token (a leaked or misused key, a bug in another issuer) with
`"exp": "1796153425"` raised TypeError, `10**30` OverflowError, and a header
nested a thousand levels deep RecursionError (PyJWT parses the header
before it checks the signature): all 500s. `checked_token()` builds the token
and turns every such failure into TokenError, which the callers already
answer with 401; it then requires the registered claims to be plain numbers
(exp, nbf, iat: finite, within datetime's range) and strings (jti,
token_type).
"""

from __future__ import annotations

import math
from typing import TypeVar

from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import Token

TokenT = TypeVar("TokenT", bound=Token)

TIME_CLAIMS = ("exp", "nbf", "iat")
# user_id and tenant_id are parsed as UUIDs by their readers (401 for any other
# type, with a message naming the claim), so they are not repeated here.
STRING_CLAIMS = ("jti", "token_type")
# 9999-12-31: the largest epoch second datetime.fromtimestamp() accepts everywhere.
MAX_EPOCH_SECONDS = 253_402_300_799


def checked_token(token_class: type[TokenT], raw: str) -> TokenT:
    try:
        token = token_class(raw)  # type: ignore[arg-type]
    except TokenError:
        raise
    except (TypeError, ValueError, OverflowError, RecursionError, KeyError) as exc:
        raise TokenError(f"Token has malformed claims ({exc.__class__.__name__}).") from exc
    for claim in TIME_CLAIMS:
        value = token.payload.get(claim)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not 0 <= value <= MAX_EPOCH_SECONDS
        ):
            raise TokenError(f"Token's '{claim}' claim is not a time in seconds.")
    for claim in STRING_CLAIMS:
        value = token.payload.get(claim)
        if value is not None and not isinstance(value, str):
            raise TokenError(f"Token's '{claim}' claim is not a string.")
    return token
