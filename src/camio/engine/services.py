"""A typed registry of optional services the composition root gives the device (the audio
output, later the video source), so the engine does not import the packages that provide them
and an action or route finds them without a global."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

from camio.engine.errors import NotFound

T = TypeVar("T")


class ServiceKey(Generic[T]):
    """The name of a service and, for the type checker, its type."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"ServiceKey({self.name!r})"


class Services:
    def __init__(self) -> None:
        self._items: dict[str, Any] = {}

    def set(self, key: ServiceKey[T], service: T) -> None:
        self._items[key.name] = service

    def get(self, key: ServiceKey[T]) -> T | None:
        return cast("T | None", self._items.get(key.name))

    def need(self, key: ServiceKey[T]) -> T:
        """The service, or :class:`NotFound` ("this device has no audio output")."""
        service = self.get(key)
        if service is None:
            raise NotFound(f"this device has no {key.name} service")
        return service
