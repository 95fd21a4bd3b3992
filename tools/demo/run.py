"""The whole tour: a stack, two customers, seven orders followed at once, then the
timelines, wallets and notifications, and a verdict."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TextIO

from common.settings import Settings
from tools.apiclient import ApiClient, ApiError
from tools.demo import report
from tools.demo.drive import Driver, Expirer, Outcome, choose_line
from tools.demo.scenarios import DEPOSITS, SCENARIOS, Customer
from tools.demo.stack import Stack, StackError, attach, own_stack
from tools.demo.timeouts import SweepNow, sweep_now
from tools.progress import Progress
from tools.settings import LocalSettings

PASSWORD = "demo-password"  # noqa: S105 (printed on purpose: sign in to the cabinet with it)
SETTLE_S = 30.0  # after the orders end: notifications and refunds arrive asynchronously


@dataclass(frozen=True)
class Options:
    attach: bool = False
    payment_window_s: int = 5
    wait_for_ping: bool = False
    keep: bool = False


def main(options: Options, settings: LocalSettings, out: TextIO,
         progress: Progress | None = None) -> int:
    printer = report.Printer(out, progress)
    try:
        with _stack(options, settings, printer) as stack:
            code = tour(stack, options, settings, printer)
            if options.keep and stack.own:
                printer.line(f"\nThe stack stays up at {stack.api_url} (cabinet: "
                             f"{stack.api_url}/cabinet, Swagger UI: {stack.api_url}/docs); "
                             "Ctrl-C stops it.")
                _wait_for_ctrl_c()
            return code
    except StackError as exc:
        printer.line(f"saga demo: {exc}")
        return 2
    except ApiError as exc:  # setting up the customers failed: nothing to show
        printer.line(f"saga demo: the API refused a call: {exc}")
        return 1


@contextmanager
def _stack(options: Options, settings: LocalSettings, printer: report.Printer
           ) -> Iterator[Stack]:
    if options.attach:
        stack = attach(settings.state_dir)
        printer.line(f"Using the stack that `./taskw up` runs at {stack.api_url} "
                     f"(state in {stack.state_dir}).")
        yield stack
        return
    state_dir = settings.state_dir / "demo"
    printer.line(f"Starting a stack of the demo's own (`saga up` in {state_dir}, payment "
                 f"window {options.payment_window_s} s); it is stopped when the demo ends. "
                 "Its console: " + str(state_dir / "saga-up.log"))
    started = time.monotonic()
    with own_stack(state_dir, payment_window_s=options.payment_window_s,
                   progress=printer.bar) as stack:
        printer.line(f"It is up at {stack.api_url} after {time.monotonic() - started:.1f} s.")
        yield stack


def tour(stack: Stack, options: Options, settings: Settings, printer: report.Printer) -> int:
    run_id = uuid.uuid4().hex[:6]
    anonymous = ApiClient(stack.api_url, timeout=30.0)
    names: dict[Customer, str] = {name: f"{name}-{run_id}" for name in DEPOSITS}
    # Both at once: registering and signing in hash a password (argon2) on purpose slowly.
    with ThreadPoolExecutor(max_workers=len(DEPOSITS)) as pool:
        signed_in = {name: pool.submit(_customer, anonymous, names[name], amount)
                     for name, amount in DEPOSITS.items()}
        clients = {name: future.result() for name, future in signed_in.items()}
    printer.heading("Customers")
    for name, amount in DEPOSITS.items():
        printer.line(f"  {names[name]} (password {PASSWORD!r}) registered "
                     f"(POST /auth/register, /auth/token) and deposited {amount}")

    products = {p["sku"]: p for p in anonymous.products()}
    lines: dict[str, tuple[str, int]] = {}
    for scenario in SCENARIOS:
        try:
            lines[scenario.key] = choose_line(scenario, products)
        except LookupError as exc:
            printer.line(f"saga demo: {exc}")
            return 1

    expirer = _expirer(stack, options, settings)
    printer.heading(f"Placing {len(SCENARIOS)} orders at once and following each to its end")
    driver = Driver(clients, expirer, printer.progress)
    try:
        with ThreadPoolExecutor(max_workers=len(SCENARIOS), thread_name_prefix="demo") as pool:
            futures = [pool.submit(driver.follow, s, lines[s.key]) for s in SCENARIOS]
            try:
                with printer.bar.task("orders ended", total=len(futures), unit="orders",
                                      follow=lambda: sum(f.done() for f in futures)):
                    outcomes = [f.result() for f in futures]
            except BaseException:  # Ctrl-C: the threads stop now, not at their deadlines
                driver.stop.set()
                raise
    finally:
        if isinstance(expirer, SweepNow):
            expirer.close()

    printer.line("  all orders ended; waiting for notifications and refunds ...")
    with printer.bar.task(f"notifications and refunds ({SETTLE_S:.0f} s at most)"):
        wallet_problems = _settle(outcomes, clients)
    _print(outcomes, clients, names, printer)
    code = _verdict(outcomes, wallet_problems, printer)
    _next_steps(stack, names, printer, keep=options.keep)
    return code


def _customer(anonymous: ApiClient, username: str, deposit: Decimal) -> ApiClient:
    anonymous.register(username, PASSWORD)
    client = anonymous.as_customer(anonymous.login(username, PASSWORD))
    client.create_account()
    client.deposit(deposit)
    return client


def _expirer(stack: Stack, options: Options, settings: Settings) -> Expirer:
    if options.wait_for_ping:
        return Expirer()
    return sweep_now(settings, stack.runtime_state()) or Expirer()


def _settle(outcomes: list[Outcome], clients: Mapping[Customer, ApiClient]) -> list[str]:
    """Wait (with a deadline) until every order's notifications are there and each wallet
    adds up; record what is still missing then."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        missing = _missing_notifications(outcomes, clients)
        wallet = _wallet_problems(outcomes, clients)
        if (not missing and not wallet) or time.monotonic() > deadline:
            break
        time.sleep(0.3)  # poll interval of a deadline-bounded wait
    for outcome in outcomes:
        if kinds := missing.get(outcome.scenario.key):
            outcome.problems.append(
                f"no {', '.join(kinds)} notification within {SETTLE_S:.0f} s")
    return wallet


def _missing_notifications(
    outcomes: list[Outcome], clients: Mapping[Customer, ApiClient]
) -> dict[str, list[str]]:
    """Scenario key -> the notification kinds its order still lacks."""
    inbox = {name: client.notifications() for name, client in clients.items()}
    missing: dict[str, list[str]] = {}
    for outcome in outcomes:
        if outcome.order is None or outcome.skipped or not outcome.ok:
            continue
        have = {n["kind"] for n in inbox[outcome.scenario.customer]
                if n.get("order_id") == outcome.order["id"]}
        lacking = [k for k in outcome.scenario.expect_notifications if k not in have]
        if lacking:
            missing[outcome.scenario.key] = lacking
    return missing


def _wallet_problems(outcomes: list[Outcome], clients: Mapping[Customer, ApiClient]) -> list[str]:
    """Each wallet must add up: what was deposited, less what the completed orders cost,
    is the balance, nothing stays frozen, and a refunded order's refund is in the ledger."""
    problems = []
    for name, client in clients.items():
        account = client.account()
        mine = [(o.scenario, o.order) for o in outcomes
                if o.scenario.customer == name and o.order is not None]
        spent = sum((Decimal(order["total"]) for _, order in mine
                     if order["status"] == "COMPLETED"), Decimal("0.00"))
        expected = DEPOSITS[name] - spent
        if Decimal(account["balance"]) != expected or Decimal(account["frozen"]) != 0:
            problems.append(f"{name}'s wallet: balance {account['balance']}, frozen "
                            f"{account['frozen']}; expected {expected} and 0.00")
        refunded = {(e["order_id"], Decimal(e["amount"])) for e in account["ledger"]
                    if e["kind"] == "refund"}
        for scenario, order in mine:
            if "payment.refunded" in scenario.expect_notifications and (
                    order["id"], Decimal(order["total"])) not in refunded:
                problems.append(f"{name}'s ledger has no refund of order {order['id']}")
    return problems


def _print(outcomes: list[Outcome], clients: Mapping[Customer, ApiClient],
           names: Mapping[Customer, str], printer: report.Printer) -> None:
    printer.heading("The orders")
    for number, outcome in enumerate(outcomes, 1):
        for line in report.order_block(number, outcome):
            printer.line(line)
        printer.line()
    printer.heading("Wallets")
    for name, client in clients.items():
        for line in report.wallet_block(names[name], client.account()):
            printer.line("  " + line)
    printer.heading("Notifications")
    for name, client in clients.items():
        for line in report.notification_block(names[name], client.notifications()):
            printer.line("  " + line)


def _verdict(outcomes: list[Outcome], wallet_problems: list[str],
             printer: report.Printer) -> int:
    failed = [o for o in outcomes if not o.ok]
    skipped = [o for o in outcomes if o.skipped and o.ok]
    printer.heading("Verdict")
    for outcome in failed:
        printer.line(f"  FAILED {outcome.scenario.key}: order {outcome.order_id} "
                     + "; ".join(outcome.problems))
    for problem in wallet_problems:
        printer.line(f"  FAILED wallet: {problem}")
    for outcome in skipped:
        printer.line(f"  skipped {outcome.scenario.key}: order {outcome.order_id}")
    done = len(outcomes) - len(failed) - len(skipped)
    printer.line(f"  {done} of {len(outcomes)} orders ended as expected"
                 + (f", {len(skipped)} not waited for" if skipped else "")
                 + ("; the wallets add up." if not wallet_problems else "."))
    return 1 if failed or wallet_problems else 0


def _next_steps(stack: Stack, names: Mapping[Customer, str], printer: report.Printer, *,
                keep: bool) -> None:
    printer.heading("Look further")
    printer.line(f"  each function's log lines (ECS JSON): {stack.state_dir / 'logs'}"
                 + ("" if not stack.own else " (until the next demo)"))
    who = names["alice"]
    if stack.own and not keep:
        printer.line(f"  the cabinet: `./taskw demo -- --keep` leaves the stack up; sign in at "
                     f"/cabinet as {who} / {PASSWORD}")
    else:
        printer.line(f"  the cabinet: {stack.api_url}/cabinet, sign in as {who} / {PASSWORD}")


def _wait_for_ctrl_c() -> None:
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        signal.signal(signal.SIGINT, previous)

