"""Snowflake with `load_method: snowpipe`, end to end: eventrelay creates a stage and a pipe,
PUTs each batch, names it through the Snowpipe REST API (key-pair JWT) and acknowledges the
events once the pipe reports the file loaded. The stand-in (tests/support/snowpipe.py) loads the
named files into fakesnow asynchronously and skips names a pipe has seen.

Embedded shape (the pipe and the REST calls are the loader's; the queue under them is the
same as for `copy`, which test_snowflake_e2e.py runs in both shapes)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from eventrelay.settings import Settings
from tests.destinations.test_snowflake_e2e import config
from tests.support.process import eventrelay_process
from tests.support.snowflake import SnowflakeStandIn, Warehouse
from tests.support.warehouse import configure, events, process_env, send_to, until, warehouse_run

pytestmark = pytest.mark.xdist_group("cluster")
embedded = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def pipe_config(sf: SnowflakeStandIn, wh: Warehouse, **extra: Any) -> dict[str, Any]:
    return config(sf, wh, load_method="snowpipe", **extra)


def pipe_name(wh: Warehouse, integration_id: str, table: str = "EVENTS") -> str:
    return f"{wh.database}.PUBLIC.EVENTRELAY_PIPE_{integration_id}_{table}".upper()


@embedded
async def test_ten_thousand_events_land_once_each_through_a_pipe(
    settings: Settings, sf: SnowflakeStandIn, wh: Warehouse
) -> None:
    sent = events(10_000)
    cfg = pipe_config(sf, wh, batch_size=2500)
    async with warehouse_run(settings, "snowflake", cfg, sf.base_urls) as run:
        await run.send(sent)
        await run.wait_for(lambda: wh.counts()[0] >= 10_000, timeout=120)
        metrics = await run.metric("successes", 10_000, timeout=60)
        assert metrics["retried"] == 0
        pipe = pipe_name(wh, run.integration["id"])
    assert wh.counts() == (10_000, 10_000)
    found = {r[0] for r in wh.query(f'SELECT "MESSAGE_ID" FROM {wh.database}.PUBLIC."EVENTS"')}
    assert found == {e["messageId"] for e in sent}
    snowpipe = sf.front.snowpipe
    (created,) = {s for s in snowpipe.created if pipe in s}
    assert f"CREATE PIPE IF NOT EXISTS {pipe} AS COPY INTO {wh.database}.PUBLIC.EVENTS" in created
    assert "MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE" in created
    files = snowpipe.loaded(pipe)
    assert len(files) >= 4 and all(f.endswith(".json.gz") for f in files)
    # Acknowledged after the pipe reported the load: insertReport was asked for every file.
    assert ("insertReport", pipe) in snowpipe.calls
    (row,) = wh.query(
        f"SELECT PROPERTIES:currency::VARCHAR, TYPEOF(PROPERTIES) FROM {wh.database}.PUBLIC.EVENTS"
        f" WHERE MESSAGE_ID = '{sent[0]['messageId']}'"
    )
    assert row[0] == "EUR"


@embedded
async def test_insert_files_failing_twice_is_retried_and_the_file_loads_once(
    settings: Settings, sf: SnowflakeStandIn, wh: Warehouse
) -> None:
    sf.front.snowpipe.fail("insertFiles", times=2, status=503)
    sent = events(300)
    async with warehouse_run(settings, "snowflake", pipe_config(sf, wh), sf.base_urls) as run:
        await run.send(sent)
        metrics = await run.metric("successes", 300, timeout=60)
        assert metrics["retried"] >= 300
        failures = await run.pipe.failures(run.integration["id"])
        assert [f["reason"] for f in failures][:2] == ["snowpipe_503"] * 2
        pipe = pipe_name(wh, run.integration["id"])
    assert wh.counts() == (300, 300)
    named = [path for name, path in sf.front.snowpipe.inserted if name == pipe]
    assert len(named) == 1  # the two refused calls named nothing


@embedded
async def test_a_file_named_again_is_skipped_by_the_pipes_load_history(
    settings: Settings, sf: SnowflakeStandIn, wh: Warehouse
) -> None:
    """insertReport fails once after the file was named: the retry PUTs and names the same
    file again, and the pipe does not load it twice."""
    sf.front.snowpipe.fail("insertReport", times=1, status=503)
    async with warehouse_run(settings, "snowflake", pipe_config(sf, wh), sf.base_urls) as run:
        await run.send(events(200))
        await run.metric("successes", 200, timeout=60)
        pipe = pipe_name(wh, run.integration["id"])
    named = [path for name, path in sf.front.snowpipe.inserted if name == pipe]
    assert len(named) == 2 and len(set(named)) == 1
    assert wh.counts() == (200, 200)


@embedded
@pytest.mark.parametrize(
    ("key", "words"),
    [("stranger", "JWT token is invalid.")],
)
async def test_refused_credentials_put_the_integration_in_error(
    settings: Settings, sf: SnowflakeStandIn, wh: Warehouse, key: str, words: str
) -> None:
    pair = getattr(sf, key)
    cfg = pipe_config(sf, wh, user=pair.user, private_key=pair.pem)
    async with warehouse_run(settings, "snowflake", cfg, sf.base_urls) as run:
        await run.send(events(5))
        status = await run.wait_status("error")
        assert words in status["last_error_message"]
        assert (await run.metrics())["successes"] == 0
    assert wh.counts() == (0, 0)


@embedded
async def test_snowpipe_is_append_only_and_single_layout(
    settings: Settings, sf: SnowflakeStandIn, wh: Warehouse
) -> None:
    async with warehouse_run(settings, "snowflake", config(sf, wh), sf.base_urls) as run:
        api = run.pipe.api
        for extra, words in (
            ({"load_mode": "dedup"}, "append only"),
            ({"layout": "segment"}, "layout single"),
        ):
            body = {
                "source_id": run.source["id"],
                "type": "snowflake",
                "name": "pipe",
                "config": pipe_config(sf, wh, **extra),
            }
            r = await api.post("/v1/admin/integrations", json=body)
            assert r.status_code == 422, r.text
            assert words in r.text


@pytest.mark.slow
async def test_sigkill_between_insert_files_and_the_report_lands_each_event_once(
    tmp_path: Path, sf: SnowflakeStandIn, wh: Warehouse
) -> None:
    snowpipe = sf.front.snowpipe
    snowpipe.running.clear()  # the pipe holds the named files: the worker waits for the report
    sent = events(2000)
    with eventrelay_process(tmp_path, env=process_env(sf.base_urls)) as server:
        write_key = await configure(server.base_url, tmp_path, "snowflake", pipe_config(sf, wh))
        await send_to(server.base_url, write_key, sent)
        await until(lambda: len(snowpipe.inserted) >= 1)
        server.stop(signal.SIGKILL)
    snowpipe.running.set()
    with eventrelay_process(tmp_path, env=process_env(sf.base_urls)):
        await until(lambda: wh.counts()[0] >= 2000, timeout=90)
    assert wh.counts() == (2000, 2000)
