"""The rule runner: turns events into rule evaluations and rule transitions into actions."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from camio.core.clock import Timer
from camio.core.conditions import SourceKey
from camio.core.events import Cause, Event, EventKind, Topic
from camio.core.rules import RuleConfig, RuleSet, RuleState, RunMode, Transition
from camio.engine.actions import EXECUTORS, ActionContext, ActionRun, executor_for

if TYPE_CHECKING:
    from camio.engine.device import Device

_LOGGER = logging.getLogger(__name__)

#: How an event's topic maps onto the source keys conditions listen to. Adapters that add a
#: condition kind (e.g. MQTT messages) add their topic here.
TOPIC_KEYS: dict[str, str] = {
    Topic.INPUT: "input",
    Topic.OUTPUT: "output",
    Topic.VIRTUAL_INPUT: "vinput",
    Topic.MANUAL_TRIGGER: "manual",
    Topic.SCHEDULE: "schedule",
    Topic.RECURRENCE: "recurrence",
    Topic.DEVICE_STARTED: "started",
    Topic.VIDEO_SOURCE: "video_lost",
    Topic.STORAGE_FULL: "storage_full",
    Topic.STORAGE_FAILURE: "storage_failure",
    "mqtt/message": "mqtt",  # source = the subscribed topic filter (camio.mqtt)
}


#: How deep rules may chain within one instant (rule -> event -> rule ...). Deeper means a
#: loop in the rule graph (a rule whose action undoes its own condition); it is cut there and
#: reported instead of spinning the device forever.
MAX_CASCADE = 32


class RuleRunner:
    """Evaluates the rules a change affects and runs their actions, in event order."""

    def __init__(self, device: Device) -> None:
        self._device = device
        self._depth: dict[int, int] = {}
        self.loops_cut = 0
        self.rules = RuleSet([])
        self._runs: dict[str, ActionRun] = {}
        self._retry: dict[str, Timer] = {}
        self.current_event: Event | None = None

    def key_of(self, event: Event) -> SourceKey | None:
        kind = TOPIC_KEYS.get(event.topic)
        if kind is None:
            return None
        if kind in ("started", "manual"):
            return (kind, "")
        return (kind, event.source)

    def load(self, rules: list[RuleConfig], *, initial: bool = False) -> None:
        """Install a new rule list, keeping the memory of rules that did not change.

        A rule that is new or changed is primed with the current state instead of fired, so
        editing a rule does not replay an action; a while-active rule starts if it holds.
        Holds of removed or changed while-active rules are reverted first, unless the edited
        rule keeps the same action and still holds: then the hold simply continues (renaming a
        rule must not make its relay drop out for an instant).
        """
        old = self.rules.states
        new = RuleSet(rules, self._device)
        for state in new.states.values():
            state.follow = self._follows_source(state)
        for rule_id, state in old.items():
            kept = new.states.get(rule_id)
            if (
                kept is not None
                and kept.follow == state.follow
                and (kept.rule == state.rule or (state.holding and self._keeps_hold(state, kept)))
            ):
                self._carry(state, kept)
                continue
            if state.holding:
                self._execute(state, Transition.STOP, None)
            timer = self._retry.pop(rule_id, None)
            if timer is not None:
                timer.cancel()
            self._runs.pop(rule_id, None)
        self.rules = new
        if initial:
            return
        now = self._device.clock.monotonic_ns()
        for rule_id, state in new.states.items():
            previous = old.get(rule_id)
            if (
                previous is not None
                and previous.rule == state.rule
                and previous.follow == state.follow
            ):
                continue
            if state.continuous:
                self._apply(state, RuleSet.evaluate(state, self._device, None, now), None)
            else:
                self._prime(state)

    def _keeps_hold(self, old: RuleState, new: RuleState) -> bool:
        """Whether an edited while-active rule would hold the same thing right now."""
        rule = new.rule
        return (
            rule.enabled
            and new.continuous
            and rule.action == old.rule.action
            and all(c.holds(self._device, None) for c in rule.conditions)
        )

    def _follows_source(self, state: RuleState) -> bool:
        """A once-rule driving an output configured to follow its source holds it instead."""
        rule = state.rule
        if rule.action_mode != "once" or rule.trigger_first:
            return False
        if not all(c.stateful for c in rule.conditions):
            return False
        executor = EXECUTORS.get(rule.action.kind)
        return executor is not None and executor.follows_source(rule.action, self._device)

    @staticmethod
    def _carry(old: RuleState, new: RuleState) -> None:
        new.value = old.value
        new.trigger_value = old.trigger_value
        new.holding = old.holding
        new.last_action_ns = old.last_action_ns
        new.fired = old.fired
        new.suppressed = old.suppressed

    def _prime(self, state: RuleState) -> None:
        conditions = state.rule.conditions
        view = self._device
        if state.rule.trigger_first:
            state.trigger_value = conditions[0].stateful and conditions[0].holds(view, None)
        else:
            state.value = all(c.stateful for c in conditions) and all(
                c.holds(view, None) for c in conditions
            )

    def evaluate_all(self, pulse: SourceKey | None, event: Event | None) -> None:
        """Evaluate every rule (at start: stateful conditions true now fire their rules)."""
        now = self._device.clock.monotonic_ns()
        for state in list(self.rules.states.values()):
            self._apply(state, RuleSet.evaluate(state, self._device, pulse, now), event)

    def on_event(self, event: Event) -> None:
        """Bus subscriber: re-evaluate the rules that depend on this event's source."""
        if event.kind is EventKind.INITIALIZED:
            return
        key = self.key_of(event)
        if key is None:
            return
        affected = self.rules.affected(key)
        if not affected:
            return
        cause = event.cause
        if cause is not None and cause.kind == "rule" and cause.event_id is not None:
            depth = self._depth.get(cause.event_id, 0) + 1
            if len(self._depth) > 4096:
                self._depth.clear()
            self._depth[event.id] = depth
            if depth > MAX_CASCADE:
                self.loops_cut += 1
                self._device.publish_rule_failure(
                    cause.rule or "",
                    f"rule loop: more than {MAX_CASCADE} chained rule actions at once",
                    cause,
                )
                return
        now = self._device.clock.monotonic_ns()
        device = self._device
        data: Any = event.data
        self.current_event = event
        try:
            for state in affected:
                transition = RuleSet.evaluate(state, device, key, now, data)
                if transition is not None or state.retry_at_ns is not None:
                    self._apply(state, transition, event)
        finally:
            self.current_event = None

    def _apply(self, state: RuleState, transition: Transition | None, event: Event | None) -> None:
        if transition is not None:
            self._execute(state, transition, event)
        if state.retry_at_ns is not None and state.rule.id not in self._retry:
            delay = state.retry_at_ns - self._device.clock.monotonic_ns()
            self._retry[state.rule.id] = self._device.clock.call_later(
                delay, lambda: self._recheck(state.rule.id)
            )

    def _recheck(self, rule_id: str) -> None:
        self._retry.pop(rule_id, None)
        state = self.rules.states.get(rule_id)
        if state is None:
            return
        state.retry_at_ns = None
        now = self._device.clock.monotonic_ns()
        self._apply(state, RuleSet.evaluate(state, self._device, None, now), None)

    def fire(self, rule_id: str, cause: Cause) -> None:
        """Test-fire a rule's action now, whatever its conditions (the UI's Test button)."""
        state = self.rules.states[rule_id]
        ctx = self._context(state, None, cause)
        self._run_once(state, ctx)

    def _context(self, state: RuleState, event: Event | None, cause: Cause) -> ActionContext:
        return ActionContext(
            device=self._device,
            rule=state.rule,
            event=event,
            cause=cause,
            fail=lambda exc: self._fallback(state, exc, event),
        )

    def _execute(self, state: RuleState, transition: Transition, event: Event | None) -> None:
        rule = state.rule
        cause = Cause("rule", rule=rule.id, event_id=event.id if event else None)
        ctx = self._context(state, event, cause)
        try:
            if transition is Transition.FIRE:
                self._run_once(state, ctx)
                return
            executor = executor_for(rule.action)
            if transition is Transition.START:
                executor.start(rule.action, ctx)
            else:
                executor.stop(rule.action, ctx)
            self._device.publish_rule(rule.id, transition, cause)
        except Exception as exc:
            self._fallback(state, exc, event)

    def _run_once(self, state: RuleState, ctx: ActionContext) -> None:
        rule = state.rule
        if rule.run_mode is not RunMode.PARALLEL:
            previous = self._runs.get(rule.id)
            if previous is not None and previous.running:
                if rule.run_mode is RunMode.SINGLE:
                    state.suppressed += 1
                    return
                previous.cancel()
        try:
            run = executor_for(rule.action).run(rule.action, ctx)
        except Exception as exc:
            self._fallback(state, exc, ctx.event)
            return
        if run is not None:
            self._runs[rule.id] = run
        else:
            self._runs.pop(rule.id, None)
        self._device.publish_rule(rule.id, Transition.FIRE, ctx.cause)

    def _fallback(self, state: RuleState, exc: BaseException, event: Event | None) -> None:
        rule = state.rule
        _LOGGER.warning("rule %s: action %s failed: %s", rule.id, rule.action.kind, exc)
        cause = Cause("rule", rule=rule.id, event_id=event.id if event else None, detail="fallback")
        self._device.publish_rule_failure(rule.id, str(exc) or type(exc).__name__, cause)
        if rule.fallback is None:
            return
        ctx = ActionContext(
            device=self._device,
            rule=rule,
            event=event,
            cause=cause,
            fail=lambda err: _LOGGER.error("rule %s: fallback failed too: %s", rule.id, err),
        )
        try:
            executor_for(rule.fallback).run(rule.fallback, ctx)
        except Exception as err:
            _LOGGER.error("rule %s: fallback failed too: %s", rule.id, err)

    def close(self) -> None:
        for timer in self._retry.values():
            timer.cancel()
        self._retry.clear()
