"""Browser end-to-end tests: Debian's Chromium (scripts/ensure_browser.sh installs it) driven by Playwright's
Python package against the live site. Screenshots land in artifacts/screenshots/ (CI keeps artifacts/)."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.api.site_checks import get_health, site_url  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 900}
MOBILE = {"width": 390, "height": 844}
# Model calls run on 2 shared CPU cores: allow for a slow answer, but not forever
expect.set_options(timeout=int(os.environ.get("LAB_E2E_TIMEOUT_MS", "60000")))


@pytest.fixture(scope="session")
def browser() -> Browser:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class Visit:
    """One visitor: a page plus what the site did to them (dialogs that fired, uncaught page errors)."""

    def __init__(self, page: Page, base_url: str, name: str):
        self.page, self.base_url, self.name = page, base_url, name
        self.dialogs: list[str] = []
        self.page_errors: list[str] = []
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _on_dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def open(self, query: str = "") -> Page:
        """Load the site (optionally with ?tab=... deep-link parameters) and wait until it has fully started."""
        self.page.goto(self.base_url + query)
        try:
            expect(self.page.locator("#status-line")).to_contain_text("Serving on")
        except AssertionError as exc:  # say whether the site itself answered, or only the page's load event hung
            started = time.monotonic()
            try:
                status = f"/health answered {get_health(self.base_url)[0]} in {time.monotonic() - started:.1f} s"
            except Exception as health_exc:  # noqa: BLE001 (reported, not raised)
                status = f"/health failed after {time.monotonic() - started:.1f} s: {health_exc!r}"
            raise AssertionError(f"the status line never said 'Serving on' ({status}; page errors: "
                                 f"{self.page_errors[:3]})\n{exc}") from None
        return self.page

    def tab(self, label: str) -> None:
        """Click a top-level tab the way a person does; on narrow screens the tabs hide behind the ⋯ menu."""
        page = self.page
        tab = page.get_by_role("tab", name=label, exact=True)
        if tab.count() and tab.first.is_visible():
            tab.first.click()
            expect(page.get_by_role("tab", name=label, exact=True, selected=True)).to_be_visible()
        else:
            page.locator(".overflow-menu > button").click()
            page.locator(".overflow-dropdown").get_by_role("button", name=label, exact=True).click()
            expect(page.locator(".overflow-dropdown button.selected")).to_have_text(label)

    def textbox(self, label: str):
        """A textbox by its label. get_by_label cannot find textboxes with a copy button: the <label> that wraps
        them labels its first control, the button."""
        return self.page.locator("label").filter(has_text=label).locator("textarea, input").first

    def screenshot(self, step: str, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{step}.png"
        self.page.screenshot(path=path, full_page=full_page)
        return path

    def error_toast(self, containing: str):
        toast = self.page.get_by_test_id("toast-body").filter(has_text=containing)
        expect(toast.first).to_be_visible()
        return toast.first

    def assert_no_script_ran(self) -> None:
        assert not self.dialogs, f"a dialog fired (injected script ran?): {self.dialogs}"
        assert self.page.locator("img[src='x']").count() == 0, "an injected <img> tag was rendered as HTML"


def _visit(browser: Browser, site_url: str, request, viewport: dict, **context_options):  # noqa: F811
    context = browser.new_context(viewport=viewport, **context_options)
    page = context.new_page()
    page.set_default_timeout(60_000)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    visit = Visit(page, site_url, name)
    yield visit
    try:
        visit.screenshot("final", full_page=True)
    finally:
        context.close()
    assert not visit.dialogs, f"unexpected dialogs: {visit.dialogs}"


@pytest.fixture
def visit(browser, site_url, request):  # noqa: F811
    yield from _visit(browser, site_url, request, DESKTOP)


@pytest.fixture
def mobile_visit(browser, site_url, request):  # noqa: F811
    yield from _visit(browser, site_url, request, MOBILE, is_mobile=True, has_touch=True, device_scale_factor=2)
