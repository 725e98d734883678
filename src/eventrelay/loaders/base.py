"""The loader contract: the I/O half of a file-loading destination.

The destination module (pure) writes a batch (`FileDestination.write` -> `Written`); its loader
stages and loads it. One loader instance serves one integration (its settings) and is reused
across batches; the delivery layer calls, for each batch:

1. `refs(written)`: the names the batch is staged under (object keys, staged files, tables),
   recorded in the load journal before anything is uploaded;
2. `load(written)`: stage and load, committing all of the batch or none of it. It must be
   idempotent for a given `written.id`: a second call for the same id (a retry after a timeout,
   or after a crash) must not load the rows twice (same object key, same staged file name,
   same load job id, or a ledger row written in the load's own transaction). Returns a
   `LoadReport`; raises `LoadError` with a classified kind;
3. after a crash, `committed(batch_id, refs)`: whether that batch's load committed, so the
   events redelivered from it are acknowledged instead of loaded again.

`check()` is the admin "test": it proves credentials and permissions by creating and dropping
a scratch object, and returns the steps with what the service answered.

Errors: `LoadError.kind` is an `OutcomeKind`: AUTH for credentials, permissions and a target
that is missing and cannot be created (the integration goes to `error` with the service's own
message, events stay queued); RETRY for throttling, timeouts and transient server errors
(backoff; `retry_after` when the service says); DROP with `rows` (message_id -> reason) for
rows the service refused (those events are discarded with the reason, the rest is loaded);
SPLIT when a load failed for a row the service does not name (the batch is bisected).
`committed` says whether the batch may have committed: False when the error came before any
commit was possible (its journal entry is dropped), None when unknown (a timeout mid-commit).
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eventrelay.destinations.base import OutcomeKind, VendorSettings
from eventrelay.destinations.loading import FileDestination, Written


class LoadError(Exception):
    def __init__(
        self,
        kind: OutcomeKind,
        reason: str,
        message: str,
        *,
        retry_after: float | None = None,
        rows: Mapping[str, str] | None = None,
        committed: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.rows = dict(rows or {})
        self.committed = committed


@dataclass(slots=True)
class LoadReport:
    target: str  # where the batch went, e.g. s3://bucket/key or schema.table
    rows: int = 0
    bytes: int = 0
    discarded_values: int = 0  # values left out of rows and written to <table>_discards
    already_committed: bool = False  # the batch had been loaded before (a retry)


@dataclass(slots=True)
class CheckStep:
    step: str  # what was done, e.g. "PUT s3://bucket/prefix/.eventrelay-test-..."
    ok: bool
    message: str | None = None  # the service's answer when it refused


@dataclass(frozen=True, slots=True)
class LoaderContext:
    integration_id: str
    source_id: str
    # Operator overrides of vendor endpoints (EVENTRELAY_VENDOR_BASE_URLS): "<type>" and
    # "<type>.<name>" keys, e.g. {"s3": "http://127.0.0.1:5000", "redshift.s3": ...}.
    base_urls: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 60.0

    def url(self, type_: str, name: str | None = None) -> str | None:
        return self.base_urls.get(f"{type_}.{name}" if name else type_)


class Loader(abc.ABC):
    def __init__(
        self, destination: FileDestination, settings: VendorSettings, ctx: LoaderContext
    ) -> None:
        self.destination = destination
        self.settings = settings
        self.ctx = ctx

    async def close(self) -> None:
        """Release clients and connections (the worker stops or the config changed)."""
        return None

    @abc.abstractmethod
    def refs(self, written: Written) -> list[str]: ...

    @abc.abstractmethod
    async def load(self, written: Written) -> LoadReport: ...

    @abc.abstractmethod
    async def committed(self, batch_id: str, refs: list[str]) -> bool: ...

    @abc.abstractmethod
    async def check(self) -> list[CheckStep]: ...


# type -> "module:Class"; imported on first use so a missing optional extra only affects the
# integrations of its type.
LOADERS: dict[str, str] = {
    "s3": "eventrelay.loaders.s3:S3Loader",
    "gcs": "eventrelay.loaders.gcs:GcsLoader",
    "redshift": "eventrelay.loaders.redshift:RedshiftLoader",
    "bigquery": "eventrelay.loaders.bigquery:BigqueryLoader",
    "snowflake": "eventrelay.loaders.snowflake:SnowflakeLoader",
}


class MissingExtra(LoadError):
    def __init__(self, destination: FileDestination) -> None:
        super().__init__(
            OutcomeKind.AUTH,
            "missing_extra",
            f"{destination.title} needs the optional dependencies of eventrelay[{destination.extra}]"
            f" (pip install 'eventrelay[{destination.extra}]')",
            committed=False,
        )


def loader_for(
    destination: FileDestination, settings: VendorSettings, ctx: LoaderContext
) -> Loader:
    target = LOADERS.get(destination.type)
    if target is None:
        raise LookupError(f"no loader for {destination.type}")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise MissingExtra(destination) from None
    cls: Any = getattr(module, class_name)
    loader: Loader = cls(destination, settings, ctx)
    return loader


def extra_installed(destination: FileDestination) -> bool:
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in destination.extra_modules)
