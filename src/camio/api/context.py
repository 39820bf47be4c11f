"""Shared request helpers: the device behind the app, the caller, and the cause of a change."""

from __future__ import annotations

from aiohttp import web

from camio.api.auth import SESSION_KEY, Authenticator, require_role
from camio.api.sessions import SessionManager
from camio.core.events import Cause
from camio.engine.device import Device
from camio.store.users import Role, User, UserStore

DEVICE: web.AppKey[Device] = web.AppKey("device", Device)
USERS: web.AppKey[UserStore] = web.AppKey("users", UserStore)
AUTHENTICATOR: web.AppKey[Authenticator] = web.AppKey("authenticator", Authenticator)
SESSIONS: web.AppKey[SessionManager] = web.AppKey("sessions", SessionManager)


def device_of(request: web.Request) -> Device:
    return request.app[DEVICE]


def caller(request: web.Request, role: Role) -> User:
    """The authenticated user, refused with 403 unless their role allows ``role``."""
    return require_role(request, role)


def cause_of(request: web.Request, user: User, kind: str = "api") -> Cause:
    """Who changed something: the user and the client address (never credentials).

    A person pressing a button in the web interface (a session) is ``manual``, a program
    calling the API is ``api``: the Live page says "manual by admin" for the former.
    """
    if kind == "api" and request.get(SESSION_KEY) is not None:
        kind = "manual"
    return Cause(kind, user=user.name, client=request.remote)


def audit(request: web.Request, action: str, user: User | None, **data: object) -> None:
    """Record an action of ``user`` from this request in the audit log (event log)."""
    cause = Cause("api", user=user.name if user else None, client=request.remote)
    device_of(request).audit(action, cause, **data)
