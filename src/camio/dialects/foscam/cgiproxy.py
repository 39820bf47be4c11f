"""``/cgi-bin/CGIProxy.fcgi?cmd=...&usr=...&pwd=...``: the one entry point of the dialect.

The route is public to the auth middleware (``role=None``, ``dialect="foscam"``: 404 while the
dialect is off); this handler authenticates ``usr``/``pwd`` itself, against the same accounts,
with the same per-client and per-account throttles and the same audit hook as every other entry
point (:meth:`Authenticator.check_password`). Failures are counted and audited under the realm
``foscam``; the audit never carries the password, and the access log is off.

Credentials in a URL end up in proxies' and browsers' histories: over plain HTTP they are
refused (result -3, with a message) unless ``dialects.foscam.allow_plain_http`` is on. HTTPS is
always accepted. Whether a request came over TLS is read from the connection itself (the
transport's SSL object), never from a header.

Roles: the get commands need a viewer, clearIOAlarmOutput an operator, setIOAlarmConfig an
administrator; a weaker account gets -3 (access denied).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from camio.api.auth import Authenticated, Authenticator, Throttled, client_key
from camio.api.spec import spec
from camio.dialects.foscam import identity, ioalarm
from camio.dialects.foscam.common import (
    DIALECT,
    PATH,
    CommandError,
    Fields,
    Result,
    cause,
    cgi_result,
    device_of,
)
from camio.engine.errors import DeviceError
from camio.store.users import Role, User

_log = logging.getLogger(__name__)

#: The realm authenticator of the request, set by :class:`~.routes.FoscamRealm`.
AUTH_KEY: Final = web.RequestKey("foscam_auth", Authenticator)

#: Parameters read once; a repeated one is refused (first-wins/last-wins confusion).
_SINGLE: Final = ("cmd", "usr", "pwd")
MAX_QUERY: Final = 4096

MSG_PLAIN_HTTP: Final = (
    "credentials in the URL are refused over plain HTTP: use HTTPS, or turn on "
    "dialects.foscam.allow_plain_http knowingly"
)

routes = web.RouteTableDef()


@dataclass(frozen=True, slots=True)
class Call:
    request: web.Request
    user: User
    params: dict[str, str]


Handler = Callable[[Call], Awaitable[web.Response]]


def over_tls(request: web.Request) -> bool:
    """True when this request arrived on a TLS connection (not from any header)."""
    transport = request.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


async def _get_dev_info(call: Call) -> web.Response:
    return cgi_result(Result.OK, identity.dev_info(device_of(call.request)))


async def _get_product_all_info(call: Call) -> web.Response:
    device = device_of(call.request)
    has_io = ioalarm.io_ports(device).complete
    return cgi_result(Result.OK, identity.product_all_info(device, has_io=has_io))


def _dev_state(call: Call) -> Fields:
    device = device_of(call.request)
    return [
        ("IOAlarm", ioalarm.io_alarm_state(device)),
        ("motionDetectAlarm", 0),
        ("soundAlarm", 0),
        ("record", 0),
        ("sdState", 0),
        ("sdFreeSpace", "0k"),
        ("sdTotalSpace", "0k"),
        ("ntpState", 0),
        ("ddnsState", 0),
        ("url", ""),
        ("upnpState", 0),
        ("isWifiConnected", 0),
        ("wifiConnectedAP", ""),
        ("infraLedState", 0),
    ]


async def _get_dev_state(call: Call) -> web.Response:
    return cgi_result(Result.OK, _dev_state(call))


async def _get_io_alarm_config(call: Call) -> web.Response:
    return cgi_result(Result.OK, ioalarm.get_config(device_of(call.request)))


async def _set_io_alarm_config(call: Call) -> web.Response:
    device = device_of(call.request)
    parsed = ioalarm.IoAlarmRequest.parse(call.params)
    try:
        changed = ioalarm.set_config(device, parsed)
    except DeviceError as exc:
        raise CommandError(Result.EXECUTE_FAILED, str(exc)[:300]) from None
    device.audit("foscam.setIOAlarmConfig", cause(call.request, call.user), **changed)
    return cgi_result(Result.OK)


async def _clear_io_alarm_output(call: Call) -> web.Response:
    device = device_of(call.request)
    output_id = ioalarm.io_ports(device).output_id
    if output_id is None:
        raise CommandError(Result.EXECUTE_FAILED, "this device has no alarm output")
    try:
        device.set_output(output_id, False, cause(call.request, call.user))
    except DeviceError as exc:
        raise CommandError(Result.EXECUTE_FAILED, str(exc)[:300]) from None
    return cgi_result(Result.OK)


#: cmd -> (least role, handler).
COMMANDS: Final[dict[str, tuple[Role, Handler]]] = {
    "getDevInfo": (Role.VIEWER, _get_dev_info),
    "getProductAllInfo": (Role.VIEWER, _get_product_all_info),
    "getDevState": (Role.VIEWER, _get_dev_state),
    "getIOAlarmConfig": (Role.VIEWER, _get_io_alarm_config),
    "setIOAlarmConfig": (Role.ADMIN, _set_io_alarm_config),
    "clearIOAlarmOutput": (Role.OPERATOR, _clear_io_alarm_output),
}


def _authenticate(request: web.Request, usr: str, pwd: str) -> User | web.Response:
    auth = request.get(AUTH_KEY)
    if auth is None:  # the realm resolver did not run: fail closed
        return cgi_result(Result.ACCESS_DENIED, message="authentication unavailable")
    remote = request.remote
    client = client_key(remote)
    if auth.throttle.retry_after_ns(client) > 0:
        return cgi_result(Result.AUTH_ERROR, message="too many failed logins; try again later")
    # A missing usr counts like a wrong password, so probing without a name is throttled too.
    outcome = auth.check_password(usr, pwd, client, remote, "query")
    if isinstance(outcome, Authenticated):
        return outcome.user
    if isinstance(outcome, Throttled):
        return cgi_result(Result.AUTH_ERROR, message="too many failed logins; try again later")
    return cgi_result(Result.AUTH_ERROR, message="wrong user name or password")


@routes.get(PATH)
@spec(
    "Foscam CGIProxy (credentials in the query, checked by the handler)",
    role=None,
    dialect=DIALECT,
    content_type="text/xml",
)
async def cgi_proxy(request: web.Request) -> web.Response:
    device = device_of(request)
    if not over_tls(request) and not device.config.dialects.foscam.allow_plain_http:
        return cgi_result(Result.ACCESS_DENIED, message=MSG_PLAIN_HTTP)
    if len(request.query_string) > MAX_QUERY:
        return cgi_result(Result.FORMAT_ERROR, message="query too long")
    query = request.query
    for name in _SINGLE:
        if len(query.getall(name, [])) > 1:
            return cgi_result(Result.FORMAT_ERROR, message=f"{name} appears more than once")
    found = _authenticate(request, query.get("usr", ""), query.get("pwd", ""))
    if isinstance(found, web.Response):
        return found
    user = found
    cmd = query.get("cmd", "")
    if not cmd:
        return cgi_result(Result.FORMAT_ERROR, message="cmd is missing")
    entry = COMMANDS.get(cmd)
    if entry is None:
        return cgi_result(Result.ACCESS_DENIED, message="command not supported by camio")
    role, handler = entry
    if not user.role.allows(role):
        return cgi_result(Result.ACCESS_DENIED, message=f"{cmd} requires the {role.value} role")
    params = {k: v for k, v in query.items() if k not in _SINGLE}
    try:
        return await handler(Call(request, user, params))
    except CommandError as exc:
        return cgi_result(exc.result, message=exc.message)
