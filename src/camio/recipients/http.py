"""HTTP(S) recipient: a webhook, GET or POST, with the delivery key as ``Idempotency-Key``.

Status codes decide retries the way HTTP means them: 2xx delivered; 408, 429 and 5xx (and a
connection that fails or times out) are worth retrying; any other 4xx is a configuration the
user must fix (wrong URL, wrong password), so it fails at once with the status in the message.
Certificates are checked unless ``verify_tls`` is turned off; ``ca_file`` trusts a private CA.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import uuid
from functools import partial
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

import aiohttp
from pydantic import Field, field_validator, model_validator

from camio.core.recipients import RecipientSpec
from camio.recipients.base import Delivery, DeliveryError, Sender, register_recipient
from camio.recipients.templates import check, context_for, render

RETRYABLE = frozenset({408, 425, 429})


class HttpRecipient(RecipientSpec):
    kind: Literal["http"] = "http"
    url: Annotated[str, Field(min_length=8, max_length=2048)] = Field(
        description="http:// or https:// URL; the query may use templates like {event.source}"
    )
    method: Literal["GET", "POST"] = "POST"
    headers: Annotated[dict[str, str], Field(max_length=32)] = Field(default_factory=dict)
    body: dict[str, Any] | None = Field(
        None,
        description="JSON body for POST; string values are templates. Default: subject, "
        "message, key and the event",
    )
    auth: Literal["none", "basic", "digest"] = "none"
    username: Annotated[str, Field(max_length=128)] | None = None
    password: Annotated[str, Field(max_length=256)] | None = Field(
        None, description="Write-only: never returned by the API"
    )
    verify_tls: bool = True
    ca_file: Annotated[str, Field(max_length=1024)] | None = None
    timeout_s: Annotated[float, Field(ge=0.5, le=120)] = 10.0

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL with a host")
        return check(value)

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, template in value.items():
            if not name or any(c in name for c in " :\r\n") or "\n" in template:
                raise ValueError(f"invalid header {name!r}")
            check(template)
        return value

    @model_validator(mode="after")
    def _auth(self) -> HttpRecipient:
        if self.auth != "none" and not self.username:
            raise ValueError(f"auth {self.auth!r} needs a username")
        return self


def _render_json(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, dict):
        return {k: _render_json(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_json(v, context) for v in value]
    return value


def _ssl_context(spec: HttpRecipient) -> ssl.SSLContext | bool:
    if not spec.verify_tls:
        return False
    try:
        return ssl.create_default_context(cafile=spec.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError(f"cannot load CA file {spec.ca_file!r}: {exc}", permanent=True) from exc


def _describe(status: int, reason: str | None, text: str) -> str:
    hint = {
        401: " (check username, password and auth type)",
        403: " (the account may not do this)",
        404: " (check the URL)",
    }.get(status, "")
    snippet = " ".join(text.split())[:200]
    return f"HTTP {status} {reason or ''}{hint}".strip() + (f": {snippet}" if snippet else "")


class HttpSender(Sender[HttpRecipient]):
    async def send(self, spec: HttpRecipient, delivery: Delivery) -> None:
        await self._request(spec, delivery)

    async def test(self, spec: HttpRecipient) -> str:
        probe = Delivery(
            key=f"test-{uuid.uuid4().hex[:12]}",
            recipient_id=spec.id,
            subject="camio test",
            body=f"Test notification to {spec.name}",
            event={"topic": "test", "source": "test", "device": {}, "rule": {}},
        )
        status = await self._request(spec, probe)
        return f"HTTP {status} from {urlsplit(spec.url).netloc}"

    async def _request(self, spec: HttpRecipient, delivery: Delivery) -> int:
        context = context_for(delivery)
        url = render(spec.url, context, quote=partial(quote, safe=""))
        headers = {name: render(t, context) for name, t in spec.headers.items()}
        headers["Idempotency-Key"] = delivery.key
        middlewares: tuple[aiohttp.DigestAuthMiddleware, ...] = ()
        if spec.auth == "basic":
            token = f"{spec.username or ''}:{spec.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
        elif spec.auth == "digest":
            middlewares = (aiohttp.DigestAuthMiddleware(spec.username or "", spec.password or ""),)
        kwargs: dict[str, Any] = {}
        if spec.method == "POST":
            payload = (
                _render_json(spec.body, context)
                if spec.body is not None
                else {
                    "subject": delivery.subject,
                    "message": delivery.body,
                    "key": delivery.key,
                    "event": context["event"],
                }
            )
            if delivery.attachments:
                form = aiohttp.FormData()
                form.add_field("payload", json.dumps(payload), content_type="application/json")
                for att in delivery.attachments:
                    form.add_field(
                        "file", att.data, filename=att.name, content_type=att.content_type
                    )
                kwargs["data"] = form
            else:
                kwargs["json"] = payload
        timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout, middlewares=middlewares) as session,
                session.request(
                    spec.method,
                    url,
                    headers=headers,
                    ssl=_ssl_context(spec),
                    allow_redirects=False,
                    **kwargs,
                ) as resp,
            ):
                text = await resp.text(errors="replace")
                status = resp.status
                reason = resp.reason
        except aiohttp.ClientConnectorCertificateError as exc:
            raise DeliveryError(
                f"certificate of {urlsplit(url).netloc} not trusted: {exc.certificate_error} "
                "(add its CA file or turn verify_tls off)"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            # Its str() names the SSL context object; the OS error is what a user can act on.
            errno = exc.os_error.errno
            reason = os.strerror(errno) if errno else str(exc.os_error)
            raise DeliveryError(f"cannot reach {urlsplit(url).netloc}: {reason}") from exc
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"cannot reach {urlsplit(url).netloc}: {exc}") from exc
        except TimeoutError as exc:
            where = urlsplit(url).netloc
            raise DeliveryError(f"no answer from {where} in {spec.timeout_s} s") from exc
        if 200 <= status < 300:
            return status
        message = _describe(status, reason, text)
        permanent = 400 <= status < 500 and status not in RETRYABLE
        raise DeliveryError(message, permanent=permanent or 300 <= status < 400)


register_recipient(HttpRecipient, HttpSender())
