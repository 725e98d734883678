"""Response models of the accounts endpoints (login, users)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from eventrelay.api.schemas import Page


class User(BaseModel):
    id: str = Field(examples=["usr_abc123"])
    email: str
    name: str
    role: str = Field(description="viewer | editor | admin | owner")
    status: str = Field(description="invited | active | deactivated")
    created_by: str
    created_at: str
    last_login_at: str | None


class UserWithSetupLink(User):
    setup_token: str = Field(description="One-time secret for choosing a password; shown once.")
    setup_path: str = Field(description="The console page that takes the secret.")


class UserPage(Page[User]):
    pass


class Session(BaseModel):
    user: User
    token_type: str = "Bearer"
    access_token: str | None = Field(
        description="Signed, short-lived: Authorization: Bearer <access_token>. Absent when the "
        "tokens went into cookies (X-EventRelay-Session: cookie)."
    )
    expires_in: int = Field(description="Seconds the access token is good for.")
    refresh_token: str | None = Field(
        description="Opaque, good for one /v1/admin/auth/refresh; absent in cookie mode."
    )
    csrf_token: str | None = Field(
        description="Cookie mode: send it as X-CSRF-Token on every request that changes something."
    )


class Me(BaseModel):
    kind: str = Field(description="user | token")
    id: str
    name: str
    role: str
    user: User | None
