"""Fixtures for the browser tests: a real daemon in-process and one headless Chromium per module.

The daemon is a :class:`~camio.app.CamioApp` on a loopback port (plain HTTP only), started on
the same event loop as Playwright's async API, so the browser and the device share one loop for
the whole module (``loop_scope="module"``). Each test gets a fresh daemon (about 0.1 s) and a
fresh browser context; the browser itself is launched once per module.

Playwright is imported inside the fixtures: the other web tests in this folder do not need it.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from camio.app import CamioApp, Settings

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page

ADMIN = ("admin", "admin-secret-1")

#: Debian's chromium; the binary behind the /usr/bin wrapper first (no wrapper warning).
CHROMIUM_PATHS = (Path("/usr/lib/chromium/chromium"), Path("/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
#: Test artifacts (git-ignored): one PNG per page and state, to look at after a run.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

#: What the browser logs for an answer the test provoked on purpose (a wrong password, a wrong
#: setup code); any other console error or uncaught exception fails the test.
_EXPECTED_CONSOLE = re.compile(r"Failed to load resource: .*status of (401|403)\b")


def chromium_path() -> Path | None:
    return next((p for p in CHROMIUM_PATHS if p.is_file()), None)


@dataclass
class Daemon:
    app: CamioApp
    url: str
    #: The administrator's name and password (no password yet on a first start).
    admin: tuple[str, str] = ADMIN

    @property
    def setup_code(self) -> str:
        """The one-time code ``camio run`` prints on the console on a first start."""
        assert self.app._setup_code is not None, "not a first start"
        return self.app._setup_code.code


async def _start(tmp_path: Path) -> CamioApp:
    settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0, https_off=True)
    app = CamioApp(settings, out=io.StringIO())
    await app.start()
    return app


@pytest_asyncio.fixture(loop_scope="module")
async def fresh_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Daemon]:
    """A first start: no account at all, a setup code on the console."""
    monkeypatch.delenv("CAMIO_ADMIN_USER", raising=False)
    monkeypatch.delenv("CAMIO_ADMIN_PASSWORD", raising=False)
    app = await _start(tmp_path)
    try:
        yield Daemon(app, app.url, admin=("admin", ""))
    finally:
        await app.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Daemon]:
    """A device with its administrator (from the environment, the automated-install path)."""
    monkeypatch.setenv("CAMIO_ADMIN_USER", ADMIN[0])
    monkeypatch.setenv("CAMIO_ADMIN_PASSWORD", ADMIN[1])
    app = await _start(tmp_path)
    try:
        yield Daemon(app, app.url)
    finally:
        await app.stop()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One headless Debian chromium for the module (never a downloaded browser)."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Debian chromium at /usr/bin/chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Problems:
    """Uncaught exceptions and console errors of one page: a product page has none."""

    seen: list[str] = field(default_factory=list)

    def console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error" and not _EXPECTED_CONSOLE.search(msg.text):
            self.seen.append(f"console.error: {msg.text}")

    def page_error(self, exc: Any) -> None:
        self.seen.append(f"uncaught: {exc}")


@pytest.fixture
def page_problems() -> Iterator[Problems]:
    problems = Problems()
    yield problems
    assert not problems.seen, "\n".join(problems.seen)


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, page_problems: Problems) -> AsyncIterator[Page]:
    """A fresh context (no cookies) and page at desktop size for each test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(5_000)
    try:
        new_page = await context.new_page()
        new_page.on("console", page_problems.console)
        new_page.on("pageerror", page_problems.page_error)
        yield new_page
    finally:
        await context.close()
