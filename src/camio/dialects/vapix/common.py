"""What every VAPIX handler shares: the device, the caller, request parameters, text replies.

VAPIX roles map onto camio's: ``viewer`` reads, ``operator`` drives outputs and triggers,
``admin`` changes configuration. Authentication itself (realm ``AXIS_<serial>``) happens in the
auth middleware before a handler runs; handlers only check the role.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from aiohttp import web

from camio.api.auth import require_role
from camio.api.context import DEVICE
from camio.core.events import Cause
from camio.dialects.vapix.numbering import AxisNumbering
from camio.engine.device import Device
from camio.store.users import Role, User

#: The ``dialect`` of every VAPIX RouteSpec (auth realm, on/off switch).
DIALECT = "vapix"
#: Request bodies of the CGIs are small; anything larger is refused unread.
MAX_BODY = 64 * 1024
TEXT = "text/plain"


def device_of(request: web.Request) -> Device:
    return request.app[DEVICE]


def numbering(request: web.Request) -> AxisNumbering:
    return AxisNumbering(device_of(request))


def caller(request: web.Request, role: Role) -> User:
    """The authenticated user if their role allows ``role``; else 403."""
    return require_role(request, role)


def cause(request: web.Request, user: User) -> Cause:
    return Cause("api", user=user.name, client=request.remote, detail="vapix")


def text(body: str, *, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type=TEXT, charset="utf-8")


def error_text(message: str, *, status: int = 400) -> web.Response:
    """A CGI error as Axis devices write them: one ``# Error:`` line."""
    return text(f"# Error: {message}\n", status=status)


async def read_body(request: web.Request) -> bytes:
    """The request body, refused (413) beyond :data:`MAX_BODY`."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(8192):
        size += len(chunk)
        if size > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=size)
        chunks.append(chunk)
    return b"".join(chunks)


async def cgi_params(request: web.Request) -> list[tuple[str, str]]:
    """Query parameters, then form fields of a POST body whatever its Content-Type (the axis
    library posts ``action=list&group=...`` as ``text/plain``). Order is kept."""
    params = list(request.query.items())
    if request.method == "POST":
        body = await read_body(request)
        try:
            decoded = body.decode("utf-8")
        except UnicodeDecodeError:
            raise web.HTTPBadRequest(text="# Error: the body is not UTF-8\n") from None
        params += parse_qsl(decoded.strip(), keep_blank_values=True)
    return params
