"""Security headers on every response (API, web interface and errors alike)."""

from __future__ import annotations

from aiohttp import web

#: Scripts and styles only from the device itself, no inline script (the web interface has
#: none), no framing (clickjacking), WebSocket to the same host.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if request.secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
