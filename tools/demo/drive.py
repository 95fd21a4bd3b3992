"""Follow one order from POST /orders to its end, acting as the customer would on the way
(pay, cancel, or let the payment window pass), and judge how it ended.

Thread-safe: run.py follows every order on its own thread with one shared ApiClient pool;
a Driver holds no per-order state.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tools.apiclient import ApiClient, ApiError
from tools.demo.scenarios import SCARCE_SKU, Customer, Scenario

TERMINAL = ("COMPLETED", "CANCELLED")
POLL_S = 0.2
ORDER_DEADLINE_S = 60.0  # from placing to the end, except for waiting on a PingSource tick
PING_WAIT_S = 75.0  # the timeouts PingSource ticks every minute, plus the sweep itself
MAX_WINDOW_S = 60.0  # a payment window longer than this is not waited for

Say = Callable[[str, str], None]  # (scenario key, what happened)


class Expirer:
    """What ends a confirm-mode order nobody pays once its deadline has passed: the demo's
    timeouts shortcut (see timeouts.py) or nothing but the stack's own PingSource."""

    waits_for_ping: bool = True

    def expire(self) -> str:
        """Called once the order's deadline has passed; returns a note for the report."""
        return ("left to the timeouts PingSource: it ticks every minute, and the sweep it "
                "runs cancels orders past their deadline")


@dataclass
class Outcome:
    scenario: Scenario
    line: tuple[str, int]
    order: dict[str, Any] | None = None  # the last GET /orders/{id}
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the expected end was not waited for

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def order_id(self) -> str:
        return str(self.order["id"]) if self.order else "(not placed)"


def choose_line(scenario: Scenario, products: Mapping[str, Mapping[str, Any]]) -> tuple[str, int]:
    """The SKU and quantity to order. The scenario's SKU when it has enough stock; on a
    long-lived stack where it ran out, the cheapest other product that has."""
    if scenario.beyond_stock:
        scarce = products.get(scenario.sku) or min(products.values(),
                                                   key=lambda p: int(p["available"]))
        return str(scarce["sku"]), int(scarce["available"]) + 1
    preferred = products.get(scenario.sku)
    if preferred is not None and int(preferred["available"]) >= scenario.quantity:
        return scenario.sku, scenario.quantity
    stocked = [p for p in products.values()
               if p["sku"] != SCARCE_SKU and int(p["available"]) >= scenario.quantity]
    if not stocked:
        raise LookupError(f"no product has {scenario.quantity} unit(s) in stock for "
                          f"{scenario.key}; restock one (POST /products/{{sku}}/restock)")
    cheapest = min(stocked, key=lambda p: Decimal(str(p["price"])))
    return str(cheapest["sku"]), scenario.quantity


class Stopped(Exception):
    """The demo is being interrupted (Ctrl-C): stop following orders at once."""


class Driver:
    def __init__(self, clients: Mapping[Customer, ApiClient], expirer: Expirer, say: Say) -> None:
        self._clients = clients
        self._expirer = expirer
        self._say = say
        self.stop = threading.Event()  # set by run.py when interrupted

    def _pause(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopped

    def follow(self, scenario: Scenario, line: tuple[str, int]) -> Outcome:
        outcome = Outcome(scenario, line)
        try:
            self._follow(scenario, outcome)
        except ApiError as exc:
            outcome.problems.append(f"the API refused a call: {exc}")
        except TimeoutError as exc:
            outcome.problems.append(str(exc))
        if outcome.order is not None and outcome.skipped is None:
            _judge(outcome)
        return outcome

    def _follow(self, scenario: Scenario, outcome: Outcome) -> None:
        api = self._clients[scenario.customer]
        sku, quantity = outcome.line
        order = api.place_order([(sku, quantity)], payment_mode=scenario.payment_mode,
                                shipping_address=scenario.address,
                                idempotency_key=f"demo-{uuid.uuid4()}")
        outcome.order = order
        self._say(scenario.key, f"placed order {order['id'][:8]} ({scenario.payment_mode}, "
                                f"{quantity} x {sku}, total {order['total']})")
        acted = scenario.action == "none"
        deadline = time.monotonic() + ORDER_DEADLINE_S
        while True:
            order = api.order(order["id"])
            outcome.order = order
            if order["status"] in TERMINAL:
                return
            if not acted and order["status"] == "AWAITING_PAYMENT":
                acted = True
                deadline = max(deadline, self._act(scenario, api, order, outcome))
                if outcome.skipped or outcome.problems:
                    return
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"still {order['status']} after waiting "
                                   f"{ORDER_DEADLINE_S:.0f} s for it to end")
            self._pause(POLL_S)  # poll interval of a deadline-bounded wait

    def _act(self, scenario: Scenario, api: ApiClient, order: dict[str, Any],
             outcome: Outcome) -> float:
        """Do the scenario's step on an order awaiting payment; returns the (monotonic)
        time until which to wait for the order to end."""
        short = order["id"][:8]
        if scenario.action == "pay":
            self._say(scenario.key, f"order {short} awaits payment: the customer pays "
                                    "(POST /orders/{id}/pay)")
            api.pay(order["id"])
        elif scenario.action == "cancel":
            self._say(scenario.key, f"order {short} awaits payment: the customer cancels "
                                    "(PUT /orders/{id} status CANCELLED)")
            api.cancel(order["id"])
        elif scenario.action == "let_expire":
            return self._let_expire(scenario, order, outcome)
        return time.monotonic() + ORDER_DEADLINE_S

    def _let_expire(self, scenario: Scenario, order: dict[str, Any], outcome: Outcome) -> float:
        if not order.get("payment_deadline"):
            outcome.problems.append("it awaits payment but has no payment_deadline")
            return time.monotonic()
        due = datetime.fromisoformat(order["payment_deadline"])
        remaining = (due - datetime.now(UTC)).total_seconds()
        short = order["id"][:8]
        if remaining > MAX_WINDOW_S:
            outcome.skipped = (
                f"this stack's payment window is about {remaining:.0f} s; the demo does not "
                f"wait that long (without --attach it starts a stack with a short window). "
                f"The timeouts function will cancel order {order['id']} after "
                f"{due:%H:%M:%S} UTC: see GET /orders/{order['id']} then.")
            self._say(scenario.key, f"order {short}: payment window too long, not waited for")
            return time.monotonic()
        self._say(scenario.key, f"order {short} awaits payment; nobody pays; its deadline is "
                                f"in {max(remaining, 0):.1f} s")
        self._pause(max(remaining, 0) + 0.3)  # the sweep takes orders strictly past it
        note = self._expirer.expire()
        outcome.notes.append(note)
        self._say(scenario.key, f"order {short}: deadline passed; {note}")
        extra = PING_WAIT_S if self._expirer.waits_for_ping else 0.0
        return time.monotonic() + ORDER_DEADLINE_S + extra


def _judge(outcome: Outcome) -> None:
    assert outcome.order is not None
    scenario, order = outcome.scenario, outcome.order
    if outcome.problems:
        return
    got = (order["status"], order.get("reason"))
    wanted = (scenario.expect_status, scenario.expect_reason)
    if got != wanted:
        outcome.problems.append(
            f"ended {_show(got)}, expected {_show(wanted)}")


def _show(end: tuple[str, str | None]) -> str:
    return end[0] if end[1] is None else f"{end[0]} ({end[1]})"
