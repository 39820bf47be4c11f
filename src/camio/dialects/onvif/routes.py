"""Mounting the ONVIF dialect into the device's HTTP application, and the one SOAP endpoint.

Every registered service path (:func:`camio.dialects.onvif.soap.register_service`) gets a POST
route served by :func:`soap_endpoint`: bounded read, safe parse, operation lookup by the first
Body child, authentication, role check, handler, SOAP 1.2 reply. Errors become SOAP faults; the
only HTTP 500 is an unexpected error inside the device (``env:Receiver``).

Authentication, in order: a WS-Security UsernameToken in the SOAP header (what ONVIF clients
send); else an HTTP ``Authorization`` header (Digest or Basic in realm ``ONVIF_<SERIAL>``, when
``dialects.onvif.http_auth``); else, for a pre-auth operation, the anonymous caller; else a
``ter:NotAuthorized`` fault (HTTP 401 with Digest/Basic challenges when HTTP auth is on).
The routes are public for the auth middleware (``role=None``, ``dialect="onvif"``): the middleware
answers 404 while the dialect is off, and the endpoint checks credentials itself.
"""

from __future__ import annotations

import importlib
import logging
from typing import Final

from aiohttp import hdrs, web
from lxml import etree

from camio.api.auth import Authenticated, Authenticator, Throttled
from camio.api.context import DEVICE
from camio.api.spec import spec
from camio.dialects.onvif import device_service, deviceio, media  # noqa: F401 (registrations)
from camio.dialects.onvif.common import DIALECT
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
    services,
)
from camio.dialects.onvif.wssec import TokenError, TokenVerifier, find_token
from camio.store.users import User

__all__ = ["DIALECT", "OnvifRealm", "setup"]

_log = logging.getLogger(__name__)

#: Modules of the dialect owned elsewhere, imported (so they register) when present.
_OPTIONAL: Final = ("camio.dialects.onvif.events",)
#: A body larger than MAX_BODY is read and dropped up to this much, so the client gets its
#: fault instead of a reset connection; beyond it the connection is closed.
_DRAIN_LIMIT: Final = 16 * 1024 * 1024


class OnvifRealm:
    """The auth middleware's resolver for ONVIF routes: 404 while the dialect is off, else the
    authenticator of realm ``ONVIF_<SERIAL>`` (same accounts, throttles and audit as the rest),
    and the UsernameToken verifier."""

    def __init__(self, base: Authenticator) -> None:
        self._base = base
        self._current: tuple[str, Authenticator] | None = None
        self._verifier: TokenVerifier | None = None

    def __call__(self, request: web.Request) -> Authenticator:
        device = request.app[DEVICE]
        if not device.config.dialects.onvif.enabled:
            raise web.HTTPNotFound()
        realm = f"ONVIF_{device.config.device.serial.upper()}"
        if self._current is None or self._current[0] != realm:
            auth = self._base.for_realm(
                realm, allow_basic=True, digest_algorithms=("MD5", "SHA-256"), throttled_as_401=True
            )
            self._current = (realm, auth)
        return self._current[1]

    def verifier(self, request: web.Request) -> TokenVerifier:
        if self._verifier is None:
            device = request.app[DEVICE]
            self._verifier = TokenVerifier(
                self._base,
                wall_s=lambda: device.clock.wall_ns() / 1e9,
                window_s=lambda: float(device.config.dialects.onvif.created_window_s),
                cache_size=device.config.dialects.onvif.nonce_cache,
            )
        return self._verifier


REALM: Final = web.AppKey("onvif_realm", OnvifRealm)


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


@spec(
    "ONVIF SOAP 1.2 service (WS-Security UsernameToken, HTTP Digest/Basic, pre-auth operations)",
    role=None,
    dialect=DIALECT,
    content_type=CONTENT_TYPE,
    csrf=False,
    extra_statuses=(400, 401, 413),
)
async def soap_endpoint(request: web.Request) -> web.StreamResponse:
    header: etree._Element | None = None
    try:
        envelope = parse_envelope(await _read_body(request))
        header = envelope.header
        service = find_service(request.path)
        operation = service.operations.get(envelope.operation) if service else None
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


def setup(app: web.Application, realm: OnvifRealm) -> None:
    """Add every registered ONVIF service path to ``app`` (and keep ``realm`` for the endpoint)."""
    _import_optional()
    app[REALM] = realm
    for service in services():
        app.router.add_post(service.path, soap_endpoint)
        if service.prefix:
            app.router.add_post(service.path + "/{tail:.+}", soap_endpoint)
