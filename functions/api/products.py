"""/products: the catalogue with what is available (public), and the admin's writes: new
products and restocks. Every stock change is a stock_movements row, so the conservation
check (initial + restocks = on_hand + committed) holds."""

from __future__ import annotations

from typing import Annotated

from psycopg import errors as pg_errors
from pydantic import BaseModel, Field

from common.events.models import Sku
from common.pg import Row, Tx
from common.problems import Problem
from common.products import add_product
from functions.api import sql
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


def _product_out(row: Row) -> ProductOut:
    sku, name, description, price, available = row
    return ProductOut(sku=sku, name=name, description=description, price=price,
                      available=available)


def _product(tx: Tx, sku: str) -> ProductOut:
    row = tx.one(sql.PRODUCT, {"sku": sku})
    assert row is not None, f"product {sku} was just written"
    return _product_out(row)


@ROUTES.route(
    "GET", "/products", summary="The catalogue with available stock", auth="none",
    query=PageQuery, response=ProductPage, errors=(422,),
)
def list_products(call: Call) -> ProductPage:
    q = call.query(PageQuery)

    def work(tx: Tx) -> ProductPage:
        # Every SKU sorts after '' (the model requires at least one character).
        (after_sku,) = decode_cursor(q.cursor, 1) if q.cursor is not None else ("",)
        rows = tx.all(sql.PRODUCTS, {"after_sku": after_sku, "limit": q.limit + 1})
        page = [_product_out(row) for row in rows[: q.limit]]
        more = len(rows) > q.limit
        return ProductPage(items=page, next_cursor=encode_cursor(page[-1].sku) if more else None)

    return transact(call, work)


@ROUTES.route(
    "POST", "/products", summary="Add a product with its initial stock", auth="admin",
    status=201, body=ProductIn, response=ProductOut, errors=(409, 422),
)
def create_product(call: Call) -> Reply:
    body = call.body(ProductIn)

    def work(tx: Tx) -> ProductOut:
        add_product(tx, body.sku, body.name, body.description, body.price,
                    body.initial_stock)
        return _product(tx, body.sku)

    try:
        product = transact(call, work)
    except pg_errors.UniqueViolation:
        raise Problem(409, "conflict", f"product {body.sku} already exists") from None
    return Reply(product, 201)


@ROUTES.route(
    "POST", "/products/<sku>/restock", summary="Add units to a product's stock",
    auth="admin", body=RestockIn, response=ProductOut, errors=(404, 422),
)
def restock(call: Call) -> ProductOut:
    sku: str = call.params["sku"]
    quantity = call.body(RestockIn).quantity

    def work(tx: Tx) -> ProductOut:
        # The row lock orders this against reservations running in the inventory function.
        if tx.one(sql.LOCK_STOCK_ROW, {"sku": sku}) is None:
            raise not_found("product")
        tx.run(sql.RESTOCK, {"sku": sku, "quantity": quantity})
        return _product(tx, sku)

    return transact(call, work)
