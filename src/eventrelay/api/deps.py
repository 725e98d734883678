"""Request dependencies: the runtime, the calling token (Principal) and role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from eventrelay.core.roles import at_least
from eventrelay.errors import ApiError
from eventrelay.runtime import Runtime
from eventrelay.store import tokens
from eventrelay.store.audit import Actor
from eventrelay.timeutil import utcnow

_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Principal:
    org_id: str
    token_id: str
    token_name: str
    role: str
    ip: str | None
    user_agent: str | None

    @property
    def actor(self) -> Actor:
        return Actor(self.org_id, self.token_id, self.token_name, self.ip, self.user_agent)


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


# Declares the bearer scheme in /openapi.json (and on every admin operation); the header is read
# below, so that a missing or bad token gets this API's own 401 envelope.
_BEARER = HTTPBearer(
    scheme_name="adminToken",
    description="An admin API token (ert_...): Authorization: Bearer <token>.",
    auto_error=False,
)


async def principal(
    request: Request, _declared: HTTPAuthorizationCredentials | None = Security(_BEARER)
) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise _unauthorized("missing bearer token: send Authorization: Bearer <token>")
    rt = runtime_of(request)
    async with rt.db.read() as conn:
        row = await tokens.find_active(conn, secret.strip())
    if row is None:
        raise _unauthorized("invalid or revoked token")
    now = utcnow()
    if row["last_used_at"] is None or now - row["last_used_at"] > _TOUCH_EVERY:
        async with rt.db.transaction() as conn:
            await tokens.touch(conn, row["id"], now)
    return Principal(
        org_id=row["org_id"],
        token_id=row["id"],
        token_name=row["name"],
        role=row["role"],
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def require(role: str) -> Callable[..., Awaitable[Principal]]:
    async def dependency(who: Principal = Depends(principal)) -> Principal:
        if not at_least(who.role, role):
            raise ApiError(
                403, "forbidden", f"this needs the {role} role or above; the token is {who.role}"
            )
        return who

    return dependency


Viewer = Depends(require("viewer"))
Editor = Depends(require("editor"))
Admin = Depends(require("admin"))
Owner = Depends(require("owner"))
