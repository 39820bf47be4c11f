"""The action registry: how the rule runner executes an action kind.

An action kind is one module in :mod:`camio.actions` with its configuration model (a subclass of
:class:`~camio.core.rules.ActionSpec`) and an executor registered here. The engine never changes
when a kind is added.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from camio.core.events import Cause, Event
from camio.core.rules import ActionSpec, RuleConfig, register_action_model

if TYPE_CHECKING:
    from camio.engine.device import Device


class ActionError(Exception):
    """The action could not be carried out; the rule's fallback action runs, if any."""


class ActionRun(Protocol):
    """A running once-action, for the rule's run mode (single / restart)."""

    @property
    def running(self) -> bool: ...

    def cancel(self) -> None: ...


@dataclass(slots=True)
class ActionContext:
    """What an executor gets: the device, the rule, the triggering event and the cause."""

    device: Device
    rule: RuleConfig
    event: Event | None
    cause: Cause
    fail: Callable[[BaseException], None]
    """Report a failure that happened later (in an asynchronous delivery): runs the fallback."""

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run asynchronous work (a delivery) owned by the device; failures go to :attr:`fail`."""
        self.device.spawn(coro, on_error=self.fail)


S = TypeVar("S", bound=ActionSpec)


class ActionExecutor(Generic[S]):
    """Executes one action kind. Override :meth:`run`; while-active kinds also start/stop."""

    def run(self, spec: S, ctx: ActionContext) -> ActionRun | None:
        raise NotImplementedError

    def start(self, spec: S, ctx: ActionContext) -> None:
        """Begin a while-active action (called on the rule's rising edge)."""
        raise ActionError(f"{spec.kind} cannot run while active")

    def stop(self, spec: S, ctx: ActionContext) -> None:
        """Revert a while-active action (called when the conditions stop holding)."""

    def follows_source(self, spec: S, device: Device) -> bool:
        """Whether a once-rule with this action should hold it while its conditions hold."""
        return False


EXECUTORS: dict[str, ActionExecutor[Any]] = {}


def register_action(model: type[S], executor: ActionExecutor[S]) -> None:
    """Register an action kind: its config model for validation and its executor."""
    register_action_model(model)
    kind = model.model_fields["kind"].default
    EXECUTORS[kind] = executor


def executor_for(spec: ActionSpec) -> ActionExecutor[Any]:
    executor = EXECUTORS.get(spec.kind)
    if executor is None:
        raise ActionError(f"no executor for action kind {spec.kind!r}")
    return executor
