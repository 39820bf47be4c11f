"""Routes serving the web interface: ``GET /`` (the single-page shell) and ``GET /static/*``.

Files come from the ``static`` directory of this package and nowhere else: the requested path
is resolved and refused unless it stays inside that directory (no ``..``, no absolute paths, no
symlinks out, no hidden files). The shell is never cached (``no-cache``: a new firmware's
shell is picked up on the next load); static files are cached briefly.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from aiohttp import web

from camio.api.spec import spec

routes = web.RouteTableDef()

STATIC_DIR = (Path(__file__).parent / "static").resolve()
INDEX = STATIC_DIR / "index.html"

#: How long a browser may reuse a static file without asking again (seconds).
STATIC_MAX_AGE = 300

CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}

_NOT_FOUND = '{"error": "not_found", "message": "no such file"}'


def _not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound(text=_NOT_FOUND, content_type="application/json")


def resolve_static(relative: str) -> Path | None:
    """The file under :data:`STATIC_DIR` named by ``relative``, or None if it must not be served.

    Refused: empty names, absolute paths, ``..`` or hidden segments, backslashes and NUL bytes,
    unknown file types, anything that resolves (through symlinks) outside the directory, and
    directories.
    """
    if not relative or "\\" in relative or "\x00" in relative:
        return None
    parts = relative.split("/")
    # No empty segment (a leading or doubled slash), no ".", "..", or hidden file or folder.
    if any(not part or part.startswith(".") for part in parts):
        return None
    if PurePosixPath(relative).suffix.lower() not in CONTENT_TYPES:
        return None
    candidate = (STATIC_DIR / Path(*parts)).resolve()
    if not candidate.is_relative_to(STATIC_DIR) or not candidate.is_file():
        return None
    return candidate


#: File contents by path, with the ETag they were read under (the set of files is bounded).
_CACHE: dict[Path, tuple[str, bytes]] = {}


def _file_response(request: web.Request, path: Path, cache_control: str) -> web.Response:
    """The file with its type and caching headers; 304 when the browser's copy is current."""
    stat = path.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    headers = {
        "Content-Type": CONTENT_TYPES[path.suffix.lower()],
        "Cache-Control": cache_control,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    cached = _CACHE.get(path)
    if cached is None or cached[0] != etag:
        cached = (etag, path.read_bytes())
        _CACHE[path] = cached
    return web.Response(body=cached[1], headers=headers)


@routes.get("/")
@spec("Web interface", role=None, response=None, content_type="text/html")
async def index(request: web.Request) -> web.Response:
    """The single-page shell; the page chosen by the URL's #fragment is built in the browser."""
    return _file_response(request, INDEX, "no-cache")


@routes.get("/static/{path:.+}")
@spec("Web interface", role=None, response=None, content_type="text/html")
async def static_file(request: web.Request) -> web.Response:
    """A file of the web interface (script, style sheet, icon)."""
    path = resolve_static(request.match_info["path"])
    if path is None:
        raise _not_found()
    return _file_response(request, path, f"public, max-age={STATIC_MAX_AGE}")


def register(app: web.Application) -> None:
    """Serve the web interface from ``app``."""
    app.add_routes(routes)
