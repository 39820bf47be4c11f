"""The OpenAPI 3.1 document of the native API, generated from the router and the route specs.

Every route under ``/api/`` must carry a :class:`~camio.api.spec.RouteSpec`; its pydantic
models (the same ones the handler validates and answers with) become the request body, the
query parameters and the response of the operation. A route without a spec makes
:func:`build_openapi` raise, so a new route cannot be left out of the document. A WebSocket
route is listed as a ``GET`` answered by ``101 Switching Protocols``.
"""

from __future__ import annotations

import copy
import http
import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from camio import __version__
from camio.api.schemas import ErrorBody
from camio.api.spec import RouteSpec, spec_of
from camio.core.conditions import CONDITION_MODELS, ConditionBase
from camio.core.ports import Model
from camio.core.recipients import RECIPIENT_MODELS, RecipientSpec
from camio.core.rules import ACTION_MODELS, ActionSpec
from camio.store.users import Role

REF_TEMPLATE = "#/components/schemas/{model}"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_ERRORS = {
    400: "The body is not valid JSON, or a header is malformed",
    401: "No credentials, wrong credentials, or an expired session",
    403: "The role does not allow this, the CSRF token is missing or wrong, or the request "
    "came from another origin",
    404: "No such item",
    409: "Conflict with the current state (the id exists, the configuration revision moved "
    "on, an input cannot be driven, the driver is not the simulator)",
    413: "The body is too large",
    422: "The body or a parameter is invalid; `errors` names each field",
    429: "Too many failed logins from this client; wait `Retry-After` seconds",
}

#: Polymorphic bases: the configuration holds a subclass chosen by ``kind``; each registry maps
#: kinds to the subclasses (filled in by the modules that define them).
_POLYMORPHIC: dict[type[Model], dict[str, Any]] = {
    ConditionBase: CONDITION_MODELS,
    ActionSpec: ACTION_MODELS,
    RecipientSpec: RECIPIENT_MODELS,
}


class MissingSpec(RuntimeError):
    """Routes of the API that carry no :class:`RouteSpec` (so cannot be documented)."""


class _Schemas(GenerateJsonSchema):
    """pydantic's JSON schema, with polymorphic bases as ``oneOf`` their registered kinds and
    without the titles pydantic derives from field names."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        registry = _POLYMORPHIC.get(schema["cls"])
        if registry is None:
            return super().model_schema(schema)
        choices = {
            kind: self.generate_inner(model.__pydantic_core_schema__)
            for kind, model in sorted(registry.items())
        }
        return {
            "oneOf": list(choices.values()),
            "discriminator": {
                "propertyName": "kind",
                "mapping": {kind: ref["$ref"] for kind, ref in choices.items() if "$ref" in ref},
            },
            "description": schema["cls"].__doc__ or "",
        }


@dataclass(frozen=True, slots=True)
class _Operation:
    method: str
    path: str
    name: str
    module: str  # the handler's module, without the package and a "_routes" suffix
    spec: RouteSpec | None  # None only for a WebSocket route without a spec
    websocket: bool


def _is_websocket(handler: Any) -> bool:
    """Whether the handler answers with a WebSocket (from its return annotation)."""
    try:
        hints = typing.get_type_hints(handler)
    except Exception:
        hints = {}
    returned = hints.get("return", getattr(handler, "__annotations__", {}).get("return"))
    if isinstance(returned, type):
        return issubclass(returned, web.WebSocketResponse)
    return isinstance(returned, str) and returned.endswith("WebSocketResponse")


def _operations(app: web.Application, prefix: str) -> Iterator[_Operation]:
    missing: list[str] = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue  # aiohttp's automatic HEAD twin of a GET
        path = route.resource.canonical
        if not path.startswith(prefix):
            continue
        handler = route.handler
        name = getattr(handler, "__name__", repr(handler))
        route_spec = spec_of(handler)
        if route_spec is not None and route_spec.dialect is not None:
            continue  # a camera dialect's route: documented by its vendor, not here
        websocket = _is_websocket(handler)
        if route.method == "*":
            missing.append(f"* {path} ({name}): a catch-all method cannot be documented")
            continue
        if route_spec is None and not websocket:
            missing.append(f"{route.method} {path} ({name})")
            continue
        module = getattr(handler, "__module__", "") or ""
        yield _Operation(
            route.method,
            _PARAM.sub(r"{\1}", path),
            name,
            module.rsplit(".", 1)[-1].removesuffix("_routes"),
            route_spec,
            websocket,
        )
    if missing:
        raise MissingSpec(
            "routes without a RouteSpec (add @spec(...) under the route decorator): "
            + ", ".join(missing)
        )


def _clean(node: Any) -> Any:
    """Tidy generated schemas: reST quotes in descriptions, ``null`` defaults of fields that
    cannot be null (optional fields that are absent rather than null)."""
    if isinstance(node, list):
        return [_clean(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _clean(value) for key, value in node.items()}
    if isinstance(out.get("description"), str):
        out["description"] = out["description"].replace("``", "`").strip()
        if not out["description"]:
            del out["description"]
    if "default" in out and out["default"] is None and not _allows_null(out):
        del out["default"]
    return out


def _allows_null(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "null" or "null" in (schema.get("type") or []):
        return True
    return any(
        isinstance(choice, dict) and choice.get("type") == "null"
        for choice in schema.get("anyOf", []) + schema.get("oneOf", [])
    )


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without its ``null`` branch (absent is how it is null)."""
    choices = schema.get("anyOf")
    if not choices:
        return schema
    rest = [c for c in choices if not (isinstance(c, dict) and c.get("type") == "null")]
    out = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
    if len(rest) == 1:
        out.update(rest[0])
    else:
        out["anyOf"] = rest
    return out


def _require_discriminators(components: dict[str, Any]) -> None:
    """Each variant of a discriminated ``oneOf`` requires the discriminating property."""
    for schema in list(components.values()):
        stack = [schema]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
                continue
            if not isinstance(node, dict):
                continue
            discriminator = node.get("discriminator")
            if isinstance(discriminator, dict):
                prop = discriminator["propertyName"]
                for ref in discriminator.get("mapping", {}).values():
                    variant = components.get(ref.rsplit("/", 1)[-1])
                    if variant is not None and prop not in variant.get("required", []):
                        variant["required"] = [prop, *variant.get("required", [])]
            stack.extend(node.values())


def _security(route_spec: RouteSpec | None, method: str) -> list[dict[str, list[str]]]:
    if route_spec is not None and route_spec.role is None:
        return []
    session: dict[str, list[str]] = {"session": []}
    if method in _UNSAFE and (route_spec is None or route_spec.csrf):
        session["csrf"] = []
    return [{"digest": []}, {"basic": []}, session, {"bearer": []}]


def _error_statuses(op: _Operation, route_spec: RouteSpec | None, has_params: bool) -> set[int]:
    """The error answers an operation can give, from what it is (the error middleware and the
    authentication give the same JSON shape to all of them)."""
    public = route_spec is not None and route_spec.role is None
    unsafe = op.method in _UNSAFE
    statuses: set[int] = set(route_spec.extra_statuses) if route_spec is not None else set()
    if not public or unsafe:
        statuses |= {401, 429} if not public else {429}  # public changes: log-in, setup
    if unsafe:
        statuses |= {403, 409, 422}  # another origin; the state and validation of a change
    if route_spec is not None and route_spec.role in (Role.OPERATOR, Role.ADMIN):
        statuses.add(403)
    if route_spec is not None and route_spec.body is not None:
        statuses |= {400, 413, 422}
    if route_spec is not None and route_spec.query is not None:
        statuses.add(422)
    if has_params:
        statuses.add(404)
    return statuses


def _role_text(route_spec: RouteSpec | None) -> str:
    if route_spec is None:
        return "Needs an authenticated user."
    if route_spec.role is None:
        return "Public: no credentials needed."
    return f"Needs the `{route_spec.role.value}` role (or a higher one)."


def build_openapi(
    app: web.Application,
    *,
    title: str = "camio native API",
    version: str = __version__,
    prefix: str = "/api/",
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route of ``app`` under ``prefix``.

    Raises :class:`MissingSpec` when a route (other than a WebSocket) has no spec.
    """
    operations = sorted(_operations(app, prefix), key=lambda op: (op.path, op.method))
    wanted: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (ErrorBody, "serialization")
    ]
    for op in operations:
        route_spec = op.spec
        if route_spec is None:
            continue
        if route_spec.body is not None:
            wanted.append((route_spec.body, "validation"))
        if route_spec.query is not None:
            wanted.append((route_spec.query, "validation"))
        if route_spec.response is not None:
            wanted.append((route_spec.response, "serialization"))
    refs, top = models_json_schema(
        list(dict.fromkeys(wanted)), ref_template=REF_TEMPLATE, schema_generator=_Schemas
    )
    components: dict[str, Any] = _clean(top.get("$defs", {}))
    refs = {key: _clean(value) for key, value in refs.items()}
    _require_discriminators(components)

    def ref(model: type[BaseModel], mode: Literal["validation", "serialization"]) -> Any:
        return copy.deepcopy(refs[(model, mode)])

    def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
        schema = ref(model, "validation")
        if "$ref" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[-1]]
        params = []
        for name, info in model.model_fields.items():
            prop = _without_null(copy.deepcopy(schema["properties"][info.alias or name]))
            param: dict[str, Any] = {
                "name": info.alias or name,
                "in": "query",
                "required": info.is_required(),
                "schema": prop,
            }
            if "description" in prop:
                param["description"] = prop.pop("description")
            params.append(param)
        return params

    paths: dict[str, dict[str, Any]] = {}
    seen_ids: set[str] = set()
    for op in operations:
        route_spec = op.spec
        names = _PARAM.findall(op.path)
        operation_id = op.name if op.name not in seen_ids else f"{op.module}_{op.name}"
        while operation_id in seen_ids:
            operation_id = f"{operation_id}_{op.method.lower()}"
        seen_ids.add(operation_id)
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "summary": route_spec.summary if route_spec else op.name.replace("_", " "),
            "description": _role_text(route_spec),
            "security": _security(route_spec, op.method),
        }
        if route_spec is not None and route_spec.tags:
            operation["tags"] = list(route_spec.tags)
        elif op.module:
            operation["tags"] = [op.module]
        if route_spec is not None and route_spec.role is not None:
            operation["x-camio-role"] = route_spec.role.value
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in names
        ]
        if route_spec is not None and route_spec.query is not None:
            parameters += query_parameters(route_spec.query)
        if parameters:
            operation["parameters"] = parameters
        if route_spec is not None and route_spec.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(route_spec.body, "validation")}},
            }
        elif route_spec is not None and route_spec.upload is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {route_spec.upload: {"schema": {"type": "string", "format": "binary"}}},
            }
        responses: dict[str, Any] = {}
        if op.websocket:
            responses["101"] = {"description": "Switching Protocols: the WebSocket stream"}
        else:
            assert route_spec is not None
            status = str(route_spec.status)
            answer: dict[str, Any] = {"description": http.HTTPStatus(route_spec.status).phrase}
            if route_spec.response is not None:
                answer["content"] = {
                    route_spec.content_type: {"schema": ref(route_spec.response, "serialization")}
                }
            elif route_spec.content_type != "application/json" and route_spec.status != 204:
                answer["content"] = {route_spec.content_type: {}}  # a file: CSV, YAML, HTML
            responses[status] = answer
        for code in sorted(_error_statuses(op, route_spec, bool(names))):
            if str(code) in responses:
                continue
            error: dict[str, Any] = {
                "description": _ERRORS.get(code, http.HTTPStatus(code).phrase),
                "content": {"application/json": {"schema": ref(ErrorBody, "serialization")}},
            }
            if code == 401:
                error["headers"] = {
                    "WWW-Authenticate": {
                        "description": "Digest (SHA-256, MD5) and Basic challenges",
                        "schema": {"type": "string"},
                    }
                }
            if code == 429:
                error["headers"] = {
                    "Retry-After": {"description": "Seconds", "schema": {"type": "integer"}}
                }
            responses[str(code)] = error
        operation["responses"] = responses
        paths.setdefault(op.path, {})[op.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "The native REST API of a camio device: ports, manual control, "
            "the simulator, configuration, rules, schedules, events. Errors are JSON "
            '`{"error", "message"}` (plus `errors: [{field, message}]` for validation).',
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "digest": {"type": "http", "scheme": "digest"},
                "basic": {"type": "http", "scheme": "basic"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "camio_session",
                    "description": "Browser session (log in at POST /api/v1/session)",
                },
                "csrf": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRF-Token",
                    "description": "The session's CSRF token, on every state-changing call",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The local CLI token (data directory), from loopback only",
                },
            },
        },
    }
