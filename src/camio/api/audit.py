"""The audit middleware: every accepted change made through HTTP is recorded with its author.

Done once here rather than in each handler, so a new route that changes something cannot be
forgotten: any successful POST, PUT, PATCH or DELETE by an authenticated user becomes an
``audit/<category>`` event (configuration, manual output control, triggers, simulator,
users). Log-in, log-out and setup record themselves (they know more than the path does).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from camio.api.auth import USER_KEY
from camio.api.context import audit, device_of
from camio.store.users import User

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SELF_AUDITED = ("/api/v1/session", "/api/v1/setup", "/api/v1/users")


def category(method: str, path: str) -> str:
    """What kind of change a request is, from its path."""
    if path.endswith(("/state", "/sequence")):
        return "output"
    if path.startswith("/api/v1/sim/"):
        return "simulator"
    if path.startswith(("/api/v1/virtual-inputs", "/api/v1/triggers")) or path.endswith("/test"):
        return "trigger"
    return "config"


@web.middleware
async def durable_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An accepted change is on disk before it is acknowledged.

    The engine writes events and output state once per loop iteration; a client that got its
    200 and then saw the device killed must still find its change (an output's deadline for
    ``restore``, the events it caused, its audit record) after the restart.
    """
    response = await handler(request)
    if request.method in _UNSAFE and response.status < 400:
        device_of(request).flush()
    return response


@web.middleware
async def audit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if request.method not in _UNSAFE or response.status >= 400:
        return response
    path = request.path
    if path.startswith(_SELF_AUDITED):
        return response
    user = request.get(USER_KEY)
    if isinstance(user, User):
        audit(
            request,
            category(request.method, path),
            user,
            method=request.method,
            path=path,
            status=response.status,
        )
    return response
