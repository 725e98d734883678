"""An in-process eventrelay (real app, SQLite queue, real delivery) plus helpers to send
events the way SDKs do."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from eventrelay.settings import Settings
from tests.support.api import Api, running_api


def basic(write_key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


@dataclass
class Pipeline:
    api: Api

    async def ingest(
        self, path: str, write_key: str, body: Any, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        return await self.api.client.post(
            path, json=body, headers={**basic(write_key), **(headers or {})}, **kw
        )

    async def track(
        self, write_key: str, event: str = "Order Completed", **fields: Any
    ) -> httpx.Response:
        body = {"userId": "u1", "event": event, **fields}
        r = await self.ingest("/v1/track", write_key, body)
        assert r.status_code == 200, r.text
        return r

    async def integration(self, integration_id: str) -> dict[str, Any]:
        r = await self.api.get(f"/v1/admin/integrations/{integration_id}")
        assert r.status_code == 200
        data: dict[str, Any] = r.json()
        return data

    async def metrics(self, integration_id: str) -> dict[str, Any]:
        assert self.api.runtime.metrics is not None
        await self.api.runtime.metrics.flush()
        r = await self.api.get(
            f"/v1/admin/integrations/{integration_id}/metrics", params={"granularity": "minute"}
        )
        assert r.status_code == 200, r.text
        out: dict[str, Any] = {}
        for metric in r.json()["metrics"]:
            out[metric["metricName"]] = metric["total"]
            for part in metric.get("breakdown") or []:
                out[f"{metric['metricName']}.{part['metricName']}"] = part["value"]
        return out

    async def failures(self, integration_id: str) -> list[dict[str, Any]]:
        assert self.api.delivery is not None
        await self.api.delivery.failures.flush()
        r = await self.api.get(f"/v1/admin/integrations/{integration_id}/failures")
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        return data

    async def eventually(self, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        import asyncio

        deadline = time.monotonic() + timeout
        while True:
            result = await check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.05)


def fast_settings(settings: Settings, **overrides: Any) -> Settings:
    base = {
        "retry_base_seconds": 0.05,
        "retry_cap_seconds": 0.5,
        "http_timeout_seconds": 5.0,
        "drain_seconds": 1.0,
    }
    return settings.model_copy(update={**base, **overrides})


@asynccontextmanager
async def running_pipeline(settings: Settings, **overrides: Any) -> AsyncIterator[Pipeline]:
    async with running_api(fast_settings(settings, **overrides)) as api:
        yield Pipeline(api)
