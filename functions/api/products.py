"""/products: the catalogue with what is available (public), and the admin's writes: new
products and restocks. Every stock change is a stock_movements row, so the conservation
check (initial + restocks = on_hand + committed) holds."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Select, insert, select, update
from sqlalchemy.exc import IntegrityError

from common import tables as t
from common.events.models import Sku
from common.problems import Problem
from common.products import add_product
from functions.api.errors import not_found
from functions.api.route_specs import Call, Reply, RouteGroup
from functions.api.schemas import (
    NEXT_CURSOR_DESCRIPTION,
    MoneyIn,
    MoneyOut,
    PageQuery,
    RequestModel,
    decode_cursor,
    encode_cursor,
)
from functions.api.tx import transact

ROUTES = RouteGroup("products")

MAX_STOCK_CHANGE = 1_000_000


class ProductOut(BaseModel):
    sku: str
    name: str
    description: str
    price: MoneyOut
    available: int = Field(description="Units that can still be ordered: on hand - reserved.")


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None = Field(description=NEXT_CURSOR_DESCRIPTION)


class ProductIn(RequestModel):
    sku: Sku
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    price: Annotated[MoneyIn, Field(ge=0)]
    initial_stock: int = Field(default=0, ge=0, le=MAX_STOCK_CHANGE)


class RestockIn(RequestModel):
    quantity: int = Field(gt=0, le=MAX_STOCK_CHANGE)


def _select_products() -> Select[Any]:
    p, s = t.products, t.stock
    return select(
        p.c.sku, p.c.name, p.c.description, p.c.price,
        (s.c.on_hand - s.c.reserved).label("available"),
    ).join(s, s.c.sku == p.c.sku)


def _product(conn: Connection, sku: str) -> ProductOut:
    row = conn.execute(_select_products().where(t.products.c.sku == sku)).one()
    return ProductOut.model_validate(row._asdict())


@ROUTES.route(
    "GET", "/products", summary="The catalogue with available stock", auth="none",
    query=PageQuery, response=ProductPage, errors=(422,),
)
def list_products(call: Call) -> ProductPage:
    q = call.query(PageQuery)

    def work(conn: Connection) -> ProductPage:
        query = _select_products()
        if q.cursor is not None:
            (last_sku,) = decode_cursor(q.cursor, 1)
            query = query.where(t.products.c.sku > last_sku)
        rows = conn.execute(query.order_by(t.products.c.sku).limit(q.limit + 1)).all()
        page = [ProductOut.model_validate(r._asdict()) for r in rows[: q.limit]]
        more = len(rows) > q.limit
        return ProductPage(items=page, next_cursor=encode_cursor(page[-1].sku) if more else None)

    return transact(call, work)


@ROUTES.route(
    "POST", "/products", summary="Add a product with its initial stock", auth="admin",
    status=201, body=ProductIn, response=ProductOut, errors=(409, 422),
)
def create_product(call: Call) -> Reply:
    body = call.body(ProductIn)

    def work(conn: Connection) -> ProductOut:
        add_product(conn, body.sku, body.name, body.description, body.price,
                    body.initial_stock)
        return _product(conn, body.sku)

    try:
        product = transact(call, work)
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == "23505":  # unique_violation
            raise Problem(409, "conflict", f"product {body.sku} already exists") from None
        raise
    return Reply(product, 201)


@ROUTES.route(
    "POST", "/products/<sku>/restock", summary="Add units to a product's stock",
    auth="admin", body=RestockIn, response=ProductOut, errors=(404, 422),
)
def restock(call: Call) -> ProductOut:
    sku: str = call.params["sku"]
    quantity = call.body(RestockIn).quantity
    s = t.stock

    def work(conn: Connection) -> ProductOut:
        # The row lock orders this against reservations running in the inventory function.
        locked = conn.execute(select(s.c.sku).where(s.c.sku == sku).with_for_update()).first()
        if locked is None:
            raise not_found("product")
        conn.execute(
            update(s).where(s.c.sku == sku)
            .values(on_hand=s.c.on_hand + quantity, version=s.c.version + 1)
        )
        conn.execute(insert(t.stock_movements).values(
            sku=sku, kind="restock", delta_on_hand=quantity, delta_reserved=0,
        ))
        return _product(conn, sku)

    return transact(call, work)
