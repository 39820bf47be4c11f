"""User management (administrators only): list, create, change role or password, delete."""

from __future__ import annotations

from aiohttp import web

from camio.api.account_models import UserCreate, UserList, UserOut, UserPatch
from camio.api.context import SESSIONS, USERS, audit, caller
from camio.api.errors import read_object
from camio.api.models import parse_body
from camio.api.session_routes import user_out
from camio.api.spec import spec
from camio.engine.errors import Conflict, InvalidRequest, NotFound
from camio.store.users import Role, UserError

routes = web.RouteTableDef()


def _user_error(exc: UserError) -> Exception:
    message = str(exc)
    if message.startswith("no such user"):
        return NotFound(message)
    if "already exists" in message or "last administrator" in message:
        return Conflict(message)
    return InvalidRequest(message)


@routes.get("/api/v1/users")
@spec("List users", role=Role.ADMIN, response=UserList)
async def list_users(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    users = [user_out(u).model_dump(mode="json") for u in request.app[USERS].list()]
    return web.json_response({"users": users})


@routes.post("/api/v1/users")
@spec("Create a user", role=Role.ADMIN, body=UserCreate, response=UserOut, status=201)
async def create_user(request: web.Request) -> web.Response:
    admin = caller(request, Role.ADMIN)
    body = parse_body(UserCreate, await read_object(request))
    try:
        user = request.app[USERS].add(body.name, body.password, body.role)
    except UserError as exc:
        raise _user_error(exc) from None
    audit(request, "user_created", admin, name=user.name, role=body.role)
    return web.json_response(user_out(user).model_dump(mode="json"), status=201)


@routes.patch("/api/v1/users/{name}")
@spec("Change a user's role or password", role=Role.ADMIN, body=UserPatch, response=UserOut)
async def patch_user(request: web.Request) -> web.Response:
    admin = caller(request, Role.ADMIN)
    name = request.match_info["name"]
    body = parse_body(UserPatch, await read_object(request))
    users = request.app[USERS]
    if users.get(name) is None:
        raise NotFound(f"no such user {name!r}")
    try:
        if body.role is not None:
            users.set_role(name, body.role)
            audit(request, "user_role", admin, name=name, role=body.role)
        if body.password is not None:
            users.set_password(name, body.password)
            request.app[SESSIONS].end_user(name)
            audit(request, "user_password", admin, name=name)
    except UserError as exc:
        raise _user_error(exc) from None
    user = users.get(name)
    assert user is not None
    return web.json_response(user_out(user).model_dump(mode="json"))


@routes.delete("/api/v1/users/{name}")
@spec("Delete a user (not the last administrator)", role=Role.ADMIN, status=204)
async def delete_user(request: web.Request) -> web.Response:
    admin = caller(request, Role.ADMIN)
    name = request.match_info["name"]
    try:
        request.app[USERS].delete(name)
    except UserError as exc:
        raise _user_error(exc) from None
    request.app[SESSIONS].end_user(name)
    audit(request, "user_deleted", admin, name=name)
    return web.Response(status=204)
