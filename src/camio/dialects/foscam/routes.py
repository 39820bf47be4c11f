"""Mounting the Foscam dialect into the device's HTTP application.

:class:`FoscamRealm` is the auth middleware's resolver for routes whose spec says
``dialect="foscam"``: 404 while the dialect is off (read from the live configuration at every
request). The CGI route is public to the middleware, because Foscam clients put the
credentials in the query; the resolver hands the handler the authenticator of realm
``foscam`` (same accounts, throttles and audit as the native API), with which it checks
``usr``/``pwd`` itself (see :mod:`.cgiproxy`).
"""

from __future__ import annotations

from aiohttp import web

from camio.api.auth import Authenticator
from camio.api.context import DEVICE
from camio.dialects.foscam import cgiproxy
from camio.dialects.foscam.common import DIALECT

__all__ = ["DIALECT", "FoscamRealm", "setup"]

REALM = "foscam"


class FoscamRealm:
    """The auth middleware's resolver for foscam routes."""

    def __init__(self, base: Authenticator) -> None:
        self._base = base
        self._auth: Authenticator | None = None

    def __call__(self, request: web.Request) -> Authenticator:
        device = request.app[DEVICE]
        if not device.config.dialects.foscam.enabled:
            raise web.HTTPNotFound()
        if self._auth is None:
            self._auth = self._base.for_realm(REALM, allow_basic=False, throttled_as_401=True)
        request[cgiproxy.AUTH_KEY] = self._auth
        return self._auth


def setup(app: web.Application) -> None:
    """Add the dialect's routes to ``app``."""
    app.add_routes(cgiproxy.routes)
