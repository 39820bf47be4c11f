"""``GET /api/v1/openapi.json``: the OpenAPI document of this application, built once."""

from __future__ import annotations

import json
import weakref

from aiohttp import web

from camio.api.openapi import build_openapi
from camio.api.spec import spec

routes = web.RouteTableDef()

#: Per application (the router is frozen once it runs, so the document never changes).
_DOCUMENTS: weakref.WeakKeyDictionary[web.Application, bytes] = weakref.WeakKeyDictionary()


def openapi_bytes(app: web.Application) -> bytes:
    """The document of ``app`` as JSON, generated on first use and then kept."""
    cached = _DOCUMENTS.get(app)
    if cached is None:
        cached = json.dumps(build_openapi(app), separators=(",", ":")).encode()
        _DOCUMENTS[app] = cached
    return cached


@routes.get("/api/v1/openapi.json")
@spec("The OpenAPI 3.1 document of this API", role=None, tags=("meta",))
async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(
        body=openapi_bytes(request.app),
        content_type="application/json",
        headers={"Cache-Control": "no-cache"},
    )
