"""The web interface in a real browser: Playwright driving Debian's chromium against a real
daemon (see conftest.py).

What a person does on the device: the first start with the one-time setup code, signing in (and
being refused with a wrong password), watching an input turn active live when its circuit
closes in the simulator, Start and Stop on an output, and a rule made in the form that then
drives the output. Every page is photographed into ``test-artifacts/screenshots/``.

Nothing sleeps: Playwright's expectations wait (up to 5 s) for what the page should show.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("playwright.async_api", reason="playwright is not installed (test extra)")

from playwright.async_api import Locator, Page, expect

if TYPE_CHECKING:
    from conftest import Daemon

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAGES = ("live", "inputs", "outputs", "rules", "schedules", "events", "users", "system")


async def shot(page: Page, directory: Path, name: str) -> None:
    await page.mouse.move(0, 0)  # no hover effect where the last click was
    await page.screenshot(path=str(directory / f"{name}.png"), animations="disabled", caret="hide")


async def sign_in(page: Page, daemon: Daemon) -> None:
    await page.goto(f"{daemon.url}/#/login")
    await page.get_by_label("User name").fill(daemon.admin[0])
    await page.get_by_label("Password").fill(daemon.admin[1])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/#/live*")
    await expect(page.locator("#conn")).to_have_attribute("data-status", "live")


async def api_post(page: Page, daemon: Daemon, path: str, body: dict[str, object]) -> None:
    """A call as the signed-in browser makes it: its session cookie and CSRF token."""
    session = await (await page.request.get(f"{daemon.url}/api/v1/session")).json()
    reply = await page.request.post(
        f"{daemon.url}{path}", data=body, headers={"X-CSRF-Token": session["csrf_token"]}
    )
    assert reply.ok, await reply.text()


def written(share: Path) -> list[Path]:
    """The files a share recipient wrote (not its temporary files)."""
    return [p for p in share.rglob("*") if p.is_file() and not p.name.startswith(".")]


async def delivered(share: Path) -> list[Path]:
    """The share's files, once there are any (the caller bounds the wait)."""
    while True:
        if files := written(share):
            return files
        await asyncio.sleep(0.05)


def port_card(page: Page, port_id: str) -> Locator:
    """A port's card on Live I/O (found by its id, shown under the name)."""
    return page.locator("article.port").filter(
        has=page.locator(".port-title .sub", has_text=re.compile(rf"^{port_id}$"))
    )


async def test_first_start_onboarding_with_the_setup_code(
    fresh_daemon: Daemon, page: Page, screenshots: Path
) -> None:
    await page.goto(f"{fresh_daemon.url}/")
    await page.wait_for_url("**/#/setup")  # no account yet: straight to the onboarding
    await expect(page.get_by_role("heading", level=1)).to_have_text("Welcome. Set up this device")
    await expect(page.get_by_label("Setup code")).to_be_focused()
    await shot(page, screenshots, "01-setup")

    await page.get_by_label("Setup code").fill("WRONG-CODE-0000")
    await page.get_by_label("Password", exact=True).fill("a long password")
    await page.get_by_label("Repeat the password").fill("another password")
    await page.get_by_role("button", name="Create administrator").click()
    await expect(page.locator("[data-field=repeat] .field-error")).to_have_text(
        "The passwords differ."
    )
    await page.get_by_label("Repeat the password").fill("a long password")
    await page.get_by_role("button", name="Create administrator").click()
    await expect(page.locator(".form-error")).to_contain_text("setup code")
    await shot(page, screenshots, "02-setup-wrong-code")

    # The code as printed, typed in lower case: it is not case-sensitive.
    await page.get_by_label("Setup code").fill(fresh_daemon.setup_code.lower())
    await page.get_by_role("button", name="Create administrator").click()
    await page.wait_for_url("**/#/live")
    await expect(page.locator("#whoami-name")).to_have_text("admin")
    await expect(page.locator("#whoami-role")).to_contain_text(re.compile("admin", re.I))
    await expect(page.locator("#conn")).to_have_attribute("data-status", "live")
    await expect(port_card(page, "in1")).to_be_visible()
    await shot(page, screenshots, "03-live-after-setup")

    # The onboarding is over: its page now sends the signed-in administrator to Live I/O.
    await page.goto(f"{fresh_daemon.url}/#/setup")
    await page.wait_for_url("**/#/live")


async def test_a_wrong_password_is_refused(daemon: Daemon, page: Page, screenshots: Path) -> None:
    await page.goto(f"{daemon.url}/")
    await page.wait_for_url("**/#/login*")  # no session: the sign-in form
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    await expect(page.get_by_label("User name")).to_be_focused()
    await shot(page, screenshots, "04-login")

    await page.get_by_label("User name").fill(daemon.admin[0])
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator(".form-error")).to_have_text("Wrong user name or password.")
    await expect(page.get_by_label("Password")).to_have_value("")
    await shot(page, screenshots, "05-login-refused")
    assert "#/login" in page.url
    # No session came of it: the device still answers 401 to this browser.
    reply = await page.request.get(f"{daemon.url}/api/v1/session")
    assert reply.status == 401

    await page.get_by_label("Password").fill(daemon.admin[1])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/#/live*")
    await expect(page.locator("#whoami-name")).to_have_text(daemon.admin[0])


async def test_closing_an_input_circuit_shows_the_input_active_live(
    daemon: Daemon, page: Page, screenshots: Path
) -> None:
    await sign_in(page, daemon)
    card = port_card(page, "in1")
    await expect(card.locator(".port-state")).to_contain_text("Normal")
    await shot(page, screenshots, "06-live")

    await card.get_by_role("button", name="Close circuit").click()
    # The event stream, not a reload, brings the change (50 ms debounce first).
    await expect(card.locator(".port-state")).to_contain_text("Active")
    await expect(card.get_by_role("button", name="Close circuit")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(card.locator(".port-meta")).to_contain_text("closed")
    await expect(page.locator(".summary")).to_contain_text("1 of 2")
    await expect(port_card(page, "in2").locator(".port-state")).to_contain_text("Normal")
    await shot(page, screenshots, "07-live-input-active")

    await card.get_by_role("button", name="Open circuit").click()
    await expect(card.locator(".port-state")).to_contain_text("Normal")


async def test_start_and_stop_an_output(daemon: Daemon, page: Page, screenshots: Path) -> None:
    await sign_in(page, daemon)
    relay = port_card(page, "out1")
    await expect(relay.locator(".port-state")).to_contain_text("Idle")
    await relay.get_by_role("button", name="Start").click()
    await expect(relay.locator(".port-state")).to_contain_text("Active")
    await expect(relay.locator(".port-meta")).to_contain_text(daemon.admin[0])  # cause: who did it
    await shot(page, screenshots, "08-live-output-started")
    await relay.get_by_role("button", name="Stop").click()
    await expect(relay.locator(".port-state")).to_contain_text("Idle")

    # Alarm out: Manual Control, as on the seed manuals' page.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Alarm out").click()
    await page.wait_for_url("**/#/outputs")
    control = page.get_by_role("group", name="Manual control of Relay 1")
    row = page.get_by_role("row").filter(has=control)
    await expect(row).to_contain_text("Idle")
    await control.get_by_role("button", name="Start").click()
    await expect(row).to_contain_text("Active")
    await shot(page, screenshots, "09-outputs-started")
    await control.get_by_role("button", name="Stop").click()
    await expect(row).to_contain_text("Idle")


async def test_a_rule_made_in_the_form_drives_the_output(
    daemon: Daemon, page: Page, screenshots: Path
) -> None:
    await sign_in(page, daemon)
    await page.goto(f"{daemon.url}/#/rules")
    await page.get_by_role("button", name="New rule").first.click()
    editor = page.locator("dialog[open]")
    await expect(editor.get_by_role("heading", name="New rule")).to_be_visible()

    # Validation beside the field, before anything is sent.
    await editor.get_by_role("button", name="Create rule").click()
    await expect(editor.locator("[data-field=name] .field-error")).to_have_text(
        "Give the rule a name."
    )
    await editor.get_by_label("Name", exact=True).fill("Door alarm")
    await expect(editor.get_by_label("Rule id")).to_have_value("door-alarm")
    # Corrected: the messages beside the name and the (filled-in) id go away.
    await expect(editor.locator("[data-field=name] .field-error")).to_be_hidden()
    await expect(editor.locator("[data-field=id] .field-error")).to_be_hidden()
    # The new rule starts as "input 1 active -> set output 1"; check it says so, then time it.
    condition = editor.get_by_role("group", name="Condition 1")
    await expect(condition.get_by_label("Condition", exact=True)).to_have_value("input")
    await expect(condition.get_by_label("Input", exact=True)).to_have_value("in1")
    await expect(condition.get_by_label("Is", exact=True)).to_have_value("active")
    await expect(editor.get_by_label("Action", exact=True)).to_have_value("set_output")
    await expect(editor.get_by_label("Output", exact=True).first).to_have_value("out1")
    await expect(editor.get_by_label("Set to").first).to_have_value("true")
    await editor.get_by_label("Duration (ms)").first.fill("2000")
    await expect(editor.locator(".alert-info")).to_contain_text("Relay 1")
    await shot(page, screenshots, "10-rule-editor")
    await editor.get_by_role("button", name="Create rule").click()
    await expect(page.locator("dialog[open]")).to_have_count(0)
    row = page.get_by_role("row").filter(has_text="Door alarm")
    await expect(row).to_contain_text("door-alarm")
    await expect(row.get_by_role("switch", name="Rule Door alarm enabled")).to_be_checked()
    await shot(page, screenshots, "11-rules")

    rule = await (await page.request.get(f"{daemon.url}/api/v1/rules/door-alarm")).json()
    assert rule["conditions"][0] | {"require_armed": True, "invert": False} == {
        "kind": "input",
        "port": "in1",
        "state": "active",
        "require_armed": True,
        "invert": False,
    }
    assert rule["action"] == {
        "kind": "set_output",
        "port": "out1",
        "active": True,
        "duration_ms": 2000,
    }

    # See it work: the circuit of input 1 closes, the relay follows for 2 s, cause the rule.
    await page.goto(f"{daemon.url}/#/live")
    await expect(page.locator("#conn")).to_have_attribute("data-status", "live")
    relay = port_card(page, "out1")
    await port_card(page, "in1").get_by_role("button", name="Close circuit").click()
    await expect(relay.locator(".port-state")).to_contain_text("Active")
    await expect(relay.locator(".port-meta")).to_contain_text("rule door-alarm")
    await expect(relay.locator(".countdown")).to_contain_text("s left")
    await shot(page, screenshots, "12-live-rule-fired")
    await expect(relay.locator(".port-state")).to_contain_text("Idle", timeout=5_000)

    # It was on for its 2000 ms: the event log's monotonic times say so.
    reply = await page.request.get(f"{daemon.url}/api/v1/events?topic=io/output&source=out1")
    changes = [e for e in (await reply.json())["events"] if e["kind"] == "changed"]
    on = next(e for e in changes if e["data"]["active"])
    off = next(e for e in changes if not e["data"]["active"] and e["mono_ns"] > on["mono_ns"])
    assert on["cause"]["kind"] == "rule", on
    assert 1.9 <= (off["mono_ns"] - on["mono_ns"]) / 1e9 <= 2.5, (on, off)


async def test_every_page_looks_like_a_product(
    daemon: Daemon, page: Page, screenshots: Path
) -> None:
    await sign_in(page, daemon)
    nav = page.get_by_role("navigation", name="Main")
    for number, name in enumerate(PAGES, start=13):
        await page.goto(f"{daemon.url}/#/{name}")
        await expect(nav.locator(f"a[data-route={name}]")).to_have_attribute("aria-current", "page")
        await expect(page.locator("main h1")).to_be_visible()
        await expect(page.locator("main .loading")).to_have_count(0)
        await expect(page.locator("main .alert-error:visible")).to_have_count(0)
        # What a person sees (a full-page capture would cut the sticky side navigation short),
        # and the end of the page when it is longer than the window.
        await shot(page, screenshots, f"{number:02d}-{name}")
        if await page.evaluate("document.documentElement.scrollHeight > innerHeight + 40"):
            await page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
            await shot(page, screenshots, f"{number:02d}-{name}-end")

    # And the Live page on a phone: navigation behind the menu button.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(f"{daemon.url}/#/live")
    await expect(port_card(page, "in1")).to_be_visible()
    await expect(page.locator("#nav")).to_be_hidden()
    await shot(page, screenshots, "21-live-phone")
    await page.locator("#nav-toggle").click()
    await expect(nav).to_be_in_viewport(ratio=1)
    await shot(page, screenshots, "22-nav-phone")


async def test_a_recipient_made_in_the_form_is_tested_edited_and_deleted(
    daemon: Daemon, page: Page, screenshots: Path
) -> None:
    await sign_in(page, daemon)
    await page.goto(f"{daemon.url}/#/recipients")
    await expect(page.locator("main h1")).to_have_text("Recipients")
    await page.get_by_role("button", name="Add recipient").click()
    editor = page.locator("dialog[open]")
    await editor.get_by_label("Kind").select_option("http")
    await editor.get_by_label("Name", exact=True).fill("Web hook")
    await expect(editor.get_by_label("Id", exact=True)).to_have_value("web-hook")
    await editor.get_by_label("URL").fill("http://127.0.0.1:9/alarm")
    await editor.get_by_label("Authentication").select_option("basic")
    await editor.get_by_label("User name").fill("cam")
    await editor.get_by_label("Password").fill("s3cret-pass")
    await shot(page, screenshots, "23-recipient-editor")
    await editor.get_by_role("button", name="Add recipient").click()
    await expect(page.locator("dialog[open]")).to_have_count(0)
    row = page.get_by_role("row").filter(has_text="Web hook")
    await expect(row.locator("[data-state]")).to_have_text("ok")
    stored = await (await page.request.get(f"{daemon.url}/api/v1/recipients/web-hook")).json()
    assert stored["password"] == "********" and stored["auth"] == "basic", stored

    # Test: the device's own words, shown as they are.
    await row.get_by_role("button", name="Test").click()
    result = page.locator("dialog[open] .test-message")
    await expect(result).to_contain_text("cannot reach 127.0.0.1:9")
    await shot(page, screenshots, "24-recipient-test")
    await page.locator("dialog[open]").get_by_role("button", name="Close", exact=True).last.click()

    # Edit: the stored password is not shown and is kept when the field stays empty.
    await row.get_by_role("button", name="Edit").click()
    editor = page.locator("dialog[open]")
    await expect(editor.get_by_label("Password")).to_have_value("")
    await expect(editor.locator("[data-field=password] .hint")).to_contain_text("stored")
    await editor.get_by_label("URL").fill("http://127.0.0.1:9/other")
    await editor.get_by_role("button", name="Save").click()
    await expect(page.locator("dialog[open]")).to_have_count(0)
    config = await (await page.request.get(f"{daemon.url}/api/v1/config")).json()
    [hook] = [r for r in config["config"]["recipients"] if r["id"] == "web-hook"]
    assert hook["url"] == "http://127.0.0.1:9/other" and hook["password"] == "s3cret-pass"
    await shot(page, screenshots, "25-recipients")

    await row.get_by_role("button", name="Delete recipient Web hook").click()
    await page.locator("dialog[open]").get_by_role("button", name="Delete recipient").click()
    await expect(page.get_by_role("row").filter(has_text="Web hook")).to_have_count(0)


async def test_a_rule_made_in_the_form_notifies_a_share(
    daemon: Daemon, page: Page, screenshots: Path, tmp_path: Path
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    await sign_in(page, daemon)
    await api_post(
        page,
        daemon,
        "/api/v1/recipients",
        {"kind": "share", "id": "archive", "name": "Archive", "path": str(share), "min_free_mb": 0},
    )
    await page.goto(f"{daemon.url}/#/rules")
    await page.get_by_role("button", name="New rule").first.click()
    editor = page.locator("dialog[open]")
    await editor.get_by_label("Name", exact=True).fill("Door notify")
    condition = editor.get_by_role("group", name="Condition 1")
    await expect(condition.get_by_label("Input", exact=True)).to_have_value("in1")
    await expect(condition.get_by_label("Is", exact=True)).to_have_value("active")

    # Input 1 active -> notify the share: the recipient list was loaded with the editor.
    await editor.get_by_label("Action", exact=True).select_option("notify")
    recipients = editor.locator('[data-field="action.recipients"]')
    await recipients.get_by_role("checkbox", name=re.compile("^Archive")).check()
    await expect(editor.get_by_label("Subject")).to_have_value(
        "{device.name}: {event.topic} {event.source}"
    )
    await expect(editor.locator('[data-field="action.subject"] .hint')).to_contain_text(
        "{event.topic}, {event.source}, {device.name}"
    )
    await shot(page, screenshots, "26-rule-editor-notify")
    await editor.get_by_role("button", name="Create rule").click()
    await expect(page.locator("dialog[open]")).to_have_count(0)
    await expect(page.get_by_role("row").filter(has_text="Door notify")).to_be_visible()

    rule = await (await page.request.get(f"{daemon.url}/api/v1/rules/door-notify")).json()
    assert rule["action"] == {
        "kind": "notify",
        "recipients": ["archive"],
        "subject": "{device.name}: {event.topic} {event.source}",
        "message": "{rule.name}: {event.topic} on {event.source} at {event.time}",
    }

    # The circuit of input 1 closes: the delivery lands in the share (bounded wait).
    await api_post(page, daemon, "/api/v1/sim/ports/in1/circuit", {"circuit": "closed"})
    async with asyncio.timeout(5):
        files = await delivered(share)
    assert files, files
