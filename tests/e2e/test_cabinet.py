"""The customer's cabinet (GET /cabinet) in a real headless Chromium
(tests/e2e/browser_support.py): sign in through the page's form, watch an order placed
meanwhile appear and reach its end, and see the notification about it; and act in it as a
new customer: register, create a wallet and deposit, order in confirm mode and pay within
the window, cancel another order, and read an error as the API's problem says it."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import pytest

from tests.e2e.browser_support import screenshot
from tests.e2e.conftest import LocalStack
from tools.apiclient import ApiClient

pytestmark = pytest.mark.e2e

ORDER_END_S = 90.0  # the first order wakes every scaled-to-zero function on the way
PASSWORD = "cabinet-password"


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
    local_stack: LocalStack, browser: Any
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
    assert row[1:4] == ["CANCELLED", "cancelled", "out_of_stock"], row
    assert [cells[0] for cells in _rows(browser)] == [rejected["id"], order["id"]]
    WebDriverWait(browser, 30, poll_frequency=0.5).until(
        lambda d: f"Order {rejected['id'][:8]} was cancelled" in _text(d, "notifications"))

    screenshot(browser, "cabinet-watch")

    browser.find_element("id", "sign-out").click()
    WebDriverWait(browser, 5).until(lambda d: d.find_element("id", "sign-in").is_displayed())


def _fill(form: Any, **fields: str) -> None:
    for name, value in fields.items():
        field = form.find_element("name", name)
        field.clear()
        field.send_keys(value)


def _click(driver: Any, order_id: str, action: str) -> None:
    """The row's button, found and clicked in one go (the table may be rebuilt)."""
    clicked = driver.execute_script(
        "const b = document.querySelector(`#orders tr[data-order='${arguments[0]}'] "
        "button[data-action='${arguments[1]}']`); if (b) b.click(); return Boolean(b);",
        order_id, action)
    assert clicked, f"no {action} button for {order_id}"


def _newest_order(driver: Any, seen: set[str]) -> str | Literal[False]:
    ids = [cells[0] for cells in _rows(driver) if cells]
    return next((i for i in ids if i not in seen), False)


def test_a_customer_registers_deposits_pays_and_cancels_in_the_cabinet(
    local_stack: LocalStack, browser: Any
) -> None:
    from selenium.webdriver.support.ui import Select, WebDriverWait

    name = f"act-{uuid.uuid4().hex[:8]}"
    browser.get(local_stack.api_url + "/cabinet")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    register = browser.find_element("id", "register")
    _fill(register, username=name, password=PASSWORD)
    register.find_element("css selector", "button[type=submit]").click()
    WebDriverWait(browser, 15).until(lambda d: d.find_element("id", "no-wallet").is_displayed())
    assert _text(browser, "who") == name

    browser.find_element("id", "create-wallet").click()
    WebDriverWait(browser, 15).until(lambda d: d.find_element("id", "wallet").is_displayed())
    deposit = browser.find_element("id", "deposit")
    _fill(deposit, amount="0")  # the API refuses it, and the page says why
    deposit.find_element("css selector", "button[type=submit]").click()
    WebDriverWait(browser, 15).until(lambda d: _text(d, "problem"))
    assert "amount" in _text(browser, "problem") and "greater than 0" in _text(browser, "problem")
    _fill(deposit, amount="40.00")
    deposit.find_element("css selector", "button[type=submit]").click()
    WebDriverWait(browser, 15).until(lambda d: _text(d, "balance") == "40.00")
    assert "deposit 40.00" in _text(browser, "ledger") and not _text(browser, "problem")

    # An order in confirm mode waits for its payment, with the time left on its button.
    order_form = browser.find_element("id", "new-order")
    WebDriverWait(browser, 15).until(
        lambda d: "MUG-001" in d.find_element("id", "products").get_attribute("innerHTML"))
    Select(browser.find_element("id", "products")).select_by_value("MUG-001")
    order_form.find_element("css selector", "input[value=confirm]").click()
    _fill(order_form, quantity="2", shipping_address="7 Cabinet Lane")
    order_form.find_element("css selector", "button[type=submit]").click()
    paid = WebDriverWait(browser, 15).until(lambda d: _newest_order(d, set()))
    WebDriverWait(browser, 30, poll_frequency=0.3).until(
        lambda d: (_order_row(d, paid) or [""] * 7)[1] == "AWAITING_PAYMENT"
        and "left" in (_order_row(d, paid) or [""] * 7)[6])
    row = _order_row(browser, paid)
    assert row is not None and row[4:6] == ["2 x MUG-001", "25.00"], row
    assert "Pay" in row[6] and "Cancel" in row[6]
    screenshot(browser, "cabinet-awaiting-payment")
    _click(browser, paid, "pay")
    row = _wait_for_end(browser, paid)
    assert row[1:4] == ["COMPLETED", "completed", ""], row
    WebDriverWait(browser, 15).until(lambda d: _text(d, "balance") == "15.00")

    # Another one, cancelled from the page: its reason says who did it.
    order_form.find_element("css selector", "button[type=submit]").click()
    other = WebDriverWait(browser, 15).until(lambda d: _newest_order(d, {paid}))
    WebDriverWait(browser, 30, poll_frequency=0.3).until(
        lambda d: (_order_row(d, other) or [""] * 7)[1] == "AWAITING_PAYMENT")
    _click(browser, other, "cancel")
    row = _wait_for_end(browser, other)
    assert row[1:4] == ["CANCELLED", "cancelled", "cancelled_by_customer"], row
    assert row[6] == ""  # nothing left to do with it
    assert _text(browser, "balance") == "15.00"
    WebDriverWait(browser, 30, poll_frequency=0.5).until(
        lambda d: f"Order {other[:8]} was cancelled" in _text(d, "notifications"))
    screenshot(browser, "cabinet")
