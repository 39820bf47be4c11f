"""The one SOAP endpoint of the ONVIF dialect (loaded on first use by
:mod:`camio.dialects.onvif.mount`, which routes every ``/onvif/...`` POST here).

Importing this module imports every service module (so they register) and the optional events
module. :func:`soap_endpoint`: service lookup by path (404 when none), bounded read, safe parse,
operation lookup by the first Body child, authentication, role check, handler, SOAP 1.2 reply.
Errors become SOAP faults; the only HTTP 500 is an unexpected error inside the device
(``env:Receiver``).

Authentication, in order: a WS-Security UsernameToken in the SOAP header (what ONVIF clients
send); else an HTTP ``Authorization`` header (Digest or Basic in realm ``ONVIF_<SERIAL>``, when
``dialects.onvif.http_auth``); else, for a pre-auth operation, the anonymous caller; else a
``ter:NotAuthorized`` fault (HTTP 401 with Digest/Basic challenges when HTTP auth is on).
The route is public for the auth middleware (``role=None``, ``dialect="onvif"``): the middleware
answers 404 while the dialect is off, and the endpoint checks credentials itself.
"""

from __future__ import annotations

import importlib
import logging
from typing import Final

from aiohttp import hdrs, web
from lxml import etree

from camio.api.auth import Authenticated, Throttled
from camio.api.context import DEVICE
from camio.dialects.onvif import device_service, deviceio, media  # noqa: F401 (registrations)
from camio.dialects.onvif.mount import REALM
from camio.dialects.onvif.soap import (
    ANONYMOUS,
    CONTENT_TYPE,
    FAULT_ACTION,
    MAX_BODY,
    NS,
    Envelope,
    SoapFault,
    SoapRequest,
    el,
    envelope_bytes,
    fault_body,
    find_service,
    parse_envelope,
)
from camio.dialects.onvif.wssec import TokenError, find_token
from camio.store.users import User

__all__ = ["soap_endpoint"]

_log = logging.getLogger(__name__)

#: Modules of the dialect owned elsewhere, imported (so they register) when present.
_OPTIONAL: Final = ("camio.dialects.onvif.events",)
#: A body larger than MAX_BODY is read and dropped up to this much, so the client gets its
#: fault instead of a reset connection; beyond it the connection is closed.
_DRAIN_LIMIT: Final = 16 * 1024 * 1024


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > _DRAIN_LIMIT:
        raise SoapFault("the request is too large", subcodes=(), status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > _DRAIN_LIMIT:
            break
        if size <= MAX_BODY:
            chunks.append(chunk)
    if size > MAX_BODY:
        raise SoapFault("the request is too large", subcodes=(), status=413)
    return b"".join(chunks)


def _not_authorized(message: str, *, challenges: list[str] | None = None) -> SoapFault:
    return SoapFault(
        message,
        subcodes=("ter:NotAuthorized",),
        status=401 if challenges else 400,
        headers={hdrs.WWW_AUTHENTICATE: challenges} if challenges else None,
    )


def _authenticate(request: web.Request, envelope: Envelope, public: bool) -> User:
    realm = request.app[REALM]
    realm_auth = realm(request)
    config = request.app[DEVICE].config.dialects.onvif
    try:
        token = find_token(envelope.header)
        if token is not None:
            return realm.verifier(request).verify(token, request.remote)
    except TokenError as exc:
        raise _not_authorized(f"the sender is not authorized: {exc}") from None
    authorization = request.headers.getall(hdrs.AUTHORIZATION, [])
    challenges = realm_auth.challenges() if config.http_auth else None
    if authorization and config.http_auth:
        if len(authorization) > 1:
            raise _not_authorized("several Authorization headers", challenges=challenges)
        outcome = realm_auth.authenticate(
            method=request.method,
            target=request.raw_path,
            authorization=authorization[0],
            remote=request.remote,
        )
        if isinstance(outcome, Authenticated):
            return outcome.user
        if isinstance(outcome, Throttled):
            raise _not_authorized("too many failed logins", challenges=challenges)
        raise _not_authorized(
            outcome.message, challenges=realm_auth.challenges(stale=outcome.stale)
        )
    if public:
        return ANONYMOUS
    raise _not_authorized(
        "the sender is not authorized: credentials are required", challenges=challenges
    )


def _wsa(header: etree._Element | None, name: str) -> str | None:
    if header is None:
        return None
    found = header.find(f"{{{NS['wsa']}}}{name}")
    return (found.text or "").strip() if found is not None else None


def _reply_headers(header: etree._Element | None, action: str | None) -> list[etree._Element]:
    """wsa:Action and wsa:RelatesTo, when the request used WS-Addressing."""
    request_action = _wsa(header, "Action")
    message_id = _wsa(header, "MessageID")
    out: list[etree._Element] = []
    if request_action is None and message_id is None:
        return out
    if action is None and request_action:
        base = request_action.removesuffix("Request")
        action = base + "Response"
    if action:
        out.append(el("wsa:Action", action, **{"env:mustUnderstand": "1"}))
    if message_id:
        out.append(el("wsa:RelatesTo", message_id))
    return out


def _response(
    body: bytes, status: int, headers: dict[str, list[str]] | None = None
) -> web.Response:
    response = web.Response(body=body, status=status, content_type=CONTENT_TYPE, charset="utf-8")
    response.headers[hdrs.CACHE_CONTROL] = "no-store"
    for name, values in (headers or {}).items():
        for value in values:
            response.headers.add(name, value)
    return response


def _fault_response(fault: SoapFault, header: etree._Element | None) -> web.Response:
    extra = _reply_headers(header, FAULT_ACTION)
    return _response(envelope_bytes(fault_body(fault), extra), fault.status, fault.headers)


async def soap_endpoint(request: web.Request) -> web.StreamResponse:
    """Answer one SOAP request to ``request.path`` (the route's spec is on
    :func:`camio.dialects.onvif.mount.onvif_endpoint`)."""
    service = find_service(request.path)
    if service is None:
        raise web.HTTPNotFound()
    header: etree._Element | None = None
    try:
        envelope = parse_envelope(await _read_body(request))
        header = envelope.header
        operation = service.operations.get(envelope.operation)
        if operation is None:
            raise SoapFault(
                f"the operation {envelope.operation[:64]!r} is not supported here",
                code="Receiver",
                subcodes=("ter:ActionNotSupported",),
            )
        user = _authenticate(request, envelope, operation.public)
        if user is not ANONYMOUS and not user.role.allows(operation.role):
            raise SoapFault(
                f"this operation needs the {operation.role.value} role",
                subcodes=("ter:NotAuthorized",),
            )
        soap = SoapRequest(
            operation=envelope.operation,
            body=envelope.body,
            header=header,
            path=request.path,
            user=user,
            device=request.app[DEVICE],
            http=request,
        )
        body = await operation.handler(soap)
    except SoapFault as fault:
        return _fault_response(fault, header)
    except web.HTTPException:
        raise
    except Exception:
        _log.exception("ONVIF %s failed", request.path)
        internal = SoapFault(
            "internal error", code="Receiver", subcodes=("ter:Action",), status=500
        )
        return _fault_response(internal, header)
    headers = _reply_headers(header, soap.response_action) + soap.response_headers
    return _response(envelope_bytes(body, headers), 200)


def _import_optional() -> None:
    for name in _OPTIONAL:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


_import_optional()
