"""Snowpipe for the Snowflake stand-in (tests/support/snowflake.py): the pipes eventrelay creates
and the Snowpipe REST API that feeds them, in front of fakesnow (which has neither).

- CREATE PIPE statements are recorded (fakesnow is sent a harmless SELECT instead);
- /v1/data/pipes/<pipe>/insertFiles, insertReport and loadHistoryScan are served, each checking
  the key-pair JWT as Snowflake documents it (RS256; iss = ACCOUNT.USER.SHA256:<fingerprint of
  the registered key>, sub = ACCOUNT.USER, exp at most an hour after iat), else 401 390144;
- named files are loaded asynchronously, one at a time, by a worker thread running the pipe's
  COPY against fakesnow, and each pipe skips a file name it has seen (its load history).

fakesnow cannot run COPY ... MATCH_BY_COLUMN_NAME for JSON, so the worker plays it: the file is
copied into a VARIANT table (COPY ... FROM @stage/<file>: fakesnow has no FILES option for
internal stages), then inserted into the pipe's table with
each column taken from the JSON key of the same name in lower case (how eventrelay writes keys)
and cast to the column's type.
"""

from __future__ import annotations

import base64
import json
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

if TYPE_CHECKING:
    from tests.support.snowflake import Front

CREATE_PIPE = re.compile(
    r"^\s*CREATE\s+PIPE\s+IF\s+NOT\s+EXISTS\s+(\S+)\s+AS\s+(COPY\s+INTO\s+(\S+)\s+FROM\s+@(\S+)\s.*)$",
    re.I | re.S,
)
CASTS = {
    "TEXT": "::VARCHAR",
    "NUMBER": "::NUMBER(38,0)",
    "FLOAT": "::FLOAT",
    "BOOLEAN": "::BOOLEAN",
}


@dataclass
class Pipe:
    name: str
    table: str
    stage: str
    copy: str
    owner: str


@dataclass
class FileEntry:
    path: str
    status: str = "LOAD_IN_PROGRESS"
    rows: int = 0
    error: str | None = None
    received: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ"))

    def report(self, pipe: Pipe) -> dict[str, Any]:
        return {
            "path": self.path,
            "stageLocation": pipe.stage,
            "timeReceived": self.received,
            "rowsInserted": self.rows,
            "rowsParsed": self.rows,
            "errorsSeen": 1 if self.error else 0,
            "errorLimit": 1,
            "firstError": self.error,
            "firstErrorLineNum": None,
            "complete": self.status != "LOAD_IN_PROGRESS",
            "status": self.status,
        }


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class Snowpipe:
    def __init__(self, front: Front) -> None:
        self.front = front
        self.pipes: dict[str, Pipe] = {}
        self.created: list[str] = []  # every CREATE PIPE statement received
        self.history: dict[tuple[str, str], FileEntry] = {}
        self.calls: list[tuple[str, str]] = []  # (endpoint, pipe)
        self.inserted: list[tuple[str, str]] = []  # (pipe, path) named by insertFiles
        self.faults: dict[str, list[int]] = {}  # endpoint -> [times, status]
        self.running = threading.Event()  # cleared: the pipes hold their files
        self.running.set()
        self._work: queue.Queue[tuple[Pipe, FileEntry]] = queue.Queue()
        self._conns: dict[tuple[str, str], Any] = {}
        self._thread = threading.Thread(target=self._worker, daemon=True, name="snowpipe")
        self._thread.start()

    # --- scripting ---------------------------------------------------------------------------

    def fail(self, endpoint: str, times: int, status: int = 503) -> None:
        self.faults[endpoint] = [times, status]

    def reset(self) -> None:
        self.faults.clear()
        self.calls.clear()
        self.inserted.clear()
        self.running.set()

    def loaded(self, pipe: str) -> list[str]:
        return [p for (name, p), e in self.history.items() if name == pipe and e.status == "LOADED"]

    # --- SQL side ----------------------------------------------------------------------------

    def create(self, text: str, user: str) -> bool:
        """A CREATE PIPE statement: recorded (True), or not one (False)."""
        match = CREATE_PIPE.match(text)
        if not match:
            return False
        self.created.append(text)
        name = match[1].upper()
        if name not in self.pipes:
            self.pipes[name] = Pipe(name, match[3].upper(), match[4].upper(), match[2], user)
        return True

    # --- REST side ---------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        parts = path.split("/")  # ["", "v1", "data", "pipes", pipe, endpoint]
        if len(parts) != 6:
            return 404, {"code": "404", "message": "Not found", "success": False}
        pipe_name, endpoint = parts[4].upper(), parts[5]
        self.calls.append((endpoint, pipe_name))
        if not self._authorised(headers.get("authorization", "")):
            return 401, {
                "data": None,
                "code": "390144",
                "message": "JWT token is invalid.",
                "success": False,
                "headers": None,
            }
        fault = self.faults.get(endpoint)
        if fault and fault[0] > 0:
            fault[0] -= 1
            return fault[1], {
                "code": str(fault[1]),
                "message": "Service temporarily unavailable",
                "success": False,
            }
        pipe = self.pipes.get(pipe_name)
        if pipe is None:
            return 404, {
                "code": "390404",
                "message": f"Specified object does not exist or not authorized. Pipe {pipe_name} not found",
                "success": False,
            }
        if endpoint == "insertFiles" and method == "POST":
            for item in json.loads(body).get("files", []):
                self.inserted.append((pipe.name, item["path"]))
                key = (pipe.name, item["path"])
                if key in self.history:  # the pipe's load history: never loaded twice
                    continue
                entry = FileEntry(item["path"])
                self.history[key] = entry
                self._work.put((pipe, entry))
            return 200, {"requestId": str(uuid.uuid4()), "responseCode": "SUCCESS"}
        if endpoint in ("insertReport", "loadHistoryScan") and method == "GET":
            files = [
                e.report(pipe)
                for (name, _), e in self.history.items()
                if name == pipe.name and e.status != "LOAD_IN_PROGRESS"
            ]
            return 200, {
                "pipe": pipe.name,
                "completeResult": True,
                "nextBeginMark": str(len(files)),
                "files": files,
            }
        return 405, {"code": "405", "message": "Method not allowed", "success": False}

    def _authorised(self, header: str) -> bool:
        try:
            scheme, token = header.split(" ", 1)
            if scheme.lower() != "bearer":
                return False
            head, payload, signature = token.split(".")
            claims = json.loads(_b64(payload))
            account, user, fingerprint = str(claims["iss"]).split(".", 2)
            key = self.front.keys.get(user.upper())
            now = time.time()
            if (
                key is None
                or fingerprint != key.fingerprint
                or claims.get("sub") != f"{account}.{user}"
                or not (claims["iat"] - 60 <= now < claims["exp"])
                or claims["exp"] - claims["iat"] > 3600
            ):
                return False
            key.public.verify(
                _b64(signature), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:
            return False
        return True

    # --- the pipes' loads --------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            pipe, entry = self._work.get()
            time.sleep(0.2)  # Snowpipe loads later, not during insertFiles
            self.running.wait()
            try:
                entry.rows = self._load(pipe, entry.path)
                entry.status = "LOADED"
            except Exception as exc:
                entry.error = str(getattr(exc, "msg", exc))
                entry.status = "LOAD_FAILED"

    def _conn(self, user: str, database: str, schema: str) -> Any:
        import snowflake.connector

        if (user, database) not in self._conns:
            key = self.front.keys[user]
            host, port = self.front.url.removeprefix("http://").split(":")
            self._conns[(user, database)] = snowflake.connector.connect(
                account="eventrelay",
                user=user,
                private_key=serialization.load_pem_private_key(key.pem.encode(), None),
                host=host,
                port=int(port),
                protocol="http",
                database=database,
                schema=schema,
                platform_detection_timeout_seconds=0.0,
            )
        return self._conns[(user, database)]

    def _load(self, pipe: Pipe, path: str) -> int:
        database, schema, table = pipe.table.split(".")
        cur = self._conn(pipe.owner, database, schema).cursor()
        raw = f"{database}.{schema}.SNOWPIPE_RAW"
        cur.execute(f"CREATE OR REPLACE TRANSIENT TABLE {raw} (RAW VARIANT)")
        cur.execute(
            f"COPY INTO {raw} FROM @{pipe.stage}/{path} FILE_FORMAT = (TYPE = JSON) FORCE = TRUE"
        )
        cur.execute(
            "SELECT COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS"
            f" WHERE TABLE_CATALOG = '{database}' AND TABLE_SCHEMA = '{schema}'"
            f" AND TABLE_NAME = '{table.strip(chr(34))}' ORDER BY ORDINAL_POSITION"
        )
        columns = [(str(c), str(t).upper().split("(")[0]) for c, t in cur.fetchall()]
        names = ", ".join(f'"{c}"' for c, _ in columns)
        values = ", ".join(_cast(c, t) for c, t in columns)
        cur.execute(f"INSERT INTO {pipe.table} ({names}) SELECT {values} FROM {raw} AS S")
        cur.execute(f"SELECT COUNT(*) FROM {raw}")
        (count,) = cur.fetchone()
        return int(count)


def _cast(column: str, kind: str) -> str:
    raw = f'S.RAW:"{column.lower()}"'
    if kind.startswith("TIMESTAMP"):
        return f"{raw}::VARCHAR::TIMESTAMP_TZ"
    return raw + CASTS.get(kind, "")
