"""Plain HTTP redirected to HTTPS (the ``redirect`` HTTP mode)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler


@dataclass(slots=True)
class HttpPolicy:
    """Set by the daemon from the configuration; read on every plain-HTTP request.

    ``redirect_to_port`` is the HTTPS port to send browsers to, or None to serve plain HTTP.
    ``exempt_ports`` are local HTTP ports that always serve (an explicit ``--listen``).
    """

    redirect_to_port: int | None = None
    exempt_ports: frozenset[int] = frozenset()


HTTP_POLICY: web.AppKey[HttpPolicy] = web.AppKey("http_policy", HttpPolicy)


@web.middleware
async def redirect_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    policy = request.app.get(HTTP_POLICY)
    if policy is not None and policy.redirect_to_port is not None and not request.secure:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        local_port = sockname[1] if sockname else None
        if local_port not in policy.exempt_ports:
            host = request.url.host or "localhost"
            if ":" in host:
                host = f"[{host}]"
            target = f"https://{host}:{policy.redirect_to_port}{request.rel_url}"
            # 308 keeps the method and body, so an API PUT is not turned into a GET.
            raise web.HTTPPermanentRedirect(target)
    return await handler(request)
