"""Nothing filtered without a word: integrations say what they did not send over the last hour
and why (list items and objects, one metrics query per page), list items carry the last error,
and updates can be planned (dry run) and are no-ops when nothing changes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, update

from eventrelay.settings import Settings
from eventrelay.store.tables import integrations as integrations_table
from tests.support.examples import valid_configs
from tests.support.pipeline import Pipeline, running_pipeline


async def _filtered(pipe: Pipeline, integration_id: str) -> dict[str, Any]:
    assert pipe.api.runtime.metrics is not None
    await pipe.api.runtime.metrics.flush()
    r = await pipe.api.get(f"/v1/admin/integrations/{integration_id}")
    assert r.status_code == 200, r.text
    filtered: dict[str, Any] = r.json()["filtered_last_hour"]
    return filtered


async def test_integrations_say_why_events_were_filtered(settings: Settings) -> None:
    # The granted event goes to GA4: a name that never resolves, nothing leaves the machine.
    async with running_pipeline(settings, vendor_base_urls={"ga4": "http://ga4.invalid"}) as pipe:
        api = pipe.api
        source = await api.make_source()  # consent_default: deny
        ga4 = await api.make_integration(source["id"], type="ga4", config=valid_configs()["ga4"])
        paused = await api.make_integration(
            source["id"], type="webhook", enabled=False, config=valid_configs()["webhook"]
        )
        assert ga4["filtered_last_hour"] == {}
        for _ in range(3):
            await pipe.track(source["write_key"])  # no consent block: GA4 needs "analytics"
        granted = {"context": {"consent": {"categoryPreferences": {"analytics": True}}}}
        await pipe.track(source["write_key"], **granted)

        # Consent is decided by GA4's worker as it reads the events: counted moments later.
        async def consent_counted() -> bool:
            return await _filtered(pipe, ga4["id"]) == {"consent": 3}

        await pipe.eventually(consent_counted)
        assert await _filtered(pipe, paused["id"]) == {"disabled": 4}
        listed = (
            await api.get("/v1/admin/integrations", params={"source_id": source["id"]})
        ).json()
        by_id = {i["id"]: i for i in listed["data"]}
        assert by_id[ga4["id"]]["filtered_last_hour"] == {"consent": 3}
        assert by_id[paused["id"]]["filtered_last_hour"] == {"disabled": 4}


async def test_a_list_page_costs_one_metrics_query(settings: Settings) -> None:
    async with running_pipeline(settings) as pipe:
        api = pipe.api
        source = await api.make_source()
        for _ in range(5):
            await api.make_integration(source["id"], type="ga4", config=valid_configs()["ga4"])
        statements: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            statements.append(statement)

        engine = api.runtime.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            r = await api.get("/v1/admin/integrations")
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert r.status_code == 200 and len(r.json()["data"]) == 5
        assert sum("delivery_metrics" in s for s in statements) == 1


async def test_list_items_carry_the_last_error(settings: Settings) -> None:
    async with running_pipeline(settings) as pipe:
        api = pipe.api
        source = await api.make_source()
        hook = await api.make_integration(
            source["id"], type="webhook", config=valid_configs()["webhook"]
        )
        async with api.runtime.db.transaction() as conn:
            await conn.execute(
                update(integrations_table)
                .where(integrations_table.c.id == hook["id"])
                .values(status="error", last_error_message="http_401: invalid api key")
            )
        [item] = (await api.get("/v1/admin/integrations")).json()["data"]
        assert item["status"] == "error"
        assert item["last_error_message"] == "http_401: invalid api key"
        assert "last_error_at" in item


async def test_plan_shows_changes_and_writes_nothing(settings: Settings) -> None:
    async with running_pipeline(settings) as pipe:
        api = pipe.api
        source = await api.make_source()
        config = {**valid_configs()["webhook"], "signing_secret": "whsec_" + "A" * 32}
        hook = await api.make_integration(source["id"], type="webhook", config=config)
        path = f"/v1/admin/integrations/{hook['id']}"
        audit_before = (await api.get("/v1/admin/audit-log")).json()["data"]

        same = await api.post(f"{path}/plan", json={"config": config, "enabled": True})
        assert same.status_code == 200, same.text
        assert same.json() == {"changes": {}}

        other = {
            **config,
            "url": "https://hooks.example.org/x",
            "signing_secret": "whsec_" + "B" * 32,
        }
        planned = (await api.post(f"{path}/plan", json={"config": other})).json()["changes"]
        assert planned["config.url"]["new"] == "https://hooks.example.org/x"
        assert planned["config.signing_secret"] == {"old": "***", "new": "***"}
        assert "whsec_" not in str(planned)
        assert (await api.get(path)).json()["config"]["url"] == config["url"]  # not written

        # An update that changes nothing writes nothing: same updated_at, no audit entry.
        unchanged = await api.put(path, json={"config": config, "name": hook["name"]})
        assert unchanged.status_code == 200
        assert unchanged.json()["updated_at"] == hook["updated_at"]
        audit_after = (await api.get("/v1/admin/audit-log")).json()["data"]
        assert audit_after == audit_before

        bad = await api.post(f"{path}/plan", json={"config": {"url": "not a url"}})
        assert bad.status_code == 422

        src_path = f"/v1/admin/sources/{source['id']}"
        plan = (await api.post(f"{src_path}/plan", json={"consent_default": "allow"})).json()
        assert plan == {"changes": {"consent_default": {"old": "deny", "new": "allow"}}}
        assert (await api.get(src_path)).json()["consent_default"] == "deny"
        viewer = await api.make_token("viewer")
        assert (
            await api.post(f"{src_path}/plan", token=viewer, json={"name": "x"})
        ).status_code == 403
