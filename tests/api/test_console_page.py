"""The console is served at / by the API process, from files in the package; without them,
/ says how to build them (issue 14)."""

from __future__ import annotations

from pathlib import Path

from eventrelay.api.routes.console import PACKAGED
from tests.support.api import Api


def _use(api: Api, directory: Path) -> None:
    assert api.app is not None
    api.app.admin.state.console_dir = directory


async def test_missing_assets_get_a_page_saying_how_to_build_them(api: Api, tmp_path: Path) -> None:
    _use(api, tmp_path / "nothing")
    r = await api.client.get("/")
    assert r.status_code == 503
    assert "make console" in r.text and "npm" in r.text


async def test_the_page_and_its_assets_come_from_this_server(api: Api, tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(
        '<!doctype html><script type="module" src="/console/assets/app-1.js"></script>'
    )
    (tmp_path / "assets" / "app-1.js").write_text("console.log(1)")
    (tmp_path.parent / "secret.txt").write_text("no")
    _use(api, tmp_path)
    page = await api.client.get("/")
    assert page.status_code == 200 and "/console/assets/app-1.js" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    asset = await api.client.get("/console/assets/app-1.js")
    assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
    assert "immutable" in asset.headers["cache-control"]
    for outside in ("/console/../secret.txt", "/console/%2e%2e/secret.txt", "/console/nope.js"):
        assert (await api.client.get(outside)).status_code == 404, outside
    # The console is not part of the API's description.
    assert "/" not in (await api.client.get("/openapi.json")).json()["paths"]


def test_a_build_goes_into_the_package() -> None:
    assert PACKAGED.parts[-2:] == ("eventrelay", "console")
