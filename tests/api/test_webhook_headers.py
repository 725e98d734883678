"""Issue 9.3: webhook headers the HTTP client would refuse at send time are refused when the
config is saved (RFC 9110 tokens for names; no control character but HTAB in values), each at
`config.headers.<name>`, in both shapes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api

BAD = [
    ({"X-Api-Key": "a\x00b"}, "X-Api-Key"),  # NUL
    ({"X-Api-Key": "a\x7fb"}, "X-Api-Key"),  # DEL
    ({"X-Api-Key": "a\x0bb"}, "X-Api-Key"),  # VT
    ({"X-Api-Key": "a\x0cb"}, "X-Api-Key"),  # FF
    ({"X-Api-Key": "a\r\nX-Injected: 1"}, "X-Api-Key"),  # header injection
    ({"X-Token\n": "v"}, "X-Token\n"),  # a name ending in a line feed
    ({"X Token": "v"}, "X Token"),  # not a token
    ({"X-Ok": "fine", "X-Bad": "\x01"}, "X-Bad"),  # the field at fault, not the first one
]


async def _create(api: Api, headers: dict[str, str]) -> Any:
    src = await api.make_source()
    return await api.post(
        "/v1/admin/integrations",
        json={
            "source_id": src["id"],
            "type": "webhook",
            "name": "hook",
            "config": {"url": "https://hooks.example.invalid/x", "headers": headers},
        },
    )


@pytest.mark.parametrize(("headers", "field"), BAD)
async def test_bad_headers_are_refused_at_save(
    api: Api, headers: dict[str, str], field: str
) -> None:
    r = await _create(api, headers)
    assert r.status_code == 422, r.text
    [detail] = r.json()["error"]["details"]
    assert detail["field"] == f"config.headers.{field}"
    for value in headers.values():
        if len(value) > 1:
            assert value not in r.text  # a header value is a secret: never echoed


async def test_bad_headers_are_refused_on_update(api: Api) -> None:
    r = await _create(api, {"X-Api-Key": "ok"})
    assert r.status_code == 201, r.text
    r = await api.put(
        f"/v1/admin/integrations/{r.json()['id']}",
        json={
            "config": {"url": "https://hooks.example.invalid/x", "headers": {"X-Api-Key": "\x7f"}}
        },
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "config.headers.X-Api-Key"


async def test_tabs_and_non_ascii_values_are_fine(api: Api) -> None:
    r = await _create(api, {"X-Api-Key": "a\tb", "X-Label": "caf\u00e9 \u2603"})
    assert r.status_code == 201, r.text
