"""Recipients: where notifications and uploads go (e-mail, FTP, SFTP, HTTP, TCP, a share).

The configuration models live here so the device document can validate them; each kind is
one module in :mod:`camio.recipients` that registers its model (into :data:`RECIPIENT_MODELS`)
and its sender, so the core never imports an adapter.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from camio.core.ports import PORT_ID_PATTERN, Model
from camio.core.registry import register_kind, validate_kind


class RecipientSpec(Model):
    """What every recipient has; each kind adds its own fields."""

    kind: str
    id: Annotated[str, Field(pattern=PORT_ID_PATTERN.pattern)]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    enabled: bool = True


RECIPIENT_MODELS: dict[str, type[RecipientSpec]] = {}


def register_recipient_model(model: type[RecipientSpec]) -> type[RecipientSpec]:
    return register_kind(RECIPIENT_MODELS, model)


def recipient_by_kind(value: Any) -> Any:
    """Validate a recipient dict as the model of its ``kind`` (a clear error otherwise)."""
    return validate_kind(value, RECIPIENT_MODELS, "recipient")
