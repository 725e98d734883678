"""Response models: they document the admin API in /openapi.json (requests are the control
layer's input models)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None
    has_more: bool


class WriteKey(BaseModel):
    id: str
    key: str
    created_at: str
    expires_at: str | None = Field(description="Set by a rotation: the key stops working then.")
    revoked_at: str | None


class Source(BaseModel):
    id: str = Field(examples=["src_abc123"])
    name: str
    write_key: str | None = Field(description="Newest active write key (public, used by browsers).")
    write_keys: list[WriteKey]
    consent_default: str = Field(description="deny | allow: for events without consent info.")
    allowed_origins: list[str]
    created_at: str
    updated_at: str


class IntegrationSummary(BaseModel):
    id: str = Field(examples=["int_xyz789"])
    source_id: str
    type: str
    name: str
    enabled: bool
    status: str = Field(description="active | paused | error")
    last_error_message: str | None = Field(
        description="Why delivery stopped (status error), in the vendor's words, secrets redacted."
    )
    last_error_at: str | None
    filtered_last_hour: dict[str, int] = Field(
        description="Events not sent to this integration over the last hour, by reason "
        "(consent, disabled, unmapped, ...); {} when none.",
        examples=[{"consent": 3}],
    )
    created_at: str
    updated_at: str


class Integration(IntegrationSummary):
    config: dict[str, Any] = Field(description='Vendor config; secret values shown as "***".')
    consent_categories: list[str]
    last_delivery_at: str | None


class ChangePlan(BaseModel):
    changes: dict[str, Any] = Field(
        description='What the update would change: {field: {"old", "new"}} as in the audit log '
        '(secrets only as "***"); {} when nothing would.',
        examples=[{"config.url": {"old": "https://a.example", "new": "https://b.example"}}],
    )


class Token(BaseModel):
    id: str
    name: str
    role: str
    prefix: str
    created_by: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class TokenCreated(Token):
    token: str = Field(description="The bearer token. Shown once; store it now.")


class AuditEntry(BaseModel):
    id: str
    action: str
    actor: dict[str, str | None]
    resource_type: str
    resource_id: str
    changes: dict[str, Any]
    ip: str | None
    user_agent: str | None
    timestamp: str


class Organization(BaseModel):
    id: str
    name: str
    consent_categories: list[str]
    created_at: str
    updated_at: str


class CatalogEntry(BaseModel):
    type: str
    title: str
    vendor: str
    api: str
    category: str
    docs_url: str
    api_version: str | None
    default_consent_categories: list[str]
    batching: dict[str, Any]
    delivery: str
    requires_extra: str | None = Field(
        default=None, description="pip extra with this type's client libraries (eventrelay[...])"
    )
    secret_fields: list[str]
    config_schema: dict[str, Any]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope} for code in (400, 401, 403, 404, 409, 413, 422)
}


class MetricBreakdown(BaseModel):
    metricName: str
    value: float | int | None


class Metric(BaseModel):
    metricName: str
    unit: str | None = Field(
        default=None,
        description='"ms" for latencies (time_to_success, time_to_first_attempt: the total is'
        " the number of observations, the breakdown their average, p50 and p95 in milliseconds)",
    )
    total: int
    breakdown: list[MetricBreakdown] | None = None


class DeliveryMetrics(BaseModel):
    integration_id: str
    start: str
    end: str
    granularity: str
    pending: int | None = Field(description="Events queued for this integration now.")
    metrics: list[Metric]
    series: list[dict[str, Any]]


class DeliveryFailure(BaseModel):
    id: str
    time: str
    outcome: str = Field(description="retry | drop | auth | disable")
    reason: str | None
    status_code: int | None
    error: str | None
    attempt: int
    event_count: int
    message_ids: list[str]
    request: dict[str, Any] | None
    response: dict[str, Any] | None


# One concrete class per page: /openapi.json names them "SourcePage", not "Page_Source_".
class SourcePage(Page[Source]):
    pass


class IntegrationSummaryPage(Page[IntegrationSummary]):
    pass


class TokenPage(Page[Token]):
    pass


class AuditEntryPage(Page[AuditEntry]):
    pass


class DeliveryFailurePage(Page[DeliveryFailure]):
    pass
