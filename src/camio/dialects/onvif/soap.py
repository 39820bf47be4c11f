"""The SOAP 1.2 layer of the ONVIF dialect: the service registry, safe parsing, envelopes, faults.

Every ONVIF service module registers its operations with :func:`register_service`; the route
module (:mod:`camio.dialects.onvif.routes`) routes each POST to the service of its path and
dispatches on the local name of the first Body child (the WS-Addressing/SOAP action is not
used: the DeviceIO WSDL reuses ``tds:`` elements and spells its actions in lower case).

A handler receives a :class:`SoapRequest` (already parsed, authenticated and checked against the
operation's least role) and returns the response Body child, built with :func:`el`. It raises
:class:`SoapFault` for anything the client did wrong; the route module turns that into a SOAP
fault (``env:Sender``/``env:Receiver`` plus ONVIF ``ter:`` subcodes), never an HTTP 500.

Parsing (:func:`parse_envelope`) refuses DTDs outright (so no entity expansion, no XML bomb, no
external entity can happen), never touches the network, and works on a body whose size the
route module has already bounded (:data:`MAX_BODY`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web
from lxml import etree

from camio.engine.device import Device
from camio.store.users import Role, User

__all__ = [
    "ANONYMOUS",
    "CONTENT_TYPE",
    "ENV",
    "MAX_BODY",
    "NS",
    "Envelope",
    "Handler",
    "Operation",
    "Service",
    "SoapFault",
    "SoapRequest",
    "el",
    "envelope_bytes",
    "fault_body",
    "find_service",
    "parse_envelope",
    "parse_xml",
    "q",
    "register_service",
    "services",
    "text_of",
]

#: The prefixes used in replies (all declared once, on the envelope).
NS: Final[dict[str, str]] = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wstop": "http://docs.oasis-open.org/wsn/t-1",
    "wsrf-r": "http://docs.oasis-open.org/wsrf/r-2",
    "wsrf-bf": "http://docs.oasis-open.org/wsrf/bf-2",
    "tt": "http://www.onvif.org/ver10/schema",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "tmd": "http://www.onvif.org/ver10/deviceIO/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "ter": "http://www.onvif.org/ver10/error",
    "tns1": "http://www.onvif.org/ver10/topics",
    "xs": "http://www.w3.org/2001/XMLSchema",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
}
ENV: Final = NS["env"]
SOAP11_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"
CONTENT_TYPE: Final = "application/soap+xml"
#: The largest request body read; larger ones are answered with a fault, unparsed.
MAX_BODY: Final = 128 * 1024
#: WS-Addressing action of a fault reply.
FAULT_ACTION: Final = "http://www.w3.org/2005/08/addressing/soap/fault"


class SoapFault(Exception):
    """A SOAP 1.2 fault to answer with.

    ``code`` is ``"Sender"`` (the client's request is wrong) or ``"Receiver"`` (the device
    cannot do it); ``subcodes`` the nested ``env:Subcode`` values, outermost first, as
    ``prefix:Name`` with a prefix of :data:`NS` (``ter:InvalidArgVal``, ``ter:RelayToken``);
    ``status`` the HTTP status; ``detail`` an optional ``env:Detail`` child;
    ``headers`` extra HTTP headers (``WWW-Authenticate`` on a 401).
    """

    def __init__(
        self,
        reason: str,
        *,
        code: str = "Sender",
        subcodes: tuple[str, ...] = ("ter:InvalidArgVal",),
        status: int = 400,
        detail: etree._Element | None = None,
        headers: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.subcodes = subcodes
        self.status = status
        self.detail = detail
        self.headers = headers or {}


@dataclass(slots=True)
class SoapRequest:
    """One parsed, authenticated SOAP request, as a handler sees it."""

    operation: str
    """Local name of the first Body child, e.g. ``"PullMessages"``."""
    body: etree._Element
    """That first Body child."""
    header: etree._Element | None
    """The ``env:Header`` element (WS-Addressing To, Action, MessageID, ReplyTo ...), if any."""
    path: str
    """The request path, e.g. ``/onvif/subscription/3``."""
    user: User
    """Who called; for a pre-auth operation called without credentials, :data:`ANONYMOUS`."""
    device: Device
    http: web.Request
    response_headers: list[etree._Element] = field(default_factory=list)
    """Extra ``env:Header`` children for the reply (added to wsa:Action/RelatesTo)."""
    response_action: str | None = None
    """The reply's ``wsa:Action``; by default derived from the request's (``…Request`` →
    ``…Response``), and only sent when the request carried WS-Addressing headers."""


#: A handler returns the response Body child.
Handler = Callable[[SoapRequest], Awaitable[etree._Element]]


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a service: its handler and the least camio role allowed to call it.

    ONVIF user levels map onto roles: User → viewer, Operator → operator, Administrator →
    admin. ``public`` marks the ONVIF PRE_AUTH operations (GetSystemDateAndTime, GetServices,
    GetCapabilities, GetServiceCapabilities, GetWsdlUrl ...): served without credentials, but
    credentials that are sent are still checked (a wrong password is refused even there, which
    is how clients notice it early).
    """

    handler: Handler
    role: Role
    public: bool = False


@dataclass(slots=True)
class Service:
    """The operations routed at one path (or, with ``prefix``, below it)."""

    path: str
    operations: dict[str, Operation]
    prefix: bool = False


_SERVICES: dict[str, Service] = {}

#: The caller of a pre-auth operation that sent no credentials. ``@`` cannot occur in a real
#: user name; handlers of public operations must not act on its role.
ANONYMOUS: Final = User(name="@anonymous", role=Role.VIEWER, created_wall_ns=0)


def register_service(path: str, operations: dict[str, Operation], *, prefix: bool = False) -> None:
    """Route SOAP POSTs to ``path`` (or every path starting with ``path + "/"`` when
    ``prefix``) by the first Body child's local name.

    Registering a path again adds (or replaces) operations of that path. Call it at import
    time of the service module; the route module mounts every registered path.
    """
    if not path.startswith("/") or path.endswith("/"):
        raise ValueError("a service path starts with '/' and does not end with it")
    existing = _SERVICES.get(path)
    if existing is None:
        _SERVICES[path] = Service(path, dict(operations), prefix)
    else:
        existing.operations.update(operations)
        existing.prefix = existing.prefix or prefix


def services() -> list[Service]:
    """Every registered service."""
    return list(_SERVICES.values())


def find_service(path: str) -> Service | None:
    """The service that answers ``path``: an exact path first, then the longest prefix."""
    exact = _SERVICES.get(path)
    if exact is not None:
        return exact
    best: Service | None = None
    for service in _SERVICES.values():
        if (
            service.prefix
            and path.startswith(service.path + "/")
            and (best is None or len(service.path) > len(best.path))
        ):
            best = service
    return best


# =========================================================================================
# Building XML
# =========================================================================================


def q(name: str) -> str:
    """``"tds:Service"`` → ``"{http://www.onvif.org/ver10/device/wsdl}Service"``."""
    prefix, sep, local = name.partition(":")
    if not sep:
        return name
    try:
        return f"{{{NS[prefix]}}}{local}"
    except KeyError:
        raise ValueError(f"unknown namespace prefix {prefix!r}") from None


def el(tag: str, *children: etree._Element | str | None, **attrs: str) -> etree._Element:
    """An element in :data:`NS`: ``el("tt:Mode", "Bistable")``, ``el("tds:Service", child)``.

    String children become text (after the previous child, if any); ``None`` children are
    skipped, so optional parts can be written inline. Attribute names may carry a prefix
    (``**{"wstop:topic": "true"}``).
    """
    element = etree.Element(q(tag), nsmap=NS)
    for name, value in attrs.items():
        element.set(q(name) if ":" in name else name, value)
    last: etree._Element | None = None
    for child in children:
        if child is None:
            continue
        if isinstance(child, str):
            if last is None:
                element.text = (element.text or "") + child
            else:
                last.tail = (last.tail or "") + child
        else:
            element.append(child)
            last = child
    return element


def text_of(parent: etree._Element, *path: str) -> str | None:
    """The stripped text of the first descendant along ``path`` (local names, any namespace),
    or None if absent. ``text_of(body, "RelayOutputToken")``."""
    node: etree._Element | None = parent
    for name in path:
        assert node is not None
        node = next((c for c in node if isinstance(c.tag, str) and _local(c.tag) == name), None)
        if node is None:
            return None
    assert node is not None
    return (node.text or "").strip()


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def fault_body(fault: SoapFault) -> etree._Element:
    """The ``env:Fault`` element of ``fault``."""
    code = el("env:Code", el("env:Value", f"env:{fault.code}"))
    parent = code
    for subcode in fault.subcodes:
        sub = el("env:Subcode", el("env:Value", subcode))
        parent.append(sub)
        parent = sub
    text = el("env:Text", fault.reason)
    text.set(f"{{{XML_NS}}}lang", "en")
    return el(
        "env:Fault",
        code,
        el("env:Reason", text),
        el("env:Detail", fault.detail) if fault.detail is not None else None,
    )


def envelope_bytes(body: etree._Element, headers: list[etree._Element] | None = None) -> bytes:
    """A serialized SOAP 1.2 envelope around ``body`` (UTF-8, with an XML declaration)."""
    envelope = el(
        "env:Envelope",
        el("env:Header", *headers) if headers else None,
        el("env:Body", body),
    )
    etree.cleanup_namespaces(envelope, top_nsmap=NS, keep_ns_prefixes=list(NS))
    return etree.tostring(envelope, encoding="utf-8", xml_declaration=True)


# =========================================================================================
# Parsing
# =========================================================================================

_DTD_MARKERS: Final = (b"<!DOCTYPE", b"<!ENTITY")


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
    """Parse untrusted XML: no DTD at all (so no entities, internal or external), no network.

    Raises :class:`SoapFault` (``env:Sender``, ``ter:InvalidArgVal``... well-formedness) on
    anything else than a plain document.
    """
    upper = data[:MAX_BODY].upper()
    if any(marker in upper for marker in _DTD_MARKERS) or b"\x00" in data:
        # Also refuses UTF-16/32 documents (NULs), whose DOCTYPE the scan could not see.
        raise SoapFault("DTDs and entity declarations are not accepted", subcodes=())
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError:
        raise SoapFault("the request is not well-formed XML", subcodes=()) from None
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None or tree.docinfo.doctype:
        raise SoapFault("DTDs and entity declarations are not accepted", subcodes=())
    for node in root.iter():
        if not isinstance(node.tag, str):  # an entity reference left unexpanded
            raise SoapFault("entity references are not accepted", subcodes=())
    return root


@dataclass(slots=True)
class Envelope:
    """A parsed request envelope: its Header (if any) and its first Body child."""

    header: etree._Element | None
    body: etree._Element
    operation: str


def parse_envelope(data: bytes) -> Envelope:
    """Parse a SOAP 1.2 request; :class:`SoapFault` if it is not one."""
    root = parse_xml(data)
    if root.tag == f"{{{SOAP11_ENV}}}Envelope":
        raise SoapFault(
            "SOAP 1.1 is not supported; ONVIF uses SOAP 1.2", code="VersionMismatch", subcodes=()
        )
    if root.tag != f"{{{ENV}}}Envelope":
        raise SoapFault("the request is not a SOAP 1.2 envelope", subcodes=())
    header: etree._Element | None = None
    body: etree._Element | None = None
    for child in root:
        if child.tag == f"{{{ENV}}}Header" and header is None and body is None:
            header = child
        elif child.tag == f"{{{ENV}}}Body" and body is None:
            body = child
        else:
            raise SoapFault("unexpected element in the SOAP envelope", subcodes=())
    if body is None:
        raise SoapFault("the SOAP envelope has no Body", subcodes=())
    first = next((c for c in body if isinstance(c.tag, str)), None)
    if first is None:
        raise SoapFault("the SOAP Body is empty", subcodes=("ter:ActionNotSupported",))
    return Envelope(header, first, _local(str(first.tag)))
