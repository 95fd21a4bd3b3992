"""The customer's cabinet (GET /cabinet, the list of orders with their statuses) in a real
headless Chromium: sign in through the page's form, watch an order placed meanwhile appear
and reach its end, and see the notification about it.

Chromium and its driver are Debian's packages (chromium, chromium-driver), driven with
selenium. Where they are missing the test installs them with apt-get if it can (CI runs as
root), and skips, saying why, only where that is impossible.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from tests.e2e.conftest import LocalStack
from tools.apiclient import ApiClient
from tools.infra.apt import apt_install

pytestmark = pytest.mark.e2e

PACKAGES = ("chromium", "chromium-driver")
# Flags that work in containers and on CI machines without a display, GPU or network.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900",
)
ORDER_END_S = 90.0  # the first order wakes every scaled-to-zero function on the way
PASSWORD = "cabinet-password"


def _binaries() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    found = _binaries()
    if found is None:
        why = apt_install(*PACKAGES)
        found = _binaries()
        if found is None:
            pytest.skip(f"Chromium and chromedriver are not installed and could not be: "
                        f"{why or 'the packages put no chromium/chromedriver on PATH'}")
    chromium, chromedriver = found
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    # An explicit driver path: selenium must not try to download one (no network here).
    service = webdriver.ChromeService(executable_path=chromedriver)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver: Any, element_id: str) -> str:
    text: str = driver.find_element("id", element_id).text
    return text


def _rows(driver: Any) -> list[list[str]]:
    """The order table's cells, read in one go: the page rebuilds the table every refresh,
    so element handles found one by one can go stale in between."""
    rows: list[list[str]] = driver.execute_script(
        "return Array.from(document.querySelectorAll('#orders tr'))"
        ".map(row => Array.from(row.cells).map(cell => cell.textContent));")
    return rows


def _order_row(driver: Any, order_id: str) -> list[str] | None:
    """The cells of the order's row in the table, or None while it is not shown."""
    return next((cells for cells in _rows(driver) if cells and cells[0] == order_id), None)


def _wait_for_end(driver: Any, order_id: str) -> list[str]:
    """The order's row once it shows a terminal status (the page refreshes by itself)."""
    from selenium.webdriver.support.ui import WebDriverWait

    def ended(d: Any) -> list[str] | Literal[False]:
        row = _order_row(d, order_id)
        return row if row and row[1] in ("COMPLETED", "CANCELLED") else False

    row: list[str] = WebDriverWait(driver, ORDER_END_S, poll_frequency=0.5).until(ended)
    return row


def test_a_customer_watches_an_order_end_in_the_cabinet(
    local_stack: LocalStack, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    name = f"cab-{uuid.uuid4().hex[:8]}"
    api = ApiClient(local_stack.api_url)
    api.register(name, PASSWORD)
    me = api.as_customer(api.login(name, PASSWORD))
    me.create_account()
    me.deposit("50.00")

    browser.get(local_stack.api_url + "/cabinet")
    assert browser.title == "My orders"
    form = browser.find_element("id", "sign-in")
    form.find_element("name", "username").send_keys(name)
    form.find_element("name", "password").send_keys("not the password")
    form.find_element("css selector", "button[type=submit]").click()
    WebDriverWait(browser, 15).until(lambda d: _text(d, "sign-in-error"))
    assert "wrong username or password" in _text(browser, "sign-in-error")

    form.find_element("name", "password").clear()
    form.find_element("name", "password").send_keys(PASSWORD)
    form.find_element("css selector", "button[type=submit]").click()
    WebDriverWait(browser, 15).until(
        lambda d: d.find_element("id", "cabinet").is_displayed()
        and d.find_element("id", "no-orders").is_displayed())
    assert _text(browser, "who") == name
    assert not browser.find_element("id", "sign-in").is_displayed()

    # An order placed while the page is open shows up by itself and moves to its end.
    order = me.place_order([("MUG-001", 1)], payment_mode="auto",
                           shipping_address="1 Cabinet Row")
    WebDriverWait(browser, 15).until(lambda d: _order_row(d, order["id"]))
    row = _wait_for_end(browser, order["id"])
    assert row[1:3] == ["COMPLETED", "completed"], row
    assert row[3] == ""  # no reason: it was not cancelled

    # The notification the notifications function wrote about it.
    short = order["id"][:8]
    WebDriverWait(browser, 30, poll_frequency=0.5).until(
        lambda d: short in _text(d, "notifications"))
    assert f"Order {short} is on its way" in _text(browser, "notifications")
    assert not browser.find_element("id", "no-notifications").is_displayed()

    # A cancelled order shows why, newest first.
    rejected = me.place_order([("RARE-005", 1000)], payment_mode="auto")
    row = _wait_for_end(browser, rejected["id"])
    assert row[1:] == ["CANCELLED", "cancelled", "out_of_stock"], row
    assert [cells[0] for cells in _rows(browser)] == [rejected["id"], order["id"]]
    WebDriverWait(browser, 30, poll_frequency=0.5).until(
        lambda d: f"Order {rejected['id'][:8]} was cancelled" in _text(d, "notifications"))

    shot = tmp_path / "cabinet.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    print(f"screenshot: {shot}")

    browser.find_element("id", "sign-out").click()
    WebDriverWait(browser, 5).until(lambda d: d.find_element("id", "sign-in").is_displayed())
