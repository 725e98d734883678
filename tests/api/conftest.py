from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eventrelay.settings import Settings
from tests.support.api import Api, running_api


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async with running_api(settings) as client:
        yield client
