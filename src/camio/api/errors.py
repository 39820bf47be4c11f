"""JSON errors for every HTTP entry point: a clear message, the right status, never a 500 for
bad input."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from camio.engine.errors import Conflict, DeviceError, InvalidRequest, NotFound, NotSimulated

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, error: str, message: str, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"error": error, "message": message}
    body.update(extra)
    return web.json_response(body, status=status)


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """pydantic errors as ``[{"field": "a.b.0", "message": "..."}]``."""
    out = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"])
        out.append({"field": field, "message": err["msg"]})
    return out


class BadRequest(Exception):
    """The request body or query cannot be used (400 for syntax, 422 for content)."""

    def __init__(self, message: str, status: int = 400, errors: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.errors = errors or []


_STATUS = {
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    NotSimulated: (409, "not_simulated"),
    InvalidRequest: (422, "invalid"),
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map facade and validation errors onto JSON responses."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        # aiohttp's own errors (404 route, 405, 413) get the same JSON shape.
        reason = exc.reason.lower().replace(" ", "_")
        resp = error_response(exc.status, reason, exc.text or exc.reason)
        for key in ("Allow", "WWW-Authenticate", "Retry-After"):
            if key in exc.headers:
                resp.headers[key] = exc.headers[key]
        return resp
    except BadRequest as exc:
        return error_response(exc.status, "invalid", str(exc), errors=exc.errors)
    except ValidationError as exc:
        errors = validation_errors(exc)
        message = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return error_response(422, "invalid", message, errors=errors)
    except DeviceError as exc:
        status, code = next(
            (value for cls, value in _STATUS.items() if isinstance(exc, cls)), (400, exc.code)
        )
        extra: dict[str, Any] = {}
        messages = getattr(exc, "messages", None)
        if messages:
            extra["errors"] = [
                {"field": m.split(": ", 1)[0], "message": m.split(": ", 1)[-1]} for m in messages
            ]
        return error_response(status, code, str(exc), **extra)
    except Exception:
        _LOGGER.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; see the device log")


async def read_json(request: web.Request, *, max_bytes: int = 1 << 20) -> Any:
    """The request body as JSON, or a 400 that says what is wrong with it."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise BadRequest(f"body larger than {max_bytes} bytes", status=413)
    raw = await request.read()
    if len(raw) > max_bytes:
        raise BadRequest(f"body larger than {max_bytes} bytes", status=413)
    if not raw.strip():
        raise BadRequest("a JSON body is required")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None


async def read_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("the JSON body must be an object", status=422)
    return body
