"""Who is calling: an API key (external API) or the admin token (admin API)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.deps import Gateway, gateway
from services.gateway.key_store import ApiKey
from services.gateway.problems import Problem

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key made by an admin.")
admin_bearer = HTTPBearer(auto_error=False, description="The admin token (AIGEN_ADMIN_TOKEN).")


async def api_key(
    request: Request,
    presented: Annotated[str | None, Depends(api_key_header)],
    gw: Annotated[Gateway, Depends(gateway)],
) -> ApiKey:
    """The calling key, after its rate limit; every external endpoint depends on this."""
    key = await gw.keys.authenticate(presented)
    if key.rate_per_minute is not None:
        verdict = gw.limiter.take(key.id, key.rate_per_minute, key.burst)
        if not verdict.allowed:
            raise Problem(
                429,
                "RATE_LIMITED",
                f"this key may make {key.rate_per_minute} request(s) per minute; retry in "
                f"{verdict.retry_after_s}s",
                retry_after_s=verdict.retry_after_s,
            )
    request.state.key_id = key.id
    return key


async def admin(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(admin_bearer)],
    gw: Annotated[Gateway, Depends(gateway)],
) -> None:
    """The admin token, compared in constant time."""
    presented = credentials.credentials if credentials is not None else ""
    expected = gw.settings.admin_token
    if not presented:
        raise Problem(
            401,
            "ADMIN_TOKEN_MISSING",
            "send the admin token as `Authorization: Bearer <token>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Problem(
            401, "ADMIN_TOKEN_INVALID", "the admin token is not valid", headers={"WWW-Authenticate": "Bearer"}
        )


Caller = Annotated[ApiKey, Depends(api_key)]
Gw = Annotated[Gateway, Depends(gateway)]
