"""/orders: place, read, list, change status (cancel), confirm payment. Every status change
goes through common.order_state under the order's row lock, with the outbox, in one
transaction; events are published after commit."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from pydantic import Field

from common.events.models import CancelReason
from common.order_state import IllegalTransition, Order, Status, lock_order, transition
from common.outbox import Outbox
from common.pg import Tx
from common.problems import Problem
from functions.api import sql
from functions.api.errors import field_problem, not_found
from functions.api.order_create import CreateOrderIn, place_order
from functions.api.order_views import (
    OrderDetail,
    OrderOut,
    OrderPage,
    fetch_detail,
    fetch_order,
    list_orders,
    may_see,
)
from functions.api.route_specs import Call, Header, Reply, RouteGroup
from functions.api.schemas import PageQuery, RequestModel
from functions.api.tx import transact, transact_with_events

ROUTES = RouteGroup("orders")

IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "Any unique string (a UUID): repeating the request with the same key and body returns "
    "the order it created instead of creating another; the same key with another body is 422.",
    max_length=200,
)

# A customer may take back an order until the money is taken; after that it is shipping.
CUSTOMER_CANCELLABLE = frozenset(
    {Status.CREATED, Status.AWAITING_PAYMENT, Status.PAYMENT_PROCESSING}
)


class OrderListQuery(PageQuery):
    status: Status | None = Field(default=None, description="Only orders in this status.")


class UpdateOrderIn(RequestModel):
    status: Status = Field(description="Customers may only set CANCELLED.")
    reason: CancelReason | None = Field(
        default=None,
        description="Admins, when cancelling (default cancelled_by_customer).",
    )


@ROUTES.route(
    "POST", "/orders", summary="Place an order", auth="customer", status=201,
    body=CreateOrderIn, response=OrderOut, errors=(409, 422), headers=(IDEMPOTENCY_KEY,),
    response_headers=(("Location", "/orders/{id} of the new order"),),
)
def create_order(call: Call) -> Reply:
    order, replayed = place_order(
        call, call.body(CreateOrderIn), call.headers.get(IDEMPOTENCY_KEY.name)
    )
    call.acts_on(order.id)  # in this request's trace: it is the order's own
    headers = {"Location": f"/orders/{order.id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Reply(order, 201, headers)


@ROUTES.route(
    "GET", "/orders", summary="List my orders, newest first", auth="customer",
    query=OrderListQuery, response=OrderPage, errors=(422,),
)
def list_my_orders(call: Call) -> OrderPage:
    q = call.query(OrderListQuery)
    return transact(call, lambda tx: list_orders(
        tx, call.user.subject, status=q.status, limit=q.limit, cursor=q.cursor))


@ROUTES.route(
    "GET", "/orders/<uuid:order_id>", summary="One order with its timeline",
    auth="customer", response=OrderDetail, errors=(404,),
)
def get_order(call: Call) -> OrderDetail:
    order_id: UUID = call.params["order_id"]
    cache = call.resources.order_cache  # None unless REDIS_URL is set
    if cache is None:
        detail = transact(call, lambda tx: fetch_detail(tx, order_id))
    else:
        detail = cache.read(call.resources, order_id)
    # Someone else's order is "not found", not "forbidden": its existence is not ours to tell.
    if detail is None or not may_see(call.user, detail.customer_id):
        raise not_found("order")
    return detail


@ROUTES.route(
    "PUT", "/orders/<uuid:order_id>", summary="Change an order's status (customers: cancel)",
    auth="customer", body=UpdateOrderIn, response=OrderDetail, errors=(403, 404, 409, 422),
)
def update_order(call: Call) -> OrderDetail:
    order_id: UUID = call.params["order_id"]
    body = call.body(UpdateOrderIn)

    def work(tx: Tx, outbox: Outbox) -> OrderDetail:
        order = _locked_visible(tx, call, order_id)
        call.acts_on(order.id, order.trace)
        if order.status != body.status:  # setting the current status again changes nothing
            if call.user.is_admin:
                _admin_transition(tx, outbox, call, order, body)
            else:
                _customer_cancel(tx, outbox, call, order, body)
        detail = fetch_detail(tx, order_id)
        assert detail is not None
        return detail

    return transact_with_events(call, work)


@ROUTES.route(
    "POST", "/orders/<uuid:order_id>/pay", summary="Confirm payment (confirm mode)",
    auth="customer", status=202, response=OrderOut, errors=(404, 409),
)
def pay_order(call: Call) -> OrderOut:
    order_id: UUID = call.params["order_id"]

    def work(tx: Tx, outbox: Outbox) -> OrderOut:
        order = lock_order(tx, order_id)
        if order is None or order.customer_id != call.user.subject:
            raise not_found("order")
        call.acts_on(order.id, order.trace)
        if order.payment_mode != "confirm":
            raise _conflict("this order pays automatically (payment_mode auto)")
        if order.status != Status.AWAITING_PAYMENT:
            raise _conflict(f"the order is {order.status}, not AWAITING_PAYMENT")
        now = tx.one(sql.NOW)
        assert now is not None
        if order.payment_deadline is None or now[0] >= order.payment_deadline:
            raise _conflict("the payment window has closed; the order will be cancelled")
        # The state machine emits payment.requested; the payments function takes it on.
        transition(tx, outbox, order, Status.PAYMENT_PROCESSING, actor=call.actor)
        result = fetch_order(tx, order_id)
        assert result is not None
        return result

    return transact_with_events(call, work)


def _locked_visible(tx: Tx, call: Call, order_id: UUID) -> Order:
    order = lock_order(tx, order_id)
    if order is None or not may_see(call.user, order.customer_id):
        raise not_found("order")
    return order


def _customer_cancel(
    tx: Tx, outbox: Outbox, call: Call, order: Order, body: UpdateOrderIn
) -> None:
    if body.status != Status.CANCELLED:
        raise Problem(403, "forbidden", "customers may only set the status CANCELLED")
    if body.reason not in (None, "cancelled_by_customer"):
        raise field_problem("reason", "only administrators may give another reason")
    if order.status not in CUSTOMER_CANCELLABLE:
        if order.status == Status.PAID:
            raise _conflict("the order is paid and shipping is underway; it cannot be "
                            "cancelled any more")
        raise _conflict(f"the order is {order.status} and cannot be cancelled")
    # order.cancelled makes payments refund or void and inventory release the stock.
    transition(tx, outbox, order, Status.CANCELLED, actor=call.actor,
               reason="cancelled_by_customer")


def _admin_transition(
    tx: Tx, outbox: Outbox, call: Call, order: Order, body: UpdateOrderIn
) -> None:
    if body.status != Status.CANCELLED and body.reason is not None:
        raise field_problem("reason", "a reason is only given when cancelling")
    reason: CancelReason | None = None
    if body.status == Status.CANCELLED:
        reason = body.reason or "cancelled_by_customer"
    window = None
    if body.status == Status.AWAITING_PAYMENT and order.payment_mode == "confirm":
        window = timedelta(seconds=call.settings.payment_window_s)
    try:
        transition(tx, outbox, order, body.status, actor=call.actor, reason=reason,
                   payment_window=window)
    except IllegalTransition as exc:
        raise _conflict(f"{exc.current} -> {exc.wanted} is not a legal transition") from None


def _conflict(detail: str) -> Problem:
    return Problem(409, "conflict", detail)
