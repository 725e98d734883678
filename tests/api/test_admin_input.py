"""Hostile admin input gets a clear 4xx, never a 500 (issue 9.10): cursors beyond 64 bits,
metrics windows near year 1 or 9999."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import Api
from tests.support.examples import valid_configs


def cursor(pk: object) -> str:
    return base64.urlsafe_b64encode(json.dumps({"pk": pk}).encode()).decode().rstrip("=")


async def _paged_paths(api: Api) -> list[str]:
    source = await api.make_source()
    integration = await api.make_integration(
        source["id"], type="ga4", config=valid_configs()["ga4"]
    )
    return [
        "/v1/admin/sources",
        "/v1/admin/integrations",
        "/v1/admin/tokens",
        "/v1/admin/audit-log",
        f"/v1/admin/integrations/{integration['id']}/failures",
    ]


@pytest.mark.parametrize("pk", [2**63, 2**63 + 1, 2**64, 10**30, -1])
async def test_cursor_out_of_range_is_422(api: Api, pk: int) -> None:
    for path in await _paged_paths(api):
        r = await api.get(path, params={"cursor": cursor(pk)})
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["details"][0]["field"] == "cursor"


async def test_largest_cursor_is_an_empty_page(api: Api) -> None:
    for path in await _paged_paths(api):
        r = await api.get(path, params={"cursor": cursor(2**63 - 1)})
        assert r.status_code == 200, (path, r.text)


@given(
    pk=st.one_of(
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.none(),
        st.booleans(),
    ),
    raw=st.text(max_size=40),
)
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
async def test_any_cursor_is_a_page_or_422(api: Api, pk: object, raw: str) -> None:
    for value in (cursor(pk), raw):
        for path in ("/v1/admin/sources", "/v1/admin/integrations", "/v1/admin/tokens"):
            r = await api.get(path, params={"cursor": value})
            assert r.status_code in (200, 422), (path, value, r.text)


@pytest.mark.parametrize(
    "params",
    [
        {"start": "0001-01-01T00:00:00Z"},
        {"end": "0001-01-01T00:00:00Z"},
        {"start": "9999-12-31T00:00:00Z"},
        {"end": "9999-12-31T23:59:59Z"},
        {"start": "0001-01-01T00:00:00Z", "end": "0001-01-02T00:00:00Z", "granularity": "day"},
        {"start": "9999-12-30T00:00:00Z", "end": "9999-12-31T23:59:59Z", "granularity": "day"},
        {"end": "9999-12-31T23:59:59-23:59", "granularity": "minute"},
        {"start": "0001-01-01T00:00:00+23:59"},
    ],
)
async def test_metrics_dates_far_off_are_422(api: Api, params: dict[str, str]) -> None:
    source = await api.make_source()
    integration = await api.make_integration(
        source["id"], type="ga4", config=valid_configs()["ga4"]
    )
    r = await api.get(f"/v1/admin/integrations/{integration['id']}/metrics", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] in ("start", "end")
