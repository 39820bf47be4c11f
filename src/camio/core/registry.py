"""Registries of model kinds: conditions, actions, recipients.

Each kind is a pydantic model with a literal ``kind`` field, registered by the module that
implements it, so the core can validate a configuration without importing the adapters.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def register_kind(registry: dict[str, type[M]], model: type[M]) -> type[M]:
    """Add ``model`` to ``registry`` under its default ``kind``."""
    kind = model.model_fields["kind"].default
    if not isinstance(kind, str):
        raise TypeError(f"{model.__name__} needs a default literal 'kind'")
    registry[kind] = model
    return model


def validate_kind(value: Any, registry: dict[str, type[M]], what: str) -> Any:
    """Validate a dict as the registered model of its ``kind``, with a clear error.

    A validation error is re-raised as a plain message so that pydantic reports it under the
    location of the field being validated (``rules.3.action: port: ...``).
    """
    if isinstance(value, BaseModel):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object with a 'kind'")
    kind = value.get("kind")
    model = registry.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(registry)) or "none registered"
        raise ValueError(f"unknown {what} kind {kind!r} (known: {known})")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{loc}: {first['msg']}" if loc else first["msg"]) from None
