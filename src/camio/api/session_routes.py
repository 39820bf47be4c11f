"""First-start setup, browser log-in and log-out, and changing one's own password.

There is no default account. While the device has no user, ``camio run`` prints a one-time
setup code; whoever proves they can read the console creates the administrator here.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

from camio.api.account_models import (
    LoginBody,
    PasswordChange,
    SessionOut,
    SetupBody,
    SetupStatus,
    UserOut,
)
from camio.api.auth import (
    SESSION_KEY,
    Authenticated,
    JSONForbidden,
    JSONTooManyRequests,
    JSONUnauthorized,
    Throttled,
    client_key,
)
from camio.api.context import AUTHENTICATOR, SESSIONS, USERS, audit, caller
from camio.api.errors import read_object
from camio.api.models import parse_body
from camio.api.sessions import COOKIE, Session
from camio.api.spec import spec
from camio.core.events import iso_utc
from camio.engine.errors import Conflict, InvalidRequest
from camio.store.users import Role, User, UserError

routes = web.RouteTableDef()


class SetupCode:
    """The one-time code printed on the console while there is no user."""

    def __init__(self) -> None:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
        raw = "".join(secrets.choice(alphabet) for _ in range(12))
        self.code = "-".join(raw[i : i + 4] for i in range(0, 12, 4))

    def matches(self, presented: str) -> bool:
        normalised = presented.strip().upper().replace(" ", "")
        return hmac.compare_digest(normalised.encode(), self.code.encode())


SETUP: web.AppKey[SetupCode] = web.AppKey("setup_code", SetupCode)


def user_out(user: User) -> UserOut:
    role = user.role.value
    assert role in ("admin", "operator", "viewer")
    created = iso_utc(user.created_wall_ns) if user.created_wall_ns else None
    return UserOut(name=user.name, role=role, created=created)


def _session_response(
    request: web.Request, user: User, token: str | None, session: Session | None, status: int
) -> web.Response:
    body = SessionOut(user=user_out(user), csrf_token=session.csrf_token if session else None)
    response = web.json_response(body.model_dump(mode="json"), status=status)
    if token is not None:
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            path="/",
        )
    response.headers["Cache-Control"] = "no-store"
    return response


def _start_session(request: web.Request, user: User, status: int = 200) -> web.Response:
    token, session = request.app[SESSIONS].create(user)
    return _session_response(request, user, token, session, status)


@routes.get("/api/v1/setup")
@spec("Whether the device still needs its first administrator", role=None, response=SetupStatus)
async def get_setup(request: web.Request) -> web.Response:
    return web.json_response({"needed": request.app[USERS].count() == 0})


@routes.post("/api/v1/setup")
@spec(
    "Create the first administrator with the setup code printed by camio run",
    role=None,
    body=SetupBody,
    response=SessionOut,
    status=201,
    csrf=False,
)
async def post_setup(request: web.Request) -> web.Response:
    users = request.app[USERS]
    authenticator = request.app[AUTHENTICATOR]
    client = client_key(request.remote)
    if authenticator.throttle.retry_after_ns(client) > 0:
        raise JSONTooManyRequests("too many wrong setup codes; wait", retry_after_s=60)
    body = parse_body(SetupBody, await read_object(request))
    if users.count() > 0:
        raise Conflict("the device is already set up; log in instead")
    setup = request.app.get(SETUP)
    if setup is None or not setup.matches(body.code):
        authenticator.throttle.record_failure(client)
        audit(request, "setup_failed", None, reason="wrong setup code")
        raise JSONForbidden("wrong setup code (it is printed on the console by camio run)")
    try:
        user = users.add(body.username, body.password, Role.ADMIN)
    except UserError as exc:
        raise InvalidRequest(str(exc)) from None
    audit(request, "user_created", user, name=user.name, role="admin", via="setup")
    return _start_session(request, user, status=201)


@routes.post("/api/v1/session")
@spec(
    "Log in: a session cookie and the CSRF token for state-changing calls",
    role=None,
    body=LoginBody,
    response=SessionOut,
    csrf=False,
    extra_statuses=(401, 429),
)
async def post_session(request: web.Request) -> web.Response:
    body = parse_body(LoginBody, await read_object(request))
    outcome = request.app[AUTHENTICATOR].login(body.username, body.password, request.remote)
    if isinstance(outcome, Throttled):
        audit(request, "login_throttled", None, username=body.username[:32])
        raise JSONTooManyRequests(
            f"too many failed logins; retry in {outcome.retry_after_s} s",
            retry_after_s=outcome.retry_after_s,
        )
    if not isinstance(outcome, Authenticated):
        audit(request, "login_failed", None, username=body.username[:32])
        raise JSONUnauthorized("wrong user name or password")
    audit(request, "login", outcome.user)
    return _start_session(request, outcome.user)


@routes.get("/api/v1/session")
@spec("Who I am, and my CSRF token when I use a session", role=Role.VIEWER, response=SessionOut)
async def get_session(request: web.Request) -> web.Response:
    user = caller(request, Role.VIEWER)
    return _session_response(request, user, None, request.get(SESSION_KEY), 200)


@routes.delete("/api/v1/session")
@spec("Log out", role=Role.VIEWER, status=204)
async def delete_session(request: web.Request) -> web.Response:
    user = caller(request, Role.VIEWER)
    token = request.cookies.get(COOKIE)
    if token:
        request.app[SESSIONS].end(token)
    audit(request, "logout", user)
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


@routes.put("/api/v1/session/password")
@spec("Change my own password (ends my other sessions)", role=Role.VIEWER, body=PasswordChange)
async def put_password(request: web.Request) -> web.Response:
    user = caller(request, Role.VIEWER)
    body = parse_body(PasswordChange, await read_object(request))
    users = request.app[USERS]
    if users.get(user.name) is None:
        raise InvalidRequest("this account has no password to change")
    if users.verify(user.name, body.old_password) is None:
        audit(request, "password_change_failed", user)
        raise JSONForbidden("the current password is wrong")
    try:
        users.set_password(user.name, body.new_password)
    except UserError as exc:
        raise InvalidRequest(f"new_password: {exc}") from None
    request.app[SESSIONS].end_user(user.name)
    audit(request, "password_changed", user, name=user.name)
    if request.get(SESSION_KEY) is not None:
        return _start_session(request, user)  # this browser stays logged in
    return _session_response(request, user, None, None, 200)
