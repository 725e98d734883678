"""The admin API over HTTP, as the CLI uses it.

These commands talk to a running server (local or remote) rather than to the database: the
token's role applies, every change is in the audit log under the token's name, running
processes hear of changes through their usual path, and the same commands work against a
deployment the operator can reach only over HTTP, as Segment's and RudderStack's CLIs do.

Where: --url, else EVENTRELAY_URL, else http://EVENTRELAY_HOST:EVENTRELAY_PORT (the address
`eventrelay serve` binds by default). Who: --token, else EVENTRELAY_TOKEN, else the owner token
file in the installation's data directory (resolved as the server resolves it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import httpx

from eventrelay import __version__
from eventrelay.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

TIMEOUT = 30.0


class ApiFailure(click.ClickException):
    """An error answer of the API, said as the API said it (code, message, fields)."""

    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            message = f"{error.get('message', 'error')} (HTTP {status}, {error.get('code')})"
            for detail in error.get("details") or []:
                if isinstance(detail, dict) and detail.get("field"):
                    line = f"{detail['field']}: {detail.get('message')}"
                    if not message.startswith(line):
                        message += f"\n  {line}"
        else:
            message = f"the server answered HTTP {status}"
        super().__init__(message)
        self.status = status
        self.code = error.get("code") if isinstance(error, dict) else None


def default_url(settings: Settings) -> str:
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a wildcard bind: reach it on loopback
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def resolve_token(settings: Settings, token: str | None) -> str:
    if token:
        return token
    path = settings.owner_token_file
    if path.exists():
        click.echo(f"eventrelay: using the owner token in {path.resolve()}", err=True)
        return path.read_text().strip()
    raise click.ClickException(
        "no admin token: pass --token or set EVENTRELAY_TOKEN (create one with "
        "`eventrelay tokens create`), or run where the server's data directory is "
        f"(looked for {path.resolve()}; --data-dir or EVENTRELAY_DATA_DIR point at it)"
    )


class _LazyBearer(httpx.Auth):
    """The token is looked for at the first admin request: `send --write-key` needs none."""

    def __init__(self, token: Callable[[], str]) -> None:
        self._find = token
        self._token: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token is None:
            self._token = self._find()
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class AdminClient:
    def __init__(self, url: str, token: str | Callable[[], str], timeout: float = TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            auth=_LazyBearer(token if callable(token) else lambda: token),
            headers={"User-Agent": f"eventrelay-cli/{__version__}"},
            timeout=timeout,
        )

    def ingest(self, kind: str, write_key: str, body: Any) -> tuple[int, Any]:
        """POST /v1/<kind> with the write key as the Basic username (as Segment's SDKs do)."""
        try:
            response = self._http.post(
                f"/v1/{kind}", json=body, auth=httpx.BasicAuth(write_key, "")
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    def close(self) -> None:
        self._http.close()

    def _unreachable(self, exc: httpx.TransportError) -> click.ClickException:
        return click.ClickException(
            f"cannot reach eventrelay at {self.url} ({type(exc).__name__}): is the server "
            "running? Point at it with --url or EVENTRELAY_URL."
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            raise ApiFailure(response.status_code, body)
        return body

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = self.get(path, limit=100, cursor=cursor, **params)
            items.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    @contextmanager
    def stream(self, path: str) -> Iterator[httpx.Response]:
        """A long-lived GET (Server-Sent Events): no read timeout, the server sends keepalives."""
        timeout = httpx.Timeout(TIMEOUT, read=None)
        try:
            with self._http.stream("GET", path, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                    raise ApiFailure(response.status_code, body)
                yield response
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None


def remote_options(fn: F) -> F:
    """--url/--token for a command that uses the admin API; the command gets `client`."""

    @click.option(
        "--url",
        envvar="EVENTRELAY_URL",
        default=None,
        help="eventrelay base URL [env EVENTRELAY_URL; default http://127.0.0.1:8084].",
    )
    @click.option(
        "--token",
        envvar="EVENTRELAY_TOKEN",
        default=None,
        help="Admin API token [env EVENTRELAY_TOKEN; default: the data directory's owner token].",
    )
    @functools.wraps(fn)
    def wrapper(*args: Any, url: str | None, token: str | None, **kwargs: Any) -> Any:
        settings = Settings()
        client = AdminClient(
            url or default_url(settings), functools.partial(resolve_token, settings, token)
        )
        try:
            return fn(*args, client=client, **kwargs)
        finally:
            client.close()

    return wrapper  # type: ignore[return-value]
