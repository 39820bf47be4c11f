"""Errors the Device facade raises; adapters turn them into their protocol's error replies."""

from __future__ import annotations


class DeviceError(Exception):
    """Base of every error the facade reports to a caller."""

    code = "device_error"


class NotFound(DeviceError):
    """No such port, rule, schedule or virtual input (HTTP 404)."""

    code = "not_found"


class InvalidRequest(DeviceError):
    """The request is well-formed but not valid for this port or state (HTTP 422 / 409)."""

    code = "invalid"


class Conflict(DeviceError):
    """The request conflicts with the device's state, e.g. a stale revision (HTTP 409)."""

    code = "conflict"


class NotSimulated(DeviceError):
    """A simulator operation on real hardware (HTTP 409)."""

    code = "not_simulated"
