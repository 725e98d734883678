"""A bounded thread pool for the blocking warehouse clients (google-cloud-bigquery and
snowflake-connector-python have no production-ready async API).

Their calls can block for minutes (a load job, a COPY), so they get a pool of their own rather
than the event loop's default executor, which the delivery writers and the store also use: a
slow warehouse then cannot starve those, and the number of threads stays bounded however many
integrations a process runs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
MAX_THREADS = 16

_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="warehouse")
    return _pool


async def blocking(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run `fn(*args, **kwargs)` in the warehouse pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(fn, *args, **kwargs))
