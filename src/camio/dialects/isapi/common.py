"""What every ISAPI handler shares: XML in and out, ResponseStatus errors, the caller.

Responses are ``application/xml; charset="UTF-8"`` in the Hikvision namespace, one element per
line (pyhik's alertStream reader and some NVRs split on lines). Requests are parsed by local
element name whatever their namespace (pyhik's ISAPIClient sends the ``isapi.org`` one), with a
parser that takes no DTD, no entities and no network, and bodies over :data:`MAX_BODY` are
refused unread. Every error is a ``ResponseStatus`` document with the HTTP status, the
``statusCode`` and the ``subStatusCode`` a Hikvision device uses; a refused request changes
nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from aiohttp import web

from camio.api.auth import USER_KEY
from camio.api.context import DEVICE
from camio.core.events import Cause
from camio.engine.device import Device
from camio.engine.errors import DeviceError, NotFound
from camio.lazy import LazyModule
from camio.store.users import Role, User

if TYPE_CHECKING:
    from lxml import etree
else:  # lxml loads on the first ISAPI request, not with the daemon
    etree = LazyModule("lxml.etree")

#: The ``dialect`` of every ISAPI RouteSpec (auth realm, on/off switch).
DIALECT: Final = "isapi"
#: The namespace of every document the device writes.
NS: Final = "http://www.hikvision.com/ver20/XMLSchema"
CONTENT_TYPE: Final = 'application/xml; charset="UTF-8"'
#: Request bodies are small XML documents; anything larger is refused unread.
MAX_BODY: Final = 64 * 1024

#: ``statusCode`` -> ``statusString`` (the ISAPI ResponseStatus table).
STATUS_STRINGS: Final = {
    1: "OK",
    2: "Device Busy",
    3: "Device Error",
    4: "Invalid Operation",
    5: "Invalid XML Format",
    6: "Invalid XML Content",
    7: "Reboot Required",
}

_DTD_MARKERS: Final = (b"<!DOCTYPE", b"<!ENTITY")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

Children = list[tuple[str, "str | Children"]]
"""An element's children as (local name, text or nested children), in document order."""


class IsapiError(Exception):
    """An error answered as a ResponseStatus document."""

    def __init__(self, http_status: int, status_code: int, sub_status: str, detail: str = ""):
        super().__init__(detail or sub_status)
        self.http_status = http_status
        self.status_code = status_code
        self.sub_status = sub_status


def bad_xml(detail: str) -> IsapiError:
    return IsapiError(400, 5, "badXmlFormat", detail)


def bad_parameters(detail: str) -> IsapiError:
    return IsapiError(400, 6, "badParameters", detail)


def invalid_id(detail: str) -> IsapiError:
    return IsapiError(404, 6, "invalidID", detail)


def device_of(request: web.Request) -> Device:
    return request.app[DEVICE]


def caller(request: web.Request, role: Role) -> User:
    """The authenticated user if their role allows ``role``; else a 403 ResponseStatus
    (``lowPrivilege``), as a Hikvision device answers an account without the right."""
    user = request.get(USER_KEY)
    if not isinstance(user, User) or not user.role.allows(role):
        raise IsapiError(403, 4, "lowPrivilege", f"this operation requires the {role} role")
    return user


def cause(request: web.Request, user: User) -> Cause:
    return Cause("api", user=user.name, client=request.remote, detail="isapi")


# -- writing -----------------------------------------------------------------------------------


def _fill(parent: etree._Element, children: Children) -> None:
    for name, value in children:
        child = etree.SubElement(parent, f"{{{NS}}}{name}")
        if isinstance(value, str):
            child.text = value
        else:
            _fill(child, value)


def document(root: str, children: Children, *, declaration: bool = True) -> bytes:
    """``<root version="2.0" xmlns=NS>`` with ``children``, one element per line."""
    element = etree.Element(f"{{{NS}}}{root}", nsmap={None: NS})  # type: ignore[dict-item]
    element.set("version", "2.0")
    _fill(element, children)
    body: bytes = etree.tostring(element, encoding="UTF-8", pretty_print=True)
    if declaration:
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
    return body


def xml_response(body: bytes, *, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, headers={"Content-Type": CONTENT_TYPE})


def response_status(
    request: web.Request, status_code: int = 1, sub_status: str = "ok", *, http_status: int = 200
) -> web.Response:
    """A ``ResponseStatus`` document: the answer to a PUT, and every error's body."""
    body = document(
        "ResponseStatus",
        [
            ("requestURL", request.path),
            ("statusCode", str(status_code)),
            ("statusString", STATUS_STRINGS.get(status_code, "Device Error")),
            ("subStatusCode", sub_status),
        ],
    )
    return xml_response(body, status=http_status)


def error_response(request: web.Request, exc: IsapiError) -> web.Response:
    return response_status(request, exc.status_code, exc.sub_status, http_status=exc.http_status)


def from_device_error(exc: DeviceError) -> IsapiError:
    """The ResponseStatus of an error the Device facade raised."""
    if isinstance(exc, NotFound):
        return invalid_id(str(exc))
    return IsapiError(400, 4, "invalidOperation", str(exc))


# -- reading -----------------------------------------------------------------------------------


async def read_body(request: web.Request) -> bytes:
    """The request body; a ResponseStatus 413 beyond :data:`MAX_BODY`, nothing read past it."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise IsapiError(413, 5, "badXmlFormat", "the request body is too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(8192):
        size += len(chunk)
        if size > MAX_BODY:
            raise IsapiError(413, 5, "badXmlFormat", "the request body is too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def parse_xml(data: bytes) -> etree._Element:
    """Parse an untrusted request body: no DTD at all (so no entities), no network."""
    if not data.strip():
        raise bad_xml("the request has no XML body")
    if any(marker in data.upper() for marker in _DTD_MARKERS) or b"\x00" in data:
        # Also refuses UTF-16/32 documents (NULs), whose DOCTYPE the scan could not see.
        raise bad_xml("DTDs and entity declarations are not accepted")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError:
        raise bad_xml("the request is not well-formed XML") from None
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None or tree.docinfo.doctype:
        raise bad_xml("DTDs and entity declarations are not accepted")
    for node in root.iter():
        if not isinstance(node.tag, str):  # an entity reference left unexpanded
            raise bad_xml("entity references are not accepted")
    return root


def local(element: etree._Element) -> str:
    """An element's name without its namespace."""
    return etree.QName(element).localname


def expect_root(root: etree._Element, name: str) -> None:
    if local(root) != name:
        raise IsapiError(400, 6, "badXmlContent", f"expected <{name}>, got <{local(root)}>")


def child(element: etree._Element, name: str) -> etree._Element | None:
    """The first child named ``name`` (any namespace)."""
    for node in element:
        if local(node) == name:
            return node
    return None


def child_text(element: etree._Element, name: str) -> str | None:
    """The stripped text of the first child named ``name``; None when absent."""
    node = child(element, name)
    if node is None:
        return None
    return (node.text or "").strip()


def choice(value: str, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise bad_parameters(f"{field} must be one of {', '.join(allowed)}")
    return value


def boolean(value: str, field: str) -> bool:
    return choice(value.lower(), ("true", "false"), field) == "true"


def handled(handler: Handler) -> Handler:
    """Turn :class:`IsapiError` and the facade's errors into ResponseStatus replies."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except IsapiError as exc:
            return error_response(request, exc)
        except DeviceError as exc:
            return error_response(request, from_device_error(exc))

    return wrapper
