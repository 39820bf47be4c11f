"""What every Dahua handler shares: the device, the caller, parameters, the text formats.

Dahua answers in ``text/plain`` with CRLF line endings: getters one ``key=value`` line per
value, setters ``OK``, every refusal ``Error`` followed by a reason line (HTTP 400 by default;
``Bad Request!`` is what the firmware says, and what clients match on). Parameters come from
the query only (every Dahua CGI is a GET), URL-decoded: ``requests`` sends ``[`` ``]`` raw,
``httpx`` percent-encodes them, both arrive as ``AlarmOut[0].Mode``.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from camio.api.auth import require_role
from camio.api.context import DEVICE
from camio.core.events import Cause
from camio.engine.device import Device
from camio.store.users import Role, User

#: The ``dialect`` of every Dahua RouteSpec (auth realm, on/off switch).
DIALECT = "dahua"
TEXT = "text/plain"
CRLF = "\r\n"


class DahuaError(Exception):
    """A request the device refuses with the Error format; nothing has changed."""


def device_of(request: web.Request) -> Device:
    return request.app[DEVICE]


def caller(request: web.Request, role: Role) -> User:
    """The authenticated user if their role allows ``role``; else 403."""
    return require_role(request, role)


def cause(request: web.Request, user: User) -> Cause:
    return Cause("api", user=user.name, client=request.remote, detail=DIALECT)


def text(body: str, *, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type=TEXT, charset="utf-8")


def lines(pairs: Iterable[tuple[str, object]]) -> web.Response:
    """``key=value\\r\\n`` per pair."""
    return text("".join(f"{key}={value}{CRLF}" for key, value in pairs))


def ok() -> web.Response:
    return text(f"OK{CRLF}")


def error(reason: str = "Bad Request!", *, status: int = 400) -> web.Response:
    """The Dahua error body: ``Error\\r\\n<reason>\\r\\n``."""
    return text(f"Error{CRLF}{reason}{CRLF}", status=status)


def action_of(request: web.Request) -> str:
    """The ``action`` parameter; DahuaError when it is missing."""
    action = request.query.get("action")
    if not action:
        raise DahuaError("missing action")
    return action


def bool_text(value: bool) -> str:
    return "true" if value else "false"


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise DahuaError(f"not a boolean: {value[:16]!r}")
