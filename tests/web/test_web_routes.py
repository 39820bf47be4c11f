"""The web interface's HTTP routes: the shell, static files, types, caching, path traversal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from camio.api.spec import spec_of
from camio.web import routes as web_routes
from camio.web.routes import STATIC_DIR, register, resolve_static

STATIC_FILES = sorted(p for p in STATIC_DIR.rglob("*") if p.is_file())


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    register(app)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_index_is_the_shell_and_never_cached(client: TestClient) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    body = await resp.text()
    assert '<script type="module" src="/static/app.js"></script>' in body


@pytest.mark.parametrize("path", STATIC_FILES, ids=lambda p: p.relative_to(STATIC_DIR).as_posix())
async def test_every_static_file_is_served_with_its_type(client: TestClient, path: Path) -> None:
    rel = path.relative_to(STATIC_DIR).as_posix()
    resp = await client.get(f"/static/{rel}")
    assert resp.status == 200
    expected = {
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".svg": "image/svg+xml",
        ".html": "text/html; charset=utf-8",
    }[path.suffix]
    assert resp.headers["Content-Type"] == expected
    assert resp.headers["Cache-Control"] == "public, max-age=300"
    assert await resp.read() == await asyncio.to_thread(path.read_bytes)


async def test_unchanged_file_answers_304(client: TestClient) -> None:
    first = await client.get("/static/app.js")
    etag = first.headers["ETag"]
    again = await client.get("/static/app.js", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""


@pytest.mark.parametrize(
    "raw",
    [
        "/static/%2e%2e/routes.py",
        "/static/%2E%2E/%2E%2E/app.py",
        "/static/pages/%2e%2e/%2e%2e/routes.py",
        "/static/..%2froutes.py",
        "/static/pages%2f..%2f..%2froutes.py",
        "/static/..%5croutes.py",
        "/static/%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/static/.hidden.js",
        "/static/pages",
        "/static/nothing-here.js",
        "/static/app.js%00.css",
        "/static/__init__.py",
    ],
)
async def test_paths_outside_the_static_files_are_refused(client: TestClient, raw: str) -> None:
    resp = await client.get(URL(raw, encoded=True))
    assert resp.status == 404, raw
    assert "text/javascript" not in resp.headers.get("Content-Type", "")


@pytest.mark.parametrize(
    "relative",
    [
        "",
        "/etc/passwd",
        "../routes.py",
        "pages/../app.js",
        "./app.js",
        ".x.js",
        "a\\b.js",
        "app.js\x00",
        "pages",
        "routes.py",
        "nothing.js",
    ],
)
def test_resolve_static_refuses(relative: str) -> None:
    assert resolve_static(relative) is None


def test_symlink_out_of_the_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    static = tmp_path / "static"
    static.mkdir()
    secret = tmp_path / "secret.js"
    secret.write_text("secret")
    (static / "link.js").symlink_to(secret)
    (static / "ok.js").write_text("ok")
    monkeypatch.setattr(web_routes, "STATIC_DIR", static.resolve())
    assert resolve_static("ok.js") == (static / "ok.js").resolve()
    assert resolve_static("link.js") is None


def test_handlers_carry_a_public_html_spec() -> None:
    app = web.Application()
    register(app)
    handlers = [r.handler for r in app.router.routes() if r.method == "GET"]
    assert handlers
    for handler in handlers:
        route_spec = spec_of(handler)
        assert route_spec is not None
        assert route_spec.role is None
        assert route_spec.content_type == "text/html"
