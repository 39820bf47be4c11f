"""The sender protocol every recipient kind implements, and their registry.

A delivery is built once by the action that triggered it, persisted in the outbox before the
first attempt, and handed to the sender of its recipient until it succeeds, fails for good or
expires. Senders must be idempotent per :attr:`Delivery.key`: they put the key where the
receiver can see it (an HTTP header, a file name, a Message-ID), so a retry after a lost
acknowledgement is recognisable as the same notification.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from camio.core.recipients import RecipientSpec, register_recipient_model


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a delivery (a snapshot, a clip)."""

    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification or upload to one recipient."""

    key: str  # idempotency key: stable across retries and restarts
    recipient_id: str
    subject: str
    body: str
    event: dict[str, Any] = field(default_factory=dict)  # the triggering event (to_dict shape)
    attachments: tuple[Attachment, ...] = ()


class DeliveryError(Exception):
    """A delivery attempt failed; ``message`` is something a user can act on.

    ``permanent`` failures (wrong password, 4xx other than 408/429, a refused address) are not
    retried; the others are, with backoff, until the delivery expires.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


S = TypeVar("S", bound=RecipientSpec)


class Sender(Generic[S]):
    """Sends deliveries to one kind of recipient."""

    async def send(self, spec: S, delivery: Delivery) -> None:
        """Deliver, or raise :class:`DeliveryError`."""
        raise NotImplementedError

    async def test(self, spec: S) -> str:
        """Check the recipient works (connect, authenticate, write a probe where that is
        harmless); return a short success message or raise :class:`DeliveryError`."""
        raise NotImplementedError


SENDERS: dict[str, Sender[Any]] = {}


def register_recipient(model: type[S], sender: Sender[S]) -> None:
    """Register a recipient kind: its configuration model and its sender."""
    register_recipient_model(model)
    SENDERS[model.model_fields["kind"].default] = sender


def sender_for(spec: RecipientSpec) -> Sender[Any]:
    sender = SENDERS.get(spec.kind)
    if sender is None:
        raise DeliveryError(f"no sender for recipient kind {spec.kind!r}", permanent=True)
    return sender
