"""JSON errors for every HTTP entry point: a clear message, the right status, never a 500 for
bad input."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
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


#: A whole-document validator names the field at the start of its message: "rules.0: ...".
_LOCATED = re.compile(r"^([A-Za-z_]\w*(?:\.\w+)*): (.+)$", re.DOTALL)


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """pydantic error details as ``[{"field": "a.b.0", "message": "..."}]``.

    pydantic's ``Value error, `` preamble is dropped (the rest is the message written for
    people), and an error about the whole document takes its field from the message when the
    message starts with one, else ``(document)``.
    """
    out: list[dict[str, str]] = []
    for err in errors:
        field = ".".join(str(part) for part in err.get("loc", ()))
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        if not field:
            located = _LOCATED.match(message)
            if located:
                field, message = located.group(1), located.group(2)
        item = {"field": field or "(document)", "message": message}
        if item not in out:
            out.append(item)
    return out


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """pydantic errors as ``[{"field": "a.b.0", "message": "..."}]``."""
    return field_errors(exc.errors(include_url=False))


def summary(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors)


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
        return error_response(422, "invalid", summary(errors), errors=errors)
    except DeviceError as exc:
        status, code = next(
            (value for cls, value in _STATUS.items() if isinstance(exc, cls)), (400, exc.code)
        )
        details = getattr(exc, "errors", None)  # pydantic's, from a refused configuration
        if isinstance(details, list) and details and all(isinstance(e, dict) for e in details):
            errors = field_errors(details)
            return error_response(status, code, summary(errors), errors=errors)
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
    except RecursionError:  # "[[[[...]]]]" a hundred thousand deep fits in 1 MiB
        raise BadRequest("body is nested too deeply") from None


async def read_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("the JSON body must be an object", status=422)
    return body


def new_item_id(body: dict[str, Any], noun: str, existing: Iterable[str]) -> str:
    """The id of a POSTed rule, schedule or recipient: a string not already taken."""
    item_id = body.get("id")
    if not isinstance(item_id, str):
        raise BadRequest(f"id: a {noun} needs a string id", status=422)
    if item_id in existing:
        raise Conflict(f"{noun} {item_id!r} exists; use PUT to replace it")
    return item_id


def same_id(body: dict[str, Any], item_id: str) -> dict[str, Any]:
    """A PUT body with the id of its URL (a different id in the body is refused)."""
    if "id" in body and body["id"] != item_id:
        raise InvalidRequest(f"id: the body says {body['id']!r} but the URL says {item_id!r}")
    return {**body, "id": item_id}
