"""The envelope of Axis JSON APIs: ``apiVersion``, ``context`` (echoed), ``method``, then
``data`` or ``error``.

Errors are answered with HTTP 200 and an ``error`` object, as AXIS OS does for its JSON APIs;
a body that is not JSON at all is the one case of HTTP 400. The codes are the common ones of
the Axis JSON APIs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from camio.dialects.vapix.common import read_body

INTERNAL_ERROR = 1100
VERSION_NOT_SUPPORTED = 2100
INVALID_JSON = 2101
METHOD_NOT_SUPPORTED = 2102
MISSING_PARAMETER = 2103
INVALID_PARAMETER = 2104

MESSAGES = {
    INTERNAL_ERROR: "Internal error",
    VERSION_NOT_SUPPORTED: "The requested API version is not supported",
    INVALID_JSON: "Invalid JSON",
    METHOD_NOT_SUPPORTED: "Method not supported",
    MISSING_PARAMETER: "Required parameter missing",
    INVALID_PARAMETER: "Invalid parameter value",
}


@dataclass
class ApiError(Exception):
    code: int
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JsonRequest:
    api_version: str
    context: Any
    method: str
    params: Any


def reply(req: JsonRequest, data: dict[str, Any]) -> web.Response:
    body = {
        "apiVersion": req.api_version,
        "context": req.context,
        "method": req.method,
        "data": data,
    }
    return web.json_response(body)


def error_reply(
    error: ApiError, *, api_version: str, context: Any = None, method: str = ""
) -> web.Response:
    err: dict[str, Any] = {
        "code": error.code,
        "message": error.message or MESSAGES.get(error.code, "Error"),
    }
    if error.details:
        err["details"] = error.details
    body: dict[str, Any] = {"apiVersion": api_version, "method": method, "error": err}
    if context is not None:
        body["context"] = context
    status = 400 if error.code == INVALID_JSON else 200
    return web.json_response(body, status=status)


async def parse(
    request: web.Request, versions: Sequence[str], *, default_version: str
) -> JsonRequest:
    """The request envelope; :class:`ApiError` (with what it could read) when it is wrong.

    ``getSupportedVersions`` needs no ``apiVersion``; every other method must name one of
    ``versions`` (a major version we serve, e.g. "1.0" or "1").
    """
    raw = await read_body(request)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ApiError(INVALID_JSON, "The body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(INVALID_JSON, "The body must be a JSON object")
    context = body.get("context")
    method = body.get("method")
    version = body.get("apiVersion")
    if not isinstance(method, str) or not method:
        raise ApiError(MISSING_PARAMETER, "method is missing", {"context": context})
    if method == "getSupportedVersions":
        return JsonRequest(default_version, context, method, body.get("params"))
    if version is None:
        raise ApiError(MISSING_PARAMETER, "apiVersion is missing", {"context": context})
    if not isinstance(version, str) or not _supported(version, versions):
        raise ApiError(VERSION_NOT_SUPPORTED, details={"context": context})
    return JsonRequest(version, context, method, body.get("params"))


def _supported(version: str, versions: Sequence[str]) -> bool:
    """ "1.0" and "1" both name the 1.x API (the major version decides, as on AXIS OS)."""
    major = version.split(".", 1)[0]
    return any(v.split(".", 1)[0] == major for v in versions)


async def handle(
    request: web.Request,
    versions: Sequence[str],
    dispatch: Any,
) -> web.Response:
    """Parse, dispatch ``await dispatch(request, JsonRequest) -> dict``, wrap the reply."""
    default_version = versions[-1]
    try:
        req = await parse(request, versions, default_version=default_version)
    except ApiError as exc:
        context = exc.details.pop("context", None)
        return error_reply(exc, api_version=default_version, context=context)
    try:
        if req.method == "getSupportedVersions":
            return reply(req, {"apiVersions": list(versions)})
        data = await dispatch(request, req)
    except ApiError as exc:
        return error_reply(exc, api_version=req.api_version, context=req.context, method=req.method)
    return reply(req, data)
