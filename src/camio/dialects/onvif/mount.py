"""Mounting the ONVIF dialect into the device's HTTP application, without loading it.

The SOAP stack (lxml, WS-Security, every service module) costs several MB of resident memory,
and most devices never meet an ONVIF client. So the HTTP application gets one catch-all POST
route, ``/onvif/{tail}``, whose handler imports :mod:`camio.dialects.onvif.routes` (and with
it the service modules, which register themselves) on its first call and delegates to its
:func:`~camio.dialects.onvif.routes.soap_endpoint`. A path that is no registered service answers
404. While the dialect is off the auth middleware answers 404 before the handler runs, so a
disabled dialect never loads anything.

This module imports only aiohttp, the API's auth, context and spec modules and the standard
library: keep it that way (``tests/dialects/test_onvif_lazy.py`` checks it).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from aiohttp import web

from camio.api.auth import Authenticator
from camio.api.context import DEVICE
from camio.api.spec import spec

if TYPE_CHECKING:
    from camio.dialects.onvif.wssec import TokenVerifier

__all__ = ["CONTENT_TYPE", "DIALECT", "PATH", "REALM", "OnvifRealm", "onvif_endpoint", "setup"]

#: The ``dialect`` of every ONVIF RouteSpec (auth realm, on/off switch).
DIALECT: Final = "onvif"
#: The SOAP 1.2 media type (``camio.dialects.onvif.soap.CONTENT_TYPE``).
CONTENT_TYPE: Final = "application/soap+xml"
#: The one route every ONVIF service path goes through.
PATH: Final = "/onvif/{tail:.+}"
#: The module holding the endpoint; importing it registers every service.
_ROUTES: Final = "camio.dialects.onvif.routes"

_Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]
_endpoint: _Endpoint | None = None


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
            from camio.dialects.onvif.wssec import TokenVerifier  # lxml: only once used

            device = request.app[DEVICE]
            self._verifier = TokenVerifier(
                self._base,
                wall_s=lambda: device.clock.wall_ns() / 1e9,
                window_s=lambda: float(device.config.dialects.onvif.created_window_s),
                cache_size=device.config.dialects.onvif.nonce_cache,
            )
        return self._verifier


REALM: Final = web.AppKey("onvif_realm", OnvifRealm)


def load() -> _Endpoint:
    """The real endpoint, importing the SOAP stack and every service on the first call."""
    global _endpoint
    if _endpoint is None:
        endpoint: _Endpoint = importlib.import_module(_ROUTES).soap_endpoint
        _endpoint = endpoint
    return _endpoint


@spec(
    "ONVIF SOAP 1.2 service (WS-Security UsernameToken, HTTP Digest/Basic, pre-auth operations)",
    role=None,
    dialect=DIALECT,
    content_type=CONTENT_TYPE,
    csrf=False,
    extra_statuses=(400, 401, 413),
)
async def onvif_endpoint(request: web.Request) -> web.StreamResponse:
    return await load()(request)


def setup(app: web.Application, realm: OnvifRealm) -> None:
    """Route every ``/onvif/...`` POST to the (lazily loaded) SOAP endpoint; keep ``realm`` for
    it."""
    app[REALM] = realm
    app.router.add_post(PATH, onvif_endpoint)
