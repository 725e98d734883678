"""The consumer's lock file: one delivering process per data directory. The holder writes who
it is (pid, command, address) into the file, so whoever finds it taken can say so plainly."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson


class QueueLocked(RuntimeError):
    """Another process consumes this queue; `holder` is what it wrote next to the lock (pid,
    command, address), when it could be read."""

    def __init__(self, path: Path, holder: Mapping[str, Any] | None) -> None:
        self.path = path
        self.holder = dict(holder or {})
        super().__init__(
            f"another eventrelay process{describe_holder(self.holder)} consumes {path}: one"
            " delivery process per data directory (run the others with `serve --no-workers`)"
        )


def describe_holder(holder: Mapping[str, Any]) -> str:
    """ " (pid 123, `eventrelay serve` on http://127.0.0.1:8084)", or "" when unknown."""
    parts = [f"pid {holder['pid']}"] if holder.get("pid") else []
    if holder.get("command"):
        where = f" on {holder['address']}" if holder.get("address") else ""
        parts.append(f"`eventrelay {holder['command']}`{where}")
    return f" ({', '.join(parts)})" if parts else ""


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        data = orjson.loads(os.pread(fd, 4096, 0))
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def lock_holder(queue_path: Path) -> dict[str, Any] | None:
    """Who consumes the queue at `queue_path` now: None when nobody does (the lock is free), else
    what the holder wrote in the lock file (possibly empty). Never creates anything."""
    try:
        fd = os.open(queue_path.with_suffix(".lock"), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read_holder(fd) or {}
        return None  # free (closing the descriptor releases the probe)
    finally:
        os.close(fd)


def take_lock(queue_path: Path, holder: Mapping[str, Any]) -> int:
    """Take the consumer's lock and write who we are; raises QueueLocked when it is taken.
    Opened without truncating: the contents belong to the current holder."""
    fd = os.open(queue_path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        found = _read_holder(fd)
        os.close(fd)
        raise QueueLocked(queue_path, found) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, orjson.dumps({"pid": os.getpid(), **holder}), 0)
    return fd
