"""What every Foscam command shares: result codes, the ``CGI_Result`` document, the device.

Foscam answers HTTP 200 to everything, errors included; the outcome is the ``<result>`` code.
String values are percent-encoded, as the cameras do (libpyfoscam unquotes every element).
camio adds a ``<message>`` element to a refusal, so a person reading the answer learns why
(libpyfoscam puts it into the returned dict like any other element).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from urllib.parse import quote
from xml.sax.saxutils import escape

from aiohttp import web

from camio.api.context import DEVICE
from camio.core.events import Cause
from camio.engine.device import Device
from camio.store.users import User

#: The ``dialect`` of every Foscam RouteSpec (the on/off switch of the auth middleware).
DIALECT = "foscam"
#: The one CGI path of the dialect.
PATH = "/cgi-bin/CGIProxy.fcgi"


class Result(IntEnum):
    """``<result>`` codes (libpyfoscam's constants, the Foscam SDK header)."""

    OK = 0
    FORMAT_ERROR = -1  #: CGI request format error (missing or malformed parameter)
    AUTH_ERROR = -2  #: username or password error
    ACCESS_DENIED = -3  #: access denied, also an unsupported command
    EXECUTE_FAILED = -4  #: CGI execute failure (well formed, but the device cannot do it)
    TIMEOUT = -5
    UNKNOWN = -7


Fields = Iterable[tuple[str, object]]


class CommandError(Exception):
    """A command refused with a result code and a message for the ``<message>`` element."""

    def __init__(self, result: Result, message: str) -> None:
        super().__init__(message)
        self.result = result
        self.message = message


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    # Percent-encoded as the cameras do; the XML escape is belt and braces.
    return escape(quote(str(value), safe=""))


def cgi_result(result: Result, fields: Fields = (), *, message: str | None = None) -> web.Response:
    """The ``<CGI_Result>`` document, always with HTTP 200."""
    lines = ["<CGI_Result>", f"    <result>{int(result)}</result>"]
    for name, value in fields:
        lines.append(f"    <{name}>{_text(value)}</{name}>")
    if message is not None:
        # Plain text (no percent-encoding) so a person reading the raw answer can read it.
        lines.append(f"    <message>{escape(message.replace('%', ' percent'))}</message>")
    lines.append("</CGI_Result>")
    return web.Response(
        text="\n".join(lines) + "\n",
        content_type="text/xml",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


def device_of(request: web.Request) -> Device:
    return request.app[DEVICE]


def cause(request: web.Request, user: User) -> Cause:
    return Cause("api", user=user.name, client=request.remote, detail="foscam")
