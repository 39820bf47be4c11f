"""WS-Discovery (2005/04) responder for the ONVIF dialect: Probe → ProbeMatches, Hello, Bye.

Sockets (UDP, port ``dialects.onvif.discovery_port``, 3702 by default):

* for each configured interface address a socket bound to that address (unicast probes, and the
  source of replies, Hello and Bye), plus one socket bound to the group 239.255.255.250 that
  joins the group on those interfaces only — so a device whose HTTP listener is on 127.0.0.1
  is discoverable on loopback and nowhere else;
* when the address is ``0.0.0.0`` (every interface), one socket bound to the wildcard that joins
  the group on the default interface.

A Probe matches when its Types (if any) are among ``dn:NetworkVideoTransmitter tds:Device`` and
each of its Scopes (if any) prefix-matches (RFC 3986 segments, or exact with the strcmp0 rule) a
device scope. The reply goes unicast to the sender, with XAddrs built from the local address
the sender reaches. Bad datagrams are ignored silently.

No lxml here (the responder runs by default, and the SOAP stack loads only when a client talks
SOAP): messages are built from string templates with XML escaping, and probes are parsed with
the standard library's expat after refusing any DTD or entity declaration (so no entity
expansion, internal or external, can happen), NUL bytes (UTF-16/32, whose DOCTYPE the scan
could not see) and datagrams above :data:`MAX_DATAGRAM`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, NoReturn
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from camio.dialects.onvif.scopes import scopes
from camio.engine.device import Device
from camio.video import VIDEO

__all__ = ["GROUP", "MAX_DATAGRAM", "DiscoveryResponder", "Node", "parse_datagram", "probe_message"]

_log = logging.getLogger(__name__)

GROUP: Final = "239.255.255.250"
NS_ENV: Final = "http://www.w3.org/2003/05/soap-envelope"
NS_WSA: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_D: Final = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
NS_DN: Final = "http://www.onvif.org/ver10/network/wsdl"
NS_TDS: Final = "http://www.onvif.org/ver10/device/wsdl"
NSMAP: Final = {"env": NS_ENV, "wsa": NS_WSA, "d": NS_D, "dn": NS_DN, "tds": NS_TDS}
TYPES: Final = frozenset({(NS_DN, "NetworkVideoTransmitter"), (NS_TDS, "Device")})
ACTION: Final = NS_D + "/"
TO_DISCOVERY: Final = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
ANONYMOUS: Final = NS_WSA + "/role/anonymous"
RULE_RFC3986: Final = NS_D + "/rfc3986"
RULE_STRCMP: Final = NS_D + "/strcmp0"
#: Larger datagrams are ignored unparsed (a Probe is well under 2 KiB).
MAX_DATAGRAM: Final = 16 * 1024

_DECLARATION: Final = "<?xml version='1.0' encoding='utf-8'?>\n"
_NS_DECLS: Final = " ".join(f"xmlns:{prefix}={quoteattr(uri)}" for prefix, uri in NSMAP.items())
_DTD_MARKERS: Final = (b"<!DOCTYPE", b"<!ENTITY")


# -- building -----------------------------------------------------------------------------------


def _e(tag: str, *content: str, **attrs: str) -> str:
    """``<tag attrs>content</tag>``; ``content`` is markup (already escaped), see :func:`_t`."""
    attributes = "".join(f" {key}={quoteattr(value)}" for key, value in attrs.items())
    inner = "".join(content)
    return f"<{tag}{attributes}>{inner}</{tag}>" if inner else f"<{tag}{attributes}/>"


def _t(tag: str, text: str) -> str:
    """``<tag>text</tag>`` with ``text`` escaped."""
    return _e(tag, escape(text))


def _document(header: list[str], body: str) -> str:
    inner = _e("env:Header", *header) + _e("env:Body", body)
    return f"<env:Envelope {_NS_DECLS}>{inner}</env:Envelope>"


def _envelope(action: str, to: str, body: str, extra: list[str]) -> bytes:
    header = [
        _t("wsa:MessageID", f"urn:uuid:{uuid.uuid4()}"),
        *extra,
        _t("wsa:To", to),
        _t("wsa:Action", ACTION + action),
    ]
    return (_DECLARATION + _document(header, body)).encode()


def probe_message(message_id: str, *, types: str = "", scopes_: str = "") -> bytes:
    """A Probe (for tests and tools): optional Types (with dn:/tds: prefixes) and Scopes."""
    probe = _e(
        "d:Probe",
        _t("d:Types", types) if types else "",
        _t("d:Scopes", scopes_) if scopes_ else "",
    )
    header = [
        _t("wsa:MessageID", message_id),
        _t("wsa:To", TO_DISCOVERY),
        _t("wsa:Action", ACTION + "Probe"),
    ]
    return _document(header, probe).encode()


# -- parsing ------------------------------------------------------------------------------------


@dataclass
class Node:
    """An element of a parsed datagram: ``(namespace, local name)``, attributes (unqualified
    names as is, qualified ones as ``namespace local``), text and the namespace prefixes in
    scope (``None`` = the default namespace)."""

    tag: tuple[str, str]
    attrs: dict[str, str]
    nsmap: dict[str | None, str]
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def find(self, *path: tuple[str, str]) -> Node | None:
        """The first descendant along ``path`` (each step a child with that tag)."""
        if not path:
            return self
        for child in self.children:
            if child.tag == path[0]:
                found = child.find(*path[1:])
                if found is not None:
                    return found
        return None


class _Refused(Exception):
    pass


def _split(name: str) -> tuple[str, str]:
    namespace, _, local = name.rpartition(" ")
    return namespace, local


def parse_datagram(data: bytes) -> Node | None:
    """The root element of an untrusted datagram, or None when it is too large, declares a DTD
    or an entity, contains NUL bytes or is not well-formed namespaced XML."""
    if len(data) > MAX_DATAGRAM or b"\x00" in data:
        return None
    upper = data.upper()
    if any(marker in upper for marker in _DTD_MARKERS):
        return None
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[Node] = []
    root: list[Node] = []
    pending: dict[str | None, str] = {}

    def refuse(*_: object) -> NoReturn:
        raise _Refused

    def start_ns(prefix: str | None, uri: str) -> None:
        pending[prefix] = uri

    def start(name: str, attrs: dict[str, str]) -> None:
        nsmap = {**stack[-1].nsmap, **pending} if stack else dict(pending)
        pending.clear()
        node = Node(_split(name), attrs, nsmap)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)

    def end(_: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack and not stack[-1].children:  # the text before the first child, as lxml's
            stack[-1].text += data

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartNamespaceDeclHandler = start_ns
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, _Refused, ValueError):
        return None
    return root[0] if root else None


def _scope_matches(wanted: str, have: str, rule: str) -> bool:
    if rule == RULE_STRCMP:
        return wanted == have
    w, h = wanted.rstrip("/"), have.rstrip("/")
    # scheme and authority compare case-insensitively, the path segment by segment
    if [p.lower() for p in w.split("/")[:3]] != [p.lower() for p in h.split("/")[:3]]:
        return False
    ws, hs = w.split("/")[3:], h.split("/")[3:]
    return len(ws) <= len(hs) and hs[: len(ws)] == ws


def local_address_for(peer: str) -> str:
    """The local IPv4 address a datagram to ``peer`` would leave from."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((peer, 9))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._on = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        with contextlib.suppress(Exception):
            self._on(data, (str(addr[0]), int(addr[1])))


class DiscoveryResponder:
    """Answers probes for ``device`` (see the module docstring)."""

    def __init__(
        self,
        device: Device,
        *,
        addresses: list[str],
        port: int,
        http_port: int,
        scheme: str = "http",
    ) -> None:
        self.device = device
        self.addresses = addresses or ["0.0.0.0"]
        self.port = port
        self.http_port = http_port
        self.scheme = scheme
        self.endpoint = (
            f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'camio:' + device.config.device.serial)}"
        )
        self._instance = str(int(device.clock.wall_ns() // 1_000_000_000))
        self._number = 0
        self._transports: list[asyncio.DatagramTransport] = []
        self._senders: list[tuple[str, asyncio.DatagramTransport]] = []

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        wildcard = any(a in ("0.0.0.0", "") for a in self.addresses)
        try:
            if wildcard:
                sock = self._socket("", join=["0.0.0.0"])
                transport = await self._endpoint(loop, sock)
                self._senders.append(("0.0.0.0", transport))
            else:
                for address in self.addresses:
                    sock = self._socket(address, join=[])
                    transport = await self._endpoint(loop, sock)
                    self._senders.append((address, transport))
                group = self._socket(GROUP, join=self.addresses)
                await self._endpoint(loop, group)
        except OSError:
            await self.stop(bye=False)
            raise
        self._send_multicast(self._hello())

    async def stop(self, *, bye: bool = True) -> None:
        if bye and self._senders:
            with contextlib.suppress(OSError):
                self._send_multicast(self._bye())
        for transport in self._transports:
            transport.close()
        self._transports.clear()
        self._senders.clear()

    async def _endpoint(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket
    ) -> asyncio.DatagramTransport:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self._datagram), sock=sock
        )
        self._transports.append(transport)
        return transport

    def _socket(self, bind: str, *, join: list[str]) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            if bind not in ("", GROUP):
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(bind))
            sock.bind((bind, self.port))
            for address in join:
                mreq = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(address))
                try:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                except OSError as exc:
                    _log.warning("WS-Discovery: cannot join %s on %s: %s", GROUP, address, exc)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    # -- messages -----------------------------------------------------------------------------

    def _sequence(self) -> str:
        self._number += 1
        return _e("d:AppSequence", InstanceId=self._instance, MessageNumber=str(self._number))

    def _scopes(self) -> str:
        video = self.device.services.get(VIDEO)
        return " ".join(scopes(self.device.config, video=video is not None and video.enabled))

    def _xaddrs(self, local: str) -> str:
        return f"{self.scheme}://{local}:{self.http_port}/onvif/device_service"

    def _description(self, local: str) -> list[str]:
        return [
            _e("wsa:EndpointReference", _t("wsa:Address", self.endpoint)),
            _t("d:Types", "dn:NetworkVideoTransmitter tds:Device"),
            _t("d:Scopes", self._scopes()),
            _t("d:XAddrs", self._xaddrs(local)),
            _t("d:MetadataVersion", "1"),
        ]

    def _hello(self) -> Callable[[str], bytes]:
        def build(local: str) -> bytes:
            body = _e("d:Hello", *self._description(local))
            return _envelope("Hello", TO_DISCOVERY, body, [self._sequence()])

        return build

    def _bye(self) -> Callable[[str], bytes]:
        def build(local: str) -> bytes:
            body = _e("d:Bye", _e("wsa:EndpointReference", _t("wsa:Address", self.endpoint)))
            return _envelope("Bye", TO_DISCOVERY, body, [self._sequence()])

        return build

    def _send_multicast(self, build: Callable[[str], bytes]) -> None:
        for address, transport in self._senders:
            local = address if address != "0.0.0.0" else local_address_for(GROUP)
            with contextlib.suppress(OSError):
                transport.sendto(build(local), (GROUP, self.port))

    # -- probes -------------------------------------------------------------------------------

    def matches(self, probe: Node) -> bool:
        types_el = probe.find((NS_D, "Types"))
        if types_el is not None and types_el.text.strip():
            for qname in types_el.text.split():
                prefix, _, local = qname.rpartition(":")
                namespace = types_el.nsmap.get(prefix or None)
                if (namespace, local) not in TYPES:
                    return False
        scopes_el = probe.find((NS_D, "Scopes"))
        if scopes_el is not None and scopes_el.text.strip():
            rule = scopes_el.attrs.get("MatchBy", RULE_RFC3986)
            if rule not in (RULE_RFC3986, RULE_STRCMP):
                return False
            have = self._scopes().split()
            for wanted in scopes_el.text.split():
                if not any(_scope_matches(wanted, h, rule) for h in have):
                    return False
        return True

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        root = parse_datagram(data)
        if root is None:
            return
        probe = root.find((NS_ENV, "Body"), (NS_D, "Probe"))
        if probe is None or not self.matches(probe):
            return
        found = root.find((NS_ENV, "Header"), (NS_WSA, "MessageID"))
        message_id = found.text if found is not None else ""
        local = local_address_for(addr[0])
        body = _e("d:ProbeMatches", _e("d:ProbeMatch", *self._description(local)))
        reply = _envelope(
            "ProbeMatches",
            ANONYMOUS,
            body,
            [_t("wsa:RelatesTo", message_id.strip()), self._sequence()],
        )
        sender = next((t for a, t in self._senders if a in (local, "0.0.0.0")), None)
        if sender is None and self._senders:
            sender = self._senders[0][1]
        if sender is not None:
            sender.sendto(reply, addr)
