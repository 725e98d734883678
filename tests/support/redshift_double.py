"""PostgreSQL plays Redshift in the tests (test-only; production code has no test branches).

PostgreSQL speaks Redshift's wire protocol and runs every statement the Redshift loader sends
(temp staging table LIKE the target, DELETE ... USING, INSERT ... SELECT, ALTER TABLE ADD COLUMN,
the ledger) except two, which this double replaces through the loader's two seams:
- `COPY ... FROM 's3://...'`: PostgreSQL cannot read S3, so the double fetches the staged object
  from the S3 stand-in (moto) and loads its rows with `COPY ... FROM STDIN`; a row PostgreSQL
  refuses is reported as Redshift's STL_LOAD_ERRORS would name it;
- SUPER: JSONB, the closest PostgreSQL type.

`python -m tests.support.redshift_double serve ...` runs `eventrelay` with the double installed
(for the tests that SIGKILL a real process); the moto URL comes from ER_TEST_MOTO_URL.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import sys
from typing import Any

import boto3
import orjson
import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from eventrelay.destinations.redshift import CATALOG_TYPES, TYPE_NAMES, quote
from eventrelay.destinations.tables import ColumnType
from eventrelay.loaders.redshift import CopyRowsRefused, CopyStatement, RedshiftLoader
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY

MOTO_URL_ENV = "ER_TEST_MOTO_URL"
# PostgreSQL's context of a refused COPY row: `COPY <table>, line <n>, column <name>: ...`
# (after, possibly, a context of its own such as `JSON data, line 1: ...`).
_LINE = re.compile(r"COPY \S+, line (\d+)(?:, column (\w+))?")


class Double:
    def __init__(self, moto_url: str) -> None:
        self.s3 = boto3.client(
            "s3",
            endpoint_url=moto_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        self.fail_copies = 0  # the next N COPYs fail as Redshift's serialization conflict does
        self.copies: list[CopyStatement] = []

    async def copy(self, conn: AsyncConnection[Any], statement: CopyStatement) -> None:
        self.copies.append(statement)
        assert "FORMAT AS JSON 'auto' GZIP" in statement.sql()
        if self.fail_copies > 0:
            self.fail_copies -= 1
            # A real PostgreSQL error with Redshift's SQLSTATE for error 1023.
            await conn.execute(
                "DO $$ BEGIN RAISE EXCEPTION 'ERROR: 1023 DETAIL: Serializable isolation"
                " violation on table' USING ERRCODE = 'serialization_failure'; END $$"
            )
        body = await asyncio.to_thread(self._fetch, statement.bucket, statement.key)
        rows = [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
        columns = list(statement.columns)
        json_columns = {c for c, t in statement.columns.items() if t is ColumnType.JSON}
        names = ", ".join(quote(c) for c in columns)
        try:
            async with conn.cursor() as cursor:
                copy_sql = f"COPY {statement.table} ({names}) FROM STDIN"
                async with cursor.copy(copy_sql.encode()) as copy:
                    for row in rows:
                        await copy.write_row(
                            [
                                Jsonb(row[c])
                                if c in json_columns and row.get(c) is not None
                                else row.get(c)
                                for c in columns
                            ]
                        )
        except psycopg.DataError as exc:
            context = exc.diag.context or ""
            match = _LINE.search(context)
            if not match:
                raise
            reason = exc.diag.message_primary or str(exc)
            raise CopyRowsRefused([(int(match.group(1)), match.group(2) or "", reason)]) from None

    def _fetch(self, bucket: str, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body


_installed: Double | None = None


def install(moto_url: str) -> Double:
    global _installed
    double = Double(moto_url)
    RedshiftLoader.copy_runner = staticmethod(double.copy)  # type: ignore[assignment]
    RedshiftLoader.type_names = {**TYPE_NAMES, ColumnType.JSON: "JSONB"}
    RedshiftLoader.catalog_types = {**CATALOG_TYPES, "jsonb": ColumnType.JSON}
    _installed = double
    return double


def uninstall() -> None:
    from eventrelay.loaders.redshift import run_copy

    RedshiftLoader.copy_runner = staticmethod(run_copy)  # type: ignore[assignment]
    RedshiftLoader.type_names = TYPE_NAMES
    RedshiftLoader.catalog_types = CATALOG_TYPES


if __name__ == "__main__":
    install(os.environ[MOTO_URL_ENV])
    from eventrelay.cli import main

    sys.argv[0] = "eventrelay"
    main()
