"""Recipients: where notifications and uploads go (e-mail, FTP, SFTP, HTTP, TCP, a share).

The configuration models live here so the device document can validate them; each kind is
one module in :mod:`camio.recipients` that registers its model (into :data:`RECIPIENT_MODELS`)
and its sender, so the core never imports an adapter.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, ValidationError

from camio.core.ports import PORT_ID_PATTERN, Model


class RecipientSpec(Model):
    """What every recipient has; each kind adds its own fields."""

    kind: str
    id: Annotated[str, Field(pattern=PORT_ID_PATTERN.pattern)]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    enabled: bool = True


RECIPIENT_MODELS: dict[str, type[RecipientSpec]] = {}


def register_recipient_model(model: type[RecipientSpec]) -> type[RecipientSpec]:
    kind = model.model_fields["kind"].default
    if not isinstance(kind, str):
        raise TypeError(f"{model.__name__} needs a default literal 'kind'")
    RECIPIENT_MODELS[kind] = model
    return model


def recipient_by_kind(value: Any) -> Any:
    """Validate a recipient dict as the model of its ``kind`` (a clear error otherwise)."""
    if isinstance(value, RecipientSpec):
        return value
    if not isinstance(value, dict):
        raise ValueError("a recipient must be an object with a 'kind'")
    kind = value.get("kind")
    model = RECIPIENT_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(RECIPIENT_MODELS)) or "none registered"
        raise ValueError(f"unknown recipient kind {kind!r} (known: {known})")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{loc}: {first['msg']}" if loc else first["msg"]) from None
