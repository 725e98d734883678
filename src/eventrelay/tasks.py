"""Background-task helpers shared by every long-lived component."""

from __future__ import annotations

import asyncio
from typing import Any


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has ended.

    Unlike `with suppress(CancelledError): await task`, a cancellation of the *caller* while it
    waits is not swallowed (that would leave the caller running after its owner cancelled it,
    and a shutdown waiting for it forever). A task that swallows its cancellation (some client
    libraries do, deep inside) is cancelled again every second until it ends. The task's own
    exception, if any, is retrieved and dropped: it was logged where it happened.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=1.0)
    if not task.cancelled():
        task.exception()
