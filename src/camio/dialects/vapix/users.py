"""Accounts as Axis clients read them: ``pwdgrp.cgi action=get`` and ``usergroup.cgi``.

camio's roles are nested (admin > operator > viewer) as Axis groups are, so an administrator is
listed in ``admin``, ``operator`` and ``viewer``. camio has no PTZ: the ``ptz`` group lists the
administrators, as an Axis device lists root there (the axis library needs the key, and an
empty list would read as a user with an empty name). Read-only: users are managed through
camio (``camio user``, the web interface, the native API).
"""

from __future__ import annotations

from aiohttp import web

from camio.api.context import USERS
from camio.api.spec import spec
from camio.dialects.vapix.common import DIALECT, caller, cgi_params, error_text, text
from camio.store.users import Role, User, UserStore

routes = web.RouteTableDef()


def groups_of(role: Role) -> list[str]:
    groups = [
        name
        for name, needed in (("admin", Role.ADMIN), ("operator", Role.OPERATOR))
        if role.allows(needed)
    ]
    if role.allows(Role.ADMIN):
        groups.append("ptz")
    return [*groups, "viewer"]


def pwdgrp_text(users: list[User]) -> str:
    members: dict[str, list[str]] = {"admin": [], "operator": [], "viewer": [], "ptz": []}
    for user in sorted(users, key=lambda u: u.name):
        for group in groups_of(user.role):
            members[group].append(user.name)
    return "".join(f'{group}="{",".join(names)}"\n' for group, names in members.items())


def _users(request: web.Request) -> UserStore:
    return request.app[USERS]


async def _pwdgrp(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    params = dict(await cgi_params(request))
    if params.get("action") != "get":
        return error_text("only action=get is supported; manage users through camio")
    return text(pwdgrp_text(_users(request).list()))


@routes.get("/axis-cgi/pwdgrp.cgi")
@spec("VAPIX pwdgrp.cgi: list accounts by group", role=Role.ADMIN, dialect=DIALECT)
async def pwdgrp_get(request: web.Request) -> web.Response:
    return await _pwdgrp(request)


@routes.post("/axis-cgi/pwdgrp.cgi")
@spec("VAPIX pwdgrp.cgi (form body)", role=Role.ADMIN, dialect=DIALECT)
async def pwdgrp_post(request: web.Request) -> web.Response:
    return await _pwdgrp(request)


@routes.get("/axis-cgi/usergroup.cgi")
@spec("VAPIX usergroup.cgi: the caller's groups", role=Role.VIEWER, dialect=DIALECT)
async def usergroup(request: web.Request) -> web.Response:
    user = caller(request, Role.VIEWER)
    return text(f"{user.name}\n{' '.join(groups_of(user.role))}\n")
