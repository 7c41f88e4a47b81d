"""GET /.well-known/jwks.json: the public keys that verify AlphaPulse's tokens (RFC 7517).

With EdDSA or RS256 keys (tenants.signing_keys) it lists every key of the
ring, retiring ones included, each with its `kid`, so another service can
verify a token offline; with shared HS256 secrets it is an empty set (a
secret is never published). Public, cacheable for a few minutes: a key is
added to the ring a token lifetime before it signs (docs/runbook.md).
"""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from tenants.signing_keys import configured_ring


@require_safe
def jwks(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(configured_ring().jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response
