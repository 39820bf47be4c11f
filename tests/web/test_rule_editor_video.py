"""The rule editor's video actions (snapshot, record, overlay text) and video conditions (storage,
video source lost), in a real browser against a real daemon (see conftest.py).

The daemon runs without a video worker: these tests check what the form writes and reads back
(the rule as the API stores it, the fields when the editor opens again, the descriptions in the
rule list), not that a recording is made (tests/api/test_video_actions.py does that).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("playwright.async_api", reason="playwright is not installed (test extra)")

from playwright.async_api import Locator, Page, expect

if TYPE_CHECKING:
    from conftest import Daemon, Problems

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUBJECT = "{device.name}: {event.topic} {event.source}"
MESSAGE = "{rule.name}: {event.topic} on {event.source} at {event.time}"
GUARD = {
    "kind": "email",
    "id": "guard",
    "name": "Guard",
    "host": "127.0.0.1",
    "port": 9,
    "security": "none",
    "from_address": "camera@example.com",
    "to": ["guard@example.com"],
}


async def sign_in(page: Page, daemon: Daemon) -> None:
    await page.goto(f"{daemon.url}/#/login")
    await page.get_by_label("User name").fill(daemon.admin[0])
    await page.get_by_label("Password").fill(daemon.admin[1])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/#/live*")
    await expect(page.locator("#conn")).to_have_attribute("data-status", "live")


async def shot(page: Page, directory: Path, name: str) -> None:
    await page.mouse.move(0, 0)
    await page.screenshot(path=str(directory / f"{name}.png"), animations="disabled", caret="hide")


async def api_post(page: Page, daemon: Daemon, path: str, body: dict[str, object]) -> None:
    """A call as the signed-in browser makes it: its session cookie and CSRF token."""
    session = await (await page.request.get(f"{daemon.url}/api/v1/session")).json()
    reply = await page.request.post(
        f"{daemon.url}{path}", data=body, headers={"X-CSRF-Token": session["csrf_token"]}
    )
    assert reply.ok, await reply.text()


async def new_rule(page: Page, daemon: Daemon, name: str) -> Locator:
    """The rule editor, opened from the Rules page with the rule's name filled in."""
    await page.goto(f"{daemon.url}/#/rules")
    await page.get_by_role("button", name="New rule").first.click()
    editor = page.locator("dialog[open]")
    await expect(editor.get_by_role("heading", name="New rule")).to_be_visible()
    await editor.get_by_label("Name", exact=True).fill(name)
    return editor


async def save(page: Page, editor: Locator, label: str = "Create rule") -> None:
    await editor.get_by_role("button", name=label).click()
    await expect(page.locator("dialog[open]")).to_have_count(0)


async def stored(page: Page, daemon: Daemon, rule_id: str) -> dict[str, Any]:
    """The rule as GET /api/v1/rules lists it, without its live status."""
    rules = (await (await page.request.get(f"{daemon.url}/api/v1/rules")).json())["rules"]
    (rule,) = [r for r in rules if r["id"] == rule_id]
    del rule["status"]
    return dict(rule)


def rule_row(page: Page, name: str) -> Locator:
    return page.get_by_role("row").filter(has_text=name)


async def edit(page: Page, name: str) -> Locator:
    await rule_row(page, name).get_by_role("button", name="Edit").click()
    editor = page.locator("dialog[open]")
    await expect(editor.get_by_role("heading", name=f"Rule {name}")).to_be_visible()
    return editor


def rule(rule_id: str, name: str, **changes: Any) -> dict[str, Any]:
    """A rule as the form makes it: its defaults, with ``changes``."""
    return {
        "id": rule_id,
        "name": name,
        "enabled": True,
        "conditions": [
            {"kind": "input", "port": "in1", "state": "active", "require_armed": True}
            | {"invert": False}
        ],
        "trigger_first": False,
        "wait_between_actions_ms": 0,
        "action_mode": "once",
        "action": {},
        "fallback": None,
        "run_mode": "parallel",
    } | changes


async def test_a_recording_rule_made_in_the_form(
    daemon: Daemon, page: Page, screenshots: Path
) -> None:
    await sign_in(page, daemon)
    editor = await new_rule(page, daemon, "Door record")
    await editor.get_by_label("Action", exact=True).select_option("record")

    # The backend's defaults; no recipient yet, so no message texts to ask about.
    before = editor.get_by_label("Before (s)")
    after = editor.get_by_label("After (s)", exact=True)
    await expect(before).to_have_value("5")
    await expect(before).to_have_attribute("max", "60")
    await expect(after).to_have_value("10")
    await expect(after).to_have_attribute("max", "3600")
    await expect(editor.get_by_label("Keep on")).to_have_value("local")
    await expect(editor.locator('[data-field="action.recipients"]')).to_be_visible()
    await expect(editor.get_by_label("Subject")).to_be_hidden()
    await expect(editor.get_by_label("Message")).to_be_hidden()

    # While active, "after" counts from the end of the conditions; back to once.
    await editor.get_by_text("While active", exact=True).click()
    await expect(editor.get_by_label("After the conditions end (s)")).to_have_value("10")
    await expect(editor.locator(".alert-info")).to_contain_text(
        "record from 5 s before until 10 s after the conditions end"
    )
    await editor.get_by_text("Once", exact=True).click()
    await expect(editor.get_by_label("After (s)", exact=True)).to_be_visible()

    await before.fill("3")
    await after.fill("7")
    await expect(editor.locator(".alert-info")).to_contain_text("record 3 s before to 7 s after")
    await shot(page, screenshots, "40-rule-editor-record")
    await save(page, editor)

    assert await stored(page, daemon, "door-record") == rule(
        "door-record",
        "Door record",
        action={
            "kind": "record",
            "pre_s": 3,
            "post_s": 7,
            "storage": "local",
            "recipients": [],
            "subject": SUBJECT,
            "message": MESSAGE,
        },
    )
    await expect(rule_row(page, "Door record")).to_contain_text(
        "When Input 1 is active (armed) → record 3 s before to 7 s after"
    )

    editor = await edit(page, "Door record")
    await expect(editor.get_by_label("Action", exact=True)).to_have_value("record")
    await expect(editor.get_by_label("Before (s)")).to_have_value("3")
    await expect(editor.get_by_label("After (s)", exact=True)).to_have_value("7")
    await expect(editor.get_by_label("Keep on")).to_have_value("local")
    # Saved again untouched: the same rule.
    await save(page, editor, "Save")
    assert (await stored(page, daemon, "door-record"))["action"]["pre_s"] == 3


async def test_a_storage_rule_made_in_the_form(
    daemon: Daemon, page: Page, screenshots: Path
) -> None:
    await sign_in(page, daemon)
    editor = await new_rule(page, daemon, "Disk full")
    condition = editor.get_by_role("group", name="Condition 1")
    await condition.get_by_label("Condition", exact=True).select_option("storage")
    # The backend's defaults: the local volume, failed.
    await expect(condition.get_by_label("Volume")).to_have_value("local")
    await expect(condition.get_by_label("Is", exact=True)).to_have_value("failure")
    await condition.get_by_label("Is", exact=True).select_option("full")
    await expect(editor.locator(".alert-info")).to_contain_text("storage local is full")
    await shot(page, screenshots, "41-rule-editor-storage")
    await save(page, editor)

    assert await stored(page, daemon, "disk-full") == rule(
        "disk-full",
        "Disk full",
        conditions=[{"kind": "storage", "volume": "local", "state": "full", "invert": False}],
        action={"kind": "set_output", "port": "out1", "active": True, "duration_ms": None},
    )
    await expect(rule_row(page, "Disk full")).to_contain_text(
        "When storage local is full → Relay 1 active for its alarm time"
    )

    editor = await edit(page, "Disk full")
    condition = editor.get_by_role("group", name="Condition 1")
    await expect(condition.get_by_label("Condition", exact=True)).to_have_value("storage")
    await expect(condition.get_by_label("Volume")).to_have_value("local")
    await expect(condition.get_by_label("Is", exact=True)).to_have_value("full")


async def test_an_overlay_rule_while_active_made_in_the_form(
    daemon: Daemon, page: Page, screenshots: Path
) -> None:
    await sign_in(page, daemon)
    editor = await new_rule(page, daemon, "Door overlay")
    await editor.get_by_label("Action", exact=True).select_option("overlay_text")
    duration = editor.get_by_label("Duration (s)")
    await expect(duration).to_have_value("0")
    await duration.fill("30")  # a once-only setting: not kept while active
    await editor.get_by_text("While active", exact=True).click()
    await expect(duration).to_be_hidden()
    await editor.get_by_label("Overlay text").fill("ALARM {event.source}")
    await expect(editor.locator(".alert-info")).to_contain_text(
        "While Input 1 is active (armed) → show overlay 'ALARM {event.source}'"
    )
    await shot(page, screenshots, "42-rule-editor-overlay")
    await save(page, editor)

    assert await stored(page, daemon, "door-overlay") == rule(
        "door-overlay",
        "Door overlay",
        action_mode="while_active",
        action={"kind": "overlay_text", "text": "ALARM {event.source}", "duration_s": 0},
    )
    row = rule_row(page, "Door overlay")
    await expect(row).to_contain_text("show overlay 'ALARM {event.source}'")
    await expect(row).to_contain_text("While active")

    editor = await edit(page, "Door overlay")
    await expect(editor.get_by_label("While active")).to_be_checked()
    await expect(editor.get_by_label("Overlay text")).to_have_value("ALARM {event.source}")
    await expect(editor.get_by_label("Duration (s)")).to_be_hidden()
    # Once again: the duration comes back.
    await editor.get_by_text("Once", exact=True).click()
    await expect(editor.get_by_label("Duration (s)")).to_have_value("0")


async def test_a_snapshot_rule_with_a_recipient_made_in_the_form(
    daemon: Daemon, page: Page, screenshots: Path, page_problems: Problems
) -> None:
    await sign_in(page, daemon)
    await api_post(page, daemon, "/api/v1/recipients", GUARD)
    editor = await new_rule(page, daemon, "Camera lost")
    condition = editor.get_by_role("group", name="Condition 1")
    await condition.get_by_label("Condition", exact=True).select_option("video_source_lost")
    await editor.get_by_label("Action", exact=True).select_option("snapshot")
    await expect(editor.get_by_label("Snapshots")).to_have_value("1")
    await expect(editor.get_by_label("Interval (ms)")).to_be_hidden()  # one image: no interval
    # The rule's action must run once: said at once in while-active mode.
    await editor.get_by_text("While active", exact=True).click()
    await expect(editor.locator("[data-field=action] > .alert-warn")).to_contain_text(
        "choose the action mode Once"
    )
    await editor.get_by_text("Once", exact=True).click()
    await expect(editor.locator("[data-field=action] > .alert-warn")).to_be_hidden()
    # Out of range: the device's answer shows beside the field.
    await editor.get_by_label("Snapshots").fill("25")
    await editor.get_by_role("button", name="Create rule").click()
    await expect(editor.locator('[data-field="action.count"] .field-error')).to_contain_text("20")
    # The browser logs that answer; it was provoked on purpose.
    refused = [p for p in page_problems.seen if "status of 422" in p]
    assert len(refused) == 1, page_problems.seen
    page_problems.seen.remove(refused[0])
    await editor.get_by_label("Snapshots").fill("3")
    await expect(editor.get_by_label("Interval (ms)")).to_have_value("1000")
    await editor.get_by_label("Keep on").select_option("none")
    await editor.get_by_label("Overlay text").fill("Lost {event.time}")

    # Kept nowhere and sent to nobody: refused beside the recipients, before anything is sent.
    await editor.get_by_role("button", name="Create rule").click()
    recipients = editor.locator('[data-field="action.recipients"]')
    await expect(recipients.locator(".field-error")).to_contain_text("choose a recipient")

    await recipients.get_by_role("checkbox", name=re.compile("^Guard")).check()
    await expect(editor.get_by_label("Subject")).to_have_value(SUBJECT)
    await editor.get_by_label("Subject").fill("Camera {event.source}")
    await expect(editor.locator(".alert-info")).to_contain_text(
        "When video source lost → take 3 snapshots, 1 s apart, e-mail to Guard"
    )
    await shot(page, screenshots, "43-rule-editor-snapshot")
    await save(page, editor)

    assert await stored(page, daemon, "camera-lost") == rule(
        "camera-lost",
        "Camera lost",
        conditions=[{"kind": "video_source_lost", "invert": False}],
        action={
            "kind": "snapshot",
            "count": 3,
            "interval_ms": 1000,
            "overlay": "Lost {event.time}",
            "storage": "none",
            "recipients": ["guard"],
            "subject": "Camera {event.source}",
            "message": MESSAGE,
        },
    )
    await expect(rule_row(page, "Camera lost")).to_contain_text(
        "take 3 snapshots, 1 s apart, e-mail to Guard"
    )

    editor = await edit(page, "Camera lost")
    await expect(editor.get_by_label("Snapshots")).to_have_value("3")
    await expect(editor.get_by_label("Interval (ms)")).to_have_value("1000")
    await expect(editor.get_by_label("Keep on")).to_have_value("none")
    await expect(editor.get_by_label("Overlay text")).to_have_value("Lost {event.time}")
    await expect(
        editor.locator('[data-field="action.recipients"]').get_by_role("checkbox", name="Guard")
    ).to_be_checked()
    await expect(editor.get_by_label("Subject")).to_have_value("Camera {event.source}")
    await expect(editor.get_by_label("Message")).to_have_value(MESSAGE)


#: Actions and conditions as lib/describe.js puts them in words (ports by name, recipients by
#: name, "e-mail" when every recipient is an e-mail one).
DESCRIBED = [
    (
        "action",
        {"kind": "snapshot", "count": 3, "interval_ms": 1000, "storage": "local"}
        | {"recipients": ["guard"]},
        "once",
        "take 3 snapshots, 1 s apart, e-mail to Guard",
    ),
    (
        "action",
        {"kind": "snapshot", "count": 1, "storage": "share"},
        "once",
        "take a snapshot, kept on the share",
    ),
    (
        "action",
        {"kind": "snapshot", "count": 2, "interval_ms": 500, "storage": "none"}
        | {"recipients": ["guard", "archive"]},
        "once",
        "take 2 snapshots, 500 ms apart, send to Guard, Archive",
    ),
    (
        "action",
        {"kind": "record", "pre_s": 5, "post_s": 10},
        "once",
        "record 5 s before to 10 s after",
    ),
    (
        "action",
        {"kind": "record", "pre_s": 0, "post_s": 120, "storage": "share"},
        "while_active",
        "record from 0 s before until 2 min after the conditions end, kept on the share",
    ),
    (
        "action",
        {"kind": "overlay_text", "text": "ALARM", "duration_s": 0},
        "once",
        "show overlay 'ALARM'",
    ),
    (
        "action",
        {"kind": "overlay_text", "text": "ALARM", "duration_s": 30},
        "once",
        "show overlay 'ALARM' for 30 s",
    ),
    (
        "action",
        {"kind": "overlay_text", "text": "ALARM", "duration_s": 30},
        "while_active",
        "show overlay 'ALARM'",
    ),
    ("action", {"kind": "overlay_text", "text": ""}, "once", "clear the overlay text"),
    ("action", {"kind": "notify", "recipients": ["guard", "gone"]}, "once", "notify Guard, gone"),
    (
        "condition",
        {"kind": "storage", "volume": "local", "state": "full"},
        "",
        "storage local is full",
    ),
    (
        "condition",
        {"kind": "storage", "volume": "share", "state": "failure", "invert": True},
        "",
        "NOT (storage share has failed)",
    ),
    ("condition", {"kind": "video_source_lost"}, "", "video source lost"),
]


async def test_descriptions_of_the_video_actions_and_conditions(daemon: Daemon, page: Page) -> None:
    await sign_in(page, daemon)
    cases = [[what, spec, mode] for what, spec, mode, _ in DESCRIBED]
    texts = await page.evaluate(
        """async (cases) => {
          const d = await import('/static/lib/describe.js');
          const names = d.namesFrom([], [], [
            { id: 'guard', name: 'Guard', kind: 'email' },
            { id: 'archive', name: 'Archive', kind: 'share' },
          ]);
          return cases.map(([what, spec, mode]) => what === 'action'
            ? d.describeAction(spec, names, mode) : d.describeCondition(spec, names));
        }""",
        cases,
    )
    assert texts == [text for *_, text in DESCRIBED], json.dumps(texts, indent=1)


async def test_an_mqtt_rule_made_in_the_form(daemon: Daemon, page: Page) -> None:
    """The MQTT message condition (issue #7) in the same editor."""
    await sign_in(page, daemon)
    editor = await new_rule(page, daemon, "Motion topic")
    condition = editor.get_by_role("group", name="Condition 1")
    await condition.get_by_label("Condition", exact=True).select_option("mqtt")
    await expect(condition.get_by_label("Match")).to_have_value("exact")
    await expect(condition.get_by_label("Kind")).to_have_value("stateless")
    await condition.get_by_label("Topic filter").fill("sensors/+/motion")
    await condition.get_by_label("Payload").fill("1")
    await expect(editor.locator(".alert-info")).to_contain_text(
        'the message "1" arrives on MQTT sensors/+/motion'
    )
    await save(page, editor)
    assert await stored(page, daemon, "motion-topic") == rule(
        "motion-topic",
        "Motion topic",
        conditions=[
            {
                "kind": "mqtt",
                "topic": "sensors/+/motion",
                "payload": "1",
                "match": "exact",
                "mode": "stateless",
                "invert": False,
            }
        ],
        action={"kind": "set_output", "port": "out1", "active": True, "duration_ms": None},
    )
    editor = await edit(page, "Motion topic")
    condition = editor.get_by_role("group", name="Condition 1")
    await expect(condition.get_by_label("Topic filter")).to_have_value("sensors/+/motion")
    await condition.get_by_label("Payload").fill("")
    await condition.get_by_label("Kind").select_option("stateful")
    await save(page, editor, "Save")
    saved = (await stored(page, daemon, "motion-topic"))["conditions"][0]
    assert saved["payload"] is None and saved["mode"] == "stateful"
