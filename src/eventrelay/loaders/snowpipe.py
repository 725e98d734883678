"""Snowflake's `load_method: snowpipe`: a pipe eventrelay creates, fed through the Snowpipe REST
API; the events are acknowledged once the file shows as loaded.

Per integration and table, a named internal stage and a pipe over it:
    CREATE STAGE IF NOT EXISTS <db>.<schema>.EVENTRELAY_STAGE_<integration>_<table>
    CREATE PIPE IF NOT EXISTS <db>.<schema>.EVENTRELAY_PIPE_<integration>_<table> AS
      COPY INTO <table> FROM @<stage> FILE_FORMAT = (TYPE = JSON)
      MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE
Each batch is PUT to the stage as <batch id>.json.gz (the batch id comes from its message ids),
named to the pipe with insertFiles, and polled with insertReport until LOADED; loadHistoryScan
answers whether a batch committed after a crash, and when insertReport has forgotten it.

Checked against docs.snowflake.com (user-guide/data-load-snowpipe-intro, -rest-apis,
-manage; sql-reference/sql/create-pipe):
- the REST API loads from internal named stages; a pipe's COPY runs with ON_ERROR = SKIP_FILE
  by default (a file with a bad row loads nothing: its first error and line come back in the
  report); pipes do not support PURGE (files stay staged: a stage lifecycle or REMOVE cleans
  them), nor FILES or FORCE;
- exactly once: Snowpipe keeps each pipe's load history (file path and name) for 14 days and
  does not load a file of the same name again, even if changed (the Snowpipe introduction's
  comparison with bulk COPY, whose history is the table's, 64 days; recalled, not re-read in
  this session: see the README). A retried batch is PUT and
  named again under the same name, so it loads once; the only way to load its events twice is
  to stage them under another name, which the content-derived batch id prevents (unless a
  retry comes more than 14 days later).
- append only: no MERGE on message_id in this mode (a client's resent event lands twice), and
  the Segment layout's users table (an upsert) cannot be fed by a pipe: `snowpipe` needs
  `layout: single` and `load_mode: append` (settings check both).
- new columns: ALTER TABLE before the file is named; MATCH_BY_COLUMN_NAME (which COPY takes
  for JSON; its use inside a pipe was not re-checked here) maps keys to columns at load time, so the pipe never needs re-creating (CREATE OR REPLACE PIPE would
  reset its load history).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import snowflake.connector
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from eventrelay.destinations.base import OutcomeKind
from eventrelay.destinations.loading import Written
from eventrelay.destinations.tables import discards_table, encode_ndjson, iso
from eventrelay.loaders.base import LoadError, LoadReport
from eventrelay.loaders.snowpipe_rest import FileReport, SnowpipeRest
from eventrelay.loaders.threads import blocking

if TYPE_CHECKING:
    from snowflake.connector.cursor import SnowflakeCursor

    from eventrelay.loaders.snowflake import SnowflakeLoader

HISTORY_DAYS = 14
FIRST_POLL, MAX_POLL = 0.2, 10.0


@dataclass(slots=True)
class StagedFile:
    pipe: str  # DB.SCHEMA.PIPE, as the REST API names it
    path: str  # relative to the pipe's stage
    size: int
    message_ids: list[str]
    discards: bool

    @property
    def ref(self) -> str:
        return f"{self.pipe}/{self.path}"


def object_name(kind: str, integration_id: str, table: str) -> str:
    return f"EVENTRELAY_{kind}_{integration_id}_{table}".upper()


class SnowpipeFeed:
    def __init__(self, loader: SnowflakeLoader) -> None:
        self.loader = loader
        self._ready: set[str] = set()  # pipes known to exist
        self._rest: SnowpipeRest | None = None

    def _api(self) -> SnowpipeRest:
        if self._rest is None:
            s = self.loader.settings
            passphrase = s.private_key_passphrase
            key = load_pem_private_key(
                s.private_key.get_secret_value().encode(),
                password=passphrase.get_secret_value().encode() if passphrase else None,
            )
            assert isinstance(key, rsa.RSAPrivateKey)
            base = self.loader.ctx.url("snowflake") or f"https://{s.account}.snowflakecomputing.com"
            self._rest = SnowpipeRest(base, s.account, s.user, key, self.loader.ctx.timeout)
        return self._rest

    async def close(self) -> None:
        rest, self._rest = self._rest, None
        if rest is not None:
            await rest.close()

    def _qualified(self, name: str) -> str:
        s = self.loader.settings
        return f"{s.database}.{s.schema_}.{name}".upper()

    def refs(self, written: Written) -> list[str]:
        integration = self.loader.ctx.integration_id
        refs = []
        for table in written.tables:
            for target in (table.table, discards_table(table.table, []).table):
                pipe = self._qualified(object_name("PIPE", integration, target))
                refs.append(f"{pipe}/{written.id}.json.gz")
        return refs

    @staticmethod
    def refs_of(refs: list[str]) -> list[str]:
        """The staged files among a batch's refs (the others name its tables)."""
        return [r for r in refs if "/" in r]

    # --- load --------------------------------------------------------------------------------

    async def load(self, written: Written) -> LoadReport:
        loader = self.loader
        staged: list[StagedFile] = await blocking(loader._guarded, self._stage, written)
        rest = self._api()
        for file in staged:
            await rest.insert_files(file.pipe, [(file.path, file.size)])
        reports = await self._await_loaded(staged)
        rows = sum(reports[f.ref].rows_inserted for f in staged if not f.discards)
        discarded = sum(len(f.message_ids) for f in staged if f.discards)
        where = loader.refs(written)[0] if written.tables else loader.settings.database
        return LoadReport(where, rows=rows, discarded_values=discarded)

    def _stage(self, written: Written) -> list[StagedFile]:
        loader = self.loader
        cur = loader._connect().cursor()
        loaded_at = iso(datetime.now(UTC))
        staged: list[StagedFile] = []
        with tempfile.TemporaryDirectory(prefix="eventrelay-") as folder:
            for table in written.tables:
                plan = loader._prepare(cur, table, loaded_at)
                plans = [plan]
                if plan.discards:
                    discards = discards_table(table.table, plan.discards)
                    plans.append(loader._prepare(cur, discards, loaded_at))
                for item in plans:
                    rows = item.table
                    if not rows.rows:
                        continue
                    stage, pipe = self._ensure_pipe(cur, rows.table)
                    name = f"{written.id}.json"
                    path = os.path.join(folder, name)
                    body = encode_ndjson(
                        {k: v for k, v in r.items() if v is not None} for r in rows.rows
                    )
                    with open(path, "wb") as f:
                        f.write(body)
                    # Same name on a retry: the pipe's load history skips it if it loaded.
                    cur.execute(
                        f"PUT 'file://{path}' @{stage} AUTO_COMPRESS = TRUE OVERWRITE = TRUE"
                    )
                    staged.append(
                        StagedFile(
                            pipe,
                            f"{name}.gz",
                            len(body),
                            rows.message_ids,
                            rows.discards_for is not None,
                        )
                    )
        return staged

    def _ensure_pipe(self, cur: SnowflakeCursor, table: str) -> tuple[str, str]:
        integration = self.loader.ctx.integration_id
        stage = self._qualified(object_name("STAGE", integration, table))
        pipe = self._qualified(object_name("PIPE", integration, table))
        if pipe not in self._ready:
            cur.execute(f"CREATE STAGE IF NOT EXISTS {stage}")
            cur.execute(
                f"CREATE PIPE IF NOT EXISTS {pipe} AS COPY INTO {self._qualified(table)}"
                f" FROM @{stage} FILE_FORMAT = (TYPE = JSON)"
                " MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE"
            )
            self._ready.add(pipe)
        return stage, pipe

    async def _await_loaded(self, staged: list[StagedFile]) -> dict[str, FileReport]:
        """Poll insertReport until every file is LOADED; a failed file names its bad row."""
        rest = self._api()
        deadline = asyncio.get_running_loop().time() + max(300.0, self.loader.ctx.timeout)
        pending = {f.ref: f for f in staged}
        done: dict[str, FileReport] = {}
        delay = FIRST_POLL
        while pending:
            for pipe in {f.pipe for f in pending.values()}:
                for report in await rest.insert_report(pipe):
                    ref = f"{pipe}/{report.path}"
                    if ref in pending and report.status != "LOAD_IN_PROGRESS":
                        _check(report, pending[ref])
                        done[ref] = report
                        del pending[ref]
            if not pending:
                break
            if asyncio.get_running_loop().time() > deadline:
                # insertReport covers recent events only: the pipe's history has the rest.
                for ref in list(pending):
                    late = await self._history(pending[ref])
                    if late is not None and late.status == "LOADED":
                        done[ref] = late
                        del pending[ref]
                if pending:
                    raise LoadError(
                        OutcomeKind.RETRY,
                        "snowpipe_pending",
                        f"Snowpipe has not loaded {', '.join(sorted(pending))} yet",
                        committed=None,
                    )
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_POLL)
        return done

    async def _history(self, file: StagedFile) -> FileReport | None:
        since = (datetime.now(UTC) - timedelta(days=HISTORY_DAYS)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
        for report in await self._api().load_history(file.pipe, since):
            if report.path == file.path:
                return report
        return None

    async def committed(self, batch_id: str, refs: list[str]) -> bool:
        """Whether the batch loaded, after a crash. A file the pipe's history shows as loaded
        counts; one still on the stage but not (yet) loaded is named again and awaited (the
        pipe loads a name once), so the batch commits whole, as it was staged, instead of its
        events being regrouped under another file name. A table the batch never wrote (its
        discards, mostly) has no staged file and is skipped."""
        found = False
        for ref in refs:
            pipe, _, path = ref.partition("/")
            file = StagedFile(pipe, path, 0, [], False)
            try:
                report = await self._history(file)
            except LoadError as exc:
                if exc.reason == "snowpipe_404":  # no such pipe: nothing went through it
                    continue
                raise
            if report is None:
                size = await blocking(self.loader._guarded, self._staged_size, file)
                if size is None:
                    continue
                await self._api().insert_files(pipe, [(path, size)])
                try:
                    loaded = (await self._await_loaded([file]))[file.ref]
                except LoadError as exc:
                    if exc.kind in (OutcomeKind.DROP, OutcomeKind.SPLIT):
                        return False
                    raise
                report = loaded
            if report.status != "LOADED":
                return False
            found = True
        return found

    def _staged_size(self, file: StagedFile) -> int | None:
        """The size of a file on the pipe's stage (LIST), None when it is not there."""
        database, schema, name = file.pipe.split(".")
        stage = f"{database}.{schema}.{name.replace('_PIPE_', '_STAGE_', 1)}"
        cur = self.loader._connect().cursor()
        try:
            cur.execute(f"LIST @{stage}")
        except snowflake.connector.errors.ProgrammingError as exc:
            if exc.errno == 2003:  # no such stage
                return None
            raise
        for row in cur.fetchall():
            if str(row[0]).lower().endswith("/" + file.path.lower()):
                return int(row[1])
        return None


def _check(report: FileReport, file: StagedFile) -> None:
    if report.status == "LOADED":
        return
    error = report.first_error or report.status
    line = report.first_error_line
    if line is not None and 1 <= line <= len(file.message_ids):
        raise LoadError(
            OutcomeKind.DROP,
            "snowpipe_load_failed",
            f"Snowpipe {file.ref}: {error}",
            rows={file.message_ids[line - 1]: error},
            committed=False,
        )
    raise LoadError(
        OutcomeKind.SPLIT, "snowpipe_load_failed", f"Snowpipe {file.ref}: {error}", committed=False
    )
