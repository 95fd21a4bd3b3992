"""The operators' console in a real headless Chromium, on a stack of its own as `./taskw up`
runs it (the console on its own port, SAGA_CONSOLE_PORT), as an operator walks it:

- a payment that fails for real (a trigger refuses the customer's wallet movement) leaves
  an order stuck with a dead letter: the operator finds it under Stuck, opens it, cancels
  it, watches the compensation land (stock released, payment voided, the customer told),
  resolves the letter with a note, and finds both in the audit;
- a filter of Find cancels three orders in bulk, after its dry-run count and the count
  typed back; the filter is in the URL, and the URL alone shows the same orders again;
- a dead letter whose cause is fixed is re-driven from its page (its data masked until
  revealed, which is audited), and the order completes;
- the pages read on a phone (nothing but a table scrolls sideways);
- a customer's token gets 403 on every console URL, and the page says why.

Each page is saved as a screenshot (tests/e2e/browser_support.py says where). The KafkaSources'
backoff is scaled down (SAGA_DELIVERY_BACKOFF_SCALE) so a failing event is dead-lettered in
about a second.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, pool, text

from common.auth import ADMIN_ROLE, CUSTOMER_ROLE, issue_token
from common.settings import Settings, to_sqlalchemy_url
from functions.console.routes import LETTER, ROUTES
from tests.conftest import TEST_JWT_SECRET
from tests.e2e.browser_support import screenshot
from tests.e2e.stack_support import saga_up
from tests.helpers import wait_for
from tools.apiclient import ApiClient
from tools.infra.ports import free_port

pytestmark = pytest.mark.e2e

OPERATOR = "ops-grace"
POISON = """
CREATE FUNCTION public.console_poison_{tag}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'wallet of % refused', NEW.customer_id; END $$;
CREATE TRIGGER console_poison_{tag} BEFORE INSERT ON payments.ledger FOR EACH ROW
    WHEN (NEW.customer_id = '{customer}' AND NEW.kind = 'freeze')
    EXECUTE FUNCTION public.console_poison_{tag}();
"""
CURE = ("DROP TRIGGER console_poison_{tag} ON payments.ledger; "
        "DROP FUNCTION public.console_poison_{tag}();")


@dataclass
class Stack:
    api_url: str
    console_url: str
    database_url: str

    def token(self, subject: str, *, admin: bool = False) -> str:
        roles = [CUSTOMER_ROLE, ADMIN_ROLE] if admin else [CUSTOMER_ROLE]
        return issue_token(Settings(jwt_secret=TEST_JWT_SECRET), subject, roles=roles)

    def customer(self, balance: str = "100.00") -> tuple[str, ApiClient]:
        who = f"con-{uuid.uuid4().hex[:8]}"
        api = ApiClient(self.api_url, self.token(who))
        api.create_account()
        api.deposit(balance)
        return who, api

    def sql(self, statements: str, **params: Any) -> Any:
        engine = create_engine(to_sqlalchemy_url(self.database_url), poolclass=pool.NullPool)
        try:
            with engine.begin() as conn:
                result = conn.execute(text(statements), params)
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()

    def poison(self, who: str) -> Callable[[], None]:
        """Refuse `who`'s wallet movements (payments answers 500); the cure it returns."""
        tag = who.replace("-", "_")
        self.sql(POISON.format(tag=tag, customer=who))
        return lambda: self.sql(CURE.format(tag=tag))

    def waiting_letter(self, order_id: str) -> int:
        letter: int = wait_for(lambda: self.sql(
            "SELECT id FROM messaging.dead_letters WHERE attributes->>'partitionkey' = :o "
            "AND redriven_at IS NULL AND NOT resolved", o=order_id), timeout=90, interval=0.2,
            message=f"a dead letter of order {order_id}")
        return letter


@pytest.fixture(scope="module")
def stack(fresh_database: Callable[[str], str], tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[Stack]:
    state_dir: Path = tmp_path_factory.mktemp("console-stack")
    port, console_port = free_port(), free_port()
    database_url = fresh_database("console")
    base = {k: v for k, v in os.environ.items()
            if k not in ("KAFKA_BOOTSTRAP_SERVERS", "SAGA_KAFKA_BROKER_KIND", "DATABASE_URL")}
    env = base | {"DATABASE_URL": database_url, "SAGA_STATE_DIR": str(state_dir),
                  "SAGA_API_PORT": str(port), "SAGA_CONSOLE_PORT": str(console_port),
                  "SAGA_JWT_SECRET": TEST_JWT_SECRET, "SAGA_PROFILE": "local",
                  "SAGA_DELIVERY_BACKOFF_SCALE": "0.01"}
    with saga_up(env, state_dir, state_dir / "saga-up.log") as state:
        assert state["console_url"] == f"http://127.0.0.1:{console_port}/console"
        yield Stack(state["api_url"], state["console_url"], database_url)


@pytest.fixture(scope="module")
def operator(stack: Stack, browser: Any) -> Any:
    """The browser, signed in to the console as an operator."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(stack.console_url)
    browser.execute_script("sessionStorage.clear()")
    browser.get(stack.console_url)
    assert browser.title == "Order saga console"
    browser.find_element("id", "token").send_keys(stack.token(OPERATOR, admin=True))
    browser.find_element("css selector", "#sign-in-form button").click()
    WebDriverWait(browser, 15).until(lambda d: d.find_element("id", "operator").text == OPERATOR)
    return browser


def _text(driver: Any, element_id: str) -> str:
    value: str = driver.find_element("id", element_id).text
    return value


def _wait(driver: Any, condition: Callable[[Any], Any], timeout: float = 30) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # Pages refresh themselves: an element read a moment ago may have been replaced.
    return WebDriverWait(driver, timeout, poll_frequency=0.3,
                         ignored_exceptions=[StaleElementReferenceException]).until(condition)


def _submit(driver: Any, form_id: str, **fields: str) -> None:
    form = driver.find_element("id", form_id)
    for name, value in fields.items():
        field = form.find_element("name", name)
        field.clear()
        field.send_keys(value)
    form.find_element("css selector", "button[type=submit]").click()


def _shows(*element_ids: str) -> Callable[[Any], bool]:
    """A wait's condition: one of these elements has some text."""
    return lambda driver: any(_text(driver, e) for e in element_ids)


def _open(driver: Any, stack: Stack, query: str) -> None:
    """A console URL typed into the address bar (a bookmark)."""
    driver.get(f"{stack.console_url}?{query}")


def test_an_operator_finds_a_stuck_order_cancels_it_and_sees_the_compensation_land(
        stack: Stack, operator: Any) -> None:
    who, api = stack.customer()
    cure = stack.poison(who)
    order = api.place_order([("MUG-001", 2)], payment_mode="auto")["id"]
    letter = stack.waiting_letter(order)
    assert api.order(order)["status"] == "PAYMENT_PROCESSING"
    cure()  # the cause is fixed, but the operator chooses to cancel rather than re-drive

    _open(operator, stack, "view=overview")
    _wait(operator, lambda d: _text(d, "ov-letters").isdigit() and _text(d, "ov-letters") != "0")
    assert int(_text(operator, "ov-stuck").rstrip("+")) >= 1
    assert "messaging.inbox" in _text(operator, "ov-tables")  # the sizes retention bounds
    screenshot(operator, "console-overview")

    operator.find_element("link text", "Stuck").click()
    _wait(operator, lambda d: order[:8] in _text(d, "stuck-rows"))
    why = _text(operator, "stuck-rows")
    assert f"dead letter {letter} waiting: shop.payment.requested.v1 failed at payments" in why
    screenshot(operator, "console-stuck")

    operator.find_element("link text", order[:8]).click()
    _wait(operator, lambda d: order in _text(d, "order-title"))
    assert f"id={order}" in operator.current_url  # the order's own URL, to share
    assert "PAYMENT_PROCESSING" in _text(operator, "order-facts")
    assert "payments: dead letter" in _text(operator, "order-events")
    _submit(operator, "cancel-form", why="payments refused it; the customer agreed to cancel")
    _wait(operator, lambda d: "cancelled from PAYMENT_PROCESSING" in _text(d, "order-result"))
    # The compensations land while the page refreshes itself.
    _wait(operator, lambda d: "RELEASED" in _text(d, "order-effects")
          and "VOIDED" in _text(d, "order-effects") and "was cancelled" in _text(
              d, "order-effects"))
    assert "CANCELLED (cancelled_by_operator)" in _text(operator, "order-facts")
    assert f"{OPERATOR}: order.cancel done" in _text(operator, "order-audit")
    assert operator.find_element("id", "cancel-button").get_attribute("disabled")
    screenshot(operator, "console-order")
    assert api.order(order)["reason"] == "cancelled_by_operator"
    assert stack.sql("SELECT status FROM inventory.reservations WHERE order_id = :o",
                     o=order) == "RELEASED"

    # Its letter is not to be re-driven any more: resolved, with why.
    operator.find_element("link text", f"dead letter {letter}").click()
    _wait(operator, lambda d: f"Dead letter {letter}" == _text(d, "letter-title"))
    _submit(operator, "letter-resolve-form", why="order cancelled by the operator instead")
    _wait(operator, lambda d: "resolved" in _text(d, "letter-result"))
    _wait(operator, lambda d: "letter.resolve done" in _text(d, "letter-audit"))

    operator.find_element("link text", "Audit").click()
    _wait(operator, lambda d: "letter.resolve" in _text(d, "audit-rows"))
    rows = _text(operator, "audit-rows")
    assert "order.cancel" in rows and "payments refused it" in rows and OPERATOR in rows


def test_a_filter_is_cancelled_in_bulk_after_its_dry_run_count(
        stack: Stack, operator: Any) -> None:
    who, api = stack.customer()
    orders = [api.place_order([("BAG-003", 1)], payment_mode="confirm")["id"] for _ in range(3)]
    wait_for(lambda: all(api.order(o)["status"] == "AWAITING_PAYMENT" for o in orders),
             timeout=60, interval=0.3, message="the orders to wait for their payment")

    operator.find_element("link text", "Find").click()
    _wait(operator, lambda d: d.find_element("id", "find-form").is_displayed())
    form = operator.find_element("id", "find-form")
    from selenium.webdriver.support.ui import Select

    Select(form.find_element("name", "status")).select_by_value("open")
    _submit(operator, "find-form", customer=who)
    _wait(operator, lambda d: all(o[:8] in _text(d, "find-rows") for o in orders))
    assert "customer=" + who in operator.current_url and "status=open" in operator.current_url
    bookmark = operator.current_url

    panel = operator.find_element("id", "bulk-cancel")
    panel.find_element("tag name", "summary").click()
    bulk = panel.find_element("css selector", "form")
    bulk.find_element("name", "why").send_keys("test customer: cancel what is still open")
    bulk.find_element("css selector", "button[type=submit]").click()
    _wait(operator, lambda d: "3 open orders of the 3" in bulk.text)
    run = bulk.find_element("css selector", ".bulk-run")
    assert run.get_attribute("disabled") and run.text == "Cancel 3 orders"
    bulk.find_element("name", "confirm").send_keys("cancel 3")
    assert not run.get_attribute("disabled")
    screenshot(operator, "console-bulk")
    run.click()
    _wait(operator, lambda d: "cancelled 3 orders" in bulk.text)
    wait_for(lambda: all(api.order(o)["reason"] == "cancelled_by_operator" for o in orders),
             timeout=30, interval=0.3, message="the bulk cancel to be seen by the API")
    wait_for(lambda: stack.sql(
        "SELECT count(*) FROM inventory.reservations WHERE status = 'RELEASED' AND "
        "order_id = ANY(CAST(:ids AS uuid[]))", ids=orders) == 3, timeout=60, interval=0.3,
        message="inventory to release the three reservations")

    operator.get(bookmark)  # the same filter, from its URL alone: now none is open
    _wait(operator, lambda d: d.find_element("id", "find-form").is_displayed())
    assert operator.find_element("name", "customer").get_attribute("value") == who
    _wait(operator, lambda d: _text(d, "find-caption") == "No order matches.")
    _open(operator, stack, "view=audit")
    _wait(operator, lambda d: "orders.cancel" in _text(d, "audit-rows"))
    assert f'"customer":"{who}"' in _text(operator, "audit-rows")
    screenshot(operator, "console-audit")


def test_a_dead_letter_is_redriven_once_its_cause_is_fixed(stack: Stack, operator: Any) -> None:
    who, api = stack.customer()
    cure = stack.poison(who)
    order = api.place_order([("MUG-001", 1)], payment_mode="auto")["id"]
    letter = stack.waiting_letter(order)
    cure()

    _open(operator, stack, "view=letters")
    _wait(operator, lambda d: str(letter) in _text(d, "letters-rows"))
    operator.find_element("link text", str(letter)).click()
    _wait(operator, lambda d: f"Dead letter {letter}" == _text(d, "letter-title"))
    data = _text(operator, "letter-data")
    assert order in data and who not in data and "*** (" in data  # masked, but for the order
    _submit(operator, "letter-reveal-form", why="to check the amount")
    _wait(operator, lambda d: who in _text(d, "letter-data"))
    assert "unmasked" in _text(operator, "letter-masked")
    screenshot(operator, "console-dead-letter")
    _submit(operator, "letter-redrive-form", why="the wallet is fixed")
    _wait(operator, lambda d: f"re-drove {letter}" in _text(d, "letter-result"))
    wait_for(lambda: api.order(order)["status"] == "COMPLETED", timeout=60, interval=0.3,
             message="the re-driven payment to complete the order")
    _wait(operator, lambda d: "redriven" in _text(d, "letter-facts")
          and "letter.reveal done" in _text(d, "letter-audit"))


def test_the_console_reads_on_a_phone(stack: Stack, operator: Any) -> None:
    """At a phone's width nothing but the tables scrolls sideways, each in its own box."""
    operator.set_window_size(390, 844)
    try:
        shown = {"view=overview": ("status",), "view=stuck": ("stuck-caption",),
                 "view=find&status=open": ("find-caption", "find-rows")}
        for query, elements in shown.items():
            _open(operator, stack, query)
            _wait(operator, _shows(*elements))
            wide = operator.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth")
            assert wide <= 0, f"{query}: the page is {wide} px wider than the phone"
        _open(operator, stack, "view=overview")
        _wait(operator, lambda d: _text(d, "status").startswith("updated"))
        screenshot(operator, "console-phone", width=390)
    finally:
        operator.set_window_size(1280, 900)


def test_a_customer_token_gets_403_on_every_console_url(stack: Stack, browser: Any) -> None:
    token = stack.token("just-a-customer")
    base = stack.console_url.removesuffix("/console")
    for route in ROUTES.routes:
        url = base + route.path.replace("<uuid:order_id>", str(uuid.uuid4())).replace(
            LETTER, "1").replace("<name>", "console.js")
        body = b"{}" if route.method == "POST" else None
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        request = urllib.request.Request(url, body, headers, method=route.method)  # noqa: S310
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)  # noqa: S310 (the stack's URL)
        assert refused.value.code == 403, url

    browser.get(stack.console_url)
    browser.execute_script("sessionStorage.clear()")
    browser.get(stack.console_url)
    browser.find_element("id", "token").send_keys(token)
    browser.find_element("css selector", "#sign-in-form button").click()
    _wait(browser, lambda d: "no admin role" in _text(d, "error"))
    assert browser.find_element("id", "sign-in").is_displayed()
    assert not browser.find_element("id", "nav").is_displayed()
    screenshot(browser, "console-refused")
