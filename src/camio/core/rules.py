"""Rules with Axis semantics: all conditions hold → an action.

- Every condition can be inverted; the first can be marked *trigger only*: the rule then fires
  when that condition becomes true while the others hold, and changes of the others alone never
  fire it.
- *Wait between actions* suppresses flapping: after an action, the rule stays quiet that long.
- The action runs *once* (on the rising edge) or *while active* (started on the rising edge,
  reverted when the conditions stop holding). A *fallback* action runs when the primary fails.

This module holds the models and the pure evaluation; the engine executes the actions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, SerializeAsAny, field_validator, model_validator

from camio.core.clock import NS_PER_MS
from camio.core.conditions import CONDITION_MODELS, Check, ConditionBase, SourceKey, StateView
from camio.core.ports import PORT_ID_PATTERN, Model
from camio.core.registry import register_kind, validate_kind


class ActionSpec(Model):
    """Base of every action's configuration; each kind registers its own subclass.

    The executors live in :mod:`camio.actions`, one module per kind; the models register into
    :data:`ACTION_MODELS` when those modules are imported, so the core never imports them.
    """

    kind: str

    #: Whether the action can be held while a rule is active and reverted afterwards.
    supports_while_active: ClassVar[bool] = False

    def port_refs(self) -> list[tuple[str, str]]:
        """``(direction, port id)`` pairs this action needs to exist."""
        return []


ACTION_MODELS: dict[str, type[ActionSpec]] = {}


def register_action_model(model: type[ActionSpec]) -> type[ActionSpec]:
    """Make an action kind known to rule validation (usable as a class decorator)."""
    return register_kind(ACTION_MODELS, model)


class RunMode(StrEnum):
    """What a rule does when it fires again while its previous action still runs."""

    PARALLEL = "parallel"  # run again; the target's own policy (e.g. output re-trigger) decides
    SINGLE = "single"  # ignore the new firing
    RESTART = "restart"  # stop the running action, then run it again


class RuleConfig(Model):
    """One rule: conditions, action, and how they relate in time."""

    id: Annotated[str, Field(pattern=PORT_ID_PATTERN.pattern)]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    enabled: bool = True
    conditions: Annotated[list[SerializeAsAny[ConditionBase]], Field(min_length=1, max_length=16)]
    trigger_first: bool = Field(
        False, description="The first condition is a trigger: fire when it becomes true"
    )
    wait_between_actions_ms: Annotated[int, Field(ge=0, le=86_400_000)] = 0
    action_mode: Literal["once", "while_active"] = "once"
    action: SerializeAsAny[ActionSpec]
    fallback: SerializeAsAny[ActionSpec] | None = None
    run_mode: RunMode = RunMode.PARALLEL

    @field_validator("conditions", mode="before")
    @classmethod
    def _conditions_by_kind(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [validate_kind(item, CONDITION_MODELS, "condition") for item in value]

    @field_validator("action", "fallback", mode="before")
    @classmethod
    def _action_by_kind(cls, value: Any) -> Any:
        if value is None:
            return None
        return validate_kind(value, ACTION_MODELS, "action")

    @model_validator(mode="after")
    def _consistent(self) -> RuleConfig:
        if self.action_mode == "while_active":
            if self.trigger_first:
                raise ValueError("a 'while_active' rule cannot have a trigger-only condition")
            momentary = [c.kind for c in self.conditions if not c.stateful]
            if momentary:
                raise ValueError(
                    f"a 'while_active' rule needs stateful conditions; {momentary[0]!r} is "
                    "momentary (use action_mode 'once')"
                )
            if not self.action.supports_while_active:
                raise ValueError(f"action {self.action.kind!r} cannot run 'while_active'")
        return self


class Transition(StrEnum):
    FIRE = "fire"  # once: run the action
    START = "start"  # while active: start holding
    STOP = "stop"  # while active: revert


@dataclass(slots=True)
class RuleState:
    """The evaluation memory of one rule."""

    rule: RuleConfig
    value: bool = False  # the AND of all conditions at the last evaluation
    trigger_value: bool = False  # the first condition alone, for trigger_first rules
    holding: bool = False  # a while-active action is running
    last_action_ns: int | None = None
    fired: int = 0
    suppressed: int = 0
    retry_at_ns: int | None = None  # a while-active start held back by the wait
    trigger_keys: frozenset[SourceKey] = field(default_factory=frozenset)
    #: A once-rule whose action follows its source (an output with ``follow_source``): it
    #: starts and stops like a while-active rule.
    follow: bool = False
    #: Compiled conditions (see :meth:`ConditionBase.compile`) and the view they are bound to.
    checks: tuple[Check, ...] = ()
    view: StateView | None = None
    #: Conditions whose result depends on the event (pulses): re-checked without it to know
    #: what still holds afterwards. ``None`` when the rule has no stateless condition.
    steady_checks: tuple[Check, ...] | None = None

    def compile(self, view: StateView) -> None:
        conditions = self.rule.conditions
        self.checks = tuple(c.compile(view) for c in conditions)
        self.view = view
        if all(c.stateful and not c.pulse_sensitive for c in conditions):
            self.steady_checks = None
        else:
            never: Check = lambda pulse, payload: False  # noqa: E731
            self.steady_checks = tuple(
                check if c.stateful else never
                for c, check in zip(conditions, self.checks, strict=True)
            )

    @property
    def continuous(self) -> bool:
        """Starts and stops with its conditions (while active, or following its source)."""
        return self.follow or self.rule.action_mode == "while_active"


class RuleSet:
    """All rules, indexed by the source keys they depend on.

    Evaluating a change touches only the rules that reference it, so the cost of an input edge
    does not grow with the number of rules on the device.
    """

    def __init__(self, rules: Iterable[RuleConfig], view: StateView | None = None) -> None:
        self.states: dict[str, RuleState] = {}
        self._index: dict[SourceKey, list[RuleState]] = {}
        for rule in rules:
            state = RuleState(rule)
            if view is not None:
                state.compile(view)
            if rule.trigger_first:
                state.trigger_keys = frozenset(rule.conditions[0].sources())
            self.states[rule.id] = state
            keys = {key for cond in rule.conditions for key in cond.sources()}
            for key in keys:
                self._index.setdefault(key, []).append(state)

    def affected(self, key: SourceKey) -> list[RuleState]:
        return self._index.get(key, [])

    def keys(self) -> list[SourceKey]:
        return list(self._index)

    @staticmethod
    def evaluate(
        state: RuleState,
        view: StateView,
        pulse: SourceKey | None,
        now_ns: int,
        payload: Any = None,
    ) -> Transition | None:
        """Re-evaluate one rule after the change ``pulse``; returns what to do, if anything."""
        rule = state.rule
        if not rule.enabled:
            if state.holding:
                state.holding = False
                state.value = False
                return Transition.STOP
            return None
        if state.view is not view:
            state.compile(view)
        checks = state.checks
        if rule.trigger_first:
            first = checks[0](pulse, payload)
            rose = first and not state.trigger_value and pulse in state.trigger_keys
            # A momentary trigger is never "still true" at the next evaluation.
            steady = state.steady_checks
            state.trigger_value = first and (steady is None or steady[0](None, None))
            if not rose:
                return None
            for check in checks[1:]:
                if not check(pulse, payload):
                    return None
            return RuleSet._fire(state, now_ns)
        value = True
        for check in checks:
            if not check(pulse, payload):
                value = False
                break
        was = state.value
        # Momentary conditions (and a pulse schedule's event) make the AND true only for this
        # instant, so the next pulse is a new rising edge.
        steady = state.steady_checks
        state.value = value and (steady is None or all(c(None, None) for c in steady))
        if state.continuous:
            if value and not state.holding:
                if RuleSet._waiting(state, now_ns):
                    # The engine re-evaluates then; it starts if the conditions still hold.
                    state.value = False
                    assert state.last_action_ns is not None
                    state.retry_at_ns = (
                        state.last_action_ns + rule.wait_between_actions_ms * NS_PER_MS
                    )
                    return None
                state.retry_at_ns = None
                state.holding = True
                state.last_action_ns = now_ns
                state.fired += 1
                return Transition.START
            if not value and state.holding:
                state.holding = False
                return Transition.STOP
            return None
        if value and not was:
            return RuleSet._fire(state, now_ns)
        return None

    @staticmethod
    def _waiting(state: RuleState, now_ns: int) -> bool:
        wait = state.rule.wait_between_actions_ms * NS_PER_MS
        if wait and state.last_action_ns is not None and now_ns - state.last_action_ns < wait:
            state.suppressed += 1
            return True
        return False

    @staticmethod
    def _fire(state: RuleState, now_ns: int) -> Transition | None:
        if RuleSet._waiting(state, now_ns):
            return None
        state.last_action_ns = now_ns
        state.fired += 1
        return Transition.FIRE
