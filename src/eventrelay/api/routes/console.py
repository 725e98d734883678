"""The operator console: its page at / and its assets under /console/, built at `make` time into
the package (src/eventrelay/console/, from console/); no CDN and no Node.js at run time.

When the assets are missing (a checkout where `make` did not run with npm), / says how to build
them instead."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, HTMLResponse, Response

import eventrelay

router = APIRouter(include_in_schema=False)

PACKAGED = Path(eventrelay.__file__).resolve().parent / "console"

# Scripts only from this server (no inline script). 'unsafe-eval': the generated forms'
# validator (ajv) compiles JSON Schemas to functions. Inline styles: the chart library.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>eventrelay: console not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto">
<h1>The eventrelay console is not built</h1>
<p>This server runs, and its API answers under <code>/v1/</code> (see <a href="/docs">/docs</a>),
but the web console's files are missing from this installation.</p>
<p>Build them with Node.js 20 or newer and npm, from the repository: <code>make console</code>
(<code>make run</code> and <code>make test</code> do it too when npm is installed), then reload
this page. Node.js is needed only to build; the server serves the built files itself.</p>
</body></html>
"""


def console_dir(request: Request) -> Path:
    directory: Path = getattr(request.app.state, "console_dir", PACKAGED)
    return directory


@router.get("/")
async def console_page(request: Request) -> Response:
    index = console_dir(request) / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT, status_code=503, headers=_PAGE_HEADERS)
    return FileResponse(index, media_type="text/html", headers=_PAGE_HEADERS)


@router.get("/console/{path:path}")
async def console_asset(request: Request, path: str) -> Response:
    root = console_dir(request).resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file() or target.name == "index.html":
        return Response("not found", status_code=404, media_type="text/plain")
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    # File names carry a content hash: they never change.
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
    }
    return FileResponse(target, media_type=media_type, headers=headers)
