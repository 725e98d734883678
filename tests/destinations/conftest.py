"""Fixtures of the destination tests: one Snowflake stand-in per test process (a database of
each test's own), shared by the COPY and the Snowpipe tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.snowflake import SnowflakeStandIn, Warehouse, snowflake_stand_in


@pytest.fixture(scope="session")
def sf_session() -> Iterator[SnowflakeStandIn]:
    with snowflake_stand_in() as stand_in:
        yield stand_in


@pytest.fixture
def sf(sf_session: SnowflakeStandIn) -> Iterator[SnowflakeStandIn]:
    yield sf_session
    sf_session.front.reset()


@pytest.fixture
def wh(sf: SnowflakeStandIn) -> Iterator[Warehouse]:
    warehouse = Warehouse(sf)
    yield warehouse
    warehouse.close()
