"""Route metadata: who may call a route, what it takes and what it returns.

Every HTTP handler of the device carries a :class:`RouteSpec` (set with :func:`spec`). The
OpenAPI document is generated from it, and the authorization test walks the router and checks
each route against its declared role, so a route without a spec, or one that answers a role it
should refuse, fails the build.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from camio.store.users import Role

H = TypeVar("H", bound=Callable[..., Any])

_ATTR = "__camio_spec__"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """What a route is for and who may call it.

    ``role`` is the least role allowed; ``None`` means public (no credentials needed).
    ``body`` and ``response`` are the pydantic models of the JSON request and response
    (``response=None`` for an empty or non-JSON answer); ``query`` describes query parameters.
    ``csrf`` is False for the few public state-changing routes (log in, first-start setup)
    that cannot carry a session's token yet.
    """

    summary: str
    role: Role | None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    query: type[BaseModel] | None = None
    tags: tuple[str, ...] = ()
    content_type: str = "application/json"
    csrf: bool = True
    extra_statuses: tuple[int, ...] = field(default=())
    upload: str | None = None
    """The media type of a raw (non-JSON) request body, such as ``audio/wav``."""
    dialect: str | None = None
    """A camera dialect's route (``"vapix"``): it authenticates under that dialect's realm,
    answers 404 while the dialect is off, and is not part of the native OpenAPI document."""


def spec(
    summary: str,
    *,
    role: Role | None,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    query: type[BaseModel] | None = None,
    tags: tuple[str, ...] = (),
    content_type: str = "application/json",
    csrf: bool = True,
    extra_statuses: tuple[int, ...] = (),
    upload: str | None = None,
    dialect: str | None = None,
) -> Callable[[H], H]:
    """Attach a :class:`RouteSpec` to a handler (put it under the route decorator)."""
    route_spec = RouteSpec(
        summary=summary,
        role=role,
        body=body,
        response=response,
        status=status,
        query=query,
        tags=tags,
        content_type=content_type,
        csrf=csrf,
        extra_statuses=extra_statuses,
        upload=upload,
        dialect=dialect,
    )

    def mark(handler: H) -> H:
        setattr(handler, _ATTR, route_spec)
        return handler

    return mark


def spec_of(handler: object) -> RouteSpec | None:
    """The spec attached to ``handler`` (or to the function a route wraps), if any."""
    found = getattr(handler, _ATTR, None)
    return found if isinstance(found, RouteSpec) else None
