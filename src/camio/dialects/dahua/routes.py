"""Mounting the Dahua / Amcrest CGI dialect into the device's HTTP application.

:class:`DahuaRealm` is the auth middleware's resolver for routes whose spec says
``dialect="dahua"``: 404 while the dialect is off (read from the live configuration at every
request), else the authenticator of realm ``Login to <SERIAL>`` as current Dahua firmware
presents it: Digest MD5 with qop=auth, and Basic when ``allow_basic`` (the amcrest library
tries Basic first and falls back to Digest after a 401). Same accounts, throttles and audit as
the native API; a throttled client gets 401 like any refused login.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from aiohttp import web

from camio.api.auth import Authenticator, RealmCache
from camio.api.context import DEVICE
from camio.dialects.dahua import alarm, configmanager, events, magicbox, outmode
from camio.dialects.dahua.common import DIALECT
from camio.dialects.dahua.identity import dahua_identity

__all__ = ["DIALECT", "DahuaRealm", "setup", "tables"]


def tables() -> Iterator[web.RouteTableDef]:
    yield from (magicbox.routes, alarm.routes, configmanager.routes, events.routes)


class DahuaRealm:
    """The auth middleware's resolver for dahua routes."""

    def __init__(self, base: Authenticator) -> None:
        self._realms = RealmCache(base)

    def __call__(self, request: web.Request) -> Authenticator:
        device = request.app[DEVICE]
        config = device.config.dialects.dahua
        if not config.enabled:
            raise web.HTTPNotFound()
        realm = dahua_identity(device.config.device).realm
        return self._realms.get(realm, allow_basic=config.allow_basic)


def setup(app: web.Application) -> None:
    """Add the dialect's routes, its per-app state and its shutdown hook to ``app``."""
    for table in tables():
        app.add_routes(table)
    app[outmode.MODES] = {}
    app[events.STREAMS] = set[asyncio.Task[None]]()
    app.on_shutdown.append(events.close_streams)
